"""One run at a time per index: a second run on the same database stops at once with a clear message.

filelock's lock on `<db>.lock`, beside the database's real file (links resolved: two names of one
database are one lock): an advisory lock of the operating system (flock, or Windows' own), which
the kernel releases when the process dies, even by SIGKILL, so a crashed run never leaves a stale
lock behind. Within one process the lock is re-entrant, from any thread: the command line takes
it before Prefect starts, and the flow, which also runs from deployments, takes it again.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from recording_index.errors import IndexBusyError, RecordingIndexError

_locks: dict[str, FileLock] = {}
_locks_lock = threading.Lock()


def lock_path(db: str | Path) -> Path:
    try:
        real = Path(db).expanduser().resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        raise RecordingIndexError(f"{db}: cannot be resolved (a symbolic link loop?)") from None
    return real.with_name(real.name + ".lock")


@contextmanager
def exclusive_run(db: str | Path) -> Iterator[None]:
    path = lock_path(db)
    try:
        # One thread at a time takes or gives back the lock: filelock counts re-entries without a lock of its own.
        with _locks_lock:
            lock = _locks.setdefault(str(path), FileLock(path, thread_local=False))
            path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=0)
    except Timeout:
        raise IndexBusyError(f"{db}: another run is indexing into it; wait for it to finish "
                             "(searches keep working meanwhile)") from None
    except OSError as exc:
        raise RecordingIndexError(f"{db}: cannot write beside it ({exc.strerror or exc}: {path})") from None
    try:
        yield
    finally:
        with _locks_lock:
            lock.release()
