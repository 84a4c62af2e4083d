"""Shared by the benchmarks: test audio made from the real clips, timing, and the report."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "fr-speech"
# The latest report of each benchmark (Markdown) and the figures the documentation charts (JSON):
# docs/benchmarks.md shows them. bench/history.md is the log of the runs before this form.
RESULTS = ROOT / "bench" / "results"


def clips() -> list[tuple[Path, str]]:
    """Real French speech with reference text: the bundled sample, and the shared clip where present."""
    found = [(ROOT / "data" / "sample" / "ej-fra.mp3", (ROOT / "data" / "sample" / "ej-fra.txt").read_text())]
    pico = SHARED / "picovoice-test-fr"
    if (pico / "test_fr.wav").exists():
        found.append((pico / "test_fr.wav", (pico / "test_fr.txt").read_text()))
    return found


def long_audio(minutes: float, out: Path, silence: float = 2.0) -> tuple[Path, str, float]:
    """Join the clips, with `silence` seconds between them, over and over into a WAV of `minutes`.

    Returns the file, the reference text of one pass over the clips, and the file's duration.
    """
    from recording_index.ingest.audio import find_ffmpeg, load_audio, normalise

    import numpy as np

    parts, reference = [], []
    for path, text in clips():
        parts.append(load_audio(normalise(path, out.parent / "clips")))
        reference.append(text)
    gap = np.zeros(int(silence * 16000), dtype=np.float32)
    one_pass = np.concatenate([x for p in parts for x in (p, gap)])
    repeats = max(1, round(minutes * 60 / (len(one_pass) / 16000)))
    samples = np.tile(one_pass, repeats)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", "-", str(out)], input=pcm, check=True)
    return out, " ".join(reference), len(samples) / 16000


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        # The report itself is not a change to what was measured.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)bench/results"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


# The code measured is the code this process imported: a commit made while a long run goes on
# (search at 10,000 hours takes half an hour) is not what it timed.
MEASURED_COMMIT = commit()


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(target: str, measured: str, met: bool, note: str = "") -> str:
    """One target against its measured figure: printed as the run goes, and a line for the report."""
    line = f"{target}: {measured} → {'met' if met else 'missed'}" + (f" ({note})" if note else "")
    print(f"TARGET {line}", flush=True)
    return f"- Target {line}"


def _stamp() -> dict[str, str]:
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": MEASURED_COMMIT, "machine": machine()}


def report(title: str, settings: str, body: str) -> None:
    """Print a result and keep it as the benchmark's latest report, bench/results/<title>.md, with
    machine, date, commit and settings (the documentation's benchmarks page shows it)."""
    stamp = _stamp()
    text = (f"## {title}\n\n{stamp['date']} · commit {stamp['commit']} · {stamp['machine']}\n\n"
            f"Settings: {settings}\n\n{body}\n")
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{_slug(title)}.md").write_text(text)


def save_points(name: str, key: str, points: list[dict]) -> None:
    """Keep measured points for the documentation's charts in bench/results/<name>.json: each
    point replaces the one of the same `key` (an archive size, a length), stamped with its run."""
    import json

    path = RESULTS / f"{name}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        kept = {str(p[key]): p for p in json.loads(path.read_text())["points"]}
    except (OSError, ValueError, KeyError, TypeError):
        kept = {}
    kept.update({str(p[key]): {**p, **_stamp()} for p in points})
    ordered = sorted(kept.values(), key=lambda p: float(p[key]))
    path.write_text(json.dumps({"key": key, "points": ordered}, indent=1, ensure_ascii=False) + "\n")


def _slug(title: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def peak_mib() -> float:
    """This process's own peak resident memory. Not getrusage's ru_maxrss, which after fork and exec
    still counts the parent's peak (the benchmark's parent holds hours of audio while making files)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
