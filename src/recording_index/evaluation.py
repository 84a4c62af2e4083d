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


def word_error_rate(reference: str, hypothesis: str, keep_accents: bool = True) -> float:
    """jiwer's word error rate (the field's, so figures compare) over our normalised words."""
    import jiwer

    ref = normalise_words(reference, keep_accents)
    hyp = normalise_words(hypothesis, keep_accents)
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0
    return jiwer.wer(" ".join(ref), " ".join(hyp))


def chrf(reference: str, hypothesis: str, max_order: int = 6, beta: float = 2.0) -> float:
    """Character n-gram F-score (chrF, as sacrebleu computes it by default), 0 to 100.

    Kinder than WER to a good translation worded unlike the one reference, and standard for it.
    """
    from collections import Counter

    def grams(text: str, n: int) -> Counter:
        text = "".join(text.split())
        return Counter(text[i:i + n] for i in range(len(text) - n + 1))

    precisions, recalls = [], []
    for n in range(1, max_order + 1):
        ref, hyp = grams(reference, n), grams(hypothesis, n)
        if not ref or not hyp:
            continue
        overlap = sum((ref & hyp).values())
        precisions.append(overlap / sum(hyp.values()))
        recalls.append(overlap / sum(ref.values()))
    if not precisions:
        return 0.0
    precision, recall = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if precision + recall == 0:
        return 0.0
    return 100 * (1 + beta**2) * precision * recall / (beta**2 * precision + recall)
