"""Where recordings come from, and links back to a moment in them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from .audio import file_hash
from .config import Settings, recording_id_for
from .discover import discover, is_media_url, is_video_site
from .errors import BadInputError
from .fetch import USER_AGENT, FetchOptions, download, is_media_type, media_type
from .models import Recording
from .video import fetch_video_audio

MAX_PAGE_BYTES = 5 * 1024**2


def recording_for_path(path: str) -> Recording:
    """A Recording for a file or URL named on the command line, titled after the file (or the page)."""
    if is_remote(path):
        return Recording(id=recording_id_for(path), source=path)
    resolved = Path(path).expanduser().resolve()
    return Recording(id=recording_id_for(str(resolved)), source=str(resolved), title=resolved.stem)


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def resolve(recording: Recording, options: FetchOptions | None = None) -> list[Recording]:
    """The recordings behind a source: itself, or, for an HTML page, the recordings it links
    (all of them, or the one `pick` names: its number from 1, or text in its title or URL)."""
    url = recording.source
    if not is_remote(url) or is_video_site(url) or is_media_url(url):
        return [recording]
    page = _fetch_page(url, options or FetchOptions())
    if page is None:  # the URL serves media itself
        return [recording]
    final_url, html = page
    found = discover(html, final_url)
    if not found:
        raise BadInputError(url, "page links no recordings (no audio or video element, media link or video player)")
    if recording.pick:
        chosen = _pick(found, recording.pick, url)
        return [dataclasses.replace(recording, source=chosen.url, title=recording.title or chosen.title, pick="")]
    return [dataclasses.replace(recording, id=recording_id_for(item.url), source=item.url,
                                title=item.title or recording.title, pick="") for item in found]


def _pick(found: list, pick: str, url: str):
    if pick.isdigit():
        number = int(pick)
        if not 1 <= number <= len(found):
            raise BadInputError(url, f"pick = {number}, but the page links {len(found)} recording(s)")
        return found[number - 1]
    matches = [f for f in found if pick.lower() in f.title.lower() or pick.lower() in f.url.lower()]
    if not matches:
        raise BadInputError(url, f"no recording on the page matches pick = {pick!r}")
    return matches[0]


def _fetch_page(url: str, options: FetchOptions) -> tuple[str, str] | None:
    """(final URL, HTML) of a page, or None when the URL turns out to serve media."""
    try:
        with httpx.Client(follow_redirects=True, timeout=options.timeout, headers={"User-Agent": USER_AGENT}) as client:
            with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise BadInputError(url, f"HTTP {response.status_code} {response.reason_phrase}".strip())
                kind = media_type(response.headers.get("content-type", ""))
                if kind in ("text/html", "application/xhtml+xml"):
                    body = bytearray()
                    for block in response.iter_bytes():
                        body.extend(block)
                        if len(body) > MAX_PAGE_BYTES:
                            raise BadInputError(url, f"page larger than {MAX_PAGE_BYTES} bytes")
                    return str(response.url), bytes(body).decode(response.encoding or "utf-8", "replace")
                if is_media_type(kind):
                    return None
                raise BadInputError(url, f"neither a page nor media (content type {kind})")
    except httpx.ConnectError as exc:
        raise BadInputError(url, f"connection failed ({exc})") from None
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise BadInputError(url, f"page fetch failed ({type(exc).__name__})") from None


def locate(recording: Recording, settings: Settings | None = None, options: FetchOptions | None = None) -> Recording:
    """Fill in the local media path and content hash of a recording (downloading it if remote),
    or raise BadInputError."""
    settings = settings or Settings()
    downloads = settings.cache_path / "downloads"
    if is_video_site(recording.source):
        video = fetch_video_audio(recording.source, downloads, settings.progress)
        recording.media_path, recording.content_hash = video.path, video.sha256
        recording.title = recording.title or video.title
        recording.uploader = recording.uploader or video.uploader
        recording.date = recording.date or video.upload_date
        return recording
    if is_remote(recording.source):
        options = options or FetchOptions(progress=settings.progress)
        fetched = download(recording.source, downloads, options)
        recording.media_path, recording.content_hash = fetched.path, fetched.sha256
        return recording
    path = Path(recording.source.removeprefix("file://"))
    if not path.exists():
        raise BadInputError(recording.source, "no such file")
    if path.is_dir():
        raise BadInputError(recording.source, "is a directory, not a media file")
    recording.media_path = str(path)
    recording.content_hash = file_hash(path)
    return recording


def moment_url(source: str, seconds: float) -> str:
    """A link that opens `source` at `seconds`: the site's own time parameter, else a `#t=` fragment."""
    whole = int(seconds)
    if "://" not in source:
        return Path(source).resolve().as_uri() + f"#t={seconds:.1f}"
    parts = urlsplit(source)
    host = parts.netloc.lower()
    if is_video_site(source):
        if "vimeo.com" in host:
            return urlunsplit(parts._replace(fragment=f"t={whole}s"))
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("t", "start")]
        query.append(("t", f"{whole}s" if "youtu" in host else str(whole)))
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(fragment=f"t={seconds:.1f}"))
