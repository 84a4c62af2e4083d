"""The code itself: no name used that is not defined (a NameError waits for the one path that runs it)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_undefined_names_in_the_library_flows_tests_or_benchmarks():
    result = subprocess.run([sys.executable, "-m", "pyflakes", "src", "flows", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    problems = [line for line in result.stdout.splitlines() if "undefined name" in line or "syntax" in line.lower()]
    assert problems == [], "\n".join(problems)
