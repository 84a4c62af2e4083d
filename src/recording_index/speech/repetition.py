"""Guards against Whisper's known failure: a phrase repeated in a loop (often over silence or music)."""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Iterator

from recording_index.models import Segment, Word

_WORD_KEY = re.compile(r"[\W_]+", re.UNICODE)


def _key(token: str) -> str:
    return _WORD_KEY.sub("", token.lower())


def collapse_loops(tokens: list[str], max_repeats: int = 3, max_ngram: int = 12) -> list[int]:
    """Indices of the tokens to keep once every n-gram repeated back to back more than
    `max_repeats` times is cut down to a single occurrence."""
    keys = [_key(t) for t in tokens]
    keep = list(range(len(tokens)))
    for n in range(1, max_ngram + 1):
        i = 0
        out: list[int] = []
        while i < len(keep):
            gram = [keys[j] for j in keep[i:i + n]]
            if len(gram) < n or not any(gram):
                out.append(keep[i])
                i += 1
                continue
            repeats = 1
            while [keys[j] for j in keep[i + repeats * n:i + (repeats + 1) * n]] == gram:
                repeats += 1
            if repeats > max_repeats:
                out.extend(keep[i:i + n])
                i += repeats * n
            else:
                out.append(keep[i])
                i += 1
        keep = out
    return keep


def guard_segment(segment: Segment, max_repeats: int = 3) -> Segment:
    """The segment with in-segment loops collapsed (words and text stay consistent): a new segment
    when something was collapsed, the same one otherwise."""
    if segment.words:
        keep = collapse_loops([w.text for w in segment.words], max_repeats)
        if len(keep) == len(segment.words):
            return segment
        words: list[Word] = [segment.words[i] for i in keep]
        return dataclasses.replace(segment, words=words, text="".join(w.text for w in words).strip(),
                                   end=words[-1].end if words else segment.end)
    tokens = segment.text.split()
    keep = collapse_loops(tokens, max_repeats)
    if len(keep) != len(tokens):
        return dataclasses.replace(segment, text=" ".join(tokens[i] for i in keep))
    return segment


def guard_repetitions(segments: Iterable[Segment], max_repeats: int = 2) -> Iterator[Segment]:
    """Stream segments with loops collapsed and runs of the same segment text cut to `max_repeats`.

    Segments are renumbered so the indices stay consecutive after drops (as copies: the segments
    given may be another task's result).
    """
    previous, run, index = None, 0, 0
    for segment in segments:
        segment = guard_segment(segment)
        key = _key(segment.text)
        if not key:
            continue
        run = run + 1 if key == previous else 1
        previous = key
        if run > max_repeats:
            continue
        index += 1
        yield segment if segment.index == index - 1 else dataclasses.replace(segment, index=index - 1)
