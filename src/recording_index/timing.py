"""Where words and spans fall in time: shared by the stages that place words (sentences, English,
corrections, subtitles). Stage code (stages.Stage.code): a change here is a change of their output."""

from __future__ import annotations

from typing import Protocol, Sequence, TypeVar

from recording_index.models import Word


class Span(Protocol):
    start: float
    end: float


SpanT = TypeVar("SpanT", bound=Span)


def nearest(spans: Sequence[SpanT], moment: float) -> int:
    """The position of the span (a segment, a cue) that holds `moment`, else of the one whose edge
    is closest to it: where something said at that moment belongs."""
    def distance(k: int) -> float:
        span = spans[k]
        return 0.0 if span.start <= moment <= span.end else min(abs(moment - span.start), abs(moment - span.end))
    return min(range(len(spans)), key=distance)


def spread_words(text: str, start: float, end: float) -> list[Word]:
    """Words of `text` with times spread over [start, end] in proportion to their length."""
    tokens = text.split()
    total = sum(len(t) + 1 for t in tokens)
    out, at = [], start
    for token in tokens:
        length = (end - start) * (len(token) + 1) / total
        out.append(Word(at, at + length, " " + token))
        at += length
    return out
