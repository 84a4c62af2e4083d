"""Sentences cut from word timestamps (speech/segmenting.py)."""

from hypothesis import given, settings as hypothesis_settings, strategies as st

from recording_index.models import Segment, Word
from recording_index.speech.segmenting import MAX_SECONDS, ends_sentence, sentence_segments, split_text


def words_of(text: str, start: float = 0.0, per_word: float = 0.4, pauses: dict[int, float] | None = None):
    out, at = [], start
    for i, token in enumerate(text.split()):
        at += (pauses or {}).get(i, 0.0)
        out.append(Word(at, at + per_word * 0.9, " " + token, 0.9))
        at += per_word
    return out


def block(text: str, start: float = 0.0, **kw) -> Segment:
    words = words_of(text, start, **kw)
    return Segment(0, words[0].start, words[-1].end, text, words, avg_logprob=-0.2)


def test_a_block_of_three_sentences_becomes_three_segments_at_their_words_times():
    seg = block("Bonjour à tous. Je m'appelle Éric Joanis, chercheur. Voici le plan ?")
    out = sentence_segments([seg])
    assert [s.text for s in out] == ["Bonjour à tous.", "Je m'appelle Éric Joanis, chercheur.", "Voici le plan ?"]
    assert [s.index for s in out] == [0, 1, 2]
    assert out[1].start == seg.words[3].start and out[1].end == seg.words[7].end
    assert all(s.words and s.avg_logprob == -0.2 for s in out)
    assert [w for s in out for w in s.words] == seg.words  # every word kept, once, in order


def test_a_sentence_across_two_whisper_segments_is_one_segment():
    first, second = block("Nous avons travaillé sur"), block("la traduction automatique.", start=1.6)
    out = sentence_segments([first, second])
    assert [s.text for s in out] == ["Nous avons travaillé sur la traduction automatique."]
    assert (out[0].start, out[0].end) == (first.start, second.end)


def test_abbreviations_do_not_end_a_sentence():
    assert not ends_sentence("M.") and not ends_sentence("etc.") and ends_sentence("fin.»")
    assert [s.text for s in sentence_segments([block("Selon M. Dupont, oui. Fin.")])] == [
        "Selon M. Dupont, oui.", "Fin."]
    assert split_text("Selon M. Dupont, oui. Fin.") == ["Selon M. Dupont, oui.", "Fin."]


def test_a_long_sentence_is_cut_into_clauses_of_at_most_15_seconds_at_a_comma_near_its_middle():
    text = " ".join(["mot"] * 30) + ", " + " ".join(["autre"] * 30) + "."  # 61 words, 24 s at 0.4 s a word
    out = sentence_segments([block(text.replace(" ,", ","))])
    assert len(out) == 2 and all(s.end - s.start <= MAX_SECONDS for s in out)
    assert out[0].text.endswith("mot,") and out[1].text.startswith("autre")


def test_without_punctuation_a_long_sentence_is_cut_at_its_longest_pause():
    text = " ".join(f"m{i}" for i in range(60))
    out = sentence_segments([block(text, pauses={33: 0.9})])
    assert all(s.end - s.start <= MAX_SECONDS for s in out)
    assert out[1].text.startswith("m33")


def test_segments_without_word_times_are_split_by_their_text():
    out = sentence_segments([Segment(0, 10.0, 20.0, "Une phrase. Une autre phrase ici.")])
    assert [s.text for s in out] == ["Une phrase.", "Une autre phrase ici."]
    assert out[0].start == 10.0 and out[-1].end == 20.0 and out[0].end <= out[1].start


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["mot", "le", "fin.", "oui,", "quoi ?", "M.", "x"]),
                          st.floats(0.05, 3.0), st.floats(0.0, 2.0)), min_size=1, max_size=200))
def test_any_words_come_out_whole_in_order_in_segments_of_at_most_15_seconds(tokens):
    words, at = [], 0.0
    for text, length, pause in tokens:
        at += pause
        words.append(Word(at, at + length, " " + text))
        at += length
    out = sentence_segments([Segment(0, words[0].start, words[-1].end, "", words)])
    assert [w for s in out for w in s.words] == words
    for s in out:
        assert s.start == s.words[0].start and s.end == s.words[-1].end
        assert s.end - s.start <= MAX_SECONDS or len(s.words) == 1


def test_an_index_from_before_sentences_is_re_segmented_from_its_stored_words(tmp_path):
    """Issue 18: an index written when segments were Whisper's ~28-s blocks is cut into sentences in
    place (upgrade, or the next run's start), from its words, without the media or a transcription."""
    import subprocess
    import sys

    from recording_index.index.chunking import chunk_segments
    from recording_index.index.database import Index
    from recording_index.models import Recording
    from recording_index.pipeline import RESEGMENTED, upgrade

    french = ("Bonjour à tous. Nous parlons de prévention de la criminalité aujourd'hui. La coordination "
              "des acteurs locaux est essentielle. Merci de votre attention.")
    old = block(french, per_word=1.2)  # one 28-s block, as batched decoding gave before
    old.text_en = "Hello everyone. We are talking about crime prevention today. Coordination matters. Thank you."
    old.translation_engine = "whisper"
    assert old.end - old.start > 20
    db = tmp_path / "old.db"
    recording = Recording(id="talk", source="/media/talk.mp3", title="Talk", content_hash="h", duration=30.0)
    with Index(db) as index:
        index.add(recording, [old], chunk_segments("talk", [old]), engine="faster-whisper", model="base",
                  settings={"chunk_seconds": 30.0}, stage_keys={"transcribe": "t-1", "translate": "x-1"},
                  translation_engine="whisper")
    ran = subprocess.run([sys.executable, "-m", "recording_index.cli", "upgrade", "--db", str(db)],
                         capture_output=True, text=True)
    assert ran.returncode == 0 and "1 recording(s) re-segmented into sentences" in ran.stdout, ran.stderr
    with Index(db, readonly=True) as index:
        _, segments = index.get("talk")
        keys = index.stage_keys(recording)
        hit = index.search("coordination")[0]
    assert [s.text for s in segments] == ["Bonjour à tous.", "Nous parlons de prévention de la criminalité aujourd'hui.",
                                          "La coordination des acteurs locaux est essentielle.", "Merci de votre attention."]
    assert all(s.end - s.start <= MAX_SECONDS and s.translation_engine == "whisper" for s in segments)
    assert " ".join(s.text_en for s in segments) == old.text_en  # the English, shared out, whole
    assert segments[0].text_en.startswith("Hello") and "Thank you." in segments[-1].text_en
    assert keys["segment"] == RESEGMENTED and keys["transcribe"] == "t-1"
    assert hit.sentence_fr == "La coordination des acteurs locaux est essentielle." and hit.moment > 10
    assert upgrade(db) == []  # once
    # Rows another program wrote (words without times) are left as they are; the others go on.
    with Index(db) as index:
        other = Recording(id="odd", source="/media/odd.mp3", content_hash="o")
        index.add(other, [block("Bonjour à tous.")], [], stage_keys={"transcribe": "t-1"})
        index.db.execute("UPDATE words SET start = NULL WHERE recording_id = 'odd'")
        index.add(Recording(id="talk-2", source="/media/talk-2.mp3", content_hash="h2"), [block(french)], [],
                  stage_keys={"transcribe": "t-2"})
    assert upgrade(db) == ["talk-2"]
