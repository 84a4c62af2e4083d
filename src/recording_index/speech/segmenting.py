"""Segments as people say them: sentences, cut from Whisper's word timestamps.

Whisper's own segments follow its decoding windows, not the speech: with batched decoding one
segment is a whole VAD chunk (up to 30 s). The index, the transcript, the subtitles and English hits
all want what a speaker said, so the words are regrouped into sentences; a sentence longer than
MAX_SECONDS is cut into clauses (at a comma, a semicolon or a colon near its middle, else at the
longest pause between its words).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from recording_index.models import Segment, Word
from recording_index.timing import spread_words

MAX_SECONDS = 15.0
# A clause shorter than this is no unit to read or to jump to: cuts avoid making one.
MIN_CLAUSE_SECONDS = 2.0

# A sentence ends at . ? ! … (with closing quotes or brackets) before a space, except after a few
# French abbreviations that end in a full stop.
SENTENCE_END = re.compile(r"(?<=[.?!…])(?:[\s\u00a0\u202f]?[\"»)\]])*\s+")  # French spaces before »
ABBREVIATIONS = {"m.", "mm.", "mme.", "mmes.", "mlle.", "dr.", "pr.", "st.", "ste.", "etc.", "p.", "cf.", "ex.",
                 "no.", "art.", "av.", "bd.", "vol.", "env."}
_CLAUSE_END = (",", ";", ":", "—", "–")


def ends_sentence(text: str) -> bool:
    """Whether `text` ends a sentence: . ? ! … (closing quotes or brackets aside), not an abbreviation."""
    stripped = text.rstrip("\"»)] \u00a0\u202f")
    if not stripped or stripped[-1] not in ".?!…":
        return False
    words = stripped.split()
    return not (words and words[-1].lower() in ABBREVIATIONS)


def split_text(text: str) -> list[str]:
    """Split one string at sentence ends, keeping each end with its sentence."""
    parts, start = [], 0
    for match in SENTENCE_END.finditer(text):
        before = text[start:match.start()].split()
        if before and before[-1].lower() in ABBREVIATIONS:
            continue
        parts.append(text[start:match.end()].strip())
        start = match.end()
    if text[start:].strip():
        parts.append(text[start:].strip())
    return [p for p in parts if p]


def sentence_segments(segments: Iterable[Segment], max_seconds: float = MAX_SECONDS) -> list[Segment]:
    """The words of `segments` regrouped into sentences (clauses of at most `max_seconds` where a
    sentence runs longer), numbered from 0. Segments without word times get words spread over their
    time by length. Each new segment keeps the decoding scores of the segment its first word came from."""
    timed: list[tuple[Word, Segment]] = []
    for segment in segments:
        words = segment.words or spread_words(segment.text, segment.start, segment.end)
        # A correction's mark of a deletion has no text, and stays: it says the deletion was applied.
        timed.extend((word, segment) for word in words if word.text.strip() or word.correction is not None)
    sentences: list[list[tuple[Word, Segment]]] = [[]]
    for word, segment in timed:
        sentences[-1].append((word, segment))
        if ends_sentence(word.text.strip()):
            sentences.append([])
    out: list[Segment] = []
    for sentence in sentences:
        for clause in _clauses(sentence, max_seconds):
            words = [word for word, _ in clause]
            first = clause[0][1]
            out.append(Segment(
                index=len(out), start=words[0].start, end=words[-1].end,
                text="".join(w.text for w in words).strip(), words=list(words),
                avg_logprob=first.avg_logprob, no_speech_prob=first.no_speech_prob,
                compression_ratio=first.compression_ratio))
    return out


def _clauses(words: Sequence[tuple[Word, Segment]], max_seconds: float) -> list[Sequence[tuple[Word, Segment]]]:
    """`words` whole when they last at most `max_seconds`, else cut in two at the best place and each
    half cut again as needed."""
    if not words:
        return []
    if words[-1][0].end - words[0][0].start <= max_seconds or len(words) < 2:
        return [words]
    start, end = words[0][0].start, words[-1][0].end
    middle = (start + end) / 2

    def cost(cut: int) -> float:
        """Cutting before words[cut]: near the middle is best, after a comma (or the like) or at a
        pause better still, and never so that a side is shorter than MIN_CLAUSE_SECONDS."""
        before, after = words[cut - 1][0], words[cut][0]
        short = before.end - start < MIN_CLAUSE_SECONDS or end - after.start < MIN_CLAUSE_SECONDS
        punctuated = before.text.strip().endswith(_CLAUSE_END)
        pause = min(max(0.0, after.start - before.end), 1.0)
        return 10.0 * short + abs(before.end - middle) / (end - start) - 0.3 * punctuated - 0.2 * pause

    cut = min(range(1, len(words)), key=cost)
    return _clauses(words[:cut], max_seconds) + _clauses(words[cut:], max_seconds)
