"""The archive as a static website any web host serves: `recording-index site OUT`.

A home page of events and recordings, a page per event, and a page per recording with its player,
French and English caption tracks, the bilingual transcript by sentence (each time a `#t=` link),
what people corrected, and its subtitles and text to download. Search runs in the browser with no
server: Pagefind's index of every sentence, one record a sentence and language, whose link opens
the recording at that sentence. Every link is relative and no page holds a local path, so the
folder works from any host, from a sub-folder, and from `python -m http.server`.

Incremental: `site.json` keeps a digest of what each recording's page was made from; a second
build writes again only the recordings whose digest changed (a new run, a correction), the home,
event and search pages, and the search index, and deletes the pages of recordings no longer indexed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from jinja2 import Environment, FileSystemLoader, select_autoescape

from recording_index.errors import RecordingIndexError
from recording_index.index.database import Index
from recording_index.index.search import fold
from recording_index.models import Recording, Segment
from recording_index.links import VIDEO_SUFFIXES
from recording_index.publish.files import plain_text, render, write_atomically
from recording_index.publish.subtitles import cues_for
from recording_index.safety import is_web_url, replacing, umask, why_bad_id
from recording_index.utils import hms

# Bumped when the pages' templates or layout change: every page is written again.
SITE_VERSION = "1"
MEDIA_MODES = ("link", "copy", "url")
MANIFEST = "site.json"
ASSETS = ("site.css", "site.js")
HERE = Path(__file__).parent


@dataclass
class SiteReport:
    """What a build did: the recordings whose pages were written, kept as they were, and removed."""

    out: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    sentences: int = 0  # records in the search index, both languages

    def line(self) -> str:
        return (f"site {self.out}: {len(self.written)} recording page(s) written, {len(self.kept)} unchanged, "
                f"{len(self.removed)} removed; {self.sentences} sentences searchable")


def build_site(db: str | Path, out: str | Path, base_url: str = "", media: str = "link") -> SiteReport:
    """Write (or bring up to date) the static site of the index at `db` in the folder `out`.

    `media`: how a recording whose media is a local file is published: `link` (a symbolic link
    beside the pages), `copy`, or `url` (not at all: only media the catalog names by a public URL
    is played). `base_url`: the address the site is served from, for the pages' canonical links."""
    if media not in MEDIA_MODES:
        raise RecordingIndexError(f"--media {media!r}: one of {', '.join(MEDIA_MODES)}")
    if base_url and not is_web_url(base_url):
        raise RecordingIndexError(f"--base-url {base_url!r}: an http(s) address, such as https://example.org/archive/")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RecordingIndexError(f"{out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    report = SiteReport(out)
    pages = _environment()
    before = _manifest(out)
    after: dict[str, str] = {}
    recordings: list[tuple[Recording, list[Segment], dict]] = []
    with Index(db, readonly=True) as index:
        # An id another program wrote that is no file name (a "/", a "..") has no page.
        rows = [row for row in index.list_recordings() if row["status"] == "indexed" and not why_bad_id(row["id"])]
        for row in rows:
            recording, segments = index.get(row["id"])
            recordings.append((recording, segments, row))
    base = base_url.rstrip("/") + "/" if base_url else ""
    for recording, segments, row in recordings:
        digest = _digest(recording, segments, row, media, base)
        after[recording.id] = digest
        if before.get(recording.id) == digest and (out / "recordings" / f"{recording.id}.html").is_file():
            report.kept.append(recording.id)
            continue
        _write_recording(out, pages, recording, segments, media, base)
        report.written.append(recording.id)
    for gone in sorted(set(before) - set(after)):
        _remove_recording(out, gone)
        report.removed.append(gone)
    listed = [_listing(recording, segments, row) for recording, segments, row in recordings]
    _write_lists(out, pages, listed, base)
    for asset in ASSETS:
        write_atomically(out / asset, (HERE / "static" / asset).read_text(encoding="utf-8"))
    report.sentences = _search_index(out, recordings)
    write_atomically(out / MANIFEST,
                     json.dumps({"version": SITE_VERSION, "recordings": after}, indent=1, sort_keys=True) + "\n")
    return report


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates" / "site"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["hms"] = hms
    return env


def _manifest(out: Path) -> dict[str, str]:
    """The digests of the last build, when it was of this version (else every page is written again)."""
    try:
        kept = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("version") != SITE_VERSION or not isinstance(kept.get("recordings"), dict):
        return {}
    return {k: v for k, v in kept["recordings"].items() if isinstance(k, str) and isinstance(v, str)}


def _digest(recording: Recording, segments: list[Segment], row: dict, media: str, base: str) -> str:
    """What a recording's page is made of: its row, its sentences (and who corrected them), the
    media file's state, and how media is published."""
    state = ""
    if recording.media_path and Path(recording.media_path).is_file():
        stat = Path(recording.media_path).stat()
        state = f"{stat.st_size}:{stat.st_mtime_ns}"
    parts = [SITE_VERSION, media, base, state, json.dumps(row, sort_keys=True, default=str),
             json.dumps([[s.start, s.end, s.text, s.text_en, s.origin, s.origin_en, s.corrected_by, s.corrected_at,
                          [[w.start, w.end, w.text] for w in s.words]] for s in segments], default=str)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _media(out: Path, recording: Recording, mode: str) -> str:
    """The player's source, relative to the recording's page, or "" when there is none to publish."""
    if is_web_url(recording.source) and "REDACTED" not in recording.source:
        return recording.source  # the catalog's public address
    source = Path(recording.media_path) if recording.media_path else None
    if mode == "url" or source is None or not source.is_file():
        return ""
    target = out / "media" / f"{recording.id}{source.suffix.lower()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in _files_of(out / "media", recording.id):
        if old.name == target.name and old.is_symlink() == (mode == "link"):
            continue
        old.unlink()
    if mode == "link":
        if not target.is_symlink() or os.readlink(target) != str(source.resolve()):
            target.unlink(missing_ok=True)
            target.symlink_to(source.resolve())
    elif not target.is_file() or target.stat().st_size != source.stat().st_size:
        with replacing(target) as partial:
            shutil.copyfile(source, partial)
    return f"../media/{target.name}"


def _write_recording(out: Path, pages: Environment, recording: Recording, segments: list[Segment], media: str,
                     base: str) -> None:
    folder = out / "recordings"
    english = any(s.text_en for s in segments)
    downloads = []
    for lang in ("fr", "en") if english else ("fr",):
        cues = cues_for(segments, lang)[0]
        for fmt in ("vtt", "srt"):
            write_atomically(folder / f"{recording.id}.{lang}.{fmt}", render(cues, fmt, lang))
        write_atomically(folder / f"{recording.id}.{lang}.txt", plain_text(segments, lang))
        downloads.append((lang, [(fmt, f"{recording.id}.{lang}.{fmt}") for fmt in ("srt", "vtt", "txt")]))
    source = _media(out, recording, media)
    suffix = Path(recording.media_path or recording.source.split("?")[0]).suffix.lower()
    first = next((s.text for s in segments if s.text), "")
    description = " · ".join(filter(None, [", ".join(recording.speakers), recording.event, recording.date,
                                           hms(recording.duration)])) + (f". « {first[:150]} »" if first else "")
    write_atomically(folder / f"{recording.id}.html", pages.get_template("recording.html").render(
        rec=recording, segments=segments, english=english, media=source, is_video=suffix in VIDEO_SUFFIXES,
        downloads=downloads, description=description, corrected=sum(s.origin != "machine" for s in segments),
        canonical=f"{base}recordings/{recording.id}.html" if base else "", root="../", slug=_slug))


def _files_of(folder: Path, recording_id: str) -> list[Path]:
    """The files of one recording in a folder of the site: its page, subtitles and texts
    (`ID.html`, `ID.fr.srt`…) or its media (`ID.mp3`), not those of `ID.2`."""
    own = re.compile(re.escape(recording_id) + r"(\.(fr|en))?\.[a-z0-9]+")
    return [path for path in folder.glob("*") if own.fullmatch(path.name)] if folder.is_dir() else []


def _remove_recording(out: Path, recording_id: str) -> None:
    for folder in ("recordings", "media"):
        for path in _files_of(out / folder, recording_id):
            path.unlink()


def _slug(text: str) -> str:
    """A file name for an event's title: its letters and digits, and a short digest (two titles
    that fold alike stay apart)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "event"
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def _listing(recording: Recording, segments: list[Segment], row: dict) -> dict[str, Any]:
    return {"id": recording.id, "title": recording.title or recording.id, "speakers": recording.speakers,
            "event": recording.event or "", "date": recording.date or "", "duration": recording.duration,
            "corrected": sum(s.origin != "machine" for s in segments), "indexed_at": row.get("indexed_at") or ""}


def _write_lists(out: Path, pages: Environment, listed: list[dict], base: str) -> None:
    """The home page (events, then every recording, newest first), a page per event, the search pages."""
    newest = sorted(listed, key=lambda r: (r["date"], r["indexed_at"], r["title"]), reverse=True)
    events: dict[str, list[dict]] = {}
    for item in newest:
        if item["event"]:
            events.setdefault(item["event"], []).append(item)
    summary = [{"title": title, "slug": _slug(title), "count": len(items), "date": max(i["date"] for i in items)}
               for title, items in sorted(events.items(), key=lambda e: max(i["date"] for i in e[1]), reverse=True)]
    write_atomically(out / "index.html", pages.get_template("home.html").render(
        recordings=newest, events=summary, root="", canonical=base, slug=_slug))
    wanted = set()
    for event in summary:
        name = f"{event['slug']}.html"
        wanted.add(name)
        write_atomically(out / "events" / name, pages.get_template("event.html").render(
            event=event, recordings=events[event["title"]], root="../", canonical=f"{base}events/{name}" if base else ""))
    for page in (out / "events").glob("*.html") if (out / "events").is_dir() else ():
        if page.name not in wanted:
            page.unlink()
    for lang in ("fr", "en"):
        write_atomically(out / ("search.html" if lang == "fr" else "search-en.html"),
               pages.get_template("search.html").render(lang=lang, root="", canonical=""))


def _records(recordings: Iterable[tuple[Recording, list[Segment], dict]]) -> Iterable[dict[str, Any]]:
    """One search record a sentence and language, whose link opens the recording at it. French
    records carry the sentence's words without accents too, so that a search typed without them
    finds it, as the command line's does."""
    for recording, segments, _ in recordings:
        page = f"recordings/{recording.id}.html"
        for segment in segments:
            meta = {"title": recording.title or recording.id, "time": hms(segment.start),
                    "event": recording.event or ""}
            at = f"{segment.start:.1f}"
            if segment.text:
                folded = " ".join(w for w in fold(segment.text).split() if w not in segment.text.casefold().split())
                yield {"url": f"{page}#t={at}", "content": segment.text + (f" ({folded})" if folded else ""),
                       "language": "fr", "meta": meta}
            if segment.text_en:
                yield {"url": f"{page}#t={at}&lang=en", "content": segment.text_en, "language": "en", "meta": meta}


def _search_index(out: Path, recordings: list[tuple[Recording, list[Segment], dict]]) -> int:
    """Pagefind's index of every sentence, made anew beside the pages (written aside, then swapped in)."""
    from pagefind.index import IndexConfig, PagefindIndex

    records = list(_records(recordings))
    fresh, final = out / ".pagefind-new", out / "pagefind"
    shutil.rmtree(fresh, ignore_errors=True)

    async def write() -> None:
        async with PagefindIndex(IndexConfig(output_path=str(fresh))) as index:
            for record in records:
                await index.add_custom_record(**record)
            await index.write_files()

    try:
        asyncio.run(write())
    except Exception as exc:  # Pagefind's own errors, as one line
        shutil.rmtree(fresh, ignore_errors=True)
        raise RecordingIndexError(f"{out}: the search index could not be made ({type(exc).__name__}: {exc})") from None
    old = out / ".pagefind-old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    fresh.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    for path in final.rglob("*"):  # readable as the umask says, as the pages are
        if path.is_file():
            os.chmod(path, 0o666 & ~umask())
    return len(records)
