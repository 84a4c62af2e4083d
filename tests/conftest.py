"""Shared fixtures: real ffmpeg, the real embedded Whisper model, real SQLite, Prefect's ephemeral API."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
SHARED_SPEECH = ROOT.parent / "shared" / "data" / "fr-speech"

# Prefect state of the tests lives in a throw-away home, never in the user's ~/.prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="ri-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
# Argos packages of the tests live in a throw-away folder too (argostranslate reads this at import).
os.environ["ARGOS_PACKAGES_DIR"] = tempfile.mkdtemp(prefix="ri-argos-")
# Model hubs are out of reach in CI: fail fast instead of waiting for a time-out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (RECORDING_INDEX_NO_SKIPS=1, set by .ci/run) a skipped test is a failed one: CI installs
    Chromium, espeak-ng and every extra, so a skip there means a test that did not run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("RECORDING_INDEX_NO_SKIPS") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, report.longrepr = "failed", f"skipped in CI, where everything must run: {reason}"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One model/audio cache for the whole session: the embedded model is joined once."""
    return tmp_path_factory.mktemp("cache")


def fresh_cache(cache_dir: Path, folder: Path) -> Path:
    """A cache with no stored stage results or audio yet, sharing the session's joined model: for
    tests of runs that must really transcribe, not reuse what an earlier test stored."""
    folder.mkdir(parents=True, exist_ok=True)
    (cache_dir / "models").mkdir(exist_ok=True)
    (folder / "models").symlink_to(cache_dir / "models", target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def settings(cache_dir):
    from recording_index.config import Settings

    return Settings(cache_dir=str(cache_dir), progress=False)


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    from recording_index.ingest.audio import find_ffmpeg

    return find_ffmpeg()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory, ffmpeg_exe) -> Path:
    """Small media files in common containers, made by the real ffmpeg: 3 s of a 440 Hz tone."""
    out = tmp_path_factory.mktemp("media")
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=3:sample_rate=44100"]
    picture = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=3"]
    recipes = {
        "tone.mp3": tone + ["-c:a", "libmp3lame"],
        "tone.m4a": tone + ["-c:a", "aac"],
        "tone.aac": tone + ["-c:a", "aac", "-f", "adts"],
        "tone.ogg": tone + ["-c:a", "libopus"],
        "tone.opus": tone + ["-c:a", "libopus"],
        "tone.wav": tone + ["-c:a", "pcm_s16le"],
        "tone.flac": tone + ["-c:a", "flac"],
        "tone.mp4": picture + tone + ["-c:v", "libx264", "-c:a", "aac", "-shortest"],
        "tone.webm": picture + tone + ["-c:v", "libvpx", "-c:a", "libopus", "-shortest"],
        "tone.mkv": picture + tone + ["-c:v", "libx264", "-c:a", "flac", "-shortest"],
        "video-only.mp4": picture + ["-c:v", "libx264"],
    }
    for name, args in recipes.items():
        subprocess.run([ffmpeg_exe, "-nostdin", "-loglevel", "error", "-y", *args, str(out / name)], check=True)
    (out / "empty.mp3").write_bytes(b"")
    # Seeded: ffmpeg reads about 1 random file in 200 as some format (see audio.unusable).
    (out / "random.mp3").write_bytes(random.Random(20000).randbytes(20000))
    (out / "text.wav").write_text("this is not a wave file\n" * 50)
    # Lyrics that ffmpeg reads as subtitles: a "media" file that holds neither audio nor video.
    (out / "lyrics.mp3").write_text("[00:01.00]Bonjour à tous\n[00:04.50]et bienvenue\n")
    full = (out / "tone.mp3").read_bytes()
    (out / "truncated.mp3").write_bytes(full[:300])
    return out


@pytest.fixture(scope="session")
def tiny_argos_file(tmp_path_factory) -> Path:
    """A tiny, real fr→en .argosmodel built here (see tiny_argos.py); not installed."""
    from tiny_argos import build_tiny_argos_package

    return build_tiny_argos_package(tmp_path_factory.mktemp("tiny-argos"))


@pytest.fixture(scope="session")
def sample_mp3() -> Path:
    return SAMPLE / "ej-fra.mp3"


@pytest.fixture(scope="session")
def sample_reference() -> str:
    return (SAMPLE / "ej-fra.txt").read_text(encoding="utf-8")


def readalong_words(path: Path = SAMPLE / "ej-fra.aligned.readalong") -> list[tuple[str, float]]:
    """(word, start time) pairs of the forced alignment that comes with the sample."""
    import unicodedata
    import xml.etree.ElementTree as ET

    # The file spells accents as combining marks (NFD); Whisper and people type NFC.
    return [(unicodedata.normalize("NFC", w.text or ""), float(w.get("time"))) for w in ET.parse(path).iter("w")]


@pytest.fixture(scope="session")
def aligned_words() -> list[tuple[str, float]]:
    return readalong_words()


@pytest.fixture(scope="session")
def two_talks(tmp_path_factory, sample_mp3, ffmpeg_exe):
    """Two different recordings: the sample, and the sample slowed a little (other audio, other hash)."""
    folder = tmp_path_factory.mktemp("talks")
    shutil.copy(sample_mp3, folder / "one.mp3")
    subprocess.run([ffmpeg_exe, "-nostdin", "-loglevel", "error", "-y", "-i", str(sample_mp3), "-af", "atempo=0.9",
                    str(folder / "two.mp3")], check=True)
    return [str(folder / "one.mp3"), str(folder / "two.mp3")]
