"""From an edited subtitle file (or a sentence edited in the web page) to corrections.

A person edits the subtitles that `recording-index subtitles` wrote: words changed, cues merged or
split, times nudged. The file's cues, in time order, are read as one stream of words and compared
with the transcript's own words over the time the file covers (a file may hold an excerpt). Word
order decides what changed (difflib, as `diff` does for lines): a cue merged, split or nudged moves
no word, so it changes nothing; a word replaced, added or removed is a correction of the words it
replaces, at their time. Cue times bound the comparison and place what a person added.

French corrections are stretches of words (they survive a new segmentation, and a new transcript
whose words keep their time). English has no word times: its corrections are whole sentences.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Sequence

from recording_index.errors import RecordingIndexError
from recording_index.models import Correction, Cue, Segment
from recording_index.timing import spread_words

# A file whose words agree with the transcript's less than this is for another recording (or another
# language): refused rather than turned into a rewrite of everything.
MIN_AGREEMENT = 0.5
# Words this far outside the file's first and last cue are not in it (an excerpt).
MARGIN_SECONDS = 1.0


@dataclass
class Token:
    """One word of the transcript as the subtitles show it, with the sentence it belongs to."""

    start: float
    end: float
    text: str
    sentence: int  # index in the segments
    correction: int | None = None  # the correction that wrote it, if any

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


@dataclass
class Edit:
    """tokens[first:last] become `text` (first == last: `text` is inserted before tokens[first])."""

    first: int
    last: int
    text: str
    replaced: list[int]  # the corrections these tokens held, now superseded


def shown_digest(text: str | None) -> str:
    """What a page says it showed of a sentence, so that a save from a stale page is refused."""
    return hashlib.sha256((text or "").encode()).hexdigest()[:16]


def tokens_of(segments: Sequence[Segment], lang: str) -> list[Token]:
    """The words the subtitles of `lang` were made of: Whisper's timed French words, or each
    sentence's English spread over its time (publish/subtitles.py does the same)."""
    out = []
    for position, segment in enumerate(segments):
        if lang == "fr":
            words = segment.words or spread_words(segment.text, segment.start, segment.end)
        else:
            words = spread_words(segment.text_en or "", segment.start, segment.end)
        for word in words:
            if not word.text.strip():
                continue
            if out and out[-1].sentence == position and not word.text[:1].isspace():
                # Whisper's words can be pieces of one written word ("m'" + "appelle"): one token.
                previous = out[-1]
                previous.end, previous.text = word.end, previous.text + word.text.strip()
                previous.correction = previous.correction if previous.correction is not None else word.correction
                continue
            out.append(Token(word.start, word.end, word.text.strip(), position, word.correction))
    return out


def words_in(text: str) -> list[str]:
    """The words of a person's text; control characters (a terminal escape, a NUL) separate words,
    and invisible ones (bidirectional overrides, zero-width spaces) are dropped: neither is stored."""
    return "".join(" " if unicodedata.category(ch) == "Cc" else "" if unicodedata.category(ch) == "Cf" else ch
                   for ch in text).split()


def cue_words(cues: Sequence[Cue]) -> list[str]:
    return [word for cue in sorted(cues, key=lambda c: (c.start, c.end)) for line in cue.lines for word in words_in(line)]


# Cues are compared with the transcript a stretch of about this long at a time, cut between cues:
# the comparison's cost grows with the square of the words compared at once, so a three-hour
# file costs what its stretches cost, not the square of its length.
WINDOW_SECONDS = 120.0
# More words than this a second are not speech (even a fast talker says about 4): such a cue is refused.
MAX_WORDS_PER_SECOND = 10


def _stretches(cues: Sequence[Cue]) -> list[list[Cue]]:
    """The cues, in time order, cut into stretches of about WINDOW_SECONDS, between two cues."""
    out: list[list[Cue]] = []
    for cue in sorted(cues, key=lambda c: (c.start, c.end)):
        if out and cue.start - out[-1][0].start < WINDOW_SECONDS:
            out[-1].append(cue)
        else:
            out.append([cue])
    return out


def edits_from_cues(tokens: Sequence[Token], cues: Sequence[Cue], name: str = "subtitles") -> list[Edit]:
    """What a person changed: the tokens spoken within the cues' time compared with the cues' words,
    a stretch of the file at a time (each with the tokens spoken between its neighbours' borders)."""
    if not cues:
        return []
    for cue in cues:
        if len(cue_words([cue])) > MAX_WORDS_PER_SECOND * max(cue.end - cue.start, 1.0) + 10:
            raise RecordingIndexError(f"{name}: cue {cue.index} holds more words than can be said in its "
                                      f"{cue.end - cue.start:.1f} s")
    low = min(c.start for c in cues) - MARGIN_SECONDS
    high = max(c.end for c in cues) + MARGIN_SECONDS
    if not any(low <= t.middle <= high for t in tokens):
        raise RecordingIndexError(f"{name}: its cues ({low + MARGIN_SECONDS:.1f}–{high - MARGIN_SECONDS:.1f} s) "
                                  "hold none of the recording's words")
    stretches = _stretches(cues)
    # Each stretch takes the tokens spoken up to halfway to the next one's first cue.
    borders = [low] + [(max(c.end for c in before) + after[0].start) / 2
                       for before, after in zip(stretches, stretches[1:])] + [high]
    span_start, span_end = low + MARGIN_SECONDS, high - MARGIN_SECONDS
    edits, same, compared = [], 0, 0
    for stretch, begin, end in zip(stretches, borders, borders[1:]):
        inside = [i for i, t in enumerate(tokens) if begin <= t.middle < end or (end == high and t.middle == high)]
        first = inside[0] if inside else next((i for i, t in enumerate(tokens) if t.middle >= begin), len(tokens))
        old = [t.text for t in tokens[first:inside[-1] + 1]] if inside else []
        new = cue_words(stretch)
        matcher = SequenceMatcher(None, old, new, autojunk=False)
        same += sum(block.size for block in matcher.get_matching_blocks())
        compared += len(old) + len(new)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            if tag == "delete":
                # The margin lets in words a nudged cue left out; words beyond the cues that the
                # file does not have are outside the excerpt, not deleted.
                while i1 < i2 and tokens[first + i1].middle < span_start:
                    i1 += 1
                while i2 > i1 and tokens[first + i2 - 1].middle > span_end:
                    i2 -= 1
                if i1 == i2:
                    continue
            edits.append(Edit(first + i1, first + i2, " ".join(new[j1:j2]), []))
    agreement = 2 * same / compared if compared else 1.0
    if agreement < MIN_AGREEMENT:
        raise RecordingIndexError(f"{name}: only {agreement:.0%} of its words agree with the recording's "
                                  "transcript in that language: another recording's file, or the other language?")
    return widen(edits, tokens)


def edits_from_text(tokens: Sequence[Token], sentence: int, text: str) -> list[Edit]:
    """What a person changed by rewriting one sentence (the web page's edit)."""
    positions = [i for i, t in enumerate(tokens) if t.sentence == sentence]
    if not positions:
        raise RecordingIndexError(f"sentence {sentence}: no words to correct")
    first = positions[0]
    old = [tokens[i].text for i in positions]
    new = words_in(text)
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    return widen([Edit(first + i1, first + i2, " ".join(new[j1:j2]), [])
                  for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"], tokens)


def widen(edits: list[Edit], tokens: Sequence[Token]) -> list[Edit]:
    """Edits that touch an earlier correction take in all of it (a correction is replaced whole, never
    cut in two), and edits that then overlap become one."""
    spans = []
    for edit in edits:
        first, last, replaced = edit.first, edit.last, set()
        while True:
            inside = range(first, last) if last > first else (
                [first] if 0 < first < len(tokens) and tokens[first - 1].correction == tokens[first].correction else [])
            touched = {tokens[i].correction for i in inside if tokens[i].correction is not None} - replaced
            if not touched:
                break
            replaced |= touched
            held = [i for i, t in enumerate(tokens) if t.correction in touched]
            first, last = min(first, *held), max(last, *(i + 1 for i in held))
        spans.append((first, last, replaced, [edit]))
    merged: list[tuple[int, int, set, list[Edit]]] = []
    for first, last, replaced, inner in sorted(spans, key=lambda s: (s[0], s[1])):
        if merged and first < merged[-1][1]:
            f, l, r, i = merged.pop()
            merged.append((f, max(l, last), r | replaced, i + inner))
        else:
            merged.append((first, last, replaced, inner))
    out = []
    for first, last, replaced, inner in merged:
        words, at = [], first
        for edit in sorted(inner, key=lambda e: (e.first, e.last)):
            words += [t.text for t in tokens[at:edit.first]] + ([edit.text] if edit.text else [])
            at = max(at, edit.last)
        words += [t.text for t in tokens[at:last]]
        out.append(Edit(first, last, " ".join(words), sorted(replaced)))
    return out


def french_corrections(edits: Sequence[Edit], tokens: Sequence[Token], recording_id: str) -> list[Correction]:
    """Corrections of stretches of French words, one an edit, each with the words it replaces."""
    out = []
    for edit in edits:
        replaced = tokens[edit.first:edit.last]
        if replaced:
            start, end = replaced[0].start, replaced[-1].end
            if end - start < 0.02:  # Whisper times some words with no length: a stretch, not a point
                start, end = start - 0.01, end + 0.01
        else:  # an insertion: between the words around it
            before = tokens[edit.first - 1].end if edit.first > 0 else None
            after = tokens[edit.first].start if edit.first < len(tokens) else None
            start = end = before if before is not None else (after or 0.0)
        out.append(Correction(id=0, recording_id=recording_id, lang="fr", start=start, end=end, text=edit.text,
                              machine_text=" ".join(t.text for t in replaced)))
    return out


def english_corrections(edits: Sequence[Edit], tokens: Sequence[Token], segments: Sequence[Segment],
                        recording_id: str) -> list[Correction]:
    """Corrections of whole English sentences: the edits applied to the English words, regrouped by
    sentence (what an edit puts across two sentences goes to the first)."""
    texts: dict[int, list[str]] = {token.sentence: [] for token in tokens}
    position = 0
    words: list[tuple[int, str]] = []
    for edit in sorted(edits, key=lambda e: e.first):
        words.extend((t.sentence, t.text) for t in tokens[position:edit.first])
        if tokens and edit.text:
            owner = tokens[edit.first].sentence if edit.first < edit.last else (
                tokens[edit.first - 1].sentence if edit.first > 0 else tokens[0].sentence)
            words.extend((owner, w) for w in edit.text.split())
        position = edit.last
    words.extend((t.sentence, t.text) for t in tokens[position:])
    for sentence, word in words:
        texts[sentence].append(word)
    return [c for sentence, new in sorted(texts.items()) if (c := english_correction(segments[sentence], new, recording_id))]


def english_correction(segment: Segment, words: Sequence[str], recording_id: str) -> Correction | None:
    """The correction that makes `words` a sentence's English, or None when that is its English already."""
    if " ".join(words) == " ".join((segment.text_en or "").split()):
        return None
    return Correction(id=0, recording_id=recording_id, lang="en", start=segment.start, end=segment.end,
                      text=" ".join(words), machine_text=segment.text_en_machine or segment.text_en or "")


def corrections_from_cues(segments: Sequence[Segment], cues: Sequence[Cue], lang: str, recording_id: str,
                          name: str = "subtitles") -> tuple[list[Correction], list[int]]:
    """The corrections an edited subtitle file of `lang` makes, and the earlier ones they replace."""
    tokens = tokens_of(segments, lang)
    if not tokens:
        raise RecordingIndexError(f"{name}: the recording has no {'English' if lang == 'en' else 'French'} to correct")
    edits = edits_from_cues(tokens, cues, name)
    return _corrections(edits, tokens, segments, lang, recording_id)


def corrections_from_text(segments: Sequence[Segment], sentence: int, text: str, lang: str,
                          recording_id: str) -> tuple[list[Correction], list[int]]:
    """The corrections that rewriting sentence number `sentence` (its position) as `text` makes."""
    if not 0 <= sentence < len(segments):
        raise RecordingIndexError(f"{recording_id}: no sentence {sentence}")
    if lang == "en":
        correction = english_correction(segments[sentence], words_in(text), recording_id)
        return ([correction] if correction else []), []
    tokens = tokens_of(segments, lang)
    return _corrections(edits_from_text(tokens, sentence, text), tokens, segments, lang, recording_id)


def _corrections(edits, tokens, segments, lang, recording_id) -> tuple[list[Correction], list[int]]:
    replaced = sorted({c for e in edits for c in e.replaced})
    if lang == "en":
        return english_corrections(edits, tokens, segments, recording_id), replaced
    return french_corrections(edits, tokens, recording_id), replaced
