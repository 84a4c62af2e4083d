"""Where recordings come from: local files, media URLs, event pages and video sites."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from recording_index.ingest.audio import file_hash
from recording_index.config import Settings, local_source, recording_id_for
from recording_index.ingest.discover import discover
from recording_index.links import is_media_url, is_video_site
from recording_index.errors import BadInputError
from recording_index.ingest.fetch import FetchOptions, download, fetch_page
from recording_index.models import Recording
from recording_index.safety import is_web_url, redact_url, scheme_of
from recording_index.ingest.video import fetch_video_audio


def recording_for_path(path: str) -> Recording:
    """A Recording for a file or URL named on the command line, titled after the file (or the page).

    Never raises: a path that cannot be resolved (a symbolic link loop, say) stays as given, and
    fails alone when the run locates it."""
    if is_remote(path):
        return Recording(id=recording_id_for(redact_url(path)), source=path)
    if "://" in path and not path.startswith("file://"):
        return Recording(id=recording_id_for(path), source=path)  # refused by `locate`, by name
    resolved = local_source(path)
    return Recording(id=recording_id_for(resolved), source=resolved, title=Path(resolved).stem)


def is_remote(source: str) -> bool:
    return is_web_url(source)


@dataclass
class Resolved:
    """The recordings behind one source, and the links of its page that were refused (one error each)."""

    recordings: list[Recording]
    refused: list[BadInputError] = field(default_factory=list)


def fetch_options(settings: Settings) -> FetchOptions:
    minutes = settings.download_minutes
    return FetchOptions(progress=settings.progress, deadline=minutes * 60, page_deadline=min(60.0, minutes * 60))


def resolve(recording: Recording, options: FetchOptions | None = None, max_recordings: int = 100) -> Resolved:
    """The recordings behind a source: itself, or, for an HTML page, the recordings it links
    (all of them, at most `max_recordings`, or the one `pick` names: its number from 1, or text in
    its title or URL). What a page links is remote: its links of another scheme are refused."""
    url = recording.source
    if not is_remote(url) or is_video_site(url) or is_media_url(url):
        return Resolved([recording])
    page = fetch_page(url, options or FetchOptions())
    if page is None:  # the URL serves media itself
        return Resolved([recording])
    final_url, html = page
    links = discover(html, final_url)
    refused = [BadInputError(f"{url} links {r.url}", f"{r.why}: a page may only link http or https sources")
               for r in links.refused]
    found = links.found
    if not found:
        if refused:
            return Resolved([], refused)
        raise BadInputError(url, "page links no recordings (no audio or video element, media link or video player)")
    if recording.pick:
        chosen = _pick(found, recording.pick, url)
        return Resolved([dataclasses.replace(recording, source=chosen.url, title=recording.title or chosen.title,
                                             pick="")])
    if len(found) > max_recordings:
        raise BadInputError(url, f"page links {len(found)} recordings, more than max_page_recordings = "
                                 f"{max_recordings}; pick one in the catalog, or raise the setting")
    return Resolved([dataclasses.replace(recording, id=recording_id_for(redact_url(item.url)), source=item.url,
                                         title=item.title or recording.title, pick="") for item in found], refused)


def _pick(found: list, pick: str, url: str):
    if pick.isascii() and pick.isdigit():
        number = int(pick)
        if not 1 <= number <= len(found):
            raise BadInputError(url, f"pick = {number}, but the page links {len(found)} recording(s)")
        return found[number - 1]
    matches = [f for f in found if pick.lower() in f.title.lower() or pick.lower() in f.url.lower()]
    if not matches:
        raise BadInputError(url, f"no recording on the page matches pick = {pick!r}")
    return matches[0]


def locate(recording: Recording, settings: Settings | None = None, options: FetchOptions | None = None) -> Recording:
    """The recording with its local media path and content hash (downloaded if remote), or BadInputError.

    A copy: the caller's recording is left as it was (a task's input may be another task's too)."""
    recording = dataclasses.replace(recording)
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
        options = options or fetch_options(settings)
        fetched = download(recording.source, downloads, options)
        recording.media_path, recording.content_hash = fetched.path, fetched.sha256
        return recording
    if "://" in recording.source or scheme_of(recording.source) not in ("", "file"):
        # Local files come as plain paths from the command line and catalogs (see config.local_source).
        raise BadInputError(recording.source, f"scheme {scheme_of(recording.source)!r} refused (http, https or a "
                                              "local path)")
    recording.content_hash = file_hash(recording.source)  # regular files only: a FIFO would block the run
    recording.media_path = recording.source
    return recording
