"""A real HTTP server on 127.0.0.1 for the fetching tests: media with ETag/Range support, pages,
redirects, a connection dropped midway, 404, 500-then-success, slow and hanging responses."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from typing import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Site:
    def __init__(self):
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (body, content type)
        self.pages: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        self.answers: list[tuple[str, int]] = []  # (path, status) of each response, in order
        self.flaky: dict[str, int] = {}  # path -> how many 500s before success
        self.busy: dict[str, list] = {}  # path -> [how many 503s before success, their Retry-After header]
        self.times: list[tuple[str, float]] = []  # (path, time.monotonic()) of each request
        self.drop_once: set[str] = set()  # paths whose first response stops halfway
        self.slow: dict[str, float] = {}  # path -> seconds to wait before answering
        self.redirects: dict[str, str] = {}
        self.auth: dict[str, str] = {}  # path -> the Authorization header it requires
        self.gzipped: set[str] = set()  # paths sent gzip-encoded whatever the client asked
        self.mtime = formatdate(1_700_000_000, usegmt=True)


def make_handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def send_response(self, code, message=None):
            site.answers.append((self.path.split("?")[0], code))
            super().send_response(code, message)

        def do_GET(self):
            path = self.path.split("?")[0]
            site.hits[path] = site.hits.get(path, 0) + 1
            site.requests.append((path, dict(self.headers)))
            if path in site.slow:
                time.sleep(site.slow[path])
            if path in site.redirects:
                return self._send(302, b"", "text/plain", {"Location": site.redirects[path]})
            if path in site.auth and self.headers.get("Authorization") != site.auth[path]:
                return self._send(401, b"who are you?", "text/plain", {"WWW-Authenticate": 'Basic realm="x"'})
            if path in site.gzipped:
                import gzip

                body, kind = site.files[path]
                return self._send(200, gzip.compress(body, 9), kind, {"Content-Encoding": "gzip"})
            site.times.append((path, time.monotonic()))
            if site.busy.get(path, [0])[0] > 0:
                site.busy[path][0] -= 1
                return self._send(503, b"busy", "text/plain", {"Retry-After": site.busy[path][1]})
            if site.flaky.get(path, 0) > 0:
                site.flaky[path] -= 1
                return self._send(500, b"try again", "text/plain")
            if path in site.pages:
                return self._send(200, site.pages[path].encode(), "text/html; charset=utf-8")
            if path not in site.files:
                return self._send(404, b"not here", "text/plain")
            body, kind = site.files[path]
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", kind, {"ETag": etag}, length=False)
            start = 0
            status = 200
            extra = {"ETag": etag, "Last-Modified": site.mtime, "Accept-Ranges": "bytes"}
            ranged = self.headers.get("Range")
            if ranged and self.headers.get("If-Range", etag) == etag:
                start = int(ranged.split("=")[1].split("-")[0])
                status = 206
                extra["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            payload = body[start:]
            if path in site.drop_once:
                site.drop_once.discard(path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload[:len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(status, payload, kind, extra)

        def _send(self, status, body, kind, headers=None, length=True):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if length:
                self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that give up (time-out tests) are expected here


class LocalServer:
    def __init__(self):
        self.site = Site()
        self.server = _QuietServer(("127.0.0.1", 0), make_handler(self.site))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_answering(url: str, server: subprocess.Popen, seconds: float, log: Callable[[], str]) -> None:
    """Wait for a server a test started to answer `url`; fail with the end of its `log()` when it
    stops or takes longer than `seconds`."""
    deadline = time.monotonic() + seconds
    while not answers(url):
        assert server.poll() is None and time.monotonic() < deadline, log()[-3000:]
        time.sleep(0.3)
