"""The catalog's vocabulary as Whisper's prompt (speech/vocabulary.py), and the catalog field."""

import pytest

from recording_index.config import load_catalog
from recording_index.errors import ConfigError
from recording_index.models import Recording
from recording_index.speech.vocabulary import PROMPT_CHARS, echoes_prompt, prompt_for

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


def test_the_prompt_is_bounded_and_keeps_the_most_specific_terms():
    many = Recording(id="x", source="x.mp3", vocabulary=[f"terme{i:03d}" for i in range(80)],
                     speakers=["Nom Propre"], event="Un séminaire")
    prompt = prompt_for(many)
    assert len(prompt) <= PROMPT_CHARS and prompt.startswith("terme000, terme001")
    assert "Un séminaire" not in prompt  # the least specific goes first


@pytest.mark.parametrize("bad, why", [
    ('vocabulary = "RÉSAL"', "must be a list of terms"),
    ("vocabulary = [1, 2]", "must be a list of terms"),
    ('vocabulary = [""]', "a term is one line"),
    ('vocabulary = ["\\u001b[31mred"]', "a term is one line"),
    (f'vocabulary = ["{"x" * 81}"]', "a term is one line"),
    ("vocabulary = [" + ", ".join(f'"t{i}"' for i in range(51)) + "]", "51 terms, at most 50"),
])
def test_a_bad_vocabulary_is_one_line_naming_the_file_line_and_field(tmp_path, bad, why):
    (tmp_path / "c.toml").write_text(f'[[recordings]]\nsource = "a.mp3"\n{bad}\n')
    with pytest.raises(ConfigError) as raised:
        load_catalog(tmp_path / "c.toml")
    assert str(raised.value).startswith(f"{tmp_path / 'c.toml'}:3: recordings[1].vocabulary: ")
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
