"""Transcription engines behind one interface: faster-whisper (default) and openai-whisper.

Both yield the same `Segment`/`Word` records, one segment at a time, so long recordings stream.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from recording_index.ingest import audio
from recording_index.ingest.audio import SAMPLE_RATE, windows
from recording_index.config import Settings
from recording_index.errors import BadInputError, ModelUnavailableError, RecordingIndexError
from recording_index.models import Segment, Transcript, Word
from recording_index.speech.repetition import guard_repetitions
from recording_index.speech.vocabulary import drop_invented, echoes_prompt
from recording_index.utils import progress_bar
from recording_index.speech.weights import ModelLocation, model_id, resolve_model

ENGINES = ("faster-whisper", "openai-whisper")
logger = logging.getLogger(__name__)


def shares_encoder(settings: Settings) -> bool:
    """Whether these settings' engine can decode English from the French's encoder pass: faster-whisper's
    batched decoding (the default) can."""
    return settings.engine == "faster-whisper" and settings.batch_size > 0 and settings.vad


class Engine(Protocol):
    name: str
    model_id: str
    skips_silence: bool  # decodes only what voice activity detection finds to be speech

    def segments(self, audio: np.ndarray, language: str | None, task: str = "transcribe",
                 english: list[Segment] | None = None, prompt: str = "") -> Iterator[Segment]:
        """Yield the segments of `audio` (16 kHz mono float32) as they are decoded, with `prompt`
        (speech/vocabulary.py) given for every window. An engine whose `shares_encoder` is true also
        appends Whisper's English of the same audio to `english`."""

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language most likely spoken in `audio`'s speech, and its probability."""


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, location: ModelLocation, settings: Settings):
        from faster_whisper import WhisperModel

        self.model_id = location.model_id
        self.settings = settings
        self.model = WhisperModel(str(location.path), device="cpu", compute_type=settings.compute_type,
                                  cpu_threads=settings.threads)
        self.detected_language: str | None = None

    @property
    def skips_silence(self) -> bool:
        """Voice activity detection runs when `vad` says (batched decoding needs it: without it, decoding
        is sequential whatever `batch_size` says)."""
        return self.settings.vad

    @property
    def shares_encoder(self) -> bool:
        return shares_encoder(self.settings)

    def segments(self, audio: np.ndarray, language: str | None, task: str = "transcribe",
                 english: list[Segment] | None = None, prompt: str = "") -> Iterator[Segment]:
        batched = self.shares_encoder
        common = dict(language=language, task=task, beam_size=self.settings.beam_size,
                      # English word times only place English on the French segments; batched, both
                      # passes have one segment per VAD chunk, so segment times do that, and skipping
                      # the alignment makes the English pass a quarter faster (bench/history.md).
                      word_timestamps=task == "transcribe" or not batched,
                      # Conditioning on the previous window is what lets a loop feed itself: the first
                      # line of defence against repeated phrases (the guard in repetition.py is the second).
                      condition_on_previous_text=False)
        if batched:
            # Batched decoding of the speech that VAD found: 20% faster here on 2 cores, same accuracy
            # (bench/history.md), and windows are independent, so no loop can carry from one to the next.
            from faster_whisper import BatchedInferencePipeline

            english_by_chunk: dict[int, str] = {}
            pipeline = BatchedInferencePipeline(self.model) if english is None else _bilingual(self.model,
                                                                                              english_by_chunk)
            # Batched, the initial prompt is given to every batch.
            found, info = pipeline.transcribe(audio, batch_size=self.settings.batch_size, vad_filter=True,
                                              initial_prompt=prompt or None, **common)
        else:
            # Sequential, an initial prompt reaches the first 30-s window alone (the text is not
            # carried over): hotwords reach every window.
            found, info = self.model.transcribe(audio, vad_filter=self.settings.vad, hotwords=prompt or None,
                                                **common)
        self.detected_language = info.language
        spans: dict[int, tuple[float, float]] = {}  # seek → the time its French covers, in the audio
        for i, s in enumerate(found):
            first, last = spans.get(s.seek, (s.start, s.end))
            spans[s.seek] = (min(first, s.start), max(last, s.end))
            yield Segment(
                index=i, start=float(s.start), end=float(s.end), text=s.text.strip(),
                words=[Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in s.words or []],
                avg_logprob=float(s.avg_logprob), no_speech_prob=float(s.no_speech_prob),
                compression_ratio=float(s.compression_ratio),
            )
        if english is not None:
            for seek, (start, end) in sorted(spans.items()):
                if english_by_chunk.get(seek):
                    english.append(Segment(len(english), float(start), float(end), english_by_chunk[seek]))


    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        language, probability, _ = self.model.detect_language(audio, vad_filter=self.settings.vad)
        return language, float(probability)


class OpenAIWhisperEngine:
    """The reference implementation, run on the same weights through a converted checkpoint."""

    name = "openai-whisper"
    skips_silence = False  # openai-whisper decodes every 30 s, silence and music included

    def __init__(self, location: ModelLocation, settings: Settings):
        try:
            import torch
            from whisper.model import ModelDimensions, Whisper
        except ImportError:
            raise ModelUnavailableError(
                "engine 'openai-whisper' needs the openai extra: pip install -e '.[openai]' "
                "(make installs the CPU build of torch first)") from None
        from recording_index.speech.convert import convert_ct2_to_openai

        self.model_id = location.model_id
        self.settings = settings
        torch.set_num_threads(settings.threads)
        checkpoint = settings.cache_path / "openai-whisper" / f"{location.model_id.replace(':', '-').replace('/', '_')}.pt"
        if not checkpoint.exists():
            logger.warning("converting %s to an openai-whisper checkpoint (once)…", location.path)
            convert_ct2_to_openai(location.path, checkpoint)
        # What whisper.load_model does with a file, from one read of it: the checkpoint also holds the
        # alignment heads (for word times), which load_model only sets for the models it downloads.
        stored = torch.load(checkpoint, map_location="cpu", weights_only=False)
        self.model = Whisper(ModelDimensions(**stored["dims"]))
        self.model.load_state_dict(stored["model_state_dict"])
        heads = stored.get("alignment_heads")
        if heads:
            mask = torch.zeros(self.model.dims.n_text_layer, self.model.dims.n_text_head, dtype=torch.bool)
            for layer, head in heads:
                mask[layer, head] = True
            self.model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
        self.detected_language = None

    shares_encoder = False

    def segments(self, audio: np.ndarray, language: str | None, task: str = "transcribe",
                 english: list[Segment] | None = None, prompt: str = "") -> Iterator[Segment]:
        result = self.model.transcribe(
            np.ascontiguousarray(audio), language=language, task=task, word_timestamps=True, fp16=False,
            beam_size=self.settings.beam_size, best_of=self.settings.beam_size,
            condition_on_previous_text=False, verbose=None,
            # Every window, not the first alone (openai-whisper ≥ 20240930).
            initial_prompt=prompt or None, carry_initial_prompt=bool(prompt),
        )
        self.detected_language = result.get("language")
        for i, s in enumerate(result["segments"]):
            yield Segment(
                index=i, start=float(s["start"]), end=float(s["end"]), text=s["text"].strip(),
                words=[Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                       for w in s.get("words", [])],
                avg_logprob=float(s["avg_logprob"]), no_speech_prob=float(s["no_speech_prob"]),
                compression_ratio=float(s["compression_ratio"]),
            )


    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        import whisper

        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(np.ascontiguousarray(audio)),
                                          self.model.dims.n_mels).to(self.model.device)
        _, probabilities = self.model.detect_language(mel)
        language = max(probabilities, key=probabilities.get)
        return language, float(probabilities[language])


_ENGINES: dict[tuple, Engine] = {}


def load_engine(settings: Settings) -> Engine:
    """The engine for these settings. Its weights are loaded once per process (that takes seconds)
    and shared; its decoding options (beam size, batch size, VAD) are always these settings', not
    those of whichever call loaded the weights first."""
    key = (settings.engine, settings.model, settings.compute_type, settings.threads, str(settings.cache_path))
    if key not in _ENGINES:
        if settings.engine not in ENGINES:
            raise RecordingIndexError(f"unknown engine {settings.engine!r}: use one of {', '.join(ENGINES)}")
        location = resolve_model(settings.model, settings.cache_path)
        cls = FasterWhisperEngine if settings.engine == "faster-whisper" else OpenAIWhisperEngine
        _ENGINES[key] = cls(location, settings)
    engine = copy.copy(_ENGINES[key])  # a shallow copy: the same loaded model
    engine.settings = settings
    return engine


def _bilingual(model, english_by_chunk: dict[int, str]):
    """faster-whisper's batched pipeline, also decoding each batch's English from the same encoder
    output: Whisper's speech translation then costs its decoding alone, not a second pass over the
    audio (VAD, features and encoder again). The English of each VAD chunk is put in
    `english_by_chunk` under the `seek` that the chunk's French segments carry."""
    from faster_whisper import BatchedInferencePipeline
    from faster_whisper.tokenizer import Tokenizer

    class Bilingual(BatchedInferencePipeline):
        def forward(self, features, tokenizer, chunks_metadata, options):
            self.batch_chunks = chunks_metadata
            return super().forward(features, tokenizer, chunks_metadata, options)

        def generate_segment_batched(self, features, tokenizer, options):
            encoder_output, outputs = super().generate_segment_batched(features, tokenizer, options)
            to_english = Tokenizer(self.model.hf_tokenizer, True, task="translate", language=tokenizer.language_code)
            prompt = self.model.get_prompt(to_english, [], without_timestamps=True)
            results = self.model.model.generate(
                encoder_output, [list(prompt) for _ in outputs], beam_size=options.beam_size,
                patience=options.patience, length_penalty=options.length_penalty, max_length=self.model.max_length,
                suppress_blank=options.suppress_blank, suppress_tokens=options.suppress_tokens,
                repetition_penalty=options.repetition_penalty, no_repeat_ngram_size=options.no_repeat_ngram_size)
            for chunk, result in zip(self.batch_chunks, results):
                seek = int(chunk["offset"] * self.model.frames_per_second)  # as BatchedInferencePipeline.forward
                english_by_chunk[seek] = to_english.decode(result.sequences_ids[0]).strip()
            return encoder_output, outputs

    return Bilingual(model)


def windowed_segments(samples: np.ndarray, engine: Engine, language: str | None, task: str = "transcribe",
                      english: list[Segment] | None = None, prompt: str = "") -> Iterator[Segment]:
    """The engine's segments of `samples` (`audio.open_audio`'s, or float32), decoded a window at a time
    (audio.windows), their times made relative to the whole recording and their indexes continued.
    With `english` (an engine that `shares_encoder`), the English of each window is added to it."""
    index = 0
    # Where no voice activity detection keeps Whisper from silence, a prompt may be written out there.
    guarded = bool(prompt) and not engine.skips_silence
    for offset, window in windows(samples):
        window_english: list[Segment] | None = None if english is None else []
        speech = speech_spans(window, offset) if guarded else []
        for segment in engine.segments(window, language, task, window_english, prompt):
            _shift(segment, offset)
            if guarded and (segment := drop_invented(segment, prompt, speech)) is None:
                continue
            segment.index = index
            index += 1
            yield segment
        for segment in window_english or []:
            segment.index = len(english)
            _shift(segment, offset)
            english.append(segment)


def speech_spans(samples: np.ndarray, offset: float = 0.0) -> list[tuple[float, float]]:
    """When someone speaks in `samples`, as faster-whisper's voice activity detection (Silero) hears
    it, with a lower threshold than its default so that quiet speech counts: (start, end) in seconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(samples, VadOptions(threshold=0.35, speech_pad_ms=200))
    return [(offset + span["start"] / SAMPLE_RATE, offset + span["end"] / SAMPLE_RATE) for span in found]


def _shift(segment: Segment, offset: float) -> None:
    segment.start, segment.end = segment.start + offset, segment.end + offset
    for word in segment.words:
        word.start, word.end = word.start + offset, word.end + offset


def transcribe(audio: np.ndarray, engine: Engine, language: str | None = "fr", progress: bool = True,
               label: str = "", english: list[Segment] | None = None, prompt: str = "") -> Iterator[Segment]:
    """Stream guarded segments of `audio`, with a progress bar of audio time done over total.

    `audio` may be `audio.open_audio`'s: hours of it are read and decoded window by window. With
    `english` (an engine that `shares_encoder`), Whisper's English of the audio is added to it.
    """
    total = len(audio) / SAMPLE_RATE
    bar = progress_bar(progress, label or "transcribing", total, "s",
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")
    try:
        for segment in guard_repetitions(windowed_segments(audio, engine, language, english=english, prompt=prompt)):
            if echoes_prompt(segment.text, prompt):
                continue  # the prompt written out over silence, not speech
            if bar is not None:
                bar.update(max(0.0, min(segment.end, total) - bar.n))
            yield segment
        if bar is not None:
            bar.update(max(0.0, total - bar.n))
    finally:
        if bar is not None:
            bar.close()


def model_id_for(settings: Settings) -> str:
    """The id of the weights these settings use, without loading or writing anything (for skip decisions)."""
    return model_id(settings.model, settings.cache_path)


LANGUAGE_SAMPLE_SECONDS = 300
# Below this, Whisper's language guess is too unsure to overrule the configured language.
LANGUAGE_MISMATCH_PROBABILITY = 0.8


def transcribe_file(wav: Path, settings: Settings, label: str = "", source: str = "",
                    english: bool = False, prompt: str = "") -> Transcript:
    """Transcribe a normalised recording; refuse speech in another language than the configured one
    (Whisper would otherwise translate or garble it silently) and recordings with no speech at all.

    `english`: English will come from Whisper; an engine that can decodes it from the same encoder
    pass (Transcript.english_speech), and translation then needs no second pass over the audio."""
    engine = load_engine(settings)
    samples = audio.open_audio(wav)  # read and decoded a window at a time: flat memory for hours of audio
    source = source or str(wav)
    expected = settings.whisper_language
    if expected:
        # The opening minutes tell the language; VAD over hours of audio would only cost time.
        opening = audio.to_float(samples[:int(LANGUAGE_SAMPLE_SECONDS * SAMPLE_RATE)])
        spoken, probability = engine.detect_language(opening)
        if spoken != expected and probability >= LANGUAGE_MISMATCH_PROBABILITY:
            raise BadInputError(source, f"spoken language looks like {spoken!r} ({probability:.0%}), not {expected!r} "
                                        f"as configured; set language = {spoken!r} or 'auto' to index it")
    english_speech = [] if english and engine.shares_encoder else None
    segments = list(transcribe(samples, engine, expected, settings.progress, label, english_speech, prompt))
    if not segments:
        raise BadInputError(source, "no speech found (silence, noise or music only)")
    return Transcript(segments, engine.name, engine.model_id, getattr(engine, "detected_language", None),
                      worker=f"{socket.gethostname()}:{os.getpid()}", english_speech=english_speech,
                      audio_seconds=len(samples) / SAMPLE_RATE)
