"""People's edits, end to end: read what they changed, store it as corrections, rebuild the recording.

Used by the command line (`correct`, `corrections --revert`) and the web page (`serve --allow-edits`).
Each takes the index's run lock, so an edit never interleaves with a run (or another edit), and
rebuilds the one recording it touched: corrections, chunks, full-text rows and subtitle files.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from recording_index import pipeline
from recording_index.config import Settings
from recording_index.corrections.align import corrections_from_cues, corrections_from_text, shown_digest
from recording_index.errors import RecordingIndexError
from recording_index.index.database import Index
from recording_index.locks import exclusive_run
from recording_index.models import Correction
from recording_index.outcomes import Outcome
from recording_index.publish.files import parse
from recording_index.utils import hms

# The run lock (locks.py) is taken once per process: two edits from the page's threads would both hold
# it, and the later rebuild could miss the earlier edit. They take turns.
_ONE_EDIT_AT_A_TIME = threading.Lock()
MAX_FILE_BYTES = 20 * 1024**2  # subtitles of a ten-hour recording are a few MB
MAX_TEXT = 5000  # one sentence, edited in the page
MAX_NAME = 200


@dataclass
class Edited:
    """What an edit stored and what rebuilding the recording found."""

    recording_id: str
    corrections: list[Correction] = field(default_factory=list)  # as stored, with their ids
    replaced: list[int] = field(default_factory=list)
    outcome: Outcome | None = None  # the rebuild (None when nothing changed)
    unfit: list[Correction] = field(default_factory=list)  # after the rebuild


def language_of(path: str | Path, lang: str | None) -> str:
    """`lang` as given, else the file name's (`talk.fr.srt`, `talk.en.vtt`), else French."""
    if lang:
        return lang
    parts = Path(path).name.lower().split(".")
    if "fr-en" in parts:
        raise RecordingIndexError(f"{path}: a bilingual file (French over English); import the .fr or the .en file")
    return "en" if "en" in parts[1:-1] else "fr"


def read_subtitles(path: str | Path, name: str | None = None):
    path = Path(path)
    try:
        if not path.is_file():
            raise RecordingIndexError(f"{path}: not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RecordingIndexError(f"{path}: larger than {MAX_FILE_BYTES // 1024**2} MB: not a subtitle file")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordingIndexError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise RecordingIndexError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse(text, name or str(path))


def check_person(by: str | None) -> str:
    by = (by or "").strip()
    if len(by) > MAX_NAME or not by.isprintable():
        raise RecordingIndexError(f"--by {by[:40]!r}…: a name of at most {MAX_NAME} printable characters")
    return by


def correct_from_file(db: str | Path, recording: str, path: str | Path, settings: Settings, lang: str | None = None,
                      by: str | None = None, dry_run: bool = False) -> Edited:
    """Import an edited SRT or WebVTT file of `recording` (id or source) as corrections, then rebuild it."""
    lang = language_of(path, lang)
    by = check_person(by)
    cues = read_subtitles(path)
    with _ONE_EDIT_AT_A_TIME, exclusive_run(db):
        with Index(db, create=False) as index:
            recording_id = index.resolve_id(recording)
            _rec, segments = index.get(recording_id)
        check_cues(cues, _rec.duration, path)
        found, replaced = corrections_from_cues(segments, cues, lang, recording_id, str(path))
        return _store_and_rebuild(db, recording_id, found, replaced, settings, by, Path(path).name, dry_run)


# A cue may end a little after the audio (a last subtitle is often held on screen).
CUE_OVERHANG_SECONDS = 5.0


def check_cues(cues, duration: float, path: str | Path) -> None:
    """Refuse, in one line naming the cue, a cue that ends before it starts (its words would be
    taken twice) or that lies beyond the recording (its words would be stored at its end)."""
    for cue in cues:
        when = f"{Path(path).name}: cue {cue.index} ({hms(cue.start)} → {hms(cue.end)})"
        if cue.end < cue.start:
            raise RecordingIndexError(f"{when} ends before it starts; fix its times and import it again")
        if duration and cue.end > duration + CUE_OVERHANG_SECONDS:
            raise RecordingIndexError(f"{when} ends after the recording ({hms(duration)}): is this file of another "
                                      "recording?")


class ChangedMeanwhile(RecordingIndexError):
    """The sentence a page edited is no longer the one it showed (another edit, or a run, since)."""


def correct_sentence(db: str | Path, recording: str, position: int, text: str, lang: str, settings: Settings,
                     by: str | None = None, shown: str | None = None) -> Edited:
    """Rewrite one sentence (its position in the transcript) in `lang`, as the web page does;
    `shown`: the `shown_digest` of the text the page showed, checked against the index's."""
    if lang not in ("fr", "en"):
        raise RecordingIndexError(f"unknown language {lang!r}: fr or en")
    # Controls, and the invisible characters that reorder or hide text (bidi overrides, zero-width
    # spaces), are no part of a sentence: taken out first, then a sentence left empty is refused.
    text = re.sub(r"\s+", " ", "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))).strip()
    if len(text) > MAX_TEXT or not text:
        raise RecordingIndexError(f"a sentence of 1 to {MAX_TEXT} characters, please")
    by = check_person(by)
    with _ONE_EDIT_AT_A_TIME, exclusive_run(db):
        with Index(db, create=False) as index:
            recording_id = index.resolve_id(recording)
            _rec, segments = index.get(recording_id)
        if shown is not None and (not 0 <= position < len(segments) or shown_digest(
                segments[position].text if lang == "fr" else segments[position].text_en) != shown):
            raise ChangedMeanwhile(f"{recording_id}: sentence {position} changed since the page was loaded; "
                                   "reload it and edit again")
        found, replaced = corrections_from_text(segments, position, text, lang, recording_id)
        return _store_and_rebuild(db, recording_id, found, replaced, settings, by, "web", False)


def revert(db: str | Path, recording: str, ids: list[int], settings: Settings) -> Edited:
    """Revert corrections of `recording`: the machine's text comes back (the corrections are kept, marked)."""
    with _ONE_EDIT_AT_A_TIME, exclusive_run(db):
        with Index(db, create=False) as index:
            recording_id = index.resolve_id(recording)
            known = {c.id: c for c in index.corrections(recording_id)}
            missing = [i for i in ids if i not in known]
            if missing:
                raise RecordingIndexError(f"{recording_id}: no correction #{missing[0]} "
                                          f"(see recording-index corrections {recording_id})")
            done = index.revert_corrections(recording_id, ids)
        edited = Edited(recording_id, [known[i] for i in done])
        if done:
            _rebuild(db, edited, settings)
        return edited


def _store_and_rebuild(db, recording_id, found, replaced, settings, by, origin, dry_run) -> Edited:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    found = [replace(c, by=by, at=at, origin=origin) for c in found]
    edited = Edited(recording_id, found, replaced)
    if not found or dry_run:
        return edited
    with Index(db) as index:
        ids = index.add_corrections(found, replaced)
    edited.corrections = [replace(c, id=i) for c, i in zip(found, ids)]
    _rebuild(db, edited, settings)
    return edited


def _rebuild(db, edited: Edited, settings: Settings) -> None:
    edited.outcome = pipeline.rebuild(edited.recording_id, settings, db)
    if edited.outcome.error:
        raise RecordingIndexError(f"{edited.recording_id}: corrections stored, but rebuilding failed: "
                                  f"{edited.outcome.error}")
    with Index(db, readonly=True) as index:
        edited.unfit = [c for c in index.corrections(edited.recording_id) if c.status == "unfit"]
        stored = {c.id: c for c in index.corrections(edited.recording_id)}
    edited.corrections = [stored.get(c.id, c) for c in edited.corrections]
