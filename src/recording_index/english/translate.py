"""English for every segment: Argos Translate (text, sentence by sentence) or, offline, Whisper's own
speech translation (audio → English), both aligned back to the French segments' times."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import socket
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from recording_index.config import Settings
from recording_index.english.sentences import (assign_by_time, assign_english, keep_numbers, keep_terms,
                                               sentences_from_segments)
from recording_index.errors import RecordingIndexError, TranslationUnavailable
from recording_index.ingest.audio import open_audio
from recording_index.models import Recording, Segment, Transcript
from recording_index.speech.repetition import guard_repetitions
from recording_index.speech.transcribe import load_engine, windowed_segments
from recording_index.speech.vocabulary import prompt_parts
from recording_index.utils import progress_bar

TRANSLATORS = ("argos", "whisper", "none")
logger = logging.getLogger(__name__)
BATCH_SIZE = 16
INDEX_TIMEOUT = 15  # seconds, for the Argos package index and downloads


def argos_package(from_code: str = "fr", to_code: str = "en"):
    """The installed Argos package for this pair, or None (also when argostranslate is missing)."""
    try:
        import argostranslate.package
    except ImportError:
        return None
    for package in argostranslate.package.get_installed_packages():
        if package.type == "translate" and package.from_code == from_code and package.to_code == to_code:
            return package
    return None


def argos_model_id(package) -> str:
    """What rows record as the model of Argos English, e.g. "argos:fr-en@1.9"."""
    return f"argos:{package.from_code}-{package.to_code}@{package.package_version or '0'}"


def install_argos(from_file: str | Path | None = None, from_code: str = "fr", to_code: str = "en"):
    """Install the Argos package for the pair from a local .argosmodel, or from the Argos index."""
    try:
        import argostranslate.package
    except ImportError:
        raise RecordingIndexError("argostranslate is not installed: pip install -e '.[argos]'") from None
    if from_file:
        path = Path(from_file)
        if not path.is_file():
            raise RecordingIndexError(f"{path}: no such file")
        if not zipfile.is_zipfile(path):
            raise RecordingIndexError(f"{path}: not an Argos package (.argosmodel is a zip archive)")
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/metadata.json")]
            if not names:
                raise RecordingIndexError(f"{path}: not an Argos package (no metadata.json in its folder)")
            metadata = json.loads(archive.read(names[0]))
        if (metadata.get("from_code"), metadata.get("to_code")) != (from_code, to_code):
            raise RecordingIndexError(f"{path}: translates {metadata.get('from_code')}→{metadata.get('to_code')}, "
                                      f"not {from_code}→{to_code}")
        argostranslate.package.install_from_path(path)
    else:
        _install_from_index(from_code, to_code)
    package = argos_package(from_code, to_code)
    if package is None:
        raise RecordingIndexError(f"Argos {from_code}→{to_code} package did not install")
    return package


def _install_from_index(from_code: str, to_code: str) -> None:
    import argostranslate.package
    import argostranslate.settings

    previous = socket.getdefaulttimeout()
    # argostranslate opens URLs with no time-out: where the network hangs, fail in seconds, not minutes.
    socket.setdefaulttimeout(INDEX_TIMEOUT)
    # It logs a network error as a raw tuple, "(URLError(gaierror(-2, …)),)", and returns: the reason
    # goes into our one line instead.
    argos_log, said = logging.getLogger("argostranslate.utils"), []
    catch = logging.Handler()
    catch.emit = lambda record: said.append(record.getMessage())
    argos_log.addHandler(catch)
    propagate, argos_log.propagate = argos_log.propagate, False
    try:
        argostranslate.package.update_package_index()  # logs and returns on network errors
        if not Path(argostranslate.settings.local_package_index).exists():
            # get_available_packages() would retry the download forever (it recurses on a missing index).
            reason = re.sub(r"^\(|,\)$", "", said[-1]) if said else "no answer"
            raise RecordingIndexError(f"the Argos package index ({argostranslate.settings.remote_package_index}) is "
                                      f"unreachable ({reason[:160]}); install from a file: recording-index models "
                                      "install --from FILE")
        available = [p for p in argostranslate.package.get_available_packages()
                     if p.from_code == from_code and p.to_code == to_code]
        if not available:
            raise RecordingIndexError(f"no {from_code}→{to_code} package in the Argos package index (is the network "
                                      "reachable?); install from a file: recording-index models install --from FILE")
        try:
            available[0].install()
        except Exception as exc:  # urllib's many network errors
            raise RecordingIndexError(f"Argos package download failed ({exc}); "
                                      "install from a file: recording-index models install --from FILE") from None
    finally:
        socket.setdefaulttimeout(previous)
        argos_log.removeHandler(catch)
        argos_log.propagate = propagate


class ArgosTranslator:
    """An installed Argos package, run sentence batches at a time.

    Argos's own `translate()` re-splits text with its sentence detector (MiniSBD, which downloads a
    model at first use and is slow on long text, argos-translate #338), cannot batch across
    sentences, and does not bound the output length. Our sentences are already cut, so this runs the
    package's CTranslate2 model with the package's own tokenizer and target prefix, with the decoding
    parameters of argostranslate's `apply_packaged_translation`, in batches and with a length bound.
    """

    name = "argos"

    def __init__(self, package, threads: int = 0):
        import ctranslate2

        if getattr(package, "tokenizer", None) is None:
            raise TranslationUnavailable(f"Argos package {package.package_path} has no tokenizer model")
        self.package = package
        self.model_id = argos_model_id(package)
        self.translator = ctranslate2.Translator(str(Path(package.package_path) / "model"), device="cpu",
                                                 intra_threads=threads)

    def translate_sentences(self, sentences: Sequence[str], progress: bool = False) -> list[str | None]:
        """English for each sentence, in order; None where the model failed on it."""
        out: list[str | None] = [None] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # similar lengths batch well
        bar = progress_bar(progress and len(sentences) > 0, "translating", len(sentences), "sentence")
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            try:
                results = self._translate([sentences[i] for i in batch])
            except Exception:
                results = []
                for i in batch:  # find the sentence that broke the batch; keep the others
                    try:
                        results += self._translate([sentences[i]])
                    except Exception:
                        results.append(None)
            for i, english in zip(batch, results):
                out[i] = english
            if bar:
                bar.update(len(batch))
        if bar:
            bar.close()
        return out

    def _translate(self, sentences: list[str]) -> list[str]:
        tokenizer, prefix = self.package.tokenizer, self.package.target_prefix
        tokens = [tokenizer.encode(s) if s.strip() else [] for s in sentences]
        # A sentence rarely needs more than twice its length in the other language; a broken or tiny
        # model would otherwise generate up to CTranslate2's default of 256 tokens per sentence.
        bound = min(512, 2 * max((len(t) for t in tokens), default=1) + 10)
        results = self.translator.translate_batch(
            [t or ["."] for t in tokens], target_prefix=[[prefix]] * len(tokens) if prefix else None,
            replace_unknowns=True, beam_size=4, length_penalty=0.2, max_decoding_length=bound)
        english = []
        for toks, result in zip(tokens, results):
            text = tokenizer.decode(result.hypotheses[0]) if toks else ""
            if prefix and text.startswith(prefix):
                text = text[len(prefix):]
            english.append(text.strip())
        return english


def translate_text(segments: Sequence[Segment], translator: ArgosTranslator, progress: bool = False,
                   terms: Sequence[str] = ()) -> None:
    """Fill `text_en` of every segment from whole-sentence translations (in place), with the French
    figures and the catalog's `terms` (names, acronyms) kept as the French has them."""
    sentences = sentences_from_segments(segments)
    english = translator.translate_sentences([s.text for s in sentences], progress)
    english = [keep_terms(s.text, keep_numbers(s.text, e), terms) if e else e for s, e in zip(sentences, english)]
    assign_english(segments, sentences, [e or "" for e in english])
    failed = {index for sentence, e in zip(sentences, english) if e is None for index, _ in sentence.pieces}
    for segment in segments:
        segment.translation_engine = "argos-failed" if segment.index in failed else "argos"
        segment.translation_model = translator.model_id


def translate_speech(segments: Sequence[Segment], audio: np.ndarray | None, engine, language: str | None,
                     english: Sequence[Segment] | None = None) -> None:
    """Fill `text_en` of every segment from Whisper's speech translation of the audio (in place).

    `english`: that translation, when it was decoded with the transcription (`transcribe(english=…)`);
    otherwise a translation pass over `audio` (`audio.open_audio`'s: read a window at a time)."""
    if english is None:
        english = windowed_segments(audio, engine, language, task="translate")
    assign_by_time(segments, list(guard_repetitions(english)))
    for segment in segments:
        segment.translation_engine = "whisper"
        segment.translation_model = engine.model_id


_ARGOS: dict[tuple, ArgosTranslator] = {}
_NOTICES: set[str] = set()


# Notices: information a person running the program wants once (the command line shows them).
notices = logging.getLogger("recording_index.notices")


def notice_once(message: str) -> None:
    """Information, once per process: a fallback is worth saying, not repeating."""
    if message not in _NOTICES:
        _NOTICES.add(message)
        notices.info("notice: %s", message)


def say_fallback(settings: Settings, translator: str, source_language: str = "fr") -> None:
    """When English is about to be made by Whisper because no Argos package is installed: said once,
    by the run that translates (not by skipped runs, nor by a dry run)."""
    if settings.translator == "argos" and translator == "whisper":
        notice_once(f"no Argos {source_language}→en package installed (recording-index models install); "
                    "English comes from Whisper's speech translation")


def choose_translator(settings: Settings, source_language: str = "fr") -> str:
    """The translator that will run: the configured one, or Whisper when Argos cannot (said once)."""
    if settings.translator not in TRANSLATORS:
        raise RecordingIndexError(f"unknown translator {settings.translator!r}: use one of {', '.join(TRANSLATORS)}")
    if settings.translator != "argos":
        return settings.translator
    if argos_package(source_language, "en") is None:
        return "whisper"  # said by the run that translates (say_fallback)
    return "argos"


def argos_translator(settings: Settings, source_language: str = "fr") -> ArgosTranslator:
    package = argos_package(source_language, "en")
    if package is None:
        raise TranslationUnavailable(f"no Argos {source_language}→en package installed")
    key = (str(package.package_path), settings.threads)
    if key not in _ARGOS:
        _ARGOS[key] = ArgosTranslator(package, settings.threads)
    return _ARGOS[key]


def translation_model_id(chosen: str, whisper_model_id: str, source_language: str = "fr") -> str:
    """Which model the `chosen` translator would use, without loading anything (for skip decisions)."""
    if chosen == "argos":
        return argos_model_id(argos_package(source_language, "en"))
    return "whisper:" + whisper_model_id if chosen == "whisper" else "none"


def translate_transcript(transcript: Transcript, translator: str, settings: Settings,
                         wav: Path | None = None, recording: Recording | None = None) -> Transcript:
    """The transcript with every segment's English filled by `translator` ("argos", "whisper" or "none").

    A new transcript: the one given is left as it was (it may be a stored result of another task).
    Whisper's English comes from the transcript's `english_speech` when it was decoded with the
    French, else from a translation pass over `wav`. The English keeps the names of the `recording`'s
    catalog vocabulary and speakers as they are written."""
    # New English: what the correction layer knew of the old one goes (corrections/layer.py).
    segments = [dataclasses.replace(s, words=list(s.words), origin_en="machine", text_en_machine=None)
                for s in transcript.segments]
    language = settings.whisper_language
    if translator == "argos":
        model = argos_translator(settings, language or "fr")
        vocabulary, speakers, _event = prompt_parts(recording) if recording else ([], [], [])
        translate_text(segments, model, settings.progress, vocabulary + speakers)
        model_id = model.model_id
    elif translator == "whisper":
        engine = load_engine(settings)
        english = transcript.english_speech
        translate_speech(segments, open_audio(wav) if english is None else None, engine, language, english)
        model_id = engine.model_id
        vocabulary, speakers, _event = prompt_parts(recording) if recording else ([], [], [])
        for segment in segments:  # Whisper's English misspells names as its French did without a prompt
            if segment.text_en:
                segment.text_en = keep_terms(segment.text, segment.text_en, vocabulary + speakers)
    else:
        for segment in segments:
            segment.text_en = segment.translation_engine = segment.translation_model = None
        model_id = ""
    return dataclasses.replace(transcript, segments=segments, translator=translator, translation_model=model_id)


def retranslate(segments: Sequence[Segment], settings: Settings, recording: Recording | None = None) -> None:
    """Fill the English of `segments` (sentences a person corrected) again with Argos, in place,
    keeping the catalog's names as `translate_transcript` does."""
    vocabulary, speakers, _event = prompt_parts(recording) if recording else ([], [], [])
    model = argos_translator(settings, settings.whisper_language or "fr")
    for segment in segments:  # one at a time: corrected sentences need not be neighbours
        translate_text([segment], model, False, vocabulary + speakers)
