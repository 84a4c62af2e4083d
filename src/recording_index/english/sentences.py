"""Sentences across segments, and the way back: English sentences shared out to the segments.

Whisper cuts segments by time, not by meaning: one sentence often spans two segments and one segment
may end a sentence and start the next. A translator wants whole sentences, and the index and the
subtitles want English per timed segment, so: merge into sentences, translate, share out.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from dataclasses import dataclass, field
from typing import Sequence

from recording_index.models import Segment
from recording_index.timing import nearest
from recording_index.speech.segmenting import ends_sentence, split_text

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


# A term's translation this close to it (difflib's ratio, accents and case aside) is taken for it.
TERM_LIKENESS = 0.6


def keep_terms(french: str, english: str, terms: Sequence[str]) -> str:
    """The English with each name or acronym of the catalog that the French says put back as written.

    Names and acronyms (terms with a capital letter) are not to be translated, yet a translator mangles
    some ("Éric Joanis" → "Eric Joannis", "CIPC" → "ICPC"); common terms ("prévention de la
    criminalité") are translated as usual. For each name in the French sentence and not in the English,
    the run of English words most like it (as many words, or one more or less) is replaced by the
    term when it is alike enough (TERM_LIKENESS); otherwise the English is left as it is.
    """
    for term in terms:
        if term == term.lower() or term.casefold() not in french.casefold() or term.casefold() in english.casefold():
            continue
        words = english.split(" ")
        size = len(term.split())
        best, where = 0.0, None
        for n in {max(1, size - 1), size, size + 1}:
            for i in range(len(words) - n + 1):
                candidate = " ".join(words[i:i + n]).strip(",.;:!?»«\"'()")
                ratio = SequenceMatcher(None, _plain(candidate), _plain(term)).ratio()
                if ratio > best:
                    best, where = ratio, (i, n, candidate)
        if where and best >= TERM_LIKENESS:
            i, n, candidate = where
            words[i:i + n] = [" ".join(words[i:i + n]).replace(candidate, term, 1)]
            english = " ".join(words)
    return english


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text.casefold()) if not unicodedata.combining(c))


def sentences_from_segments(segments: Sequence[Segment]) -> list[Sentence]:
    """Merge segment texts into sentences; each sentence knows which segment holds which part."""
    sentences: list[Sentence] = []
    current = Sentence()
    for segment in segments:
        for part in split_text(segment.text):
            current.pieces.append((segment.index, part))
            if ends_sentence(part) or len(current.text) > MAX_SENTENCE_CHARS:
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
    words of a punctuation mark moves to it, so clauses stay whole where they can; after a French
    piece that ends a sentence, to a full stop within four words first.
    """
    words = english.split()
    pieces = sentence.pieces
    if len(pieces) == 1 or not words:
        return [(pieces[0][0], english.strip())] + [(index, "") for index, _ in pieces[1:]]
    lengths = [max(1, len(text)) for _, text in pieces]
    total = sum(lengths)
    cuts, running = [], 0
    for (_, text), length in zip(pieces[:-1], lengths[:-1]):
        running += length
        cut = round(len(words) * running / total)
        # A French piece that ends a sentence ends its English at a full stop if one is near.
        for marks, reach in ((".?!…", 4), (",;:.?!…", 2)) if ends_sentence(text) else ((",;:.?!…", 2),):
            near = [c for c in range(max(1, cut - reach), min(len(words), cut + reach) + 1) if words[c - 1][-1] in marks]
            if near:
                cut = min(near, key=lambda c: abs(c - cut))
                break
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

    Each English word goes to the French segment its middle falls in (or the nearest one); the text
    of an English segment without word times is shared out to the French segments within it.
    """
    shares: dict[int, list[str]] = {s.index: [] for s in segments}
    if segments:
        for en in english:
            if en.words:
                for word in en.words:
                    if word.text.strip():
                        shares[segments[nearest(segments, (word.start + word.end) / 2)].index].append(word.text.strip())
                continue
            # No word times (batched decoding gives one English text a VAD chunk): the text is shared
            # out to the French sentences of the chunk as Argos's English is, by length, at punctuation.
            inside = [s for s in segments if en.start <= (s.start + s.end) / 2 <= en.end] or [
                segments[nearest(segments, (en.start + en.end) / 2)]]
            for index, text in share_out(Sentence([(s.index, s.text) for s in inside]), en.text):
                if text:
                    shares[index].append(text)
    for segment in segments:
        segment.text_en = " ".join(shares[segment.index])

