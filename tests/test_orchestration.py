"""Prefect as users run it: a real Prefect server on 127.0.0.1 with the project's prefect.yaml deployed
and a worker, a real Dask LocalCluster, and stage results reused after a run is killed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from conftest import fresh_cache
from http_server import free_port, wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "recording_index.cli"]
PREFECT = [sys.executable, "-m", "prefect"]

pytestmark = pytest.mark.slow


@pytest.fixture
def env(cache_dir, tmp_path):
    return {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(fresh_cache(cache_dir, tmp_path / "cache")),
            "ARGOS_PACKAGES_DIR": str(tmp_path / "no-argos")}


def run_json(args, env, timeout=900) -> tuple[dict, subprocess.CompletedProcess]:
    result = subprocess.run([*CLI, "run", *args, "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{"):]), result


def test_a_killed_run_resumes_without_transcribing_again_what_was_finished(two_talks, env, tmp_path):
    db, results = tmp_path / "index.db", Path(env["RECORDING_INDEX_CACHE_DIR"]) / "results"
    process = subprocess.Popen([*CLI, "run", *two_talks, "--db", str(db), "--translator", "whisper"], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list(results.glob("transcribe.*")):
        assert process.poll() is None and time.time() < deadline, "no transcription finished"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # while the first talk is being translated
    process.wait(timeout=60)
    finished = len(list(results.glob("transcribe.*")))

    summary, _ = run_json([*two_talks, "--db", str(db), "--translator", "whisper"], env)
    outcomes = {Path(o["source"]).name: o for o in summary["outcomes"]}
    assert outcomes["one.mp3"]["transcription"] in ("reused", "")  # "" when it was stored before the kill
    # Killed after it was stored, and before its subtitle files were all written: those are written now.
    assert outcomes["one.mp3"]["status"] in ("indexed", "skipped") or (
        outcomes["one.mp3"]["status"], outcomes["one.mp3"]["stages"]) == ("redone", ["subtitles"])
    transcribed = [o for o in summary["outcomes"] if o["transcription"] == "done"]
    assert len(transcribed) == 2 - finished
    assert summary["failed"] == 0


def test_a_new_translator_reuses_the_stored_transcription_when_it_is_the_same_output(env, tmp_path, sample_mp3):
    """New databases each time: the index knows nothing, so what is saved is Prefect's stored results."""
    sequential = {**env, "RECORDING_INDEX_BATCH_SIZE": "0"}  # English is then a pass of its own
    first, _ = run_json([str(sample_mp3), "--db", str(tmp_path / "a.db"), "--translator", "none"], sequential)
    assert first["outcomes"][0]["transcription"] == "done"
    second, _ = run_json([str(sample_mp3), "--db", str(tmp_path / "b.db"), "--translator", "whisper"], sequential)
    assert second["outcomes"][0]["transcription"] == "reused"
    # The sentences depend on the transcription alone; the English, and what follows it, are new.
    assert second["outcomes"][0]["reused"] == ["transcribe", "segment"]
    assert second["outcomes"][0]["stages"][:3] == ["transcribe", "segment", "translate"]
    with sqlite3.connect(tmp_path / "b.db") as conn:
        english = [row[0] for row in conn.execute("SELECT text_en FROM chunks")]
    assert english and all(english)
    # Batched, Whisper's English is decoded with the French: a transcription made without it is not
    # that result, and is not reused in its place.
    batched_none, _ = run_json([str(sample_mp3), "--db", str(tmp_path / "c.db"), "--translator", "none"], env)
    batched_whisper, _ = run_json([str(sample_mp3), "--db", str(tmp_path / "d.db"), "--translator", "whisper"], env)
    assert batched_whisper["outcomes"][0]["transcription"] == "done"
    with sqlite3.connect(tmp_path / "d.db") as conn:
        assert all(row[0] for row in conn.execute("SELECT text_en FROM chunks"))


def test_a_local_dask_cluster_spreads_recordings_over_two_workers(two_talks, env, tmp_path):
    summary, result = run_json([*two_talks, "--db", str(tmp_path / "index.db"), "--translator", "none",
                                "--task-runner", "dask"], env)
    assert summary["indexed"] == 2
    workers = {o["worker"] for o in summary["outcomes"]}
    assert len(workers) == 2, workers  # two processes of the cluster, neither the flow's own
    assert all(w.split(":")[-1].isdigit() for w in workers)
    # Workers are given the run's own Prefect API (prefect_server.py) rather than starting one each.
    assert "Starting temporary server" not in result.stderr + result.stdout
    with sqlite3.connect(tmp_path / "index.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(DISTINCT recording_id) FROM chunks").fetchone()[0] == 2


# --- A real Prefect server, the project's prefect.yaml, a worker ---------------------------------------

@pytest.fixture
def prefect_server(tmp_path, cache_dir):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
           "RECORDING_INDEX_CACHE_DIR": str(fresh_cache(cache_dir, tmp_path / "cache")),
           "ARGOS_PACKAGES_DIR": str(tmp_path / "no-argos")}
    server = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_until_answering(f"{api}/health", server, 120, (tmp_path / "server.log").read_text)
        yield api, env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def prefect(args, env, timeout=300):
    result = subprocess.run([*PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def flow_runs(api: str) -> list[dict]:
    return httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()


def test_a_run_with_a_failed_recording_is_failed_in_prefect_with_the_summary_saying_which(prefect_server, tmp_path):
    api, env = prefect_server
    result = subprocess.run([*CLI, "run", str(tmp_path / "missing.mp3"), "--db", str(tmp_path / "i.db")], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "0 indexed, 0 skipped (unchanged), 1 failed" in result.stdout
    [run] = flow_runs(api)
    assert run["state_type"] == "FAILED" and run["state"]["message"].startswith("0 indexed, 0 skipped (unchanged), 1 failed")
    artifacts = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": ["index-summary"]}}},
                           timeout=10).json()
    assert "| failed |" in artifacts[0]["data"] and "missing.mp3: no such file" in artifacts[0]["data"]


def test_the_deployment_schedules_runs_and_a_worker_completes_one(prefect_server, tmp_path):
    api, env = prefect_server
    # The README's steps, as written.
    prefect(["work-pool", "create", "recording-index", "--type", "process"], env)
    prefect(["--no-prompt", "deploy", "--all"], env)
    deployment = httpx.get(f"{api}/deployments/name/index-recordings/nightly", timeout=10).json()
    assert deployment["parameters"]["catalog"] == "config/demo.toml"
    assert deployment["schedules"][0]["schedule"]["cron"] == "0 2 * * *"

    deadline = time.time() + 60
    while not (scheduled := [r for r in flow_runs(api) if r["state_type"] == "SCHEDULED"]):
        assert time.time() < deadline, "the schedule created no runs"
        time.sleep(1)
    now = datetime.now(timezone.utc)
    assert all(datetime.fromisoformat(r["expected_start_time"]) > now for r in scheduled)

    db = tmp_path / "index.db"
    out = prefect(["deployment", "run", "index-recordings/nightly", "--param", f"db={db}"], env)
    run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
    prefect(["worker", "start", "--pool", "recording-index", "--run-once"], env, timeout=900)
    run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
    assert run["state_type"] == "COMPLETED", run["state"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM recordings").fetchall() == [("indexed",)]
    artifacts = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": ["index-summary"]}}},
                           timeout=10).json()
    assert artifacts and "| indexed |" in artifacts[0]["data"]
