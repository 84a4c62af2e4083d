"""Where recordings come from, and links back to a moment in them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .audio import file_hash
from .config import recording_id_for
from .errors import BadInputError
from .models import Recording

VIDEO_SITES = ("youtube.com", "youtu.be", "vimeo.com", "dailymotion.com")


def recording_for_path(path: str | Path) -> Recording:
    """A Recording for a local file named on the command line, titled after the file."""
    resolved = Path(path).expanduser().resolve()
    return Recording(id=recording_id_for(str(resolved)), source=str(resolved), title=resolved.stem)


def locate(recording: Recording) -> Recording:
    """Fill in the local media path and content hash of a recording, or raise BadInputError."""
    if "://" in recording.source and not recording.source.startswith("file://"):
        raise BadInputError(recording.source, "fetching from URLs is not supported yet (local files only)")
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
    if any(host == site or host.endswith("." + site) for site in VIDEO_SITES):
        if "vimeo.com" in host:
            return urlunsplit(parts._replace(fragment=f"t={whole}s"))
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("t", "start")]
        query.append(("t", f"{whole}s" if "youtu" in host else str(whole)))
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(fragment=f"t={seconds:.1f}"))
