"""Downloads against a real HTTP server on 127.0.0.1."""

import os

import pytest

from http_server import LocalServer
from recording_index.errors import BadInputError
from recording_index.ingest.fetch import FetchOptions, download

FAST = FetchOptions(retries=3, backoff=0.05, timeout=2.0, progress=False)


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


@pytest.fixture
def mp3(media_dir):
    return (media_dir / "tone.mp3").read_bytes()


def test_download_is_named_by_content_and_complete(server, mp3, tmp_path):
    server.site.files["/talks/../../etc/passwd.mp3"] = (mp3, "audio/mpeg")
    server.site.files["/a/talk.mp3"] = (mp3, "audio/mpeg")
    got = download(server.url("/a/talk.mp3"), tmp_path, FAST)
    assert open(got.path, "rb").read() == mp3
    assert os.path.basename(got.path) == got.sha256 + ".mp3"
    assert os.path.dirname(got.path) == str(tmp_path)
    assert not list((tmp_path / ".partial").iterdir())


def test_a_name_from_the_url_never_reaches_the_disk(server, mp3, tmp_path):
    server.site.files["/x/..%2f..%2fevil.mp3"] = (mp3, "audio/mpeg")
    got = download(server.url("/x/..%2f..%2fevil.mp3"), tmp_path / "d", FAST)
    assert os.path.dirname(got.path) == str(tmp_path / "d")
    assert not (tmp_path / "evil.mp3").exists()


def test_unchanged_remote_file_is_not_downloaded_again(server, mp3, tmp_path):
    server.site.files["/talk.mp3"] = (mp3, "audio/mpeg")
    first = download(server.url("/talk.mp3"), tmp_path, FAST)
    second = download(server.url("/talk.mp3"), tmp_path, FAST)
    assert second == first
    # The server answers 304, with no body, to the ETag it gave.
    assert server.site.requests[-1][1].get("If-None-Match") == f'"{hash(mp3) & 0xFFFFFFFF:x}"'


def test_dropped_connection_resumes_with_a_range_request(server, sample_mp3, tmp_path):
    body = sample_mp3.read_bytes()  # 270 kB: half of it reaches the disk before the drop
    server.site.files["/drop.mp3"] = (body, "audio/mpeg")
    server.site.drop_once.add("/drop.mp3")
    got = download(server.url("/drop.mp3"), tmp_path, FAST)
    assert open(got.path, "rb").read() == body
    ranges = [h.get("Range") for p, h in server.site.requests if p == "/drop.mp3"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0


def test_server_errors_are_retried_with_backoff(server, mp3, tmp_path):
    server.site.files["/flaky.mp3"] = (mp3, "audio/mpeg")
    server.site.flaky["/flaky.mp3"] = 2
    got = download(server.url("/flaky.mp3"), tmp_path, FAST)
    assert open(got.path, "rb").read() == mp3 and server.site.hits["/flaky.mp3"] == 3


def test_a_server_s_retry_after_is_honoured_and_a_long_one_is_not_waited_for(server, mp3, tmp_path):
    server.site.files["/busy.mp3"] = (mp3, "audio/mpeg")
    server.site.busy["/busy.mp3"] = [1, "1"]
    got = download(server.url("/busy.mp3"), tmp_path, FAST)  # FAST's own backoff is 0.05 s
    assert open(got.path, "rb").read() == mp3
    first, second = [t for p, t in server.site.times if p == "/busy.mp3"]
    assert second - first >= 0.95  # waited as the server asked, not 0.05 s
    server.site.files["/later.mp3"] = (mp3, "audio/mpeg")
    server.site.busy["/later.mp3"] = [5, "3600"]
    with pytest.raises(BadInputError, match=r"HTTP 503.*the server asks to retry in 3600 s"):
        download(server.url("/later.mp3"), tmp_path / "later", FAST)
    assert server.site.hits["/later.mp3"] == 1  # given up on at once: the run goes on with the others


def test_retry_after_as_seconds_or_an_http_date():
    from recording_index.ingest.fetch import retry_after

    assert retry_after("120") == 120.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == pytest.approx(10.0)
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0  # in the past: now


def test_redirects_are_followed(server, mp3, tmp_path):
    server.site.files["/real.mp3"] = (mp3, "audio/mpeg")
    server.site.redirects["/moved.mp3"] = "/real.mp3"
    assert open(download(server.url("/moved.mp3"), tmp_path, FAST).path, "rb").read() == mp3


def test_slow_server_within_the_time_out_is_fine(server, mp3, tmp_path):
    server.site.files["/slow.mp3"] = (mp3, "audio/mpeg")
    server.site.slow["/slow.mp3"] = 0.5
    assert download(server.url("/slow.mp3"), tmp_path, FAST).size == len(mp3)


@pytest.mark.parametrize("setup, message", [
    (lambda s, b: None, "HTTP 404 Not Found"),
    (lambda s, b: s.files.__setitem__("/x.mp3", (b"<html></html>", "text/html")), "not media (content type text/html)"),
    (lambda s, b: s.files.__setitem__("/x.mp3", (b * 3, "audio/mpeg")), "too large"),
    (lambda s, b: (s.files.__setitem__("/x.mp3", (b, "audio/mpeg")), s.flaky.__setitem__("/x.mp3", 99)),
     "download failed after 4 attempts (HTTP 500)"),
    (lambda s, b: (s.files.__setitem__("/x.mp3", (b, "audio/mpeg")), s.slow.__setitem__("/x.mp3", 3)),
     "download failed after 4 attempts (ReadTimeout"),
])
def test_bad_sources_fail_with_one_clear_line(server, mp3, tmp_path, setup, message):
    setup(server.site, mp3)
    options = FetchOptions(retries=3, backoff=0.01, timeout=0.5, progress=False, max_bytes=2 * len(mp3))
    with pytest.raises(BadInputError) as raised:
        download(server.url("/x.mp3"), tmp_path, options)
    assert str(raised.value).startswith(server.url("/x.mp3") + ": ")
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]


def test_refused_connection(tmp_path):
    with pytest.raises(BadInputError, match=r"http://127.0.0.1:9/talk.mp3: download failed after 2 attempts \(ConnectError"):
        download("http://127.0.0.1:9/talk.mp3", tmp_path, FetchOptions(retries=1, backoff=0.01, progress=False))


def test_retry_after_takes_ascii_digits_only():
    from recording_index.ingest.fetch import retry_after

    assert retry_after("²") is None and retry_after("١٢") is None and retry_after("99999999999") is None
