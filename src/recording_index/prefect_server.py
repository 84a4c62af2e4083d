"""A Prefect API server for one run of the command line, when no server is configured.

Why this module exists: without PREFECT_API_URL, Prefect starts a temporary server itself, but in
the run's process group, so Ctrl-C stops the server too, and the run then spends a minute retrying
to report its own interruption. Started here with Prefect's own command (`prefect server start`),
the server runs in a session of its own and stops with the run, whatever ends it: when the run's
process exits (after Prefect's own exit handlers have sent its last logs and events, since they
are registered later and run first), and on Linux even when the run is killed (the kernel's
parent-death signal). Its address is set in the environment for the rest of the process, so
processes the run starts (Dask workers) use it too.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import httpx

from recording_index.errors import RecordingIndexError

STARTUP_SECONDS = 120  # Prefect's own default is 20 s: a loaded machine (a run beside a test suite) needs more


def _stop_with_parent():
    """What the server's process calls before exec to have Linux send it SIGTERM when its parent dies;
    looked up here, in the parent: between fork and exec only that one call is safe."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    PR_SET_PDEATHSIG = 1
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def prefect_api(startup_seconds: float = STARTUP_SECONDS) -> Iterator[str]:
    """The address of the Prefect API this run reports to: the configured one, else a server started
    for the run on 127.0.0.1 (stopped when the process exits)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if configured := PREFECT_API_URL.value():
        yield configured
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--no-ui", "--no-services", "--log-level", "WARNING"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_stop_with_parent() if sys.platform == "linux" else None,
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    atexit.register(_stop, server, log)
    _wait_until_healthy(url, server, startup_seconds, log)
    os.environ["PREFECT_API_URL"] = url
    with temporary_settings({PREFECT_API_URL: url}):
        yield url


def _stop(server: subprocess.Popen, log) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


def _wait_until_healthy(url: str, server: subprocess.Popen, seconds: float, log) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            last = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()][-1:] or ["?"]
            raise RecordingIndexError(f"Prefect's server for this run stopped at start ({last[0].strip()}); "
                                      "set PREFECT_API_URL to a running Prefect server")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RecordingIndexError(f"Prefect's server for this run did not start within {seconds:.0f} s; "
                              "set PREFECT_API_URL to a running Prefect server")
