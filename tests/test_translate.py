"""Translation with the real argostranslate code path (a tiny package built here) and with Whisper."""

import pytest

from recording_index.ingest import audio
from recording_index.config import Settings
from recording_index.errors import RecordingIndexError
from recording_index.evaluation import chrf
from recording_index.models import Segment
from recording_index.speech.transcribe import load_engine
from recording_index.english.translate import (ArgosTranslator, argos_package, choose_translator, install_argos,
                                       translate_speech, translate_text)
from conftest import SHARED_SPEECH

argostranslate = pytest.importorskip("argostranslate.package")


@pytest.fixture(scope="module")
def installed(tiny_argos_file):
    package = install_argos(tiny_argos_file)
    yield package
    argostranslate.uninstall(package)


def test_install_from_file_uses_argostranslate(installed):
    assert installed.from_code == "fr" and installed.to_code == "en"
    assert [p.package_path for p in argostranslate.get_installed_packages()] == [installed.package_path]
    assert argos_package("fr", "en").package_path == installed.package_path
    assert choose_translator(Settings()) == "argos"


def test_install_refuses_what_is_not_a_fr_en_package(tmp_path):
    not_zip = tmp_path / "x.argosmodel"
    not_zip.write_text("nope")
    with pytest.raises(RecordingIndexError, match="not an Argos package"):
        install_argos(not_zip)
    with pytest.raises(RecordingIndexError, match="no such file"):
        install_argos(tmp_path / "absent.argosmodel")


def test_install_without_network_says_so(monkeypatch, tmp_path, capsys):
    import argostranslate.settings

    # The real index download code, against a loopback port where nothing listens (no network here).
    monkeypatch.setattr(argostranslate.settings, "remote_package_index", "http://127.0.0.1:9/index.json")
    monkeypatch.setattr(argostranslate.settings, "local_package_index", tmp_path / "index.json")
    with pytest.raises(RecordingIndexError, match=r"Argos package index .* is unreachable \(URLError.*refused.*--from FILE"):
        install_argos(None, "fr", "en")
    printed = capsys.readouterr()
    assert printed.err == printed.out == ""  # the reason is in the one error line, not printed raw before it


def test_sentences_translate_in_order_with_bounded_length(installed):
    translator = ArgosTranslator(installed)
    sentences = ["Bonjour.", "La coordination des acteurs locaux est essentielle.", "", "Merci beaucoup."]
    english = translator.translate_sentences(sentences)
    assert len(english) == 4 and all(isinstance(e, str) for e in english)
    assert english[2] == ""
    # A random model never stops by itself: the bound (twice the batch's longest input, plus 10
    # tokens; re-encoding the output may add a few) keeps it near the input's length, not at 256.
    longest = max(len(installed.tokenizer.encode(s)) for s in sentences)
    for text in english:
        assert len(installed.tokenizer.encode(text)) <= 2 * longest + 10 + 8
    assert translator.translate_sentences(sentences) == english  # deterministic (beam search)


def test_every_segment_gets_english_and_the_engine_is_recorded(installed):
    segments = [Segment(0, 0, 4, "Bonjour, je suis programmeur"), Segment(1, 4, 8, "au centre. La coordination"),
                Segment(2, 8, 12, "est essentielle."), Segment(3, 12, 13, "Merci.")]
    translate_text(segments, ArgosTranslator(installed))
    assert all(isinstance(s.text_en, str) for s in segments)
    assert all(s.translation_engine == "argos" for s in segments)
    assert {s.translation_model for s in segments} == {"argos:fr-en@0.1"}
    assert [s.index for s in segments] == [0, 1, 2, 3]


def test_without_a_package_whisper_is_chosen_and_said_once_when_it_translates(caplog, monkeypatch, tmp_path):
    import logging

    import argostranslate.settings

    import recording_index.english.translate as translate_module

    monkeypatch.setattr(argostranslate.settings, "package_dirs", [tmp_path])
    monkeypatch.setattr(translate_module, "_NOTICES", set())  # as in a new process: nothing said yet
    # The command line (run earlier in this process by other tests) prints the library's lines itself.
    monkeypatch.setattr(logging.getLogger("recording_index"), "propagate", True)
    caplog.set_level(logging.INFO, logger="recording_index.notices")
    assert argos_package("fr", "en") is None
    assert choose_translator(Settings()) == "whisper" and choose_translator(Settings()) == "whisper"
    assert not [r for r in caplog.records if r.getMessage().startswith("notice:")]  # choosing says nothing
    translate_module.say_fallback(Settings(), "whisper")
    translate_module.say_fallback(Settings(), "whisper")
    translate_module.say_fallback(Settings(translator="whisper"), "whisper")  # asked for: no fallback to say
    # One record each time the notice is given (Prefect, imported by other tests, may hand a record
    # to pytest's handler twice: the same record, counted once).
    notices = [r for r in {id(r): r for r in caplog.records}.values() if r.getMessage().startswith("notice:")]
    assert [(r.levelname, r.name) for r in notices] == [("INFO", "recording_index.notices")]
    assert notices[0].getMessage() == ("notice: no Argos fr→en package installed (recording-index models install); "
                                       "English comes from Whisper's speech translation")  # said once, as information
    assert choose_translator(Settings(translator="none")) == "none"


@pytest.mark.slow
def test_whisper_speech_translation_quality_on_reference_translations(settings, cache_dir):
    """chrF of Whisper base's English against the CVSS reference translations (lower-cased, as they are).

    Measured: 47.7 and 32.3 (mean 40.0); the untranslated French scores 27.7 and 17.5 (mean 22.6).
    """
    folder = SHARED_SPEECH / "commonvoice-fr-en"
    if not folder.exists():
        pytest.skip("../shared/data/fr-speech is not beside the project")
    engine = load_engine(settings)
    scores, untranslated = [], []
    names = (folder / "wav_list.txt").read_text().split()
    for name, reference in zip(names, (folder / "target.txt").read_text().splitlines()):
        samples = audio.load_audio(audio.normalise(folder / name.split("/")[-1], cache_dir / "audio"))
        french = [Segment(0, 0, len(samples) / 16000, (folder / "source.txt").read_text().splitlines()[names.index(name)])]
        translate_speech(french, samples, engine, "fr")
        assert french[0].translation_engine == "whisper"
        scores.append(chrf(reference, french[0].text_en.lower()))
        untranslated.append(chrf(reference, french[0].text.lower()))
    mean = sum(scores) / len(scores)
    assert mean > 33
    assert mean > sum(untranslated) / len(untranslated) + 10
