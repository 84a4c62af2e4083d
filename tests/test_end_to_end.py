"""The whole product on real speech: `recording-index run` (the Prefect flow on Prefect's ephemeral
API), real ffmpeg, the embedded Whisper weights, SQLite; then search it as a user would."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recording_index.evaluation import word_error_rate
from test_transcribe import WER_BOUND

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "recording_index.cli"]

pytestmark = pytest.mark.slow


def phrase_time(aligned_words, phrase):
    """When the reference alignment has the speaker start `phrase` (its words in sequence)."""
    wanted = phrase.lower().split()
    words = [w.lower() for w, _ in aligned_words]
    for i in range(len(words) - len(wanted) + 1):
        if words[i:i + len(wanted)] == wanted:
            return aligned_words[i][1]
    raise AssertionError(f"{phrase!r} is not in the reference alignment")


def run_cli(*args, env):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def env(cache_dir):
    return {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(cache_dir)}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, env, media_dir):
    db = tmp_path_factory.mktemp("e2e") / "index.db"
    result = run_cli("run", "--catalog", "config/demo.toml", str(media_dir / "random.mp3"),
                     str(media_dir / "missing.mp3"), "--db", str(db), env=env)
    return db, result


def test_bad_recordings_fail_clearly_while_the_good_one_is_indexed(first_run, media_dir):
    db, result = first_run
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"FAILED {media_dir / 'random.mp3'}: {media_dir / 'random.mp3'}: not a media file" in result.stderr
    assert f"{media_dir / 'missing.mp3'}: no such file" in result.stderr
    assert "1 indexed, 0 skipped (unchanged), 2 failed" in result.stdout


def test_transcript_word_error_rate(first_run, env, sample_reference):
    db, _ = first_run
    data = json.loads(run_cli("transcript", "ej-fra", "--db", str(db), "--format", "json", env=env).stdout)
    assert data["recording"]["title"] == "Présentation d'Éric Joanis (ReadAlongs sample)"
    assert data["recording"]["duration"] == pytest.approx(34.1, abs=0.2)
    hypothesis = " ".join(s["text"] for s in data["segments"])
    assert word_error_rate(sample_reference, hypothesis) < WER_BOUND


@pytest.mark.parametrize("phrase", ["traduction automatique", "corpus bilingue", "apprentissage profond"])
def test_search_finds_the_chunk_that_holds_the_phrase(first_run, env, aligned_words, phrase):
    db, _ = first_run
    result = run_cli("search", phrase, "--db", str(db), "--json", env=env)
    hits = json.loads(result.stdout)
    assert hits, result.stderr
    top = hits[0]
    said_at = phrase_time(aligned_words, phrase)
    assert top["start"] <= said_at <= top["end"]
    assert top["moment"] == pytest.approx(said_at, abs=0.6)
    assert top["recording_id"] == "ej-fra" and top["speakers"] == ["Éric Joanis"]
    assert top["url"].endswith(f"data/sample/ej-fra.mp3#t={top['moment']:.1f}")


def test_second_run_transcribes_nothing_and_index_is_whole(first_run, env):
    db, _ = first_run
    result = run_cli("run", "--catalog", "config/demo.toml", "--db", str(db), "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert (summary["indexed"], summary["skipped"], summary["failed"]) == (0, 1, 0)
    assert "Task run 'transcribe" not in result.stderr + result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM chunks WHERE recording_id = 'ej-fra'").fetchone()[0] == 2


def test_list_shows_indexed_and_failed(first_run, env):
    db, _ = first_run
    rows = json.loads(run_cli("list", "--db", str(db), "--json", env=env).stdout)
    assert sorted(r["status"] for r in rows) == ["failed", "failed", "indexed"]
