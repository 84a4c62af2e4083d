"""The stages of indexing one recording, as plain functions: the Prefect flow calls them as tasks,
and any other code can call them in the same order without Prefect."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import audio, cache_keys
from .chunking import chunk_segments
from .config import Settings, load_catalog
from .errors import BadInputError
from .index import Index
from .models import Chunk, Recording, Segment
from .fetch import FetchOptions
from .sources import is_remote, locate, recording_for_path, resolve as resolve_source
from .subtitle_files import FORMATS, render, write_atomically
from .subtitles import cues_for
from .transcribe import load_engine, model_id_for, transcribe
from .translate import argos_translator, choose_translator, translate_speech, translate_text, translation_model_id
from .utils import hms


@dataclass
class Prepared:
    """A located recording and the work it needs: "none", "translate" (English only) or "all"."""

    recording: Recording
    fingerprint: str
    translator: str  # "argos", "whisper" or "none"
    translation_fingerprint: str
    work: str
    # Names of each stage's output (see cache_keys): an orchestrator may reuse results stored under them.
    transcription_key: str = ""
    translation_key: str = ""
    chunks_key: str = ""

    @property
    def up_to_date(self) -> bool:
        return self.work == "none"

    @property
    def needs_audio(self) -> bool:
        return self.work == "all" or self.translator == "whisper"


@dataclass
class Transcript:
    segments: list[Segment]
    engine: str
    model_id: str
    detected_language: str | None
    worker: str = ""  # host:pid of the process that transcribed it (runs may spread over machines)
    # Whisper's English of the same audio, when decoded with the transcription (one encoder pass).
    english_speech: list[Segment] | None = None


@dataclass
class Outcome:
    """How one recording ended in a run: indexed, skipped (unchanged) or failed, and why."""

    recording_id: str
    title: str
    source: str
    status: str
    duration: float = 0.0
    seconds: float = 0.0
    error: str = ""
    segments: int = 0
    chunks: int = 0
    transcription: str = ""  # "done", "reused" (a stored result of an earlier run) or "" (none needed)
    worker: str = ""


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def audio_hours(self) -> float:
        return sum(o.duration for o in self.outcomes if o.status == "indexed") / 3600

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def line(self) -> str:
        redone = f"{self.count('retranslated')} retranslated, " if self.count("retranslated") else ""
        return (f"{self.count('indexed')} indexed, {redone}{self.count('skipped')} skipped (unchanged), "
                f"{self.count('failed')} failed; {self.audio_hours:.2f} h of audio in {self.wall_seconds:.1f} s")

    def markdown(self) -> str:
        """The run as a Markdown table: one row a recording (a Prefect artifact shows it in the UI)."""
        rows = ["| recording | duration | status | transcription | worker | seconds | error |",
                "|---|---:|---|---|---|---:|---|"]
        for o in self.outcomes:
            cells = [o.title or o.recording_id, hms(o.duration), o.status, o.transcription or "–", o.worker or "–",
                     f"{o.seconds:.1f}", o.error]
            rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        return f"**{self.line()}**\n\n" + "\n".join(rows)

    def to_dict(self) -> dict:
        return {"outcomes": [asdict(o) for o in self.outcomes], "wall_seconds": self.wall_seconds,
                "indexed": self.count("indexed"), "retranslated": self.count("retranslated"),
                "skipped": self.count("skipped"),
                "failed": self.count("failed"), "audio_hours": self.audio_hours}


def collect(paths: list[str] | None = None, catalog: str | None = None) -> list[Recording]:
    """The sources a run covers: a validated catalog's, then the paths and URLs named on the command line."""
    recordings = list(load_catalog(catalog).recordings) if catalog else []
    recordings += [recording_for_path(p) for p in paths or []]
    return recordings


def resolve(recording: Recording, settings: Settings) -> list[Recording]:
    """The recordings behind one source: an event page becomes the recordings it links."""
    return resolve_source(recording, FetchOptions(progress=settings.progress))


def plan(recording: Recording, settings: Settings, db: str | Path, retranslate: bool = False) -> list[str]:
    """What a run would do with one source, without downloading media or writing anything.

    Pages are read (to list what they link); remote media is not fetched.
    """
    lines = []
    for rec in resolve(recording, settings) if is_remote(recording.source) else [recording]:
        if is_remote(rec.source):
            lines.append(f"{rec.id}\t{rec.title}\t{rec.source}\twould fetch, then index")
            continue
        prepared = prepare(rec, settings, db, retranslate)
        state = {"none": "unchanged, would skip", "translate": f"would translate ({prepared.translator})",
                 "all": f"would index ({prepared.recording.duration:.0f} s)"}[prepared.work]
        lines.append(f"{rec.id}\t{rec.title}\t{rec.source}\t{state}")
    return lines


def prepare(recording: Recording, settings: Settings, db: str | Path, retranslate: bool = False) -> Prepared:
    """Find the media, hash it, probe it, and tell what work the index still needs for it."""
    recording = locate(recording, settings)
    info = audio.probe(recording.media_path, audio.find_ffmpeg(settings.ffmpeg))
    recording.duration = info.duration
    model_id = model_id_for(settings)
    fingerprint = settings.fingerprint(model_id)
    source_language = settings.whisper_language or "fr"
    translator = choose_translator(settings, source_language)
    translation_fingerprint = settings.translation_fingerprint(
        translation_model_id(translator, model_id, source_language))
    with Index(db) as index:
        if not index.is_current(recording, fingerprint):
            work = "all"
        elif retranslate or not index.translation_is_current(recording.id, translation_fingerprint):
            work = "translate"
        else:
            work = "none"
    transcription_key = cache_keys.transcription_key(recording.content_hash, settings, model_id)
    translation_key = cache_keys.translation_key(transcription_key, translation_fingerprint)
    return Prepared(recording, fingerprint, translator, translation_fingerprint, work, transcription_key,
                    translation_key, cache_keys.chunks_key(translation_key, settings))


def normalise(recording: Recording, settings: Settings) -> Path:
    """16 kHz mono WAV of the recording in the cache, named by content hash (reused when present)."""
    return audio.normalise(recording.media_path, settings.cache_path / "audio",
                           audio.find_ffmpeg(settings.ffmpeg), recording.content_hash)


LANGUAGE_SAMPLE_SECONDS = 300
# Below this, Whisper's language guess is too unsure to overrule the configured language.
LANGUAGE_MISMATCH_PROBABILITY = 0.8


def transcribe_wav(wav: Path, settings: Settings, label: str = "", source: str = "",
                   english: bool = False) -> Transcript:
    """Transcribe a normalised recording; refuse speech in another language than the configured one
    (Whisper would otherwise translate or garble it silently) and recordings with no speech at all.

    `english`: English will come from Whisper; an engine that can decodes it from the same encoder
    pass (Transcript.english_speech), and `translate` then needs no second pass over the audio."""
    engine = load_engine(settings)
    samples = audio.open_audio(wav)  # read and decoded a window at a time: flat memory for hours of audio
    source = source or str(wav)
    expected = settings.whisper_language
    if expected:
        # The opening minutes tell the language; VAD over hours of audio would only cost time.
        opening = audio.to_float(samples[:int(LANGUAGE_SAMPLE_SECONDS * audio.SAMPLE_RATE)])
        spoken, probability = engine.detect_language(opening)
        if spoken != expected and probability >= LANGUAGE_MISMATCH_PROBABILITY:
            raise BadInputError(source, f"spoken language looks like {spoken!r} ({probability:.0%}), not {expected!r} "
                                        f"as configured; set language = {spoken!r} or 'auto' to index it")
    english_speech = [] if english and engine.shares_encoder else None
    segments = list(transcribe(samples, engine, expected, settings.progress, label, english_speech))
    if not segments:
        raise BadInputError(source, "no speech found (silence, noise or music only)")
    return Transcript(segments, engine.name, engine.model_id, getattr(engine, "detected_language", None),
                      worker=f"{socket.gethostname()}:{os.getpid()}", english_speech=english_speech)


def stored_transcript(db: str | Path, prepared: Prepared) -> Transcript:
    """The transcript already in the index, for redoing what follows it (translation) alone."""
    with Index(db) as index:
        row = index.row(prepared.recording.id)
        _, segments = index.get(prepared.recording.id)
    return Transcript(segments, row["engine"], row["model"], row["detected_language"] or None)


def translate(transcript: Transcript, prepared: Prepared, settings: Settings, wav: Path | None) -> Transcript:
    """Fill every segment's English with the chosen translator (in place) and return the transcript."""
    if prepared.translator == "argos":
        translate_text(transcript.segments, argos_translator(settings, settings.whisper_language or "fr"),
                       settings.progress)
    elif prepared.translator == "whisper":
        english = transcript.english_speech
        translate_speech(transcript.segments, audio.open_audio(wav) if english is None else None,
                         load_engine(settings), settings.whisper_language, english)
    else:
        for segment in transcript.segments:
            segment.text_en = segment.translation_engine = segment.translation_model = None
    return transcript


def chunk(recording: Recording, transcript: Transcript, settings: Settings) -> list[Chunk]:
    return chunk_segments(recording.id, transcript.segments, settings.chunk_seconds)


def store(db: str | Path, prepared: Prepared, transcript: Transcript, chunks: list[Chunk], settings: Settings) -> None:
    with Index(db) as index:
        translation_model = next((s.translation_model for s in transcript.segments if s.translation_model), "")
        index.add(prepared.recording, transcript.segments, chunks, engine=transcript.engine,
                  model=transcript.model_id, settings=asdict(settings), fingerprint=prepared.fingerprint,
                  detected_language=transcript.detected_language, translation_model=translation_model,
                  translation_fingerprint=prepared.translation_fingerprint)


def publish_subtitles(db: str | Path, recording: Recording, transcript: Transcript, settings: Settings) -> list[Path]:
    """French and English SRT and WebVTT files of a recording, and a bilingual WebVTT."""
    out = settings.subtitles_path(db)
    written = []
    has_english = any(s.text_en for s in transcript.segments)
    for lang in ("fr", "en") if has_english else ("fr",):
        cues, _report = cues_for(transcript.segments, lang)
        for fmt in FORMATS:
            written.append(write_atomically(out / f"{recording.id}.{lang}.{fmt}", render(cues, fmt, lang)))
    if has_english:
        cues, _report = cues_for(transcript.segments, "fr", bilingual=True)
        written.append(write_atomically(out / f"{recording.id}.fr-en.vtt", render(cues, "vtt")))
    return written


def store_failure(db: str | Path, recording: Recording, error: str) -> None:
    with Index(db) as index:
        index.record_failure(recording, error)


def timer() -> float:
    return time.perf_counter()
