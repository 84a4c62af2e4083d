"""Group segments into timestamped search chunks."""

from __future__ import annotations

from typing import Iterable

from recording_index.models import Chunk, Segment


def chunk_segments(recording_id: str, segments: Iterable[Segment], target_seconds: float = 30.0,
                   max_gap: float = 10.0) -> list[Chunk]:
    """Consecutive segments, about `target_seconds` each, never splitting a segment.

    A chunk closes when the next segment would take it past the target, or when a silence longer
    than `max_gap` separates them (a new topic or a pause in the talk is a better boundary).
    """
    chunks: list[Chunk] = []
    current: list[Segment] = []

    def close() -> None:
        if current:
            en = [s.text_en for s in current if s.text_en]
            chunks.append(Chunk(
                recording_id=recording_id, index=len(chunks), start=current[0].start, end=current[-1].end,
                text_fr=" ".join(s.text for s in current if s.text).strip(),
                text_en=" ".join(en).strip() if en else None,
            ))
            current.clear()

    for segment in segments:
        if current and (segment.end - current[0].start > target_seconds
                        or segment.start - current[-1].end > max_gap):
            close()
        current.append(segment)
    close()
    return chunks
