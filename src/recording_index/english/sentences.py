"""Sentences across segments, and the way back: English sentences shared out to the segments.

Whisper cuts segments by time, not by meaning: one sentence often spans two segments and one segment
may end a sentence and start the next. A translator wants whole sentences, and the index and the
subtitles want English per timed segment, so: merge into sentences, translate, share out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from recording_index.models import Segment, spread_words

# A sentence ends at . ? ! … (with closing quotes or brackets) before a space, except after a few
# French abbreviations that end in a full stop.
_SENTENCE_END = re.compile(r"(?<=[.?!…])(?:[\s\u00a0\u202f]?[\"»)\]])*\s+")  # French spaces before »
_ABBREVIATIONS = {"m.", "mm.", "mme.", "mmes.", "mlle.", "dr.", "pr.", "st.", "ste.", "etc.", "p.", "cf.", "ex.",
                  "no.", "art.", "av.", "bd.", "vol.", "env."}
MAX_SENTENCE_CHARS = 400  # unpunctuated speech: cut rather than hand the translator a whole page


@dataclass
class Sentence:
    """A sentence and the pieces of it each segment holds, in order."""

    pieces: list[tuple[int, str]] = field(default_factory=list)  # (segment index, text)

    @property
    def text(self) -> str:
        return " ".join(text for _, text in self.pieces).strip()


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def keep_numbers(french: str, english: str) -> str:
    """The English with the French figures back where a translator changed them.

    Machine translation sometimes alters numbers (a year, a count, a decimal). Where the English has as
    many numbers as the French but not the same ones, each is replaced in order by the French one,
    written the English way (3,5 → 3.5); where the counts differ, the English is left as it is.
    """
    wanted = [n.replace(",", ".") if re.fullmatch(r"\d+,\d{1,2}", n) else n for n in _NUMBER.findall(french)]
    found = _NUMBER.findall(english)
    if not wanted or len(found) != len(wanted) or sorted(found) == sorted(wanted):
        return english
    replacements = iter(wanted)
    return _NUMBER.sub(lambda _: next(replacements), english)


def split_text(text: str) -> list[str]:
    """Split one string at sentence ends, keeping each end with its sentence."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].split()
        if before and before[-1].lower() in _ABBREVIATIONS:
            continue
        parts.append(text[start:match.end()].strip())
        start = match.end()
    if text[start:].strip():
        parts.append(text[start:].strip())
    return [p for p in parts if p]


def _ends_sentence(text: str) -> bool:
    stripped = text.rstrip("\"»)] \u00a0\u202f")
    if not stripped or stripped[-1] not in ".?!…":
        return False
    words = stripped.split()
    return not (words and words[-1].lower() in _ABBREVIATIONS)


def sentences_from_segments(segments: Sequence[Segment]) -> list[Sentence]:
    """Merge segment texts into sentences; each sentence knows which segment holds which part."""
    sentences: list[Sentence] = []
    current = Sentence()
    for segment in segments:
        for part in split_text(segment.text):
            current.pieces.append((segment.index, part))
            if _ends_sentence(part) or len(current.text) > MAX_SENTENCE_CHARS:
                sentences.append(current)
                current = Sentence()
    if current.pieces:
        sentences.append(current)
    return sentences


def share_out(sentence: Sentence, english: str) -> list[tuple[int, str]]:
    """Give each piece of `sentence` its share of the English, in order, cut at word boundaries.

    Shares follow the length of each French piece in characters: with no word alignment from the
    translator, time and characters are the two measures at hand, and characters follow what is said
    more closely than time does (pauses and slow speech stretch time, not text). A cut within two
    words of a punctuation mark moves to it, so clauses stay whole where they can.
    """
    words = english.split()
    pieces = sentence.pieces
    if len(pieces) == 1 or not words:
        return [(pieces[0][0], english.strip())] + [(index, "") for index, _ in pieces[1:]]
    lengths = [max(1, len(text)) for _, text in pieces]
    total = sum(lengths)
    cuts, running = [], 0
    for length in lengths[:-1]:
        running += length
        cut = round(len(words) * running / total)
        near = [c for c in range(max(1, cut - 2), min(len(words), cut + 2) + 1) if words[c - 1][-1] in ",;:.?!…"]
        if near:
            cut = min(near, key=lambda c: abs(c - cut))
        cuts.append(min(max(cut, cuts[-1] if cuts else 0), len(words)))
    bounds = [0, *cuts, len(words)]
    return [(index, " ".join(words[bounds[i]:bounds[i + 1]])) for i, (index, _) in enumerate(pieces)]


def assign_english(segments: Sequence[Segment], sentences: Sequence[Sentence], translations: Sequence[str]) -> None:
    """Set `text_en` of every segment from its sentences' translations (empty, never missing)."""
    shares: dict[int, list[str]] = {s.index: [] for s in segments}
    for sentence, english in zip(sentences, translations):
        for index, text in share_out(sentence, english or ""):
            if text:
                shares[index].append(text)
    for segment in segments:
        segment.text_en = " ".join(shares[segment.index])


def assign_by_time(segments: Sequence[Segment], english: Sequence[Segment]) -> None:
    """Set `text_en` of every segment from English speech-translation segments, by time.

    Each English word goes to the French segment its middle falls in (or the nearest one); English
    segments without word times are spread over the French segments they overlap.
    """
    shares: dict[int, list[str]] = {s.index: [] for s in segments}
    if segments:
        for en in english:
            for word in en.words or spread_words(en.text, en.start, en.end):
                if word.text.strip():
                    shares[_nearest(segments, (word.start + word.end) / 2).index].append(word.text.strip())
    for segment in segments:
        segment.text_en = " ".join(shares[segment.index])


def _nearest(segments: Sequence[Segment], moment: float) -> Segment:
    def distance(s: Segment) -> float:
        return 0.0 if s.start <= moment <= s.end else min(abs(moment - s.start), abs(moment - s.end))
    return min(segments, key=distance)
