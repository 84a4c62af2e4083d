"""The trust boundary, attacked for real: hostile pages on a loopback server, catalogs, FIFOs,
symbolic links, foreign and damaged databases, read-only and full filesystems (issue 14)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import fresh_cache
from http_server import LocalServer
from recording_index import pipeline
from recording_index.ingest import audio
from recording_index.config import Settings, load_catalog
from recording_index.errors import BadInputError, ConfigError, RecordingIndexError
from recording_index.ingest.fetch import FetchOptions, download
from recording_index.index.database import Index
from recording_index.locks import exclusive_run
from recording_index.models import Recording
from recording_index.safety import inside, json_text, printable, redact, redact_url
from recording_index.ingest.sources import resolve

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "recording_index.cli"]
FAST = FetchOptions(retries=1, backoff=0.01, timeout=2.0, progress=False)


def cli(args, env=None, timeout=600, cwd=ROOT):
    result = subprocess.run([*CLI, *map(str, args)], cwd=cwd, env=env or os.environ, capture_output=True,
                            text=True, timeout=timeout)
    if "Traceback" in result.stderr + result.stdout:
        Path("/tmp/exp/last-traceback.txt").write_text(result.stderr + result.stdout)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


@pytest.fixture
def env(cache_dir, tmp_path_factory):
    return {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(fresh_cache(cache_dir, tmp_path_factory.mktemp("cache"))),
            "ARGOS_PACKAGES_DIR": str(tmp_path_factory.mktemp("no-argos")), "RECORDING_INDEX_PROGRESS": "false",
            "RECORDING_INDEX_TRANSLATOR": "none"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_text(db: Path) -> str:
    """Every value of every table of a database, as one text."""
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    text = "\n".join(str(v) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"') for v in row)
    conn.close()
    return text


# --- 1. a page never names a local file -------------------------------------------------------

def test_a_page_cannot_name_local_files_by_any_scheme(media_dir):
    secret = media_dir / "tone.wav"
    page = (f'<audio src="file://{secret}"></audio><a href="file://{secret}">a wav</a>'
            f'<a href="file:{secret}">no slashes</a><video><source src="ftp://127.0.0.1/x.mp4"></video>'
            '<audio src="data:audio/wav;base64,UklGRg=="></audio>')
    with LocalServer() as server:
        server.site.pages["/page.html"] = page
        server.site.pages["/based.html"] = f'<base href="file://{media_dir}/"><a href="tone.wav">tone</a>'
        resolved = resolve(Recording(id="p", source=server.url("/page.html")), FAST)
        assert resolved.recordings == [] and len(resolved.refused) >= 3
        assert {str(e).split(": ")[1] for e in resolved.refused} == {
            "scheme 'file' refused", "scheme 'ftp' refused", "scheme 'data' refused"}
        assert f"links file://{secret}" in str(resolved.refused[0])
        # A <base> that is not http(s) is not followed: the link stays on the page's own server.
        based = resolve(Recording(id="b", source=server.url("/based.html")), FAST)
        assert [r.source for r in based.recordings] == [server.url("/tone.wav")]
        assert "<base> of scheme 'file' not followed" in str(based.refused[0])


def test_a_page_linking_local_files_gets_nothing_read_even_in_a_dry_run(media_dir, env, tmp_path):
    fifo = tmp_path / "secret.wav"
    os.mkfifo(fifo)  # anything that opened it would block here
    page = f'<audio src="file://{fifo}"></audio><a href="file://{media_dir}/tone.wav">tone</a>'
    with LocalServer() as server:
        server.site.pages["/page.html"] = page
        db = tmp_path / "index.db"
        dry = cli(["run", server.url("/page.html"), "--db", db, "--dry-run"], env, timeout=60)
        assert dry.stdout.count("would fail") == 2 and "scheme 'file' refused" in dry.stdout
        assert not db.exists()
        ran = cli(["run", server.url("/page.html"), "--db", db], env, timeout=300)
    assert ran.returncode == 1 and ran.stderr.count("FAILED") == 2
    assert all(line.count("\n") == 0 for line in ran.stderr.splitlines() if "FAILED" in line)
    with Index(db, readonly=True) as index:
        assert index.list_recordings() == []


def test_only_regular_files_are_read_and_a_redirect_to_a_file_is_refused(tmp_path, media_dir):
    with LocalServer() as server:
        server.site.redirects["/to-file.mp3"] = f"file://{media_dir}/tone.mp3"
        with pytest.raises(BadInputError, match="redirected to a URL that is not http or https"):
            download(server.url("/to-file.mp3"), tmp_path, FAST)


# --- 2. ids never write outside their folder -----------------------------------------------------

@pytest.mark.parametrize("bad_id", ["../../x", "/abs/x", "a/b", "..", ".hidden", "x" * 101, "a\x00b", "é t"])
def test_catalog_ids_are_validated(tmp_path, bad_id):
    catalog = tmp_path / "c.toml"
    catalog.write_text(f'[[recordings]]\nid = {json.dumps(bad_id)}\nsource = "talk.mp3"\n')
    with pytest.raises(ConfigError, match="c.toml:2: recordings\\[1\\].id"):
        load_catalog(catalog)


def test_every_file_written_stays_in_its_folder(tmp_path):
    (tmp_path / "subtitles").mkdir()
    (tmp_path / "subtitles" / "out.srt").symlink_to(tmp_path / "elsewhere.srt")
    for name in ("../x.srt", "/abs.srt", "..", "", "out.srt"):
        with pytest.raises(BadInputError):
            inside(tmp_path / "subtitles", name)
    assert inside(tmp_path / "subtitles", "talk-1.fr.srt") == tmp_path / "subtitles" / "talk-1.fr.srt"


def test_an_id_escaping_its_folder_is_refused_by_the_command_line(tmp_path, env):
    catalog = tmp_path / "c.toml"
    catalog.write_text('[[recordings]]\nid = "../../escape"\nsource = "talk.mp3"\n')
    result = cli(["run", "--catalog", catalog, "--db", tmp_path / "i.db"], env, timeout=60)
    assert result.returncode == 2 and "must start with a letter or digit" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not list(tmp_path.parent.glob("escape*"))


# --- 3 and 4. credentials and terminal escapes never reach what is stored or shown ---------------

def test_credentials_and_escapes_from_a_page_are_neither_stored_nor_printed(sample_mp3, env, tmp_path):
    import base64

    with LocalServer() as server:
        server.site.files["/talk.mp3"] = (sample_mp3.read_bytes(), "audio/mpeg")
        server.site.auth["/talk.mp3"] = "Basic " + base64.b64encode(b"reader:s3cret-pw").decode()
        server.site.pages["/event.html"] = (
            '<a href="/talk.mp3">Le\x1b[31m titre \x1b]0;pwned\x07 \u202eevil\x9b2J</a>'
            '<a href="/gone.mp3">Partie \x1b[2J disparue</a>')
        url = server.url("/event.html").replace("http://", "http://reader:s3cret-pw@")
        db = tmp_path / "index.db"
        ran = cli(["run", url, "--db", db], env)
        listed = cli(["list", "--db", db], env)
        as_json = cli(["list", "--db", db, "--json"], env)
        found = cli(["search", "traduction", "--db", db, "--json"], env)
        shown = cli(["search", "traduction", "--db", db], env)
        assert server.site.hits["/talk.mp3"] >= 1  # fetched with the credentials (else a 401)
    assert ran.returncode == 1 and "HTTP 404" in ran.stderr and "1 indexed" in ran.stdout
    printed = "".join(r.stdout + r.stderr for r in (ran, listed, as_json, found, shown))
    assert "s3cret" not in printed and "s3cret" not in all_text(db)
    # Nor in Prefect's own database (flow-run parameters, logs) or the download cache's state.
    prefect_db = b"".join(p.read_bytes() for p in Path(os.environ["PREFECT_HOME"]).glob("prefect.db*"))
    assert b"/event.html" in prefect_db and b"s3cret" not in prefect_db  # it holds the run's parameters
    cache = Path(env["RECORDING_INDEX_CACHE_DIR"])
    assert not [p for p in cache.rglob("*.json") if b"s3cret" in p.read_bytes()]
    assert not any(c in printed for c in "\x1b\x07\x9b\u202e")
    assert "Le [31m titre  ]0;pwned   evil 2J" in listed.stdout and json.loads(found.stdout)[0]["url"].startswith(server.url("/talk.mp3"))
    indexed = [row for row in json.loads(as_json.stdout) if row["status"] == "indexed"]
    assert indexed[0]["title"] == "Le [31m titre  ]0;pwned   evil 2J"  # cleaned once found


def test_query_string_secrets_of_signed_urls_are_neither_stored_nor_printed(sample_mp3, env, tmp_path):
    """A signed media URL's token is a secret as a password is: used to fetch, kept nowhere."""
    import base64

    with LocalServer() as server:
        server.site.files["/good.mp3"] = (sample_mp3.read_bytes(), "audio/mpeg")
        server.site.auth["/good.mp3"] = "Basic " + base64.b64encode(b"alice:pw").decode()
        url = server.url("/good.mp3").replace("http://", "http://alice:pw@") + "?token=QUERYsecret789&x=1"
        db = tmp_path / "index.db"
        ran = cli(["run", url, "--db", db, "-v"], env)
        listed = cli(["list", "--db", db, "--json"], env)
        assert ran.returncode == 0, ran.stderr
    printed = ran.stdout + ran.stderr + listed.stdout + listed.stderr
    assert "QUERYsecret789" not in printed and "QUERYsecret789" not in all_text(db)
    assert json.loads(listed.stdout)[0]["source"].endswith("/good.mp3?token=REDACTED&x=1")
    prefect_db = b"".join(p.read_bytes() for p in Path(os.environ["PREFECT_HOME"]).glob("prefect.db*"))
    assert b"QUERYsecret789" not in prefect_db
    cache = Path(env["RECORDING_INDEX_CACHE_DIR"])
    assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix == ".json" and b"QUERYsecret789" in p.read_bytes()]


def test_redaction_and_cleaning():
    assert redact_url("https://b/t.mp3?X-Amz-Date=1&X-Amz-Signature=abc&X-Amz-Security-Token=t&monkey=1") == \
        "https://b/t.mp3?X-Amz-Date=1&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&monkey=1"
    assert redact("GET https://h/a.mp3?sig=abc&x=1: HTTP 403") == "GET https://h/a.mp3?sig=REDACTED&x=1: HTTP 403"
    assert redact_url("https://u:p@host:8080/a.mp3?x=1") == "https://host:8080/a.mp3?x=1"
    assert redact("https://u:p@h/a.mp3: HTTP 404 (see http://v@w/b)") == "https://h/a.mp3: HTTP 404 (see http://w/b)"
    assert printable("a\x1b[31mb\tc\nd\u202ee\x9bf") == "a [31mb c d e f"
    assert json.loads(json_text({"t": "x\x9b\u202ey\n"})) == {"t": "x\x9b\u202ey\n"}


# --- 5. read commands never write; foreign databases are refused untouched -----------------------

def test_read_commands_refuse_a_foreign_database_and_leave_it_untouched(tmp_path, env):
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    before = digest(foreign)
    for args in (["search", "x"], ["list"], ["transcript", "x"], ["subtitles", "x"], ["serve", "--port", "1"],
                 ["run", "nothing.mp3"]):
        result = cli([*args, "--db", foreign], env, timeout=60)
        assert result.returncode == 2 and "not a recording-index index" in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1
    assert digest(foreign) == before and sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db"]


def test_a_search_changes_not_a_byte_of_an_index(tmp_path):
    from test_index import chunks_of, make_recording, make_segments

    path = tmp_path / "i.db"
    with Index(path) as ix:
        segs = make_segments(["la coordination des actions locales"])
        ix.add(make_recording(), segs, chunks_of("talk-1", segs))
    before = digest(path)
    with Index(path, readonly=True) as ix:
        assert ix.search("coordination")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ix.db.execute("DELETE FROM words")
    assert digest(path) == before


def test_damaged_and_unreadable_databases_are_one_line(tmp_path, env):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all\n" * 100)
    for db in (damaged, garbage):
        result = cli(["search", "x", "--db", db], env, timeout=60)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert str(db) in result.stderr


def test_a_damaged_size_record_read_by_the_ranking_is_one_line(tmp_path, env):
    """bm25() reads each scored chunk's length from FTS5's size records: a damaged one is an error
    of one line."""
    from test_index import chunks_of, make_recording, make_segments

    path = tmp_path / "i.db"
    with Index(path) as ix:
        segs = make_segments(["la stratégie de prévention des quartiers"])
        ix.add(make_recording(), segs, chunks_of("talk-1", segs))
    assert "prévention" in cli(["search", '"de prévention"', "--db", path], env, timeout=60).stdout
    with sqlite3.connect(path) as other:
        other.execute("UPDATE chunks_fts_docsize SET sz = x'80'")
    result = cli(["search", '"de prévention"', "--db", path], env, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "malformed" in result.stderr


# --- 6 and 7. bounded work, and audio shorter than declared -------------------------------------

def wav_with_rate(path: Path, rate: int, data: bytes) -> Path:
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    path.write_bytes(header + data)
    return path


def test_a_header_declaring_1_hz_is_refused_before_decoding(tmp_path):
    path = wav_with_rate(tmp_path / "one-hertz.wav", 1, os.urandom(213_000))
    with pytest.raises(BadInputError, match="declared at 1 Hz"):
        audio.probe(path)


def test_declared_length_over_the_limit_is_refused_and_decoding_is_bounded(tmp_path, media_dir):
    path = wav_with_rate(tmp_path / "long.wav", 8000, bytes(16000 * 4))  # 4 s
    with pytest.raises(BadInputError, match="more than max_hours = 0.001"):
        audio.probe(path, max_hours=0.001)
    wav = audio.normalise(media_dir / "tone.mp3", tmp_path / "out", max_seconds=1.0)
    assert 0.9 < audio.decoded_seconds(wav) <= 1.01  # 3 s of tone, 1 s decoded
    assert audio.decoding_limit(60, 12) == 660 and audio.decoding_limit(10 * 3600, 12) == 12 * 3600


def test_a_gzipped_download_is_bounded_by_its_decoded_size(tmp_path):
    with LocalServer() as server:
        server.site.files["/zeros.mp3"] = (bytes(50 * 1024**2), "audio/mpeg")
        server.site.gzipped.add("/zeros.mp3")
        options = FetchOptions(retries=0, progress=False, max_bytes=5 * 1024**2)
        with pytest.raises(BadInputError, match="too large"):
            download(server.url("/zeros.mp3"), tmp_path, options)
        assert server.site.requests[-1][1].get("Accept-Encoding") == "identity"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > 0 and p.suffix != ".json"]


def test_a_download_that_is_no_media_is_not_kept(tmp_path, settings):
    with LocalServer() as server:
        server.site.files["/noise.mp3"] = (b"<html>not audio</html>" * 500, "application/octet-stream")
        mine = Settings(cache_dir=str(tmp_path), progress=False)
        with pytest.raises(BadInputError, match="not a media file"):
            pipeline.prepare(Recording(id="n", source=server.url("/noise.mp3")), mine, tmp_path / "i.db")
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]


def test_a_page_of_too_many_links_is_refused(tmp_path):
    with LocalServer() as server:
        server.site.pages["/many.html"] = "".join(f'<a href="/m/{n}.mp3">{n}</a>' for n in range(10_000))
        with pytest.raises(BadInputError, match="page links 10000 recordings, more than max_page_recordings = 100"):
            resolve(Recording(id="m", source=server.url("/many.html")), FAST, max_recordings=100)


def test_truncated_media_is_indexed_with_a_warning_and_its_decoded_duration(sample_mp3, tmp_path, settings):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(sample_mp3.read_bytes()[:9000])
    info = audio.probe(cut)
    wav = audio.normalise(cut, tmp_path / "wav")
    decoded = audio.decoded_seconds(wav)
    assert info.duration > 30 and decoded < 2
    recording, warning = pipeline.with_decoded_duration(Recording(id="cut", source=str(cut), duration=info.duration),
                                                        decoded)
    assert recording.duration == decoded and recording.declared_duration == info.duration
    assert warning.startswith("truncated?") and f"{info.duration:.1f} s" in warning
    assert pipeline.with_decoded_duration(Recording(id="ok", source="x", duration=34.0), 33.9)[1] == ""


# --- 8 and 11. never hang: FIFOs, dripping servers, redirect loops ------------------------------

def test_a_fifo_on_the_command_line_fails_alone(tmp_path, env, media_dir):
    fifo = tmp_path / "talk.mp3"
    os.mkfifo(fifo)
    result = cli(["run", fifo, media_dir / "tone.mp3", "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    lines = result.stdout.splitlines()
    assert "would fail" in lines[0] and "not a regular file (a FIFO)" in lines[0]
    assert "would index" in lines[1]


@contextmanager
def dripping_server(headers_first: bool):
    """A server that sends one byte a second: of its headers, or of its body after them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    def drip(conn):
        conn.recv(4096)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: 100000\r\n\r\n"
        if not headers_first:
            conn.sendall(head)
        for byte in (head if headers_first else b"x" * 100000):
            if stop.is_set():
                break
            try:
                conn.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.5)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/talk.mp3"
    finally:
        stop.set()
        listener.close()


def test_a_dripping_body_is_cut_off(tmp_path):
    with dripping_server(headers_first=False) as url:
        started = time.monotonic()
        with pytest.raises(BadInputError, match="too slow"):
            download(url, tmp_path, FetchOptions(retries=2, progress=False, stall_window=2.0))
        assert time.monotonic() - started < 30
    assert not list((tmp_path / ".partial").iterdir())


def test_dripping_headers_meet_the_total_deadline(tmp_path):
    with dripping_server(headers_first=True) as url:
        started = time.monotonic()
        with pytest.raises(BadInputError, match="took longer than the 3-s limit"):
            download(url, tmp_path, FetchOptions(retries=2, progress=False, deadline=3.0))
        assert time.monotonic() - started < 30


def test_a_redirect_loop_is_a_bad_input_not_a_hiccup(tmp_path):
    with LocalServer() as server:
        server.site.redirects["/loop.mp3"] = "/loop.mp3"
        server.site.redirects["/loop.html"] = "/loop.html"
        with pytest.raises(BadInputError, match="too many redirects"):
            download(server.url("/loop.mp3"), tmp_path, FetchOptions(retries=4, progress=False))
        assert server.site.hits["/loop.mp3"] == 6  # the request and 5 redirects, once
        with pytest.raises(BadInputError, match="too many redirects"):
            resolve(Recording(id="l", source=server.url("/loop.html")), FAST)


# --- 9. bad paths and catalogs: one line each ------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"events = 5\n", "events: must be a list of tables"),
    (b"recordings = [1, 2]\n", "recordings: must be a list of tables"),
    (b'[[recordings]]\nsource = "a\x00b.mp3"\n', "c.toml"),
    (b'[[recordings]]\nsource = "a\\u0000b.mp3"\n', "NUL"),
    (b'[[recordings]]\ntitle = "\xff\xfe"\nsource = "a.mp3"\n', "not UTF-8 text"),
    (b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "c.toml"),
    (b'[[events]]\ntitle = 5\nsource = "a.mp3"\n', "events[1].title: must be a string"),
])
def test_bad_catalogs_are_one_line_and_status_2(tmp_path, env, content, message):
    catalog = tmp_path / "c.toml"
    catalog.write_bytes(content)
    result = cli(["run", "--catalog", catalog, "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_catalog_that_is_a_fifo_is_refused(tmp_path, env):
    os.mkfifo(tmp_path / "c.toml")
    result = cli(["run", "--catalog", tmp_path / "c.toml", "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert result.returncode == 2 and "not a regular file (a FIFO)" in result.stderr


def test_a_symlink_loop_fails_alone(tmp_path, env, media_dir):
    (tmp_path / "loop.mp3").symlink_to(tmp_path / "loop.mp3")
    catalog = tmp_path / "c.toml"
    catalog.write_text('[[recordings]]\nid = "looped"\nsource = "loop.mp3"\n')
    result = cli(["run", tmp_path / "loop.mp3", media_dir / "tone.mp3", "--catalog", catalog,
                  "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    lines = result.stdout.splitlines()
    assert [("symbolic link loop" in line) for line in lines] == [True, True, False]


# --- 12. storage that cannot be written ------------------------------------------------------------

def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def small_filesystem(path: Path, size: str):
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.mark.skipif(not can_mount(), reason="mounting a small filesystem needs root")
def test_an_index_on_read_only_storage_is_still_searchable(tmp_path, env):
    from test_index import chunks_of, make_recording, make_segments

    with small_filesystem(tmp_path / "ro", "4m") as folder:
        with Index(folder / "i.db") as ix:  # WAL mode: readers need a -shm file they cannot make here
            segs = make_segments(["la prévention de la criminalité"])
            ix.add(make_recording(), segs, chunks_of("talk-1", segs))
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        found = cli(["search", "criminalité", "--db", folder / "i.db", "--json"], env, timeout=60)
        assert found.returncode == 0 and json.loads(found.stdout)[0]["recording_id"] == "talk-1"
        run = cli(["run", "x.mp3", "--db", folder / "sub" / "i.db"], env, timeout=60)
        assert run.returncode == 2 and "Read-only file system" in run.stderr


def test_the_web_app_answers_404_or_400_never_500(tmp_path):
    from starlette.testclient import TestClient
    from test_index import chunks_of, make_recording, make_segments

    from recording_index.web import create_app

    with Index(tmp_path / "i.db") as ix:
        segs = make_segments(["la prévention de la criminalité"])
        ix.add(make_recording(), segs, chunks_of("talk-1", segs))
    client = TestClient(create_app(tmp_path / "i.db"), raise_server_exceptions=False, base_url="http://127.0.0.1")
    for path in ("/recordings/%00", "/recordings/%00/media", "/recordings/a%00b/subtitles.fr.vtt",
                 "/recordings/" + "x" * 300, "/recordings/" + "x" * 300 + "/media", "/recordings/%2e%2e/media",
                 "/recordings/talk-1/subtitles.xx.vtt", "/search?q=%00&page=%00"):
        assert client.get(path).status_code in (200, 400, 404), path
    (tmp_path / "i.db").write_bytes(b"damaged" * 100)
    assert client.get("/recordings/talk-1").status_code in (400, 404)
    assert client.get("/?q=x").status_code != 500


# --- 13, 14 and 15. collisions, the lock, and a dry run that writes nothing -------------------------

def test_two_sources_of_one_id_refuse_the_run_naming_both(tmp_path, media_dir, env):
    from recording_index.ingest.sources import recording_for_path

    automatic = recording_for_path(str(media_dir / "tone.mp3")).id
    catalog = tmp_path / "c.toml"
    catalog.write_text(f'[[recordings]]\nid = "{automatic}"\nsource = "{media_dir / "tone.wav"}"\n')
    result = cli(["run", media_dir / "tone.mp3", "--catalog", catalog, "--db", tmp_path / "i.db"], env, timeout=60)
    assert result.returncode == 2 and f"two sources have the id '{automatic}'" in result.stderr
    assert "tone.wav" in result.stderr and "tone.mp3" in result.stderr and not (tmp_path / "i.db").exists()


def test_the_lock_holds_through_a_symlink_to_the_database(tmp_path, media_dir, env):
    real = tmp_path / "real.db"
    (tmp_path / "link.db").symlink_to(real)
    with exclusive_run(real):
        started = time.monotonic()
        result = cli(["run", media_dir / "tone.mp3", "--db", tmp_path / "link.db"], env, timeout=60)
    assert result.returncode == 2 and "another run is indexing into it" in result.stderr
    assert time.monotonic() - started < 15 and len(result.stderr.strip().splitlines()) == 1


def test_a_dry_run_writes_nothing_at_all(tmp_path, media_dir, env):
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    result = cli(["run", media_dir / "tone.mp3", "--db", tmp_path / "new" / "i.db", "--dry-run"],
                 {**env, "RECORDING_INDEX_CACHE_DIR": str(cache)}, timeout=60)
    assert result.returncode == 0 and "would index" in result.stdout
    assert not (tmp_path / "new").exists() and not list(cache.iterdir())


# --- 10. a full disk: one line a recording, a clean stop, nothing lost -------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not can_mount(), reason="mounting a small filesystem needs root")
def test_a_full_disk_stops_the_run_cleanly_and_keeps_what_was_indexed(tmp_path, env, two_talks, sample_mp3):
    with small_filesystem(tmp_path / "small", "8m") as folder:
        db = folder / "i.db"
        first = cli(["run", sample_mp3, "--db", db], env)
        assert first.returncode == 0, first.stderr
        audio_cache = Path(env["RECORDING_INDEX_CACHE_DIR"]) / "audio"

        def fill_once_transcribing():  # the index is open and the first talk decoded: fill the disk now
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and len(list(audio_cache.glob("*.wav"))) < 2:
                time.sleep(0.05)
            with open(folder / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(bytes(64 * 1024))
                        filler.flush()
                except OSError:
                    pass

        filling = threading.Thread(target=fill_once_transcribing)
        filling.start()
        # The other talk first; the sample's copy after it would reuse the first run's transcript.
        full = cli(["run", two_talks[1], two_talks[0], "--db", db], env)
        filling.join()
        (folder / "filler").unlink()
        assert full.returncode == 1
        failed = [line for line in full.stderr.splitlines() if line.startswith("FAILED")]
        assert len(failed) == 2 and all("disk full" in line for line in failed), full.stderr
        assert "not tried" in failed[1]
        with Index(db) as index:  # FTS5's integrity check is an INSERT: a writable connection
            assert index.integrity_check() == "ok"
            assert [h.recording_id for h in index.search("traduction")][:1] == [
                next(r["id"] for r in index.list_recordings() if r["status"] == "indexed")]


def test_what_a_bad_recording_left_in_the_cache_is_deleted(tmp_path, env, ffmpeg_exe):
    silence = tmp_path / "silence.wav"
    subprocess.run([ffmpeg_exe, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
                    "-t", "6", str(silence)], check=True)
    with LocalServer() as server:
        server.site.files["/silence.wav"] = (silence.read_bytes(), "audio/wav")
        result = cli(["run", server.url("/silence.wav"), "--db", tmp_path / "i.db"], env)
    assert result.returncode == 1 and "no speech found" in result.stderr
    cache = Path(env["RECORDING_INDEX_CACHE_DIR"])
    assert not [p for p in [*cache.glob("downloads/*.*"), *cache.glob("audio/*.wav")] if p.is_file()]


# --- found by an attack on the first version of all this ------------------------------------------

def test_credentials_of_any_scheme_and_shape_are_taken_out(tmp_path, env):
    for source, shown in (("ftp://alice:ftpsecret@127.0.0.1/x.mp3", "ftp://127.0.0.1/x.mp3"),
                          ("http://u:p@ss@127.0.0.1:9/page", "http://127.0.0.1:9/page"),
                          ("http://user:se cret@127.0.0.1:9/empty", "http://127.0.0.1:9/empty")):
        assert str(BadInputError(source, "x")) == f"{shown}: x"
        assert str(BadInputError(f"http://h/p links {source}", "x")) == f"http://h/p links {shown}: x"
    catalog = tmp_path / "c.toml"
    catalog.write_text('[[recordings]]\nsource = "ftp://alice:ftpsecret@127.0.0.1/x.mp3"\n')
    result = cli(["run", "--catalog", catalog, "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert "scheme 'ftp' refused" in result.stdout and "ftpsecret" not in result.stdout + result.stderr


@pytest.mark.parametrize("catalog_line, message", [
    ('source = "http://[::1/x.mp3"', "would fail"),
    ('source = "http://127.0.0.1:9/page.html"\npick = "²"', "would fail"),
])
def test_malformed_urls_and_picks_are_one_line(tmp_path, env, catalog_line, message):
    catalog = tmp_path / "c.toml"
    catalog.write_text(f"[[recordings]]\n{catalog_line}\n")
    result = cli(["run", "--catalog", catalog, "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert message in result.stdout + result.stderr and len((result.stdout + result.stderr).strip().splitlines()) == 1


def test_a_page_declaring_a_codec_that_is_no_text_encoding_is_read_as_utf8():
    with LocalServer() as server:
        server.site.files["/rot13.html"] = ('<a href="/t.mp3">Première</a>'.encode(), "text/html; charset=rot13")
        found = resolve(Recording(id="r", source=server.url("/rot13.html")), FAST).recordings
    assert [(r.source, r.title) for r in found] == [(server.url("/t.mp3"), "Première")]


def test_a_foreign_database_in_wal_mode_or_of_views_alone_is_left_as_it_was(tmp_path):
    wal = tmp_path / "wal.db"
    writer = sqlite3.connect(wal)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE invoices (total REAL)")
    writer.execute("INSERT INTO invoices VALUES (1.5)")
    writer.commit()  # committed frames stay in the -wal file while this connection is open
    views = tmp_path / "views.db"
    other = sqlite3.connect(views)
    other.execute("CREATE VIEW settings_v AS SELECT 1 AS x")
    other.commit()
    other.close()
    kept = ("wal.db", "wal.db-wal", "views.db")  # (the -shm is SQLite's shared memory of the open writer)
    before = {name: digest(tmp_path / name) for name in kept}
    for db in (wal, views):
        for readonly in (False, True):
            with pytest.raises(RecordingIndexError, match="not a recording-index index"):
                Index(db, readonly=readonly)
    assert before == {name: digest(tmp_path / name) for name in kept}
    writer.close()


def test_an_index_holding_what_this_program_never_writes_is_one_line_and_never_a_500(tmp_path, env):
    from starlette.testclient import TestClient
    from test_index import chunks_of, make_recording, make_segments

    from recording_index.web import create_app

    odd_rows = [
        ["UPDATE recordings SET speakers = '5', duration = 'abc'", "UPDATE segments SET start = NULL, text = NULL",
         "UPDATE chunks SET start = 'x'"],
        ["UPDATE recordings SET speakers = '" + "[" * 100_000 + "]" * 100_000 + "', duration = 9e999"],
        ["UPDATE segments SET start = -9e999", "UPDATE words SET start = -9e999"],
        ["UPDATE segments SET start = 1e18, \"end\" = 1e18"],
    ]
    for number, statements in enumerate(odd_rows):
        db = tmp_path / f"odd-{number}.db"
        with Index(db) as ix:
            segs = make_segments(["bonjour à tous"])
            ix.add(make_recording(), segs, chunks_of("talk-1", segs))
            for statement in statements:
                ix.db.execute(statement)
        for args in (["list"], ["search", "bonjour"], ["transcript", "talk-1"], ["subtitles", "talk-1", "--lang", "fr"]):
            result = cli([*args, "--db", db], env, timeout=60)
            assert result.returncode in (0, 2) and len(result.stderr.strip().splitlines()) <= 1, (statements, args)
        client = TestClient(create_app(db), raise_server_exceptions=False, base_url="http://127.0.0.1")
        for path in ("/recordings/talk-1", "/recordings/talk-1/subtitles.fr.vtt", "/?q=bonjour"):
            assert client.get(path).status_code != 500, (statements, path)


def test_subtitles_check_reads_only_regular_files(tmp_path, env):
    os.mkfifo(tmp_path / "cues.srt")
    result = cli(["subtitles", "--check", tmp_path / "cues.srt"], env, timeout=30)
    assert result.returncode == 2 and "not a regular file (a FIFO)" in result.stderr


@pytest.mark.parametrize("name, value", [("MAX_HOURS", "nan"), ("MAX_HOURS", "0"), ("MAX_HOURS", "-5"),
                                         ("DOWNLOAD_MINUTES", "inf"), ("DOWNLOAD_MINUTES", "1e10"),
                                         ("MAX_PAGE_RECORDINGS", "0"), ("BEAM_SIZE", "five")])
def test_a_bound_cannot_be_switched_off_by_a_setting(tmp_path, env, name, value):
    result = cli(["list", "--db", tmp_path / "i.db"], {**env, f"RECORDING_INDEX_{name}": value}, timeout=30)
    assert result.returncode == 2 and f"RECORDING_INDEX_{name}: setting '{name.lower()}' must be" in result.stderr


def test_invalid_urls_odd_charsets_and_escapes_in_server_replies_are_one_clean_line(tmp_path, env):
    result = cli(["run", "http://[::1]]/page", "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert "would fail" in result.stdout and "not a valid URL" in result.stdout
    with pytest.raises(BadInputError, match="not a valid URL"):
        resolve(Recording(id="l", source="http://127.0.0.1:9/" + "x" * 70_000), FAST)
    with LocalServer() as server:
        server.site.files["/idna.html"] = ('<a href="/t.mp3">Première</a>'.encode(), "text/html; charset=idna")
        found = resolve(Recording(id="i", source=server.url("/idna.html")), FAST).recordings
    assert [r.title for r in found] == ["Première"]
    assert str(BadInputError("http://h/x.mp3", "HTTP 404 Not \x1b[31mFound\x1b]0;pwn\x07")) == \
        "http://h/x.mp3: HTTP 404 Not  [31mFound ]0;pwn "


def test_recording_ids_never_carry_credentials():
    from recording_index.ingest.sources import recording_for_path

    for url in ("ftp://alice:s3cret@host/", "https://bob:s3cret@", "https://dave:s3cret@[::1", "https://e:s3cret@h/a.mp3"):
        assert "s3cret" not in recording_for_path(url).id


@pytest.mark.parametrize("line", ["max_page_recordings = inf", "beam_size = -inf", "beam_size = 1e400",
                                  "beam_size = true", "cpu_threads = 5.9"])
def test_settings_files_with_odd_numbers_are_one_line(tmp_path, env, line):
    (tmp_path / "s.toml").write_text(line + "\n")
    result = cli(["--config", tmp_path / "s.toml", "list", "--db", tmp_path / "i.db"], env, timeout=30)
    assert result.returncode == 2 and "s.toml:1: setting" in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_look_alike_of_an_old_index_is_left_as_it_was(tmp_path):
    path = tmp_path / "look-alike.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE recordings (name TEXT); CREATE TABLE chunks (body TEXT); PRAGMA user_version = 1;")
    conn.close()
    before = digest(path)
    with pytest.raises(RecordingIndexError, match="not a recording-index index"):
        Index(path)
    assert digest(path) == before


def test_a_file_that_is_no_subtitle_is_named_never_quoted(tmp_path, env):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\nSHELL=/bin/bash\n")
    (tmp_path / "cues.srt").symlink_to(secret)
    result = cli(["subtitles", "--check", tmp_path / "cues.srt"], env, timeout=30)
    assert result.returncode != 0 and "cues.srt" in result.stderr + result.stdout
    assert "root:x" not in result.stderr + result.stdout and "SHELL" not in result.stderr + result.stdout


@pytest.mark.parametrize("line, message", [
    ('speakers = ["\u00a0\u3000"]', "a name of invisible spaces alone"),
    ('speakers = ["Ann\ufeffe Roy"]', "a name is one line"),
    ('date = "2018-02-30"', "a date as 2018, 2018-02 or 2018-02-14"),
    ('date = "yesterday"', "a date as 2018"),
    ('date = "99999-01-01"', "a date as 2018"),
])
def test_catalog_names_and_dates_are_checked_naming_the_line(tmp_path, env, line, message):
    catalog = tmp_path / "c.toml"
    catalog.write_text(f'[[recordings]]\nsource = "talk.mp3"\n{line}\n')
    result = cli(["run", "--catalog", catalog, "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert result.returncode == 2 and message in result.stderr and f"{catalog}:3:" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_catalog_error_with_no_line_to_name_names_the_file_alone(tmp_path, env):
    catalog = tmp_path / "c.toml"
    catalog.write_text('[events]\nrecordings = 5\n')
    result = cli(["run", "--catalog", catalog, "--db", tmp_path / "i.db", "--dry-run"], env, timeout=60)
    assert result.returncode == 2 and ":0:" not in result.stderr and str(catalog) in result.stderr


def test_a_query_of_one_word_repeated_is_searched_once(tmp_path):
    """61 s on the command line before: FTS5 walked the word's list once for each time it was typed."""
    from test_index import chunks_of, make_recording, make_segments

    from recording_index.index.search import MAX_PHRASES, fts_query

    assert fts_query(" ".join(["coordination"] * 10_000)) == '"coordination"'
    assert len(fts_query(" ".join(f"mot{n}" for n in range(5_000))).split()) == MAX_PHRASES
    with Index(tmp_path / "i.db") as ix:
        segs = make_segments(["la coordination des actions locales"])
        ix.add(make_recording(), segs, chunks_of("talk-1", segs))
        assert [h.chunk_index for h in ix.search(" ".join(["coordination"] * 10_000))] == [0]


def test_a_totals_record_claiming_one_row_still_searches(tmp_path, env):
    """FTS5's totals (its first data row) crafted to claim one row: bm25() says NULL, which ranks last."""
    from test_plain_sqlite import build_archive

    db = build_archive(tmp_path / "a.db")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE chunks_fts_data SET block = x'0101' WHERE id = 1")
    conn.close()
    result = cli(["search", "coordination", "--db", db, "--json"], env, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert {hit["recording_id"] for hit in json.loads(result.stdout)} == {"talk-1", "talk-2"}
