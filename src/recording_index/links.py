"""Links back to a moment in a recording: light enough for the index and the web page to import
(no HTTP client, no audio stack)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .discover import is_video_site


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
