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


def test_the_faster_whisper_methods_we_extend_have_the_signatures_we_rely_on():
    """speech/transcribe.py extends BatchedInferencePipeline (pinned to faster-whisper 1.2, and
    ctranslate2 4, in pyproject.toml); a release that changes these fails here before it changes a transcript."""
    import inspect
    from importlib.metadata import version

    from faster_whisper import BatchedInferencePipeline

    assert version("faster-whisper").startswith("1.2.") and version("ctranslate2").startswith("4.")
    assert list(inspect.signature(BatchedInferencePipeline.forward).parameters) == [
        "self", "features", "tokenizer", "chunks_metadata", "options"]
    assert list(inspect.signature(BatchedInferencePipeline.generate_segment_batched).parameters) == [
        "self", "features", "tokenizer", "options"]
    # The French segments' `seek` is the chunk's offset in frames: how English is matched to them.
    assert "chunk_metadata[\"offset\"] * self.model.frames_per_second" in inspect.getsource(
        BatchedInferencePipeline.forward).replace("'", '"')
