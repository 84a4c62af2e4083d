"""The Prefect API a command-line run starts for itself (prefect_server.py): its own session, gone
with the run however the run ends, and one line when it cannot start."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from http_server import answers

CHILD = """
import os, sys, time, psutil
from recording_index.prefect_server import prefect_api
with prefect_api() as url:
    server = psutil.Process().children()[0]
    print(url, server.pid, os.getpgid(server.pid), os.getsid(server.pid), flush=True)
    time.sleep(600)
"""


def test_the_run_s_server_has_a_session_of_its_own_and_dies_with_a_killed_run():
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    run = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=env,
                           start_new_session=True)
    try:
        url, pid, group, session = run.stdout.readline().split()
        assert url.startswith("http://127.0.0.1:") and answers(f"{url}/health")
        # Not in the run's process group: Ctrl-C in a terminal (or a kill of the group) is the run's alone.
        assert int(group) != os.getpgid(run.pid) and int(session) != os.getsid(run.pid)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        deadline = time.monotonic() + 30
        while answers(f"{url}/health") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not answers(f"{url}/health"), "the server outlived the killed run"
        deadline = time.monotonic() + 15
        while psutil.pid_exists(int(pid)) and psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the server process outlived the killed run"
            time.sleep(0.5)
    finally:
        if run.poll() is None:
            run.kill()


def test_a_configured_api_is_used_as_it_is(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from recording_index.prefect_server import prefect_api

    with temporary_settings({PREFECT_API_URL: "http://10.9.8.7:4200/api"}):
        before = set(psutil.Process().children())
        with prefect_api() as url:
            assert url == "http://10.9.8.7:4200/api"
            assert set(psutil.Process().children()) == before  # nothing started


def test_a_server_that_cannot_start_is_one_line_naming_the_way_out(tmp_path, monkeypatch):
    from recording_index.errors import RecordingIndexError
    from recording_index.prefect_server import prefect_api

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # A database the server cannot create: it stops at start.
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL",
                       f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/prefect.db")
    with pytest.raises(RecordingIndexError) as raised:
        with prefect_api(startup_seconds=60):
            pass
    message = str(raised.value)
    assert "\n" not in message and "set PREFECT_API_URL to a running Prefect server" in message
