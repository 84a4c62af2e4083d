from recording_index.models import Segment, Word
from recording_index.speech.repetition import collapse_loops, guard_repetitions, guard_segment


def words(text):
    return [Word(i, i + 1, " " + t, 0.9) for i, t in enumerate(text.split())]


def test_loop_of_one_word_collapses():
    tokens = "merci merci merci merci merci merci beaucoup".split()
    assert [tokens[i] for i in collapse_loops(tokens)] == ["merci", "beaucoup"]


def test_loop_of_a_phrase_collapses_despite_punctuation_and_case():
    tokens = "et donc, voilà. Et donc, voilà. et donc voilà et donc voilà et donc voilà la suite".split()
    assert " ".join(tokens[i] for i in collapse_loops(tokens)) == "et donc, voilà. la suite"


def test_ordinary_repetition_is_kept():
    tokens = "très très bien, non non non, c'est ça".split()
    assert collapse_loops(tokens) == list(range(len(tokens)))


def test_guard_segment_keeps_words_and_text_consistent():
    seg = Segment(0, 0, 20, "", words=words("je pense que " + "oui " * 8 + "voilà"))
    out = guard_segment(seg)
    assert out.text == "je pense que oui voilà"
    assert [w.text.strip() for w in out.words] == ["je", "pense", "que", "oui", "voilà"]


def test_repeated_segments_are_dropped_and_renumbered():
    texts = ["Bonjour.", "Sous-titrage ST' 501", "Sous-titrage ST' 501", "Sous-titrage ST' 501",
             "sous-titrage ST 501", "La suite.", ""]
    given = [Segment(i, i, i + 1, t) for i, t in enumerate(texts)]
    out = list(guard_repetitions(given))
    assert [s.text for s in out] == ["Bonjour.", "Sous-titrage ST' 501", "Sous-titrage ST' 501", "La suite."]
    assert [s.index for s in out] == [0, 1, 2, 3]
    assert [s.index for s in given] == list(range(len(texts)))  # another task's result: renumbered as copies
