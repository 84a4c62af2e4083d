import pytest

from recording_index.evaluation import normalise_words, word_error_rate


def test_normalise_splits_elisions_and_drops_punctuation():
    assert normalise_words("L'équipe, c'est-à-dire « nous » !") == ["l", "équipe", "c", "est", "à", "dire", "nous"]
    assert normalise_words("Équipe", keep_accents=False) == ["equipe"]


def test_word_error_rate_counts_edits():
    assert word_error_rate("le chat dort", "le chat dort") == 0
    assert word_error_rate("le chat dort", "le chien dort") == pytest.approx(1 / 3)
    assert word_error_rate("le chat dort", "le chat") == pytest.approx(1 / 3)
    assert word_error_rate("le chat", "le gros chat noir") == pytest.approx(1.0)
    assert word_error_rate("", "") == 0 and word_error_rate("", "bruit") == 1
