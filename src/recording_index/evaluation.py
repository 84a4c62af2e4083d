"""Word error rate, for tests and benchmarks against reference transcripts."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES_HYPHENS = re.compile(r"['’‘`\-‐–]")
_NOT_WORD = re.compile(r"[^\w\s]", re.UNICODE)


def normalise_words(text: str, keep_accents: bool = True) -> list[str]:
    """Lower-case words with punctuation removed; elisions and hyphens split (l'équipe → l équipe)."""
    text = unicodedata.normalize("NFC", text).casefold()
    if not keep_accents:
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _NOT_WORD.sub(" ", _APOSTROPHES_HYPHENS.sub(" ", text))
    return text.split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions), in O(len) memory."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str, keep_accents: bool = True) -> float:
    ref = normalise_words(reference, keep_accents)
    hyp = normalise_words(hypothesis, keep_accents)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
