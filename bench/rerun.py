"""The fixed cost of a run: an unchanged re-run of one indexed recording, beside a cold search,
measured in the same script on the same machine (each a new process, as a person runs them)."""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, report, table, verdict

CLI = [sys.executable, "-m", "recording_index.cli"]
TARGET_RATIO = 4.0  # issue 17: an unchanged re-run within 4× a cold search


def timed(args: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([*CLI, *args], cwd=ROOT, check=False, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "index.db")
        first = subprocess.run([*CLI, "run", "--catalog", "config/demo.toml", "--db", db], cwd=ROOT,
                               capture_output=True, text=True)
        if first.returncode != 0:
            raise SystemExit(first.stderr[-2000:])
        search = timed(["search", "traduction automatique", "--db", db])
        rerun = timed(["run", "--catalog", "config/demo.toml", "--db", db])
        dry = timed(["run", "--catalog", "config/demo.toml", "--db", db, "--dry-run"])
    ratio = rerun / search
    body = table(["command (new process each time, median of 5)", "wall time"],
                 [["cold `search`", f"{search:.2f} s"], ["unchanged `run` of the sample", f"{rerun:.2f} s"],
                  ["`run --dry-run`", f"{dry:.2f} s"]])
    body += f"\n\nUnchanged re-run / cold search: **{ratio:.1f}×**.\n\n" + verdict(
        f"an unchanged re-run within {TARGET_RATIO:g}× a cold search", f"{ratio:.1f}×", ratio <= TARGET_RATIO)
    report("Fixed cost of a run", "the demo catalog (one recording), index already current", body)


if __name__ == "__main__":
    main()
