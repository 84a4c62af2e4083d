"""What outside text loses before it is stored, printed or logged: the user names and passwords of
URLs (used to fetch, never kept), and the control characters a terminal would obey. No
dependencies: errors.py uses it for every message."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The authority's user part, up to its last "@" before the path: passwords may hold "@" and even
# spaces. (A message with an "@" after a URL without a path loses a little more: on the safe side.)
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\n]*@")
# Query parameters that carry a secret: signed media URLs (S3's X-Amz-Signature and
# X-Amz-Credential, GCS's X-Goog-Signature, CloudFront's Signature and Key-Pair-Id), tokens, keys,
# passwords. Their values are secrets as much as a password in `user:pass@` is.
_SECRET_WORDS = "token|sig|signature|key|apikey|secret|password|passwd|pass|pwd|auth|credential|session"
# A name whose word (between -, _ or .) is one of them: X-Amz-Security-Token, access_token, Key-Pair-Id.
_SECRET_NAME = rf"(?:[^=&\s#]*[-_.])?(?:{_SECRET_WORDS})(?:[-_.][^=&\s#]*)?"
_SECRET_PARAM = re.compile(rf"(?i)([?&]{_SECRET_NAME}=)[^&\s#\"'<>]*")
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """`url` without the user name and password it may carry (any scheme), and with the values of
    its secret query parameters (signatures, tokens, keys) replaced by REDACTED."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    if parts.query:
        parts = parts._replace(query=_SECRET_PARAM.sub(rf"\1{REDACTED}", "?" + parts.query)[1:])
    return urlunsplit(parts)


def redact(text: str) -> str:
    """Any text (an error message, say) with the credentials and secret query parameters of the
    URLs in it taken out."""
    if "@" in text:
        text = _CREDENTIALS.sub(r"\1", text)
    return _SECRET_PARAM.sub(rf"\1{REDACTED}", text) if "=" in text else text


# C0 and C1 controls, and the bidirectional overrides that reorder what a terminal shows.
_HIDDEN = {"Cc", "Cs", "Co"}
_BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")


def _unsafe(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in _HIDDEN


def printable(text: Any) -> str:
    """`text` fit for a terminal: escapes, bells and other controls become a space (tabs and
    newlines too: a field stays on its line and in its column)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(" " if _unsafe(c) or c in "\t\n\r" else c for c in text)
