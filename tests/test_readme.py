"""The examples of the README and of the documentation run as written; the documentation's map of
the package names every module, and its command-line reference every command."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def readme_block(marker: str, page: str = "docs/architecture.md") -> str:
    text = (ROOT / page).read_text()
    found = re.search(re.escape(f"<!-- {marker} -->") + r"\n```python\n(.*?)\n```", text, re.S)
    assert found, f"no example marked {marker!r} in {page}"
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


def output_shape(line: str) -> str:
    """A line of `make demo`'s output with what may change from machine to machine, or from one
    Whisper to the next, made neutral: the sentences' words, the times, the paths."""
    line = line.replace(f"{sys.prefix}/bin/", ".venv/bin/")
    line = re.sub(r"^(\s+\d+:\d\d:\d\d\s+\[(?:fr|en)\] ).*", r"\1…", line)  # a hit
    line = re.sub(r"^(\s+(?:fr|en): ).*", r"\1…", line)  # the hit in its other language
    line = re.sub(r"file:///\S+#t=[\d.]+$", "file:///…#t=…", line)
    line = re.sub(r"--db \S+", "--db DB", line)
    line = re.sub(r"\[\d\d:\d\d<\d\d:\d\d\]$", "[MM:SS<MM:SS]", line)  # a progress bar's times
    line = re.sub(r"\d+:\d\d:\d\d", "H:MM:SS", line)
    return re.sub(r"\d+\.\d+ (s|h)\b", r"N \1", line)


@pytest.mark.slow
def test_make_demo_prints_what_the_readme_shows(cache_dir, tmp_path):
    """The demo block of the README (and of the getting-started page) is `make demo`'s output on a fresh machine (no stored results, no
    Argos package), line for line, in shape: the same lines, commands, counts and stages; Whisper's
    words and the timings may differ."""
    from conftest import fresh_cache

    blocks = [re.search(r"`make demo`\s+prints[^\n]*\n\n```\n(.*?)\n```", (ROOT / page).read_text(), re.S)
              for page in ("README.md", "docs/getting-started.md")]
    assert all(blocks), "no demo block in the README or the getting-started page"
    argos = tmp_path / "argos"
    argos.mkdir()
    env = {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(fresh_cache(cache_dir, tmp_path / "cache")),
           "ARGOS_PACKAGES_DIR": str(argos), "PYTHONUNBUFFERED": "1"}
    # -o: the package is installed already (this test runs in it); make must not install it again.
    ran = subprocess.run(["make", "--no-print-directory", "-o", f"{sys.prefix}/.installed-demo", f"VENV={sys.prefix}",
                          f"DEMO_DB={tmp_path / 'demo' / 'index.db'}", "demo"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    output = ran.stdout.decode()
    assert ran.returncode == 0, output
    # As a terminal shows it: of a progress bar redrawn after "\r", its last state.
    printed = [output_shape(line.split("\r")[-1]) for line in output.rstrip("\n").split("\n")]
    for block in blocks:
        assert printed == [output_shape(line) for line in block.group(1).splitlines()]


def test_the_module_table_names_every_module_of_the_package():
    """The documentation's map of the package (architecture.md's table) leaves no module out."""
    text = (ROOT / "docs" / "architecture.md").read_text()
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


README_MAX_LINES = 200


def test_the_readme_is_short_and_its_links_lead_somewhere():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def commands_in(text: str) -> list[list[str]]:
    """Each `recording-index …` command of a page's shell blocks, as words (comments and `…` dropped)."""
    import shlex

    found = []
    for block in re.findall(r"```sh\n(.*?)\n```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("recording-index "):
                words = [w for w in shlex.split(line.replace("[", "").replace("]", "").replace(" | ", " "))[1:]
                         if "…" not in w]
                found.append(words)
    return found


def test_every_command_in_the_documentation_is_one_the_program_takes():
    """The docs' shell examples parse as the program parses them: the command exists and takes each
    option given (running them all would transcribe for an hour)."""
    import click

    from recording_index.cli import main

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        for words in commands_in(page.read_text()):
            command = main
            while isinstance(command, click.Group) and words and words[0] in command.commands:
                command = command.commands[words.pop(0)]
            assert not isinstance(command, click.Group), (page.name, words)
            options = {name for param in command.params for name in getattr(param, "opts", [])} | {"--config", "-h", "--help"}
            for word in words:
                if word.startswith("-") and not word.lstrip("-").isdigit():
                    assert word.split("=")[0] in options, (page.name, command.name, word)
            checked += 1
    assert checked >= 30


def test_the_documentation_builds_strictly_and_its_reference_names_every_command(tmp_path):
    """`make docs`: MkDocs with --strict (a broken link or any warning fails), the command-line
    reference made from the click commands."""
    from recording_index.cli import main

    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    reference = (tmp_path / "site" / "cli" / "index.html").read_text()
    for name in main.commands:
        assert f"recording-index {name}" in reference, name
    configuration = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "RECORDING_INDEX_SITE_BASE_URL" in configuration and "5 to 600" in configuration
    assert "<svg" in (tmp_path / "site" / "benchmarks" / "index.html").read_text()
