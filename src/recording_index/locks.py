"""One run at a time per index: a second run on the same database stops at once with a clear message.

An advisory lock (fcntl) on `<db>.lock`: the kernel releases it when the process dies, even by
SIGKILL, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import RecordingIndexError


class IndexBusyError(RecordingIndexError):
    """Another run holds the index."""


@contextmanager
def exclusive_run(db: str | Path) -> Iterator[None]:
    path = Path(f"{db}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexBusyError(f"{db}: another run is indexing into it ({holder}); "
                                 "wait for it to finish (searches keep working meanwhile)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
