"""Word error rate and chrF, for tests and benchmarks against reference transcripts and translations."""

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


def chrf(reference: str, hypothesis: str) -> float:
    """sacrebleu's chrF of one sentence (character 6-grams, beta 2), 0 to 100: kinder than WER to a
    good translation worded unlike the one reference, and standard for it."""
    from sacrebleu.metrics import CHRF

    return CHRF().sentence_score(hypothesis, [reference]).score
