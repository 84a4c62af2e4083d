"""The search page's routes and safety, through Starlette's test client on a real index."""

import sqlite3

import pytest
from starlette.testclient import TestClient

from recording_index.index.database import Index
from recording_index.models import Chunk, Recording, Segment, Word
from recording_index.web import create_app

EVIL = '<script>alert("x")</script> "><img src=x onerror=alert(1)>'


@pytest.fixture
def client(tmp_path, sample_mp3):
    db = tmp_path / "index.db"
    with Index(db) as ix:
        rec = Recording(id="talk", source=str(sample_mp3), title=f"Titre {EVIL}", speakers=["Éric"], event="Séminaire",
                        date="2018-02-28", media_path=str(sample_mp3), duration=34.1, content_hash="h")
        text = f"La coordination locale {EVIL} fonctionne."
        segments = [Segment(0, 1.0, 6.0, text, [Word(1.0, 1.5, " La"), Word(1.5, 2.5, " coordination")],
                            text_en=f"Local coordination {EVIL} works.")]
        ix.add(rec, segments, [Chunk("talk", 0, 1.0, 6.0, text, f"Local coordination {EVIL} works.")])
    with TestClient(create_app(db)) as test_client:
        yield test_client


def test_search_page_shows_hits_in_both_languages(client):
    page = client.get("/search", params={"q": "coordination", "lang": "any"})
    assert page.status_code == 200
    assert '<a class="hit-link" href="/recordings/talk?t=1.50">' in page.text
    assert "<mark>coordination</mark>" in page.text
    assert "Local coordination" in page.text
    english = client.get("/search", params={"q": "works", "lang": "en"}).text
    assert "<mark>works</mark>" in english and "matched in English" in english
    assert client.get("/", params={"q": "coordination", "speaker": "Nobody"}).text.count('class="hit"') == 0
    assert client.get("/", params={"q": "coordination", "date": "2018-02"}).text.count('class="hit"') == 1


def test_transcripts_titles_and_queries_are_shown_as_text(client):
    for page in (client.get("/search", params={"q": f"coordination {EVIL}"}), client.get("/recordings/talk")):
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(" in page.text  # shown, escaped, as the text it is
    vtt = client.get("/recordings/talk/subtitles.en.vtt").text
    assert "<script>" not in vtt and "&lt;script&gt;" in vtt


@pytest.mark.parametrize("params", [{"q": '"coordination (locale'}, {"q": "AND"}, {"q": "*"}, {"q": "-"},
                                    {"q": ""}, {"q": "x" * 5000}, {"q": "a", "lang": "klingon"},
                                    {"q": "a", "page": "-3"}, {"q": "a", "page": "abc"}, {"q": "NEAR(\x00"}])
def test_bad_queries_give_a_normal_page(client, params):
    page = client.get("/search", params=params)
    assert page.status_code == 200 and "<form" in page.text


def test_recording_page_opens_at_the_moment_with_tracks_and_transcript(client):
    page = client.get("/recordings/talk", params={"t": "12.5"})
    assert page.status_code == 200
    assert "const start = 12.5;" in page.text
    assert 'src="/recordings/talk/subtitles.en.vtt" default' in page.text
    assert 'srclang="fr"' in page.text and 'data-start="1.0"' in page.text
    assert "const start = 0.0;" in client.get("/recordings/talk", params={"t": "nan"}).text
    assert "const start = 34.1;" in client.get("/recordings/talk", params={"t": "1e9"}).text


def test_media_is_served_with_ranges_and_only_for_indexed_recordings(client, sample_mp3):
    whole = client.get("/recordings/talk/media")
    assert whole.status_code == 200 and whole.content == sample_mp3.read_bytes()
    part = client.get("/recordings/talk/media", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == sample_mp3.read_bytes()[100:200]
    for path in ("/recordings/nope/media", "/recordings/..%2F..%2Fetc%2Fpasswd/media", "/recordings/nope",
                 "/recordings/talk/subtitles.de.vtt"):
        assert client.get(path).status_code == 404, path


def test_the_web_app_cannot_write(client, monkeypatch):
    """Every connection a request opens is read-only: the same URI, opened again, refuses a write."""
    import recording_index.index.database as index_module

    uris = []
    real_connect = sqlite3.connect

    def recording_connect(database, *args, **kwargs):
        uris.append((database, kwargs.get("uri", False)))
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(index_module.sqlite3, "connect", recording_connect)
    assert client.get("/search", params={"q": "coordination"}).status_code == 200
    assert client.get("/recordings/talk").status_code == 200
    monkeypatch.setattr(index_module.sqlite3, "connect", real_connect)
    assert uris and all(uri and "mode=ro" in database for database, uri in uris)
    for database, _ in uris:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            real_connect(database, uri=True).execute("DELETE FROM chunks")
