"""Event pages, page sources in catalogs, and video sites, against a real server on 127.0.0.1."""

import pytest

from http_server import LocalServer
from recording_index.config import Settings, load_catalog
from recording_index.ingest.discover import discover, video_page_url
from recording_index.errors import BadInputError
from recording_index.ingest.fetch import FetchOptions
from recording_index.models import Recording
from recording_index.ingest.sources import locate, resolve
from recording_index.links import moment_url

FAST = FetchOptions(retries=1, backoff=0.01, timeout=2.0, progress=False)

EVENT_PAGE = """<!doctype html><html><head><base href="/events/"></head><body>
<h1>Coordination – A Success Factor in Crime Prevention Initiatives</h1>
<p>Available online (in French) in two parts.</p>
<h2>Part 1: Coordination and support to local actors</h2>
<audio controls title="Partie 1"><source src="media/part1.mp3" type="audio/mpeg"><source src="media/part1.ogg"></audio>
<h2>Part 2: Assessing coordination</h2>
<video src="/media/part2.mp4"></video>
<p>Also: <a href="downloads/Q%26A.m4a">the questions and answers</a>,
<a href="https://www.youtube.com/watch?v=abcDEF12345&amp;t=3">on YouTube</a>,
<a href="https://example.org/about.html">about us</a>, <a href="media/part1.mp3">part 1 again</a>.</p>
<iframe title="Keynote" src="https://player.vimeo.com/video/123456789?h=x"></iframe>
<iframe src="https://www.dailymotion.com/embed/video/x8abcde"></iframe>
<iframe src="https://www.youtube-nocookie.com/embed/XyZ_12345ab"></iframe>
</body></html>"""


def test_discovery_finds_every_pattern_in_page_order_with_titles():
    links = discover(EVENT_PAGE, "https://cipc-icpc.org/en/events/seminar.html")
    assert [(f.url, f.title) for f in links.found] == [
        ("https://cipc-icpc.org/events/media/part1.mp3", "Partie 1"),
        ("https://cipc-icpc.org/events/media/part1.ogg", "Partie 1"),
        ("https://cipc-icpc.org/media/part2.mp4", "Part 2: Assessing coordination"),
        ("https://cipc-icpc.org/events/downloads/Q%26A.m4a", "the questions and answers"),
        ("https://www.youtube.com/watch?v=abcDEF12345", "on YouTube"),
        ("https://vimeo.com/123456789", "Keynote"),
        ("https://www.dailymotion.com/video/x8abcde", "Part 2: Assessing coordination"),
        ("https://www.youtube.com/watch?v=XyZ_12345ab", "Part 2: Assessing coordination"),
    ]
    assert links.refused == []


def test_video_page_urls():
    assert video_page_url("https://youtu.be/abcDEF12345") == "https://www.youtube.com/watch?v=abcDEF12345"
    assert video_page_url("https://www.youtube.com/@someone") is None
    assert moment_url("https://www.youtube.com/watch?v=abc", 75.4) == "https://www.youtube.com/watch?v=abc&t=75s"
    assert moment_url("https://vimeo.com/123456", 75.4) == "https://vimeo.com/123456#t=75s"
    assert moment_url("https://host/a.mp3", 75.4) == "https://host/a.mp3#t=75.4"


@pytest.fixture
def site(media_dir):
    with LocalServer() as server:
        tone = (media_dir / "tone.mp3").read_bytes()
        server.site.files["/media/one.mp3"] = (tone, "audio/mpeg")
        server.site.files["/media/two.ogg"] = ((media_dir / "tone.ogg").read_bytes(), "audio/ogg")
        server.site.files["/media/noext"] = (tone, "application/octet-stream")
        server.site.pages["/event.html"] = (
            '<h2>Première partie</h2><audio src="media/one.mp3"></audio>'
            '<a href="/media/two.ogg">Deuxième partie</a>')
        server.site.pages["/nothing.html"] = "<p>Programme à venir.</p>"
        yield server


def test_a_page_becomes_its_recordings(site):
    recordings = resolve(Recording(id="p", source=site.url("/event.html"), event="Séminaire"), FAST).recordings
    assert [(r.source, r.title, r.event) for r in recordings] == [
        (site.url("/media/one.mp3"), "Première partie", "Séminaire"),
        (site.url("/media/two.ogg"), "Deuxième partie", "Séminaire")]
    assert len({r.id for r in recordings}) == 2


def test_a_catalog_pins_what_to_take_from_a_page(site, tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'''
[[events]]
title = "Séminaire"
date = "2018-02-28"
language = "fr"
source = "{site.url('/event.html')}"

[[events.recordings]]
id = "part-2"
title = "Partie deux"
speakers = ["Pier-Alexandre Lemaire"]
pick = 2

[[events.recordings]]
id = "part-1"
pick = "première"
''')
    recs = load_catalog(catalog).recordings
    resolved = [r for rec in recs for r in resolve(rec, FAST).recordings]
    assert [(r.id, r.source, r.title, r.date) for r in resolved] == [
        ("part-2", site.url("/media/two.ogg"), "Partie deux", "2018-02-28"),
        ("part-1", site.url("/media/one.mp3"), "Première partie", "2018-02-28")]


def test_page_problems_are_clear(site):
    with pytest.raises(BadInputError, match="page links no recordings"):
        resolve(Recording(id="n", source=site.url("/nothing.html")), FAST)
    with pytest.raises(BadInputError, match="HTTP 404"):
        resolve(Recording(id="m", source=site.url("/missing.html")), FAST)
    with pytest.raises(BadInputError, match="pick = 5, but the page links 2"):
        resolve(Recording(id="x", source=site.url("/event.html"), pick="5"), FAST)
    with pytest.raises(BadInputError, match="connection failed"):
        resolve(Recording(id="r", source="http://127.0.0.1:9/page.html"), FAST)


def test_a_url_without_extension_serving_media_is_a_recording(site, tmp_path):
    rec = Recording(id="n", source=site.url("/media/noext"))
    assert resolve(rec, FAST).recordings == [rec]
    located = locate(rec, Settings(cache_dir=str(tmp_path), progress=False), FAST)
    assert located.media_path.startswith(str(tmp_path / "downloads")) and len(located.content_hash) == 64


def test_video_sites_go_through_yt_dlp(site, tmp_path, monkeypatch):
    """yt-dlp's real download code, on 127.0.0.1 (its generic extractor stands in for a video site)."""
    pytest.importorskip("yt_dlp")
    from recording_index.ingest import video

    monkeypatch.setattr("recording_index.ingest.sources.is_video_site", lambda url: url.endswith("one.mp3"))
    rec = locate(Recording(id="v", source=site.url("/media/one.mp3")), Settings(cache_dir=str(tmp_path), progress=False))
    assert rec.media_path.endswith(".mp3") and rec.title == "one" and len(rec.content_hash) == 64
    with pytest.raises(BadInputError, match="yt-dlp could not fetch it"):
        video.fetch_video_audio(site.url("/media/missing.mp3"), tmp_path, progress=False)


def test_without_yt_dlp_the_message_says_how_to_get_it(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_yt_dlp(name, *args, **kwargs):
        if name == "yt_dlp":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yt_dlp)
    from recording_index.ingest.video import fetch_video_audio

    with pytest.raises(BadInputError, match=r"video sites need yt-dlp: pip install -e '.\[video\]'"):
        fetch_video_audio("https://www.youtube.com/watch?v=abcDEF12345", tmp_path)
