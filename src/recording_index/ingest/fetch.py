"""Download media over HTTP(S): streamed, resumable, retried, conditional, and named by content.

A download goes to `<dir>/.partial/<url key>` and, once complete, is renamed to `<dir>/<sha256><ext>`:
a name never taken from the URL or the server. What the server said (ETag, Last-Modified) is kept in
`<dir>/.state/<url key>.json`, so an unchanged remote recording is answered by a 304, not downloaded.
"""

from __future__ import annotations

import codecs
import email.utils
import hashlib
import json
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import httpx
import tenacity

from recording_index.errors import BadInputError
from recording_index.safety import redact_url, replacing
from recording_index.utils import progress_bar

MEDIA_TYPES = {
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/aac": ".aac",
    "audio/ogg": ".ogg", "audio/opus": ".opus", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav",
    "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/webm": ".webm", "video/mp4": ".mp4",
    "video/webm": ".webm", "video/x-matroska": ".mkv", "video/quicktime": ".mov", "video/ogg": ".ogv",
    "application/ogg": ".ogg",
}
# Servers often label media generically; ffmpeg's probe decides afterwards whether it is media.
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", "application/x-download", ""}
USER_AGENT = "recording-index/0.1 (+https://pypi.org/project/recording-index)"
# While a download grows past what the server declared, free space is checked again this often.
SPACE_CHECK_BYTES = 64 * 1024**2
# A server asking to be retried later than this (Retry-After) is not waited for: the run goes on.
MAX_RETRY_AFTER = 120.0


@dataclass
class FetchOptions:
    max_bytes: int = 4 * 1024**3  # 4 GiB: a long talk in video is well under
    timeout: float = 30.0  # for each connection and each read
    deadline: float = 3600.0  # for a whole download, whatever the server does (dripping bytes, say)
    page_deadline: float = 60.0  # for a whole page
    max_page_bytes: int = 5 * 1024**2
    # Slower than this over a whole stall window is a server that drips bytes to hold a run.
    min_bytes_per_window: int = 16 * 1024
    stall_window: float = 30.0
    max_redirects: int = 5
    retries: int = 4
    backoff: float = 1.0  # seconds; doubled at each retry, unless the server says how long (Retry-After)
    progress: bool = True


@dataclass
class Downloaded:
    url: str
    path: str
    sha256: str
    size: int
    content_type: str
    etag: str = ""
    last_modified: str = ""


class TransientError(Exception):
    """Worth another try: a time-out, a reset, a dropped connection, a 5xx; `retry_after`: the wait
    in seconds the server asked for (its Retry-After header), if it did."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):  # ASCII digits only: str.isdigit() takes "²" too
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def is_media_type(content_type: str) -> bool:
    kind = media_type(content_type)
    return kind in MEDIA_TYPES or kind in GENERIC_TYPES or kind.startswith(("audio/", "video/"))


def _client(options: FetchOptions, **headers: str) -> httpx.Client:
    # httpx follows http and https alone: a redirect to file: or ftp: is an UnsupportedProtocol error.
    return httpx.Client(follow_redirects=True, max_redirects=options.max_redirects, timeout=options.timeout,
                        headers={"User-Agent": USER_AGENT, **headers})


@contextmanager
def _deadline(client: httpx.Client, seconds: float, url: str) -> Iterator[None]:
    """Close `client` after `seconds`, whatever it is doing: httpx's time-outs are per read, so a
    server answering a byte at a time would otherwise hold a run (and its SIGTERM) for ever."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        client.close()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception:
        if expired.is_set():
            raise BadInputError(url, f"took longer than the {seconds:.0f}-s limit") from None
        raise
    finally:
        timer.cancel()


def _bad_request(url: str, exc: Exception) -> BadInputError | None:
    """What no retry can mend, as one line; None for what may pass next time."""
    if isinstance(exc, httpx.InvalidURL):  # not an HTTPError: raised before any request
        return BadInputError(url, f"not a valid URL ({exc})")
    if isinstance(exc, httpx.TooManyRedirects):
        return BadInputError(url, "too many redirects (a redirect loop?)")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return BadInputError(url, f"redirected to a URL that is not http or https ({exc})")
    if isinstance(exc, (httpx.DecodingError, httpx.LocalProtocolError)):
        return BadInputError(url, f"{type(exc).__name__}: {exc}")
    return None


def guarded_blocks(response: httpx.Response, url: str, options: FetchOptions) -> Iterator[bytes]:
    """The body as it arrives (decoded), refusing a server that drips it slower than
    `min_bytes_per_window` a `stall_window`."""
    window_start, window_bytes = time.monotonic(), 0
    for block in response.iter_bytes():  # no chunk size: each read is seen as it lands
        window_bytes += len(block)
        now = time.monotonic()
        if now - window_start >= options.stall_window:
            if window_bytes < options.min_bytes_per_window:
                raise BadInputError(url, f"too slow ({window_bytes} bytes in {now - window_start:.0f} s)")
            window_start, window_bytes = now, 0
        yield block


def fetch_page(url: str, options: FetchOptions) -> tuple[str, str] | None:
    """(final URL, HTML) of a page, or None when the URL turns out to serve media."""
    shown = redact_url(url)
    client = _client(options)
    try:
        with client, _deadline(client, options.page_deadline, shown), client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise BadInputError(shown, f"HTTP {response.status_code} {response.reason_phrase}".strip())
            kind = media_type(response.headers.get("content-type", ""))
            if kind in ("text/html", "application/xhtml+xml"):
                body = bytearray()
                for block in guarded_blocks(response, shown, options):
                    body.extend(block)
                    if len(body) > options.max_page_bytes:
                        raise BadInputError(shown, f"page larger than {options.max_page_bytes} bytes")
                return str(response.url), _decode(bytes(body), response.encoding)
            if is_media_type(kind):
                return None
            raise BadInputError(shown, f"neither a page nor media (content type {kind})")
    except httpx.ConnectError as exc:
        raise BadInputError(shown, f"connection failed ({exc})") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _bad_request(shown, exc) or BadInputError(shown, f"page fetch failed ({type(exc).__name__})") from None


def _decode(body: bytes, declared: str | None) -> str:
    """A page's text in its declared charset when that is a text encoding Python knows and can
    decode it with; else UTF-8 (a page may declare "rot13", "base64" or "idna")."""
    try:
        if declared and codecs.lookup(declared)._is_text_encoding:
            return body.decode(declared, "replace")
    except (LookupError, UnicodeError, ValueError):
        pass
    return body.decode("utf-8", "replace")


def download(url: str, dest: str | Path, options: FetchOptions | None = None) -> Downloaded:
    """Fetch `url` into `dest` and return what was saved; raise BadInputError on what retrying cannot fix."""
    options = options or FetchOptions()
    dest = Path(dest)
    for folder in (dest, dest / ".partial", dest / ".state"):
        folder.mkdir(parents=True, exist_ok=True)
    shown = redact_url(url)
    # Media is not compressed by HTTP: asking for it as it is keeps the free-space check and the
    # length check honest (a gzipped response of 200 KB once became a 200-MB file).
    client = _client(options, **{"Accept-Encoding": "identity"})
    try:
        with client, _deadline(client, options.deadline, shown):
            def wait(state: tenacity.RetryCallState) -> float:
                """Doubling waits, or what the server's Retry-After asks (a server asking for longer
                than MAX_RETRY_AFTER is given up on at once)."""
                asked = getattr(state.outcome.exception(), "retry_after", None)
                return asked if asked is not None else options.backoff * 2 ** (state.attempt_number - 1)

            def give_up(state: tenacity.RetryCallState) -> bool:
                asked = getattr(state.outcome.exception(), "retry_after", None)
                return state.attempt_number > options.retries or (asked or 0) > MAX_RETRY_AFTER

            retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(TransientError), wait=wait,
                                         stop=give_up, reraise=True)
            try:
                return retrying(_attempt, url, dest, options, client)
            except TransientError as exc:
                tries = retrying.statistics.get("attempt_number", options.retries + 1)
                later = f"; the server asks to retry in {exc.retry_after:.0f} s" if (exc.retry_after or 0) > MAX_RETRY_AFTER else ""
                attempts = "1 attempt" if tries == 1 else f"{tries} attempts"
                raise BadInputError(shown, f"download failed after {attempts} ({exc}){later}") from None
    except BadInputError:
        (dest / ".partial" / url_key(url)).unlink(missing_ok=True)  # a failed download leaves nothing behind
        raise
    raise AssertionError("unreachable")


def discard(dest: str | Path, url: str) -> None:
    """Forget a download that proved unusable: the file, its partial, and what the server said of it."""
    dest, key = Path(dest), url_key(url)
    done = _load_state(dest, key).get("done") or {}
    for path in (dest / ".partial" / key, dest / ".state" / f"{key}.json", done.get("path")):
        if path and Path(path).parent.resolve() in (dest.resolve(), (dest / ".partial").resolve(),
                                                     (dest / ".state").resolve()):
            Path(path).unlink(missing_ok=True)


def _load_state(dest: Path, key: str) -> dict:
    path = dest / ".state" / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_state(dest: Path, key: str, state: dict) -> None:
    with replacing(dest / ".state" / f"{key}.json") as partial:
        partial.write_text(json.dumps(state))


def _attempt(url: str, dest: Path, options: FetchOptions, client: httpx.Client) -> Downloaded:
    key = url_key(url)
    shown = redact_url(url)
    state = _load_state(dest, key)
    partial = dest / ".partial" / key
    headers = {}
    done = state.get("done")
    if done and Path(done["path"]).exists():
        if done.get("etag"):
            headers["If-None-Match"] = done["etag"]
        if done.get("last_modified"):
            headers["If-Modified-Since"] = done["last_modified"]
    offset = partial.stat().st_size if partial.exists() else 0
    if offset and state.get("partial_validator"):
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = state["partial_validator"]  # resume only if the file did not change meanwhile
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304 and done:
                return Downloaded(**{k: v for k, v in done.items() if k in Downloaded.__dataclass_fields__})
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"HTTP {response.status_code}", retry_after(response.headers.get("retry-after")))
            if response.status_code >= 400:
                raise BadInputError(shown, f"HTTP {response.status_code} {response.reason_phrase}".strip())
            content_type = response.headers.get("content-type", "")
            if not is_media_type(content_type):
                raise BadInputError(shown, f"not media (content type {media_type(content_type)})")
            resumed = response.status_code == 206
            if not resumed:
                offset = 0
            length = response.headers.get("content-length")
            total = offset + int(length) if length and length.isdigit() else None
            if total is not None and total > options.max_bytes:
                raise BadInputError(shown, f"too large ({total} bytes > limit of {options.max_bytes})")
            _check_space(dest, shown, (total or 0) - offset)
            validator = response.headers.get("etag") or response.headers.get("last-modified") or ""
            state["partial_validator"] = validator
            _save_state(dest, key, state)
            digest = hashlib.sha256()
            if resumed:
                with open(partial, "rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
            size = offset
            bar = _bar(total, offset, shown, options.progress)
            checked = size
            try:
                with open(partial, "ab" if resumed else "wb") as out:
                    for block in guarded_blocks(response, shown, options):
                        size += len(block)
                        if size > options.max_bytes:
                            raise BadInputError(shown, f"too large (over the limit of {options.max_bytes} bytes)")
                        if size - checked > SPACE_CHECK_BYTES:  # what was declared may not be what comes
                            _check_space(dest, shown, SPACE_CHECK_BYTES)
                            checked = size
                        out.write(block)
                        digest.update(block)
                        if bar:
                            bar.update(len(block))
            finally:
                if bar:
                    bar.close()
            if total is not None and size < total:
                raise TransientError(f"connection closed after {size} of {total} bytes")
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        if client.is_closed:  # the deadline closed it: not worth another try
            raise
        raise TransientError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _bad_request(shown, exc) or BadInputError(shown, f"{type(exc).__name__}: {exc}") from None
    sha = digest.hexdigest()
    target = dest / f"{sha}{MEDIA_TYPES.get(media_type(content_type), '')}"
    # Not safety.replacing: the partial file outlives a failed attempt (the next one resumes it), and
    # the name it takes is known only once it is whole (its hash).
    os.replace(partial, target)
    result = Downloaded(url=shown, path=str(target), sha256=sha, size=size, content_type=media_type(content_type),
                        etag=response.headers.get("etag", ""), last_modified=response.headers.get("last-modified", ""))
    _save_state(dest, key, {"done": asdict(result)})
    return result


def _check_space(dest: Path, url: str, needed: int) -> None:
    free = shutil.disk_usage(dest).free
    if needed > 0 and free < needed + 256 * 1024**2:  # keep a margin for the normalised audio
        raise BadInputError(url, f"not enough disk space in {dest} ({free // 2**20} MiB free, "
                                 f"{needed // 2**20} MiB needed)")


def _bar(total: int | None, done: int, url: str, enabled: bool):
    name = url.rsplit("/", 1)[-1][:40] or url[:40]
    return progress_bar(enabled, f"downloading {name}", total, "B", initial=done, unit_scale=True)
