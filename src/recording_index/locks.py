"""One run at a time per index: a second run on the same database stops at once with a clear message.

An advisory lock (fcntl) on `<db>.lock`, beside the database's real file (links resolved: two
names of one database are one lock). The kernel releases it when the process dies, even by
SIGKILL, so a crashed run never leaves a stale lock behind. Within one process the lock is
re-entrant: the command line takes it before Prefect starts, and the flow, which also runs from
deployments, takes it again.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from recording_index.errors import IndexBusyError, RecordingIndexError

_held: dict[str, int] = {}
_held_lock = threading.Lock()


def lock_path(db: str | Path) -> Path:
    try:
        real = Path(db).expanduser().resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        raise RecordingIndexError(f"{db}: cannot be resolved (a symbolic link loop?)") from None
    return real.with_name(real.name + ".lock")


@contextmanager
def exclusive_run(db: str | Path) -> Iterator[None]:
    path = lock_path(db)
    key = str(path)
    with _held_lock:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_lock:
                _held[key] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
    except OSError as exc:
        raise RecordingIndexError(f"{db}: cannot write beside it ({exc.strerror or exc}: {path})") from None
    with handle:
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
        with _held_lock:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_lock:
                del _held[key]
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
