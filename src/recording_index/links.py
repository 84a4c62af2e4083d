"""What a media URL is, and links back to a moment in a recording: light enough for the index and the
web page to import (no HTTP client, no audio stack)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

VIDEO_SITES = ("youtube.com", "youtube-nocookie.com", "youtu.be", "vimeo.com", "dailymotion.com", "dai.ly")


def split_url(url: str):
    """urlsplit, or None for a malformed URL (a bad IPv6 host, say): outside input is not trusted to parse."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def is_video_site(url: str) -> bool:
    parts = split_url(url)
    host = parts.netloc.lower().rsplit("@", 1)[-1].split(":")[0] if parts else ""
    return any(host == site or host.endswith("." + site) for site in VIDEO_SITES)


MEDIA_EXTENSIONS = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".mp4", ".m4v", ".webm",
                    ".mkv", ".mov")
# Media a page plays in a <video> (with its captions drawn), not an <audio>.
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".m4v", ".ogv"}


def is_media_url(url: str) -> bool:
    parts = split_url(url)
    return bool(parts) and parts.path.lower().endswith(MEDIA_EXTENSIONS)


def moment_url(source: str, seconds: float) -> str:
    """A link that opens `source` at `seconds`: the site's own time parameter, else a `#t=` fragment."""
    whole = int(seconds)
    if "://" not in source:
        return Path(os.path.abspath(source)).as_uri() + f"#t={seconds:.1f}"
    parts = urlsplit(source)
    host = parts.netloc.lower()
    if is_video_site(source):
        if "vimeo.com" in host:
            return urlunsplit(parts._replace(fragment=f"t={whole}s"))
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("t", "start")]
        query.append(("t", f"{whole}s" if "youtu" in host else str(whole)))
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(fragment=f"t={seconds:.1f}"))
