"""Small helpers shared across stages, the command line and the web page."""

from __future__ import annotations

import sys


def hms(seconds: float) -> str:
    """A time as people read it in a player: h:mm:ss."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress_bar(enabled: bool, label: str, total: float | None, unit: str, **options):
    """A tqdm bar on stderr for long work (downloads, transcription, translation), or None when
    progress is off. `label` may come from outside (a page's link text): it is shown cleaned."""
    if not enabled:
        return None
    from tqdm import tqdm

    from recording_index.redaction import printable

    return tqdm(total=total, desc=printable(label), unit=unit, file=sys.stderr, **options)
