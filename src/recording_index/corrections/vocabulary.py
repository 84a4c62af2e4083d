"""Corrections teach the vocabulary: names and acronyms people wrote over Whisper's words become
suggestions for the catalog's `vocabulary` of their event, which Whisper is given for its next
recordings (speech/vocabulary.py). A person accepts them (`recording-index vocabulary --accept`):
the catalog file is edited in place, its comments and layout kept (tomlkit), and checked again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from recording_index.config import MAX_TERMS, load_catalog
from recording_index.errors import ConfigError
from recording_index.index.database import Index
from recording_index.models import Correction, Segment
from recording_index.safety import replacing

_EDGES = "\"'«»“”‘’()[]{}.,;:!?…"


@dataclass
class Suggestion:
    """A term people corrected, for the vocabulary of `event` (or of the recording, without one)."""

    term: str
    event: str
    recordings: list[str] = field(default_factory=list)
    corrections: list[int] = field(default_factory=list)


def is_name(token: str) -> bool:
    """A capitalised word, or an acronym (two capitals or more: CNRC, RÉSAL, ReadAlong)."""
    return bool(token) and token[0].isupper()


def is_acronym(token: str) -> bool:
    return sum(c.isupper() for c in token) >= 2


def names_in(correction: Correction, sentence_initial: bool) -> list[str]:
    """The names and acronyms of a French correction that its machine text did not have as written.
    The first word of a sentence is capitalised anyway: there it counts only as an acronym or as the
    start of a name of several words."""
    tokens = [t.strip(_EDGES) for t in correction.text.split()]
    machine = {t.strip(_EDGES) for t in correction.machine_text.split()}
    terms, current = [], []
    for position, token in enumerate(tokens + [""]):
        if token and is_name(token) and (position or not sentence_initial or is_acronym(token)
                                         or (len(tokens) > 1 and is_name(tokens[1]))):
            current.append(token)
            continue
        if current and not set(current) <= machine:
            terms.append(" ".join(current))
        current = []
    return terms


def suggestions(index: Index, event: str | None = None, recording_id: str | None = None) -> list[Suggestion]:
    """Terms of the standing French corrections of the index (of one event's recordings, or of one
    recording, if given) that are not yet the vocabulary or a speaker of the recording they correct."""
    found: dict[tuple[str, str], Suggestion] = {}
    ids = [recording_id] if recording_id else [row["id"] for row in index.list_recordings()]
    for rid in ids:
        recording = index.recording(rid)
        if event is not None and recording.event != event:
            continue
        known = {t.casefold() for t in recording.vocabulary + recording.speakers}
        _rec, segments = index.get(recording.id)
        starts = _sentence_initial(segments)
        for correction in index.corrections(recording.id):
            if correction.lang != "fr" or correction.status != "applied":
                continue
            for term in names_in(correction, starts.get(correction.id, False)):
                if term.casefold() in known:
                    continue
                scope = recording.event or recording.id
                suggestion = found.setdefault((scope, term.casefold()), Suggestion(term, recording.event))
                if recording.id not in suggestion.recordings:
                    suggestion.recordings.append(recording.id)
                suggestion.corrections.append(correction.id)
    return sorted(found.values(), key=lambda s: (s.event, -len(s.corrections), s.term.casefold()))


def _sentence_initial(segments: Sequence[Segment]) -> dict[int, bool]:
    """For each correction that wrote words, whether its first word opens its sentence."""
    out: dict[int, bool] = {}
    for segment in segments:
        for position, word in enumerate(segment.words):
            if word.correction is not None and word.correction not in out:
                out[word.correction] = position == 0
    return out


def accept(catalog: str | Path, chosen: Iterable[Suggestion]) -> list[tuple[str, str]]:
    """Add the chosen terms to the catalog's vocabulary where their event is (an `[[events]]` table of
    that title, else each `[[recordings]]` entry of that event or id), keeping the file's comments;
    the result is checked as every catalog is before it replaces the file. Returns (where, term) added."""
    import tomlkit

    path = Path(catalog)
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    added = []
    for suggestion in chosen:
        for where, table in _tables_for(document, suggestion):
            terms = table.setdefault("vocabulary", tomlkit.array())
            if suggestion.term.casefold() in {str(t).casefold() for t in terms}:
                continue
            if len(terms) >= MAX_TERMS:
                raise ConfigError(f"{path}: {where}.vocabulary holds {MAX_TERMS} terms already; "
                                  f"not adding {suggestion.term!r}")
            terms.append(suggestion.term)
            added.append((where, suggestion.term))
    if added:
        text = tomlkit.dumps(document)
        check = path.with_name(f".{path.name}.check")
        try:
            check.write_text(text, encoding="utf-8")
            load_catalog(str(check))  # the catalog as every run reads it, or nothing changes
        finally:
            check.unlink(missing_ok=True)
        with replacing(path) as partial:
            partial.write_text(text, encoding="utf-8")
    return added


def _tables_for(document, suggestion: Suggestion):
    events = document.get("events", [])
    matched = [(f"events[{n}]", e) for n, e in enumerate(events, 1) if suggestion.event and e.get("title") == suggestion.event]
    if matched:
        return matched
    return [(f"recordings[{n}]", r) for n, r in enumerate(document.get("recordings", []), 1)
            if (suggestion.event and r.get("event") == suggestion.event) or r.get("id") in suggestion.recordings]
