"""The correction layer over the machine's transcript: the `correct` stage (stages.py).

Every run that redoes this stage starts from the machine's output, never from an earlier run's
corrected text: words a correction wrote are first given back the machine's words it replaced (kept
with the correction), then every standing correction is applied again, in time order. So a run that
re-transcribes (a new model, other settings) keeps each correction whose stretch of the timeline
still holds words at about the same times, and reports, with the reason, each one that no longer
fits; a reverted correction gives the machine's words back.

A sentence with corrected French gets new English: Argos translates it again; Whisper's English,
which came from the audio, is kept and marked "stale". A person's English replaces either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from difflib import SequenceMatcher
from typing import Sequence

from recording_index.models import Correction, Recording, Segment, Transcript, Word
from recording_index.timing import spread_words

# A new transcript's words may start or end this much earlier or later than the ones a person
# corrected and still be "the same stretch" (word times move by a tenth or two between decodings).
FIT_SECONDS = 0.6
# Words a little off in time (more than EXACT_SECONDS) are the same stretch only if they read alike:
# "an-saur" for "hansard" is the same word heard otherwise; "je" is another word that moved there.
EXACT_SECONDS = 0.15
MIN_LIKENESS = 0.34
# An English correction belongs to the sentence that shares this much of its time, both ways.
SENTENCE_OVERLAP = 0.5
STANDING = ("new", "applied", "unfit")  # statuses of a correction that is still the person's wish


def digest(corrections: Sequence[Correction]) -> str:
    """What the corrections of a recording ask for (not what applying them found): part of the
    `correct` stage's key, so a new, changed or reverted correction redoes that stage alone."""
    wished = [(c.id, c.lang, round(c.start, 3), round(c.end, 3), c.text, c.by, c.at, c.status in STANDING)
              for c in sorted(corrections, key=lambda c: c.id)]
    return hashlib.sha256(json.dumps(wished).encode()).hexdigest()[:16] if wished else ""


def correct_transcript(transcript: Transcript, corrections: Sequence[Correction], translator: str = "none",
                       retranslate=None) -> Transcript:
    """The transcript with the standing corrections applied over its machine output, and the
    corrections with what applying them found (status, note, the machine's words and text).

    `retranslate(segments)` fills the English of the given segments again (Argos) when `translator`
    is "argos"; a new transcript is returned, the one given is left as it was. Sentences keep their
    place and time: one whose words a person deleted stays, empty (its machine text beside it)."""
    by_id = {c.id: dataclasses.replace(c, machine_words=list(c.machine_words)) for c in corrections}
    segments = machine_segments(transcript.segments, by_id)
    machine_text = [s.text for s in segments]
    standing = sorted((c for c in by_id.values() if c.status in STANDING), key=lambda c: (c.start, c.end, c.id))
    touched: dict[int, list[Correction]] = {}  # sentence position -> the corrections that changed it
    for correction in (c for c in standing if c.lang == "fr"):
        _apply_french(segments, correction, touched)
    for position, corrections_of in touched.items():
        segment = segments[position]
        segment.text = "".join(w.text for w in segment.words).strip()
        segment.origin, segment.text_machine = "corrected", machine_text[position]
        _credit(segment, corrections_of)
        if not segment.text and segment.text_en:  # said nowhere: its English goes too
            segment.text_en_machine, segment.text_en, segment.origin_en = segment.text_en, "", "corrected"
    french_corrected = [s for s in segments if s.origin == "corrected" and s.text and s.text != s.text_machine]
    if french_corrected and translator == "argos" and retranslate is not None:
        before = {id(s): s.text_en for s in french_corrected}
        retranslate(french_corrected)
        for segment in french_corrected:
            segment.text_en_machine, segment.origin_en = before[id(segment)], "retranslated"
    elif translator == "whisper":
        for segment in french_corrected:
            segment.origin_en = "stale"  # Whisper's English of the audio, not of the corrected French
    for correction in (c for c in standing if c.lang == "en"):
        _apply_english(segments, correction)
    for index, segment in enumerate(segments):
        segment.index = index
    return dataclasses.replace(transcript, segments=segments, corrections=sorted(by_id.values(), key=lambda c: c.id))


def machine_segments(segments: Sequence[Segment], by_id: dict[int, Correction]) -> list[Segment]:
    """Copies of `segments` as the machine made them: the words a known correction wrote (or the mark
    a deletion left) give way to the machine's words it replaced, each back in the sentence it was
    spoken in (the last one starting at or before it), and English the layer replaced becomes the
    machine's again."""
    restored: set[int] = set()
    returning: list[Word] = []
    out = []
    for segment in segments:
        words: list[Word] = []
        for word in segment.words:
            owner = by_id.get(word.correction) if word.correction is not None else None
            if word.correction is None:
                words.append(word)
            elif owner is None:  # a correction no longer in the index (deleted by hand): its words stay
                if word.text.strip():
                    words.append(dataclasses.replace(word, correction=None))
            elif owner.id not in restored:
                restored.add(owner.id)
                returning.extend(dataclasses.replace(w, correction=None) for w in owner.machine_words)
        text_en = segment.text_en_machine if segment.text_en_machine is not None else segment.text_en
        out.append(dataclasses.replace(
            segment, words=words, text_en=text_en, origin="machine", origin_en="machine", corrected_by=None,
            corrected_at=None, text_machine=None, text_en_machine=None))
    for word in sorted(returning, key=lambda w: w.start):
        home = max((s for s in out if s.start <= word.start + 0.005), key=lambda s: s.start, default=out[0] if out else None)
        if home is not None:
            at = next((i for i, w in enumerate(home.words) if w.start > word.start), len(home.words))
            home.words.insert(at, word)
    for segment, original in zip(out, segments):
        if segment.words:
            segment.text = "".join(w.text for w in segment.words).strip()
        elif original.text_machine is not None:
            segment.text = original.text_machine
    return out


def _apply_french(segments: list[Segment], correction: Correction, touched: dict[int, list[Correction]]) -> None:
    flat = [(position, i, w) for position, s in enumerate(segments) for i, w in enumerate(s.words)
            if w.correction is None]
    if correction.end > correction.start:
        covered = [(p, i, w) for p, i, w in flat if correction.start <= (w.start + w.end) / 2 <= correction.end]
        if not covered:
            return _unfit(correction, "no words are spoken there any more")
        first, last = covered[0][2], covered[-1][2]
        moved = max(abs(first.start - correction.start), abs(last.end - correction.end))
        if moved > FIT_SECONDS:
            return _unfit(correction, f"the words there now run {first.start:.2f}–{last.end:.2f} s, not "
                                      f"{correction.start:.2f}–{correction.end:.2f} s")
        now = "".join(w.text for _, _, w in covered).strip()
        if moved > EXACT_SECONDS and max(_likeness(now, correction.machine_text),
                                         _likeness(now, correction.text)) < MIN_LIKENESS:
            return _unfit(correction, f"other words are spoken there now ({now!r}, not {correction.machine_text!r})")
        start, end = first.start, last.end
    else:  # an insertion, between two words
        inside = [w for _, _, w in flat if w.start + 0.01 < correction.start < w.end - 0.01]
        if inside:
            return _unfit(correction, f"a word is now spoken at {correction.start:.2f} s, where it was inserted")
        covered, start, end = [], correction.start, correction.start
    new = [dataclasses.replace(w, correction=correction.id, probability=1.0)
           for w in spread_words(correction.text, start, end)] if correction.text.strip() else []
    if covered:
        position = covered[0][0]
        # A deletion leaves a mark of no length where the words were: the next run knows it was applied.
        new = new or [Word(start, start, "", 1.0, correction.id)]
        correction.machine_words = [dataclasses.replace(w) for _, _, w in covered]
        correction.machine_text = "".join(w.text for w in correction.machine_words).strip()
        gone = {(p, i) for p, i, _ in covered}
        for p in sorted({p for p, _ in gone}):
            kept = [w for i, w in enumerate(segments[p].words) if (p, i) not in gone]
            if p == position:
                at = min(i for q, i in gone if q == p)
                kept[at:at] = new
            segments[p].words = kept
            touched.setdefault(p, []).append(correction)
    else:
        position = _sentence_at(segments, correction.start)
        if position is None:
            return _unfit(correction, "the recording has no sentence there any more")
        words = segments[position].words
        at = next((i for i, w in enumerate(words) if w.start >= correction.start - 0.01), len(words))
        words[at:at] = new
        correction.machine_words, correction.machine_text = [], ""
        touched.setdefault(position, []).append(correction)
    correction.status, correction.note = "applied", ""


def _apply_english(segments: list[Segment], correction: Correction) -> None:
    def shared(s: Segment) -> float:
        return max(0.0, min(s.end, correction.end) - max(s.start, correction.start))

    best = max(segments, key=shared, default=None)
    span = max(correction.end - correction.start, 1e-6)
    if best is None or shared(best) < SENTENCE_OVERLAP * span or shared(best) < SENTENCE_OVERLAP * max(
            best.end - best.start, 1e-6):
        return _unfit(correction, f"no sentence is spoken over {correction.start:.2f}–{correction.end:.2f} s any more")
    if best.text_en_machine is None:
        best.text_en_machine = best.text_en or ""
    correction.machine_text = best.text_en_machine
    best.text_en, best.origin_en = correction.text, "corrected"
    _credit(best, [correction])
    correction.status, correction.note = "applied", ""


def _credit(segment: Segment, corrections: Sequence[Correction]) -> None:
    latest = max(corrections, key=lambda c: (c.at, c.id))
    if not segment.corrected_at or latest.at >= segment.corrected_at:
        segment.corrected_by, segment.corrected_at = latest.by or None, latest.at or None


def _sentence_at(segments: Sequence[Segment], moment: float) -> int | None:
    """The sentence spoken at `moment`, or the last one before it, or the first."""
    timed = [(p, s) for p, s in enumerate(segments) if s.words or s.text]
    before = [p for p, s in timed if s.start <= moment + 0.01]
    return before[-1] if before else (timed[0][0] if timed else None)


def _likeness(a: str, b: str) -> float:
    return SequenceMatcher(None, a.casefold(), b.casefold()).ratio()


def _unfit(correction: Correction, why: str) -> None:
    correction.status, correction.note = "unfit", why


def unfit_line(transcript: Transcript, recording: Recording) -> str:
    """A warning for the run's outcome when some corrections no longer fit, "" when none."""
    unfit = [c for c in transcript.corrections if c.status == "unfit"]
    if not unfit:
        return ""
    return (f"{len(unfit)} correction(s) no longer fit the new transcript and are not applied "
            f"(recording-index corrections {recording.id})")
