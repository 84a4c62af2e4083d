"""Download media over HTTP(S): streamed, resumable, retried, conditional, and named by content.

A download goes to `<dir>/.partial/<url key>` and, once complete, is renamed to `<dir>/<sha256><ext>`:
a name never taken from the URL or the server. What the server said (ETag, Last-Modified) is kept in
`<dir>/.state/<url key>.json`, so an unchanged remote recording is answered by a 304, not downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from .errors import BadInputError

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


@dataclass
class FetchOptions:
    max_bytes: int = 4 * 1024**3  # 4 GiB: a long talk in video is well under
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0  # seconds; doubled at each retry
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
    unchanged: bool = False  # the server said 304: the file on disk is current


class TransientError(Exception):
    """Worth another try: a time-out, a reset, a dropped connection, a 5xx."""


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def is_media_type(content_type: str) -> bool:
    kind = media_type(content_type)
    return kind in MEDIA_TYPES or kind in GENERIC_TYPES or kind.startswith(("audio/", "video/"))


def download(url: str, dest: str | Path, options: FetchOptions | None = None,
             client: httpx.Client | None = None) -> Downloaded:
    """Fetch `url` into `dest` and return what was saved; raise BadInputError on what retrying cannot fix."""
    options = options or FetchOptions()
    dest = Path(dest)
    for folder in (dest, dest / ".partial", dest / ".state"):
        folder.mkdir(parents=True, exist_ok=True)
    own_client = client is None
    client = client or httpx.Client(follow_redirects=True, timeout=options.timeout,
                                    headers={"User-Agent": USER_AGENT})
    try:
        for attempt in range(options.retries + 1):
            try:
                return _attempt(url, dest, options, client)
            except TransientError as exc:
                if attempt == options.retries:
                    raise BadInputError(url, f"download failed after {options.retries + 1} attempts ({exc})") from None
                time.sleep(options.backoff * 2**attempt)
    finally:
        if own_client:
            client.close()
    raise AssertionError("unreachable")


def _load_state(dest: Path, key: str) -> dict:
    path = dest / ".state" / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_state(dest: Path, key: str, state: dict) -> None:
    path = dest / ".state" / f"{key}.json"
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state))
    partial.replace(path)


def _attempt(url: str, dest: Path, options: FetchOptions, client: httpx.Client) -> Downloaded:
    key = url_key(url)
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
                return Downloaded(**{**done, "unchanged": True})
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                raise BadInputError(url, f"HTTP {response.status_code} {response.reason_phrase}".strip())
            content_type = response.headers.get("content-type", "")
            if not is_media_type(content_type):
                raise BadInputError(url, f"not media (content type {media_type(content_type)})")
            resumed = response.status_code == 206
            if not resumed:
                offset = 0
            length = response.headers.get("content-length")
            total = offset + int(length) if length and length.isdigit() else None
            if total is not None and total > options.max_bytes:
                raise BadInputError(url, f"too large ({total} bytes > limit of {options.max_bytes})")
            _check_space(dest, url, (total or 0) - offset)
            validator = response.headers.get("etag") or response.headers.get("last-modified") or ""
            state["partial_validator"] = validator
            _save_state(dest, key, state)
            digest = hashlib.sha256()
            if resumed:
                with open(partial, "rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
            size = offset
            bar = _bar(total, offset, url, options.progress)
            try:
                with open(partial, "ab" if resumed else "wb") as out:
                    for block in response.iter_bytes(1 << 16):
                        size += len(block)
                        if size > options.max_bytes:
                            raise BadInputError(url, f"too large (over the limit of {options.max_bytes} bytes)")
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
        raise TransientError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    except BadInputError:
        if not (partial.exists() and state.get("partial_validator")):
            partial.unlink(missing_ok=True)
        raise
    sha = digest.hexdigest()
    target = dest / f"{sha}{MEDIA_TYPES.get(media_type(content_type), '')}"
    os.replace(partial, target)
    result = Downloaded(url=url, path=str(target), sha256=sha, size=size, content_type=media_type(content_type),
                        etag=response.headers.get("etag", ""), last_modified=response.headers.get("last-modified", ""))
    _save_state(dest, key, {"done": asdict(result)})
    return result


def _check_space(dest: Path, url: str, needed: int) -> None:
    free = shutil.disk_usage(dest).free
    if needed > 0 and free < needed + 256 * 1024**2:  # keep a margin for the normalised audio
        raise BadInputError(url, f"not enough disk space in {dest} ({free // 2**20} MiB free, "
                                 f"{needed // 2**20} MiB needed)")


def _bar(total: int | None, done: int, url: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    name = url.rsplit("/", 1)[-1][:40] or url[:40]
    return tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=f"downloading {name}", file=sys.stderr)
