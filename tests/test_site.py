"""`recording-index site`: the archive as a static website, relocatable, incremental, searchable in
the browser with no server (Pagefind), and readable by a web server of another user."""

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recording_index.index.database import Index
from recording_index.publish.site import build_site
from test_plain_sqlite import build_archive

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def archive(tmp_path, sample_mp3):
    db = build_archive(tmp_path / "archive.db")
    with Index(db) as ix:
        ix.db.execute("UPDATE recordings SET media_path = ?, date = '2019-03-07', duration = 34.1", [str(sample_mp3)])
        ix.db.execute("UPDATE segments SET origin = 'corrected', corrected_by = 'Anne' "
                      "WHERE recording_id = 'talk-2' AND idx = 1")
    return db


def text_files(folder: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in folder.rglob("*")
            if p.is_file() and p.suffix in (".html", ".json", ".vtt", ".srt", ".txt", ".css", ".js")}


def links(page: Path, html: str) -> list[str]:
    return [link for link in re.findall(r'(?:href|src)="([^"]+)"', html)]


def test_a_site_of_relative_links_and_no_local_path(archive, tmp_path, sample_mp3):
    out = tmp_path / "public"
    old_umask = os.umask(0o022)
    try:
        report = build_site(archive, out)
    finally:
        os.umask(old_umask)
    assert sorted(report.written) == ["talk-1", "talk-2"] and report.sentences == 20
    for name in ("index.html", "search.html", "search-en.html", "site.css", "site.js", "site.json",
                 "recordings/talk-1.html", "recordings/talk-1.fr.vtt", "recordings/talk-1.en.srt",
                 "recordings/talk-2.en.txt", "pagefind/pagefind-ui.js", "pagefind/pagefind-entry.json"):
        assert (out / name).is_file(), name
    assert '"fr"' in (out / "pagefind" / "pagefind-entry.json").read_text()
    assert '"en"' in (out / "pagefind" / "pagefind-entry.json").read_text()
    files = text_files(out)
    for path, text in files.items():  # no page says where the archive lives on this machine
        assert str(tmp_path) not in text and str(sample_mp3.parent) not in text, path
    for path, text in files.items():
        if path.suffix != ".html":
            continue
        for link in links(path, text):
            if link.startswith(("http://", "https://", "#")):
                continue
            target = (path.parent / link.split("#")[0].split("?")[0]).resolve()
            assert target.exists(), (path.name, link)
            assert not link.startswith("/"), (path.name, link)
    # Readable by a web server of another user, as the umask says (mkstemp would make them 0600).
    for path in [*files, *(out / "pagefind").rglob("*")]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o644, path
    page = (out / "recordings" / "talk-2.html").read_text()
    assert '<td lang="fr">' in page and '<td lang="en">' in page and 'class="origin"' in page
    assert '<meta name="description" content="Nadia Roy · Coordination' in page and "<title>Titre talk-2" in page
    assert '<track kind="subtitles" srclang="en" label="English" src="talk-2.en.vtt" default>' in page
    assert 'href="#t=10.0"' in page and (out / "media" / "talk-2.mp3").is_symlink()
    home = (out / "index.html").read_text()
    assert home.index("Titre talk-2") < home.index("Titre talk-1")  # newest first (indexed later, same date)


def test_a_second_build_writes_again_only_what_changed_and_removes_what_went(archive, tmp_path):
    out = tmp_path / "public"
    build_site(archive, out)
    again = build_site(archive, out)
    assert again.written == [] and sorted(again.kept) == ["talk-1", "talk-2"]
    before = (out / "recordings" / "talk-1.html").stat().st_mtime_ns
    with sqlite3.connect(archive) as conn:  # a correction, as a person makes one
        conn.execute("UPDATE segments SET text = 'Nous parlons de sécurité.' WHERE recording_id = 'talk-2' AND idx = 1")
        conn.execute("DELETE FROM recordings WHERE id = 'talk-1'")
    conn.close()
    third = build_site(archive, out)
    assert third.written == ["talk-2"] and third.removed == ["talk-1"]
    assert "sécurité" in (out / "recordings" / "talk-2.html").read_text()
    assert not list((out / "recordings").glob("talk-1.*")) and not list((out / "media").glob("talk-1.*"))
    assert before  # (the page was there before)
    assert "talk-1" not in (out / "index.html").read_text()


def test_media_copied_or_not_published_or_played_from_its_public_url(archive, tmp_path):
    copied = tmp_path / "copied"
    build_site(archive, copied, media="copy")
    assert (copied / "media" / "talk-1.mp3").is_file() and not (copied / "media" / "talk-1.mp3").is_symlink()
    none = tmp_path / "none"
    build_site(archive, none, media="url")
    assert not (none / "media").exists() and "not published here" in (none / "recordings" / "talk-1.html").read_text()
    with sqlite3.connect(archive) as conn:
        conn.execute("UPDATE recordings SET source = 'https://example.org/talks/talk-1.mp3' WHERE id = 'talk-1'")
    conn.close()
    build_site(archive, none, media="url")
    assert 'src="https://example.org/talks/talk-1.mp3"' in (none / "recordings" / "talk-1.html").read_text()


def test_the_command_line_writes_a_site_and_refuses_a_bad_base_url(archive, tmp_path):
    done = subprocess.run([sys.executable, "-m", "recording_index.cli", "site", str(tmp_path / "out"), "--db",
                           str(archive), "--base-url", "https://example.org/archive/"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "2 recording page(s) written" in done.stdout, done.stderr
    assert '<link rel="canonical" href="https://example.org/archive/recordings/talk-1.html">' in \
        (tmp_path / "out" / "recordings" / "talk-1.html").read_text()
    bad = subprocess.run([sys.executable, "-m", "recording_index.cli", "site", str(tmp_path / "out2"), "--db",
                          str(archive), "--base-url", "javascript:alert(1)"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--base-url" in bad.stderr


def test_a_run_that_changed_something_publishes_the_site_where_the_settings_say(archive, tmp_path):
    from recording_index.config import Settings
    from recording_index.outcomes import Outcome, Status, Summary
    from recording_index.pipeline import publish_site

    settings = Settings(site_dir=str(tmp_path / "public"), site_base_url="https://example.org/a/")
    skipped = [Outcome("talk-1", "", "", Status.SKIPPED)]
    assert publish_site(archive, skipped, Settings()) == "" and publish_site(archive, skipped, settings) == ""
    assert not (tmp_path / "public").exists()
    line = publish_site(archive, skipped + [Outcome("talk-2", "", "", Status.INDEXED)], settings)
    assert line.startswith(f"site {tmp_path / 'public'}: 2 recording page(s) written")
    assert (tmp_path / "public" / "index.html").is_file()
    summary = Summary(skipped, site=line)
    assert summary.line().endswith(line)  # the run's summary says where
    broken = Settings(site_dir=str(tmp_path / "public" / "index.html"))  # a file, not a folder
    assert "not published" in publish_site(archive, [Outcome("t", "", "", Status.REDONE)], broken)


def test_subtitles_and_exports_a_run_publishes_are_readable_as_the_umask_says(tmp_path):
    """Written through a temporary file (mkstemp makes it 0600), then renamed: the mode set first."""
    from recording_index.models import Recording, Segment, Transcript
    from recording_index.publish.files import publish, write_atomically

    old_umask = os.umask(0o027)
    try:
        written = publish(tmp_path / "subtitles", Recording("talk", "/talks/talk.mp3"), Transcript(
            [Segment(0, 0.0, 2.0, "Bonjour à tous.", text_en="Hello everyone.")], "faster-whisper", "base", "fr",
            translator="argos"))
        exported = write_atomically(tmp_path / "corrections.json", "[]\n")
    finally:
        os.umask(old_umask)
    assert written and all(path.stat().st_mode & 0o777 == 0o640 for path in [*written, exported])
