"""The trust boundary: what may be read, written and printed on the word of outside input.

Only the command line and a catalog name local files; a source found on a remote page is remote
(http or https) or refused. Every file written is proven to stay inside its folder, and every
text printed to a terminal has its control characters taken out first.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator
from urllib.parse import urlsplit

from recording_index.errors import BadInputError
from recording_index.redaction import _unsafe, printable, redact, redact_url  # noqa: F401 (re-exported: the boundary's tools in one place)

WEB_SCHEMES = ("http", "https")

# A recording id becomes file names (subtitles) and URL paths (the web page): a safe set of
# characters, a bounded length, and no "." or ".." alone.
RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host: the only kind of source a remote page may name."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)


def scheme_of(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def is_valid_id(recording_id: str) -> bool:
    return bool(RECORDING_ID.fullmatch(recording_id)) and ".." not in recording_id


def why_bad_id(recording_id: str) -> str | None:
    if is_valid_id(recording_id):
        return None
    if len(recording_id) > 100:
        return f"too long ({len(recording_id)} characters, at most 100)"
    return ("must start with a letter or digit and hold only letters, digits, '.', '_' and '-' "
            "(no '..')")


def inside(folder: str | Path, name: str) -> Path:
    """`folder / name`, proven to stay inside `folder` (no separator, no "..", no link out)."""
    folder = Path(folder)
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise BadInputError(name, f"not a plain file name (refused for a file in {folder})")
    path = folder / name
    base = folder.resolve()
    if path.resolve().parent != base:
        raise BadInputError(name, f"would be written outside {folder}")
    return path


def open_regular(path: str | Path) -> BinaryIO:
    """Open a file for reading only when it is a regular file: a FIFO, a device or a socket named
    as a recording would block the run or read forever. Opened without blocking, then checked."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadInputError(name, _os_reason(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise BadInputError(name, "is a directory, not a media file")
        if not stat.S_ISREG(mode):
            raise BadInputError(name, f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise



def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"


def _os_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.EISDIR:
        return "is a directory, not a media file"
    return exc.strerror or str(exc)


def printable_lines(text: str) -> str:
    """Several lines fit for a terminal: each line cleaned, the line breaks kept."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def json_text(data: Any) -> str:
    """JSON for a terminal: every control character escaped (json escapes C0 alone), text kept."""
    raw = json.dumps(data, ensure_ascii=False, indent=2)
    return "".join(_json_escape(c) if c != "\n" and _unsafe(c) else c for c in raw)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # JSON spells a character beyond the BMP as its UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """A temporary path beside `target` to write to; on success it replaces `target` in one rename,
    on failure it is removed. A reader (or a run killed midway) never sees half a file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:80]}.", suffix=".partial")
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        # mkstemp makes its file for its owner alone (0600): what is published is readable as the
        # umask says, as a file written in place would be (a web server of another user reads it).
        os.chmod(partial, 0o666 & ~umask())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask: read from /proc where there is one, else set and set back (under a
    lock: the umask is the whole process's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        current = os.umask(0o022)
        os.umask(current)
    return current
