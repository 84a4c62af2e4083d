"""The README's examples run as written."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(re.escape(f"<!-- {marker} -->") + r"\n```python\n(.*?)\n```", text, re.S)
    assert found, f"no example marked {marker!r} in README.md"
    return found.group(1)


@pytest.mark.slow
def test_the_library_example_indexes_a_talk_and_finds_it(sample_mp3, cache_dir, tmp_path):
    shutil.copy(sample_mp3, tmp_path / "talk.mp3")
    env = {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(cache_dir), "RECORDING_INDEX_PROGRESS": "false",
           "RECORDING_INDEX_TRANSLATOR": "none"}
    ran = subprocess.run([sys.executable, "-c", readme_block("library example")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    first, *hits = ran.stdout.splitlines()
    assert first.startswith("indexed transcribe → segment → translate → correct → chunk → subtitles")
    assert hits and hits[0].startswith("talk ") and "talk.mp3#t=" in hits[0]
    assert 5 <= int(hits[0].split()[1]) <= 15  # "traduction automatique" is said about 9 s in
    assert len(list((tmp_path / "subtitles").glob("talk*.fr.srt"))) == 1
    again = subprocess.run([sys.executable, "-c", readme_block("library example")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.stdout.splitlines()[0].startswith("skipped")


def test_the_module_table_names_every_module_of_the_package():
    """The README's map of the package (its "How it works" table) leaves no module out."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| module | concern |"):]
    table = table[:table.index("\n\n")]
    package = ROOT / "src" / "recording_index"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(package)
        named = f"`{relative}`" in table or (len(relative.parts) == 2 and f"`{relative.parts[0]}/`" in table
                                             and f"`{path.stem}`" in table)
        if not named:
            missing.append(str(relative))
    assert missing == []
