"""The catalog's vocabulary as Whisper's prompt (speech/vocabulary.py), and the catalog field."""

import pytest

from recording_index.config import load_catalog
from recording_index.errors import ConfigError
from recording_index.models import Recording, Segment, Word
from recording_index.speech.vocabulary import PROMPT_TOKENS, drop_invented, echoes_prompt, prompt_for, prompt_tokens

CATALOG = """
[[events]]
title = "Coordination et soutien aux actions locales"
vocabulary = ["RÉSAL", "prévention de la criminalité", "CIPC"]

[[events.recordings]]
id = "part-1"
speakers = ["René-André Brisebois"]
source = "part1.mp3"
vocabulary = ["Pier-Alexandre Lemaire", "CIPC"]
"""


def test_a_recording_takes_its_own_terms_then_its_event_s_into_its_prompt(tmp_path):
    (tmp_path / "c.toml").write_text(CATALOG)
    recording = load_catalog(tmp_path / "c.toml").recordings[0]
    assert recording.vocabulary == ["Pier-Alexandre Lemaire", "CIPC", "RÉSAL", "prévention de la criminalité"]
    assert prompt_for(recording) == ("Pier-Alexandre Lemaire, CIPC, RÉSAL, prévention de la criminalité. "
                                     "René-André Brisebois. Coordination et soutien aux actions locales.")


def test_without_vocabulary_speakers_or_event_there_is_no_prompt():
    assert prompt_for(Recording(id="x", source="x.mp3")) == ""


def test_names_and_a_title_alone_make_no_prompt():
    """Measured (bench/history.md): a prompt of the speaker's name alone, or of a name and an event, made
    the sample and the Common Voice clips worse; the prompt comes with the terms of the talk."""
    assert prompt_for(Recording(id="x", source="x.mp3", speakers=["Éric Joanis"], event="Séminaire")) == ""
    assert prompt_for(Recording(id="x", source="x.mp3", speakers=["Éric Joanis"], vocabulary=["CNRC"])) == (
        "CNRC. Éric Joanis.")


def test_the_prompt_is_bounded_in_whisper_tokens_and_keeps_the_speakers_then_the_most_specific_terms():
    many = Recording(id="x", source="x.mp3", vocabulary=[f"terme{i:03d}" for i in range(80)],
                     speakers=["Nom Propre"], event="Un séminaire")
    prompt = prompt_for(many)
    assert prompt_tokens(prompt) <= PROMPT_TOKENS and prompt.startswith("terme000, terme001")
    assert "Nom Propre." in prompt and "Un séminaire" not in prompt  # the least specific goes first
    # Accented acronyms cost a token a letter or more: counted as Whisper counts them, the speaker kept.
    acronyms = Recording(id="x", source="x.mp3", speakers=["René-André Brisebois"],
                         vocabulary=[f"ÉÀ{chr(0x41 + i % 26)}Ç{i}" for i in range(50)])
    prompt = prompt_for(acronyms)
    assert "René-André Brisebois" in prompt and PROMPT_TOKENS - 10 < prompt_tokens(prompt) <= PROMPT_TOKENS


def test_prompt_tokens_are_whisper_s_own_count():
    from tokenizers import Tokenizer

    from recording_index.speech.weights import tokenizer_file

    text = "RÉSAL, prévention de la criminalité, CIPC, ICPC. René-André Brisebois. " * 3
    assert tokenizer_file() is not None  # the embedded weights' packages ship it
    assert prompt_tokens(text) == len(Tokenizer.from_file(str(tokenizer_file())).encode(
        " " + text, add_special_tokens=False).ids) < len(text.encode())


@pytest.mark.parametrize("bad, why", [
    ('vocabulary = "RÉSAL"', "must be a list of terms"),
    ("vocabulary = [1, 2]", "must be a list of terms"),
    ('vocabulary = [""]', "a term is one line"),
    ('vocabulary = ["\\u001b[31mred"]', "a term is one line"),
    (f'vocabulary = ["{"x" * 81}"]', "a term is one line"),
    ("vocabulary = [" + ", ".join(f'"t{i}"' for i in range(51)) + "]", "51 terms, at most 50"),
    # Names and titles go to Whisper too: checked as terms are.
    ('speakers = ["\\u001b[31mMallory"]', "a name is one line"),
    (f'speakers = ["{"x" * 101}"]', "a name is one line"),
    ("speakers = [" + ", ".join(f'"n{i}"' for i in range(21)) + "]", "21 names, at most 20"),
    ("speakers = 3", "must be a list of names"),
    (f'title = "{"x" * 301}"', "one line of at most 300"),
    ('title = "a\\u0007b"', "one line of at most 300"),
    ('event = "\\u202eevil"', "one line of at most 300"),
])
def test_a_bad_vocabulary_name_or_title_is_one_line_naming_the_file_line_and_field(tmp_path, bad, why):
    (tmp_path / "c.toml").write_text(f'[[recordings]]\nsource = "a.mp3"\n{bad}\n')
    with pytest.raises(ConfigError) as raised:
        load_catalog(tmp_path / "c.toml")
    field = bad.split(" =")[0]
    assert str(raised.value).startswith(f"{tmp_path / 'c.toml'}:3: recordings[1].{field}: ")
    assert why in str(raised.value) and "\n" not in str(raised.value) and "\x1b" not in str(raised.value)


def test_the_prompt_written_out_over_silence_is_told_from_speech():
    prompt = ("CIPC, RÉSAL, prévention de la criminalité, coordination. René-André Brisebois. "
              "Coordination – A Success Factor in Crime Prevention Initiatives.")
    assert echoes_prompt("CIPC, RÉSAL, prévention de la criminalité, coordination. René-André Brisebois.", prompt)
    assert echoes_prompt(prompt, prompt)
    # A speaker saying a term, a name or a few words of the prompt is speech, kept.
    for said in ("de la criminalité", "René-André Brisebois.", "Coordination, a success",
                 "La prévention de la criminalité, coordination et René-André Brisebois aujourd'hui."):
        assert not echoes_prompt(said, prompt), said
    assert not echoes_prompt("n'importe quoi", "")


def _said(text: str, start: float, step: float = 0.5) -> Segment:
    words = [Word(start + n * step, start + n * step + step * 0.9, " " + token, 0.9) for n, token in enumerate(text.split())]
    return Segment(0, words[0].start, words[-1].end, text, words)


def test_the_prompt_s_words_written_where_no_one_speaks_are_taken_out():
    prompt = "CNRC, langues autochtones. Éric Joanis. Séminaire du CNRC sur les langues autochtones."
    speech = [(10.0, 30.0)]
    # Over silence: the event's title, word for word.
    assert drop_invented(_said("Séminaire du CNRC sur les langues", 2.0), prompt, speech) is None
    # Said by the speaker (inside speech): kept as it is, the same segment.
    spoken = _said("Bienvenue au Séminaire du CNRC sur les langues autochtones.", 12.0)
    assert drop_invented(spoken, prompt, speech) is spoken
    # Merged into the first sentence (openai-whisper does this): only the invented words go.
    merged = _said("Séminaire du CNRC sur les langues autochtones Bonjour, je m'appelle Éric Joanis.", 6.0)
    kept = drop_invented(merged, prompt, speech)
    assert kept.text == "Bonjour, je m'appelle Éric Joanis." and kept.start == kept.words[0].start >= 9.0
    # Two words of the prompt are no recital; a segment with no words is left to echoes_prompt.
    assert drop_invented(_said("langues autochtones", 2.0), prompt, speech).text == "langues autochtones"
    assert drop_invented(Segment(0, 0, 1, "Séminaire du CNRC"), prompt, speech).text == "Séminaire du CNRC"
    assert drop_invented(_said("Séminaire du CNRC sur", 2.0), "", speech).text == "Séminaire du CNRC sur"


def test_titles_and_names_written_over_several_lines_or_with_tabs_are_taken(tmp_path):
    (tmp_path / "c.toml").write_text('[[recordings]]\nsource = "a.mp3"\ntitle = """Coordination et soutien\n'
                                     'aux actions locales"""\nevent = "Mini-conférence\\t2018"\n'
                                     'speakers = ["René-André  Brisebois", ""]\n')
    recording = load_catalog(tmp_path / "c.toml").recordings[0]
    assert recording.title == "Coordination et soutien aux actions locales"
    assert recording.event == "Mini-conférence\t2018" and recording.speakers == ["René-André Brisebois"]
