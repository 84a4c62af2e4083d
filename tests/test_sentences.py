from recording_index.models import Segment, Word
from recording_index.english.sentences import (Sentence, assign_by_time, assign_english, keep_numbers, sentences_from_segments,
                                       share_out, split_text)


def seg(i, text, start=None, end=None):
    start = i * 5.0 if start is None else start
    return Segment(i, start, start + 5.0 if end is None else end, text)


def test_split_text_keeps_abbreviations_and_closing_marks():
    assert split_text("M. Lemaire parle. Puis « on vote. » Et après ?") == \
        ["M. Lemaire parle.", "Puis « on vote. »", "Et après ?"]
    assert split_text("Pas de fin") == ["Pas de fin"]


def test_sentences_span_segments_and_segments_hold_several_sentences():
    segments = [seg(0, "Bonjour. La coordination des acteurs"), seg(1, "locaux est essentielle. Merci"),
                seg(2, "de votre attention.")]
    sentences = sentences_from_segments(segments)
    assert [s.text for s in sentences] == ["Bonjour.", "La coordination des acteurs locaux est essentielle.",
                                           "Merci de votre attention."]
    assert sentences[1].pieces == [(0, "La coordination des acteurs"), (1, "locaux est essentielle.")]


def test_unpunctuated_speech_is_cut_into_bounded_sentences():
    segments = [seg(i, "et donc nous avons parlé de la coordination locale pendant longtemps " * 2) for i in range(20)]
    sentences = sentences_from_segments(segments)
    assert len(sentences) > 3
    assert all(len(s.text) < 600 for s in sentences)
    assert " ".join(s.text for s in sentences).split() == " ".join(x.text for x in segments).split()


def test_share_out_follows_french_length_and_snaps_to_punctuation():
    sentence = Sentence([(0, "La coordination des acteurs locaux,"), (1, "est essentielle.")])
    shares = share_out(sentence, "The coordination of local actors, is essential.")
    assert shares == [(0, "The coordination of local actors,"), (1, "is essential.")]


def test_share_out_never_loses_or_reorders_words():
    sentence = Sentence([(3, "a" * 10), (4, "b" * 30), (5, "c" * 5)])
    english = "one two three four five six seven eight nine ten"
    shares = share_out(sentence, english)
    assert [i for i, _ in shares] == [3, 4, 5]
    assert " ".join(t for _, t in shares if t) == english
    assert len(shares[1][1].split()) > len(shares[0][1].split())  # the longer French gets more English


def test_every_segment_gets_a_string_even_when_translation_is_empty():
    segments = [seg(0, "Bonjour."), seg(1, "Merci.")]
    sentences = sentences_from_segments(segments)
    assign_english(segments, sentences, ["Hello.", ""])
    assert [s.text_en for s in segments] == ["Hello.", ""]


def test_assign_by_time_uses_word_times_and_falls_back_to_overlap():
    french = [seg(0, "Bonjour.", 0, 2), seg(1, "Je suis programmeur.", 2, 5), seg(2, "Silence.", 9, 10)]
    english = [Segment(0, 0, 5, "Hello, I am a programmer.",
                       words=[Word(0.2, 0.8, " Hello,"), Word(2.1, 2.3, " I"), Word(2.3, 2.5, " am"),
                              Word(2.5, 2.6, " a"), Word(2.6, 3.5, " programmer.")]),
               Segment(1, 8.8, 10, "Silence.")]
    assign_by_time(french, english)
    assert [s.text_en for s in french] == ["Hello,", "I am a programmer.", "Silence."]


def test_english_without_word_times_is_spread_over_the_french_it_covers():
    french = [seg(0, "Bonjour à tous.", 0, 4), seg(1, "Je suis programmeur.", 4, 8), seg(2, "Fin.", 20, 21)]
    # A batched English pass: one segment per VAD chunk, no word times.
    english = [Segment(0, 0, 8, "Hello everyone. I am a programmer."), Segment(1, 20, 21, "End.")]
    assign_by_time(french, english)
    # Shared out by length and snapped to punctuation, as Argos's English is: a sentence each.
    assert [s.text_en for s in french] == ["Hello everyone.", "I am a programmer.", "End."]


def test_numbers_changed_by_the_translator_are_put_back():
    assert keep_numbers("Le 28 février 2018, 120 personnes.", "On February 28, 2019, 12 people.") == \
        "On February 28, 2018, 120 people."
    assert keep_numbers("Un taux de 3,5 %.", "A rate of 3.4%.") == "A rate of 3.5%."
    assert keep_numbers("En 2018.", "In 2018.") == "In 2018."
    assert keep_numbers("Les 2 parties de 2018.", "Both parts of 2018.") == "Both parts of 2018."  # counts differ
    assert keep_numbers("Sans chiffres.", "With 3 numbers.") == "With 3 numbers."


def test_catalog_terms_the_translator_mangled_are_put_back_as_written():
    from recording_index.english.sentences import keep_terms

    terms = ["Éric Joanis", "CIPC", "RÉSAL", "prévention de la criminalité"]
    assert keep_terms("Je m'appelle Éric Joanis.", "My name is Eric Joannis.", terms) == "My name is Éric Joanis."
    assert keep_terms("Le CIPC et le RÉSAL.", "The ICPC and the RESAL.", terms) == "The CIPC and the RÉSAL."
    # Terms the French does not say, or that the English already has, change nothing.
    assert keep_terms("Bonjour.", "Hello Eric.", terms) == "Hello Eric."
    assert keep_terms("Le CIPC.", "The CIPC.", terms) == "The CIPC."
    # Common terms are translated as usual; a name with nothing alike in the English is left alone.
    assert keep_terms("La prévention de la criminalité.", "The prevention of criminality.", terms) == \
        "The prevention of criminality."
    assert keep_terms("Merci Éric Joanis.", "Thank you.", terms) == "Thank you."


def test_after_a_french_sentence_its_english_ends_at_the_full_stop_not_at_the_next_comma():
    """Seen in the demo: "…by the deep learning. At this time," went to the first sentence."""
    from recording_index.english.sentences import Sentence, share_out

    sentence = Sentence([(3, "J'ai fait une bonne partie de ma carrière en traduction automatique statistique, mais "
                             "maintenant cette approche a déclassé par la apprentissage profonde."),
                         (4, "En ce moment, je travaille à l'alignement du hansard du Nunavut pour produire un corpus "
                             "bilingue anglais inuktitut.")])
    english = ("I have made a good part of my career in automatic translation statistics, but now it is approach to "
               "classes by the deep learning. At this time, I am working on the alignment of the Nunavut hansard to "
               "produce a bilingual English Inuktitut body.")
    (_, first), (_, second) = share_out(sentence, english)
    assert first.endswith("by the deep learning.") and second.startswith("At this time, I am working")
