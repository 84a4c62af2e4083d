"""The index in Datasette, as its users open it: `datasette -i INDEX -m METADATA`, the metadata written
by `recording-index datasette-metadata`. A real Datasette server on 127.0.0.1."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from recording_index.cli import main
from http_server import free_port, wait_until_answering
from recording_index.index.database import Index
from recording_index.models import Correction
from test_index import TEXTS, chunks_of, make_recording, make_segments

DATASETTE = Path(sys.executable).parent / "datasette"
pytestmark = pytest.mark.skipif(not DATASETTE.exists(), reason="datasette is in the dev extra")


@pytest.fixture(scope="module")
def datasette(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasette")
    db = folder / "archive.db"
    with Index(db) as index:
        rec = make_recording()
        segments = make_segments(TEXTS)
        segments[1].origin, segments[1].corrected_by, segments[1].text_machine = "corrected", "Anne", "machine text"
        index.add(rec, segments, chunks_of(rec.id, segments))
        index.add_corrections([Correction(0, rec.id, "fr", segments[1].start, segments[1].end, segments[1].text,
                                          by="Anne", at="2026-11-25T10:00:00Z", origin="web")])
    written = CliRunner().invoke(main, ["datasette-metadata", "--db", str(db)])
    assert written.exit_code == 0, written.output
    (folder / "metadata.json").write_text(written.output)
    port = free_port()
    server = subprocess.Popen([str(DATASETTE), "-i", str(db), "-m", str(folder / "metadata.json"), "-h", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/-/versions.json", server, 60, lambda: server.stderr.read().decode())
    yield url, db
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def rows(url: str, path: str) -> list[dict]:
    response = httpx.get(f"{url}{path}", timeout=10)
    assert response.status_code == 200, response.text[:500]
    return response.json()["rows"]


def test_chunks_are_searchable_where_a_datasette_user_searches(datasette):
    url, _ = datasette
    everything = rows(url, "/archive/chunks.json?_shape=objects")
    found = rows(url, "/archive/chunks.json?_shape=objects&_search=criminalite")  # accents ignored
    assert len(everything) == 3 and [r["idx"] for r in found] == [0] and "criminalité" in found[0]["text_fr"]
    assert rows(url, "/archive/chunks.json?_shape=objects&_search=zzzqqq") == []
    page = httpx.get(f"{url}/archive/chunks", timeout=10).text
    assert 'name="_search"' in page  # the search box is there


def test_canned_queries_link_to_the_moment(datasette):
    url, _ = datasette
    said = rows(url, "/archive/said_in_french.json?_shape=objects&words=coordination")
    assert said and said[0]["link"].endswith(f"#t={said[0]['seconds']:.1f}")
    assert rows(url, '/archive/said_in_french.json?_shape=objects&words=%22%29(AND') == []  # typed text is words
    transcript = rows(url, "/archive/transcript.json?_shape=objects&recording=talk-1")
    assert [r["french"] for r in transcript] == [s for s in TEXTS]


def test_facets_and_descriptions_are_there(datasette):
    url, _ = datasette
    data = httpx.get(f"{url}/archive/recordings.json?_extra=facet_results", timeout=10).json()
    assert {"event", "speakers"} <= set(data["facet_results"]["results"] if "results" in data["facet_results"]
                                        else data["facet_results"])
    assert "One row a recording" in httpx.get(f"{url}/archive/recordings", timeout=10).text


def test_provenance_and_corrections_are_shown(datasette):
    url, _ = datasette
    corrected = rows(url, "/archive/segments.json?_shape=objects&origin=corrected")
    assert [(r["idx"], r["corrected_by"], r["text_machine"]) for r in corrected] == [(1, "Anne", "machine text")]
    assert [(r["by"], r["origin"], r["lang"]) for r in rows(url, "/archive/corrections.json?_shape=objects")] == [
        ("Anne", "web", "fr")]
    transcript = rows(url, "/archive/transcript.json?_shape=objects&recording=talk-1")
    assert [r["origin"] for r in transcript] == ["machine", "corrected"] + ["machine"] * (len(TEXTS) - 2)
    assert "What people corrected" in httpx.get(f"{url}/archive/corrections", timeout=10).text


def test_metadata_for_a_file_that_is_no_index_is_refused(tmp_path):
    (tmp_path / "other.db").write_bytes(b"not a database at all" * 100)
    result = CliRunner().invoke(main, ["datasette-metadata", "--db", str(tmp_path / "other.db")])
    assert result.exit_code == 2 and "other.db" in result.output


def test_sentences_are_searchable_too(datasette):
    url, _ = datasette
    found = rows(url, "/archive/segments.json?_shape=objects&_search=criminalite")
    assert [r["idx"] for r in found] == [1] and "criminalité" in found[0]["text"]
    assert rows(url, "/archive/segments.json?_shape=objects&_search=zzzqqq") == []
    assert 'name="_search"' in httpx.get(f"{url}/archive/segments", timeout=10).text


@pytest.fixture(scope="module")
def plain_datasette(tmp_path_factory):
    """Datasette as its users start it: `datasette archive.db`, no metadata, no options."""
    from test_plain_sqlite import build_archive

    db = build_archive(tmp_path_factory.mktemp("plain") / "archive.db")
    port = free_port()
    server = subprocess.Popen([str(DATASETTE), str(db), "-h", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/-/versions.json", server, 60, lambda: server.stderr.read().decode())
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.mark.parametrize("table, word, column", [("chunks", "criminalite", "text_fr"), ("chunks", "assesses", "text_en"),
                                                 ("segments", "criminalité", "text"), ("segments", "prevention", "text_en")])
def test_datasette_with_no_metadata_searches_both_languages(plain_datasette, table, word, column):
    found = rows(plain_datasette, f"/archive/{table}.json?_shape=objects&_search={word}")
    assert len(found) == 2 and all(word[:8] in r[column].lower().replace("é", "e") or word in r[column].lower()
                                   for r in found), found
    assert {r["recording_id"] for r in found} == {"talk-1", "talk-2"}
    assert rows(plain_datasette, f"/archive/{table}.json?_shape=objects&_search=zzzqqqxx") == []
