"""The stages of indexing one recording, as plain functions: the Prefect flow calls them as tasks,
and any other code can call them in the same order without Prefect."""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import audio, cache_keys
from .chunking import chunk_segments
from .config import Settings, load_catalog
from .errors import BadInputError, ConfigError, DiskFullError, RecordingIndexError
from .index import Index
from .models import Chunk, Recording, Segment
from .fetch import discard
from .safety import inside, redact, redact_url
from .discover import is_video_site
from .sources import Resolved, fetch_options, is_remote, locate, recording_for_path, resolve as resolve_source
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
    audio_seconds: float = 0.0  # of decoded audio (0: not known, the transcript came from the index)


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
    warning: str = ""  # indexed, but worth a look: audio much shorter than its file declares, say

    def __post_init__(self) -> None:
        self.source, self.error = redact_url(self.source), redact(self.error)


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
    """The sources a run covers: a validated catalog's, then the paths and URLs named on the command line.

    Two sources of one id would overwrite each other's recording: the run is refused, naming both."""
    recordings = list(load_catalog(catalog).recordings) if catalog else []
    named: dict[str, Recording] = {r.id: r for r in recordings}
    for path in paths or []:
        recording = recording_for_path(path)
        if (other := named.get(recording.id)) is not None:
            if other.source == recording.source and other.pick == recording.pick:
                continue  # the same source named twice is one recording
            raise ConfigError(f"two sources have the id {recording.id!r}: {redact_url(other.source)} and "
                              f"{redact_url(recording.source)}; give one of them another id in the catalog")
        named[recording.id] = recording
        recordings.append(recording)
    return recordings


def resolve(recording: Recording, settings: Settings) -> Resolved:
    """The recordings behind one source: an event page becomes the recordings it links."""
    return resolve_source(recording, fetch_options(settings), settings.max_page_recordings)


def plan(recording: Recording, settings: Settings, db: str | Path, retranslate: bool = False) -> list[str]:
    """What a run would do with one source, without downloading media or writing anything.

    Pages are read (to list what they link); remote media is not fetched.
    """
    lines = []
    resolved = resolve(recording, settings) if is_remote(recording.source) else Resolved([recording])
    for refused in resolved.refused:
        lines.append(f"{recording.id}\t{recording.title}\t{refused.source}\twould fail: {refused.cause}")
    for rec in resolved.recordings:
        if is_remote(rec.source):
            lines.append(f"{rec.id}\t{rec.title}\t{redact_url(rec.source)}\twould fetch, then index")
            continue
        prepared = prepare(rec, settings, db, retranslate, dry_run=True)
        state = {"none": "unchanged, would skip", "translate": f"would translate ({prepared.translator})",
                 "all": f"would index ({prepared.recording.duration:.0f} s)"}[prepared.work]
        lines.append(f"{rec.id}\t{rec.title}\t{rec.source}\t{state}")
    return lines


def prepare(recording: Recording, settings: Settings, db: str | Path, retranslate: bool = False,
            dry_run: bool = False) -> Prepared:
    """Find the media, hash it, probe it, and tell what work the index still needs for it.

    `dry_run`: write nothing at all (no database is created, no model joined into the cache)."""
    recording = locate(recording, settings)
    try:
        info = audio.probe(recording.media_path, audio.find_ffmpeg(settings.ffmpeg), settings.max_hours)
    except BadInputError as exc:
        if is_remote(recording.source):  # a downloaded file that is no usable media is not kept
            forget_media(recording, settings)
            raise BadInputError(recording.source, exc.cause) from None
        raise
    recording.duration = info.duration
    model_id = model_id_for(settings)
    fingerprint = settings.fingerprint(model_id)
    source_language = settings.whisper_language or "fr"
    translator = choose_translator(settings, source_language)
    translation_fingerprint = settings.translation_fingerprint(
        translation_model_id(translator, model_id, source_language))
    if dry_run and not Path(db).exists():
        work = "all"
    else:
        with Index(db, readonly=dry_run) as index:
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


def forget_media(recording: Recording, settings: Settings) -> None:
    """Delete what a recording that proved bad left in the cache: its normalised audio, and its
    download when it came from the web (an input that will never work is not kept)."""
    if recording.content_hash:
        (settings.cache_path / "audio" / f"{recording.content_hash}.wav").unlink(missing_ok=True)
    if is_remote(recording.source) and not is_video_site(recording.source):
        discard(settings.cache_path / "downloads", recording.source)


def normalise(recording: Recording, settings: Settings) -> Path:
    """16 kHz mono WAV of the recording in the cache, named by content hash (reused when present)."""
    return audio.normalise(recording.media_path, settings.cache_path / "audio",
                           audio.find_ffmpeg(settings.ffmpeg), recording.content_hash,
                           audio.decoding_limit(recording.duration, settings.max_hours))


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
                      worker=f"{socket.gethostname()}:{os.getpid()}", english_speech=english_speech,
                      audio_seconds=len(samples) / audio.SAMPLE_RATE)


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


# Decoded audio this much shorter than its file declares is worth a warning: a cut download, say.
SHORT_AUDIO_RATIO, SHORT_AUDIO_SECONDS = 0.9, 2.0


def with_decoded_duration(recording: Recording, decoded: float) -> tuple[Recording, str]:
    """The recording with its decoded duration (the declared one kept beside it when they differ),
    and a warning when the audio is much shorter than its file declares."""
    declared = recording.duration
    if not decoded or abs(decoded - declared) < 0.5:
        return recording, ""
    warning = ""
    if decoded < declared * SHORT_AUDIO_RATIO and declared - decoded > SHORT_AUDIO_SECONDS:
        warning = (f"truncated? {decoded:.1f} s of audio decoded, the file declares {declared:.1f} s")
    return dataclasses.replace(recording, duration=decoded, declared_duration=declared), warning


def store(db: str | Path, prepared: Prepared, transcript: Transcript, chunks: list[Chunk], settings: Settings) -> str:
    """Write one recording's results in one transaction; return its warning ("" when none)."""
    recording, warning = with_decoded_duration(prepared.recording, transcript.audio_seconds)
    with Index(db) as index:
        if not transcript.audio_seconds and (row := index.row(recording.id)):
            # English redone alone: what the transcription found out about the audio stays.
            recording = dataclasses.replace(recording, duration=row["duration"] or recording.duration,
                                            declared_duration=row["declared_duration"] or 0.0)
            warning = row["warning"] or ""
        translation_model = next((s.translation_model for s in transcript.segments if s.translation_model), "")
        index.add(recording, transcript.segments, chunks, engine=transcript.engine,
                  model=transcript.model_id, settings=asdict(settings), fingerprint=prepared.fingerprint,
                  detected_language=transcript.detected_language, translation_model=translation_model,
                  translation_fingerprint=prepared.translation_fingerprint, warning=warning)
    return warning


def publish_subtitles(db: str | Path, recording: Recording, transcript: Transcript, settings: Settings) -> list[Path]:
    """French and English SRT and WebVTT files of a recording, and a bilingual WebVTT."""
    out = settings.subtitles_path(db)
    written = []
    has_english = any(s.text_en for s in transcript.segments)
    for lang in ("fr", "en") if has_english else ("fr",):
        cues, _report = cues_for(transcript.segments, lang)
        for fmt in FORMATS:
            written.append(write_atomically(inside(out, f"{recording.id}.{lang}.{fmt}"), render(cues, fmt, lang)))
    if has_english:
        cues, _report = cues_for(transcript.segments, "fr", bilingual=True)
        written.append(write_atomically(inside(out, f"{recording.id}.fr-en.vtt"), render(cues, "vtt")))
    return written


def store_failure(db: str | Path, recording: Recording, error: str) -> Stored:
    """Note a failure in the index, if that can be done (not on a full disk)."""
    try:
        with Index(db) as index:
            index.record_failure(recording, error)
    except (RecordingIndexError, sqlite3.Error, OSError) as exc:
        return Stored(error=describe_storage_error(db, exc), disk_full=is_disk_full(exc))
    return Stored()


def describe_storage_error(db: str | Path, exc: BaseException) -> str:
    """One line for what went wrong writing the index or its files (a full disk, say)."""
    if isinstance(exc, RecordingIndexError):
        return str(exc)
    if is_disk_full(exc):
        return f"{db}: disk full; what was indexed before is kept"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{db}: cannot write{where}: {exc.strerror or exc}"
    return f"{db}: {type(exc).__name__}: {exc}"


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
        isinstance(exc, sqlite3.OperationalError) and "full" in str(exc))


@dataclass
class Stored:
    """How writing one recording's results went: its warning, or why it could not be written."""

    warning: str = ""
    error: str = ""
    disk_full: bool = False  # nothing more can be written: the run stops trying


def store_and_publish(db: str | Path, prepared: Prepared, transcript: Transcript, chunks: list[Chunk],
                      settings: Settings) -> Stored:
    """`store`, then `publish_subtitles`; what goes wrong writing is a value, not an exception
    (a full disk, a read-only folder): the run reports it, and stops when the disk is full."""
    try:
        warning = store(db, prepared, transcript, chunks, settings)
        publish_subtitles(db, prepared.recording, transcript, settings)
    except (RecordingIndexError, sqlite3.Error, OSError) as exc:
        return Stored(error=describe_storage_error(db, exc), disk_full=is_disk_full(exc))
    return Stored(warning=warning)


def timer() -> float:
    return time.perf_counter()
