"""User names and passwords taken out of URLs and of texts that hold URLs: what a URL carried to
fetch it is never stored, printed or logged. No dependencies: errors.py uses it for every message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# The authority's user part, up to its last "@" before the path: passwords may hold "@" and even
# spaces. (A message with an "@" after a URL without a path loses a little more: on the safe side.)
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\n]*@")


def redact_url(url: str) -> str:
    """`url` without the user name and password it may carry (any scheme)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def redact(text: str) -> str:
    """Any text (an error message, say) with the credentials of the URLs in it taken out."""
    return _CREDENTIALS.sub(r"\1", text) if "@" in text else text
