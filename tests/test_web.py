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
    with TestClient(create_app(db), base_url=HERE) as test_client:
        yield test_client


def test_search_page_shows_hits_in_both_languages(client):
    page = client.get("/search", params={"q": "coordination", "lang": "any"})
    assert page.status_code == 200
    assert '<a class="hit-link" href="/recordings/talk?t=1.50&amp;q=coordination">' in page.text
    assert '<p class="meta" id="count">1 passage matches</p>' in page.text
    # The recording page the hit opens marks the words searched for.
    opened = client.get("/recordings/talk", params={"t": "1.50", "q": "coordination"}).text
    assert "La <mark>coordination</mark> locale" in opened and "Local <mark>coordination</mark>" in opened
    assert "<mark>" not in client.get("/recordings/talk").text
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
            real_connect(database, uri=True).execute("DELETE FROM words")


# --- corrections in the page (serve --allow-edits) ------------------------------------------------

HERE = "http://127.0.0.1:8000"


@pytest.fixture
def editable(tmp_path, sample_mp3):
    """An index as a run leaves it (stage keys, settings), served with edits allowed."""
    from recording_index import stages
    from recording_index.config import Settings

    db = tmp_path / "index.db"
    settings = Settings(cache_dir=str(tmp_path / "cache"), translator="none", progress=False)
    facts = stages.Facts("h", "base", "", "none", "none", False)
    words = [Word(1.0 + i * 0.5, 1.4 + i * 0.5, " " + w) for i, w in enumerate("Le hansard du Nunavut.".split())]
    segment = Segment(0, 1.0, 2.9, "Le hansard du Nunavut.", words)
    more = [Word(4.0 + i * 0.5, 4.4 + i * 0.5, " " + w) for i, w in enumerate("Le corpus est bilingue.".split())]
    second = Segment(1, 4.0, 5.9, "Le corpus est bilingue.", more)
    with Index(db) as ix:
        rec = Recording(id="talk", source=str(sample_mp3), title="Titre", media_path=str(sample_mp3), duration=34.1,
                        content_hash="h")
        ix.add(rec, [segment, second], [Chunk("talk", 0, 1.0, 5.9, segment.text + " " + second.text)],
               settings=stages.record(settings, facts), stage_keys=stages.keys(settings, facts))
    with TestClient(create_app(db, allow_edits=True, settings=settings), base_url=HERE) as test_client:
        test_client.settings = settings
        yield test_client, db


def form_of(page):
    import re

    return re.search(r'name="token" value="([0-9a-f]{64})"', page.text).group(1)


def shown_of(page):
    """What the page's first French form says it showed (the page sends it back, against stale saves)."""
    import re

    return re.search(r'name="shown" value="([0-9a-f]{16})"', page.text).group(1)


def test_a_sentence_corrected_in_the_page_is_searchable_and_says_who_corrected_it(editable):
    client, db = editable
    page = client.get("/recordings/talk")
    assert page.status_code == 200 and "recording_index_session" in page.headers["set-cookie"]
    assert "samesite=strict" in page.headers["set-cookie"].lower() and "httponly" in page.headers["set-cookie"].lower()
    saved = client.post("/recordings/talk/sentences/0", headers={"Origin": HERE}, follow_redirects=False,
                        data={"token": form_of(page), "lang": "fr", "text": "Le Hansard du Nunavut.", "by": "Anne",
                              "shown": shown_of(page)})
    assert saved.status_code == 303 and saved.headers["location"] == "/recordings/talk?saved=1&at=0&in=fr#s0"
    # The same form sent again from the page as it was: the sentence changed meanwhile, refused.
    stale = client.post("/recordings/talk/sentences/0", headers={"Origin": HERE},
                        data={"token": form_of(page), "lang": "fr", "text": "Autre chose.", "shown": shown_of(page)})
    assert stale.status_code == 409 and "changed since the page was loaded" in stale.text
    after = client.get(saved.headers["location"])
    assert "Le Hansard du Nunavut." in after.text and 'title="corrected by Anne 20' in after.text
    edited_row = after.text[after.text.index('id="s0"'):after.text.index("</tr>", after.text.index('id="s0"'))]
    assert 'id="saved"' in edited_row and "Saved: 1 correction(s)" in edited_row  # the confirmation beside it
    french_cell = edited_row[edited_row.index('<td lang="fr">'):edited_row.index('<td lang="en">')]
    assert 'id="saved"' in french_cell  # in the cell of the language edited
    english = client.get("/recordings/talk?saved=1&at=0&in=en").text
    english_row = english[english.index('id="s0"'):english.index("</tr>", english.index('id="s0"'))]
    assert 'id="saved"' in english_row[english_row.index('<td lang="en">'):]
    with Index(db, readonly=True) as ix:
        hit = ix.search("Hansard")[0]
        assert (hit.corrected_by, hit.origin, hit.moment) == ("Anne", "corrected", 1.5)
        assert [c.text for c in ix.corrections("talk")] == ["Hansard"]


def test_edit_requests_from_elsewhere_or_without_the_token_are_refused(editable, tmp_path, sample_mp3):
    client, db = editable
    page = client.get("/recordings/talk")
    assert page.headers["x-frame-options"] == "DENY"  # never framed by another site
    edit = {"token": form_of(page), "lang": "fr", "text": "Piraté.", "shown": shown_of(page)}
    for headers, why in [({"Origin": "http://evil.example"}, "cross-site"),
                         ({"Origin": HERE, "Sec-Fetch-Site": "cross-site"}, "cross-site"),
                         ({}, "cross-site"),  # neither Origin nor Referer
                         ({"Referer": "http://127.0.0.1:9999/page"}, "cross-site")]:
        refused = client.post("/recordings/talk/sentences/0", headers=headers, data=edit)
        assert refused.status_code == 403 and why in refused.text, headers
    wrong = client.post("/recordings/talk/sentences/0", headers={"Origin": HERE}, data={**edit, "token": "0" * 64})
    assert wrong.status_code == 403 and "form token" in wrong.text
    client.cookies.clear()  # another browser: its token is not this one's
    assert client.post("/recordings/talk/sentences/0", headers={"Origin": HERE}, data=edit).status_code == 403
    rebound = client.get("/recordings/talk", headers={"Host": "evil.example:8000"})
    assert rebound.status_code == 400  # a DNS-rebound name is not ours
    with Index(db, readonly=True) as ix:
        assert ix.corrections("talk") == [] and ix.get("talk")[1][0].text == "Le hansard du Nunavut."
    # The read-only server has no form and refuses the request whatever it carries.
    with TestClient(create_app(db), base_url=HERE) as readonly:
        assert 'name="token"' not in readonly.get("/recordings/talk").text
        answer = readonly.post("/recordings/talk/sentences/0", headers={"Origin": HERE}, data=edit)
        assert answer.status_code == 403 and "read-only" in answer.text


def test_english_is_corrected_in_the_page_too(editable):
    import re

    client, db = editable
    with Index(db) as ix:  # the sentence needs English to correct
        ix.db.execute("UPDATE segments SET text_en = 'The hansard of Nunavut.'")
    page = client.get("/recordings/talk")
    shown = re.findall(r'name="shown" value="([0-9a-f]{16})"', page.text)[1]  # the English form
    saved = client.post("/recordings/talk/sentences/0", headers={"Origin": HERE}, follow_redirects=False,
                        data={"token": form_of(page), "lang": "en", "text": "The Nunavut Hansard.", "shown": shown})
    assert saved.status_code == 303
    with Index(db, readonly=True) as ix:
        segment = ix.get("talk")[1][0]
        assert (segment.text_en, segment.origin_en, segment.text_en_machine) == (
            "The Nunavut Hansard.", "corrected", "The hansard of Nunavut.")
        assert ix.search("Hansard", lang="en")[0].origin_en == "corrected"


def test_two_edits_at_once_both_land(editable):
    from concurrent.futures import ThreadPoolExecutor

    from recording_index.edits import correct_sentence

    client, db = editable
    edits = [(0, "Le Hansard du Nunavut."), (1, "Le corpus est trilingue.")]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda e: correct_sentence(db, "talk", e[0], e[1], "fr", client.settings), edits))
    with Index(db, readonly=True) as ix:
        assert [s.text for s in ix.get("talk")[1]] == [text for _, text in edits]
        assert {c.status for c in ix.corrections("talk")} == {"applied"}


def test_a_long_query_marks_at_most_twenty_words():
    from recording_index.web.app import MAX_MARKED, mark_words

    words = [chr(97 + n // 26) + chr(97 + n % 26) + "zzz" for n in range(100)]  # no two share a stem
    marked = str(mark_words(" ".join(words), set(words[:MAX_MARKED]), "en"))
    assert marked.count("<mark>") == MAX_MARKED == 20
    assert str(mark_words("<b>translation</b>", {"translating"}, "en")) == "&lt;b&gt;<mark>translation</mark>&lt;/b&gt;"


# --- the server's trust boundary: hosts, body sizes, a password beyond this machine -----------------

def test_the_read_only_server_answers_no_other_host(client):
    """A DNS-rebinding page names its own host: it reads nothing of a private archive."""
    for path in ("/search?q=coordination", "/recordings/talk/media", "/recordings/talk/subtitles.fr.vtt", "/"):
        assert client.get(path, headers={"Host": "evil.example"}).status_code == 400, path
        assert client.get(path).status_code == 200, path


@pytest.fixture
def live_server(editable):
    """The editable app served by uvicorn on 127.0.0.1, for requests a test client would not send."""
    import threading
    import time

    import uvicorn
    from http_server import free_port

    client, db = editable
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(db, allow_edits=True), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=30)


def raw_post(port: int, head: str, body_blocks) -> str:
    """A POST sent by hand, and the status line of the answer."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(head.encode())
        try:
            for block in body_blocks:
                conn.sendall(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest: what is wanted
        return conn.makefile("rb").readline().decode()


def test_an_edit_body_is_refused_by_its_declared_size_and_cut_off_at_the_cap(live_server):
    """A forged Origin needs no token to reach the body: the size is judged first, and never read whole."""
    import psutil

    before = psutil.Process().memory_info().rss
    declared = raw_post(live_server, f"POST /recordings/talk/sentences/0 HTTP/1.1\r\nHost: 127.0.0.1:{live_server}\r\n"
                        f"Origin: http://127.0.0.1:{live_server}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                        "Content-Length: 1500000000\r\n\r\n", [b"x" * 65536])
    assert " 413 " in declared
    chunked = raw_post(live_server, f"POST /recordings/talk/sentences/0 HTTP/1.1\r\nHost: 127.0.0.1:{live_server}\r\n"
                       f"Origin: http://127.0.0.1:{live_server}\r\nTransfer-Encoding: chunked\r\n\r\n",
                       (b"10000\r\n" + b"x" * 65536 + b"\r\n" for _ in range(400)))  # 26 MB, unless cut off
    assert " 413 " in chunked
    assert psutil.Process().memory_info().rss - before < 100 * 2**20


def test_a_password_guards_every_request_when_set(tmp_path, client):
    import base64

    db = tmp_path / "index.db"
    with TestClient(create_app(db, allow_edits=True, password="correct horse"), base_url=HERE) as guarded:
        assert guarded.get("/recordings/talk").status_code == 401
        assert guarded.get("/", headers={"Authorization": "Basic " + base64.b64encode(b"x:wrong").decode()}
                           ).status_code == 401
        assert guarded.get("/", headers={"Authorization": "Basic %%%"}).status_code == 401
        good = {"Authorization": "Basic " + base64.b64encode(b"anne:correct horse").decode()}
        assert guarded.get("/recordings/talk", headers=good).status_code == 200


def test_edits_beyond_this_machine_need_a_password(tmp_path, client):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RECORDING_INDEX_SERVE_PASSWORD"}
    refused = subprocess.run([sys.executable, "-m", "recording_index.cli", "serve", "--db", str(tmp_path / "index.db"),
                              "--host", "0.0.0.0", "--port", "1", "--allow-edits"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert refused.returncode == 2 and "RECORDING_INDEX_SERVE_PASSWORD" in refused.stderr


def test_a_failed_recording_s_page_says_it_failed_when_and_why_with_no_player(tmp_path):
    db = tmp_path / "index.db"
    with Index(db) as ix:
        ix.record_failure(Recording(id="missing-talk", source="/media/missing.mp3", title="Absent"),
                          "/media/missing.mp3: no such file")
    with TestClient(create_app(db), base_url=HERE) as client:
        page = client.get("/recordings/missing-talk")
        home = client.get("/")
    assert page.status_code == 200 and "could not be indexed" in page.text and "no such file" in page.text
    assert "last tried 20" in page.text and "<audio" not in page.text and "<video" not in page.text
    # The home page leads to it: what failed is listed apart from the archive.
    assert "Not indexed: 1 recording<" in home.text and '<a href="/recordings/missing-talk">Absent</a>' in home.text
    assert "The archive:" not in home.text
