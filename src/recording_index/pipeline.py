"""Indexing one recording: `index_recording` runs the stages in order, each a plain function.

    prepare (obtain the media: ingest/media.py; plan the stages) → normalise → transcribe → segment → translate → correct
    → chunk → store + subtitles

`prepare` compares the recording's stage keys (stages.py) with those stored in the index and lists
the stages to redo; the others' results are read back from the index. The Prefect flow runs the same
function with each stage as a task (a `Runner` of tasks); `bench/` runs it with each stage timed.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from recording_index import stages
from recording_index.config import Settings, check_settings, load_catalog
from recording_index.corrections.layer import correct_transcript, digest, unfit_line
from recording_index.english.sentences import assign_by_time
from recording_index.english.translate import (choose_translator, retranslate as retranslate_sentences, say_fallback,
                                               translate_transcript, translation_model_id)
from recording_index.errors import BadInputError, ConfigError, DiskFullError, RecordingIndexError
from recording_index.index.chunking import chunk_segments
from recording_index.index.database import Index
from recording_index.ingest import audio, media
from recording_index.ingest.sources import (Resolved, fetch_options, is_remote, recording_for_path,
                                            resolve as resolve_source)
from recording_index.models import Chunk, Correction, Recording, Segment, Transcript
from recording_index.outcomes import Outcome, Status, Transcription
from recording_index.publish.files import publish, published_name, subtitle_files
from recording_index.safety import printable, redact_url
from recording_index.speech.segmenting import sentence_segments
from recording_index.speech.transcribe import model_id_for, shares_encoder, transcribe_file
from recording_index.speech.vocabulary import prompt_for

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A located recording, its stage keys, and the stages a run must do for it (in order)."""

    recording: Recording
    facts: stages.Facts
    keys: dict[str, str]  # what the index stores and compares (stages.keys)
    redo: tuple[str, ...]
    cache_keys: dict[str, str] = dataclasses.field(default_factory=dict)  # Prefect's (stages.cache_keys)
    corrections: tuple[Correction, ...] = ()  # people's, every one (corrections/layer.py)
    reasons: dict[str, str] = dataclasses.field(default_factory=dict)  # why each stage of `redo` is redone

    @property
    def up_to_date(self) -> bool:
        return not self.redo

    @property
    def transcribes(self) -> bool:
        return "transcribe" in self.redo

    @property
    def needs_audio(self) -> bool:
        return self.transcribes or ("translate" in self.redo and self.facts.translator == "whisper")


def stages_to_redo(redo: list[str] | tuple[str, ...], retranslate: bool = False) -> tuple[str, ...]:
    """The stages a run redoes on purpose (`--redo`; `--retranslate` is "translate"), checked."""
    chosen = tuple(dict.fromkeys([*redo, *(["translate"] if retranslate else [])]))
    unknown = [name for name in chosen if name not in stages.BY_NAME]
    if unknown:
        raise ConfigError(f"redo: no stage {unknown[0]!r} (the stages: {', '.join(stages.BY_NAME)})")
    return chosen


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


def distinct(sources: list[Recording], resolved: list[Resolved | Exception]) -> tuple[list[Recording], list[Outcome]]:
    """The recordings that sources resolved to, each once, and a failed outcome for each source that
    could not be resolved, each link a page refused, and each id (or name of files, `published_name`)
    two different sources share."""
    recordings: list[Recording] = []
    failed: list[Outcome] = []
    taken: dict[str, str] = {}  # id -> source: what two pages (or a page and a file) share is done once
    names: dict[str, str] = {}  # published_name -> source: a.mp3's files would replace those of b/a.mp3
    for source, found in zip(sources, resolved):
        if isinstance(found, Exception):
            failed.append(Outcome(source.id, source.title, source.source, error=describe_error(found)))
            continue
        failed.extend(Outcome(source.id, source.title, source.source, error=str(r)) for r in found.refused)
        for recording in found.recordings:
            if recording.id in taken:
                if taken[recording.id] != recording.source:
                    failed.append(Outcome(recording.id, recording.title, recording.source, error=(
                        f"id {recording.id!r} is already that of {taken[recording.id]}; not indexed twice")))
                continue
            name = published_name(recording)
            if names.get(name, recording.source) != recording.source:
                failed.append(Outcome(recording.id, recording.title, recording.source, error=(
                    f"its files would be named {name}.*, as those of {names[name]} are; not indexed (give it an id "
                    "in a catalog)")))
                continue
            taken[recording.id] = names[name] = recording.source
            recordings.append(recording)
    return recordings, failed


def plan(recording: Recording, settings: Settings, db: str | Path,
         redo: tuple[str, ...] = ()) -> list[dict]:
    """What a run would do with one source, without downloading media or writing anything: for each
    recording, its id, title, source, plan ("would index (34 s): transcribe (new recording), …",
    "would fail: …") and the stages it would do, each with the reason.

    Pages are read (to list what they link); remote media is not fetched.
    """
    def line(rec_id: str, title: str, source: str, state: str, reasons: dict[str, str] | None = None) -> dict:
        return {"id": rec_id, "title": title, "source": source, "plan": state,
                "stages": [{"stage": stage, "reason": reason} for stage, reason in (reasons or {}).items()]}

    lines = []
    resolved = resolve(recording, settings) if is_remote(recording.source) else Resolved([recording])
    for refused in resolved.refused:
        lines.append(line(recording.id, recording.title, refused.source, f"would fail: {refused.cause}"))
    for rec in resolved.recordings:
        if is_remote(rec.source):
            lines.append(line(rec.id, rec.title, redact_url(rec.source), "would fetch, then index"))
            continue
        prepared = prepare(rec, settings, db, redo, dry_run=True)
        why = ", ".join(f"{stage} ({reason})" for stage, reason in prepared.reasons.items())
        if prepared.up_to_date:
            state = "unchanged, would skip"
        elif prepared.transcribes:
            new = set(prepared.reasons.values()) == {"new recording"}
            state = f"would index ({prepared.recording.duration:.0f} s)" + ("" if new else f": {why}")
        else:
            state = f"would redo {why}"
        lines.append(line(rec.id, rec.title, rec.source, state, prepared.reasons))
    return lines


def facts_for(recording: Recording, settings: Settings, corrections: tuple[Correction, ...] = ()) -> stages.Facts:
    """What decides a recording's results besides its settings, found without loading a model."""
    model_id = model_id_for(settings)
    source_language = settings.whisper_language or "fr"
    translator = choose_translator(settings, source_language)
    how = audio.normalisation(audio.find_ffmpeg(settings.ffmpeg), audio.decoding_limit(recording.duration, settings.max_hours))
    return stages.Facts(content_hash=recording.content_hash, audio=how, model_id=model_id, prompt=prompt_for(recording),
                        translator=translator,
                        translation_model=translation_model_id(translator, model_id, source_language),
                        english_with_french=translator == "whisper" and shares_encoder(settings),
                        corrections=digest(corrections))


def prepare(recording: Recording, settings: Settings, db: str | Path, redo: tuple[str, ...] = (),
            dry_run: bool = False) -> Prepared:
    """Find the media, hash it, probe it, and tell which stages the index still needs for it, and why.

    `redo`: stages to redo (with those after them) even when current (`run --redo`). `dry_run`:
    write nothing at all (no database is created, no model joined into the cache)."""
    recording = media.obtain(recording, settings)
    stored: dict[str, str] = {}
    kept: dict | None = None
    corrections: tuple[Correction, ...] = ()
    if not (dry_run and not Path(db).exists()):
        with Index(db, readonly=dry_run) as index:
            stored = index.stage_keys(recording)
            kept = _record_of(index.row(recording.id))
            corrections = tuple(index.corrections(recording.id))
        if kept and not all(stages.is_current_form(name, key) for name, key in stored.items()):
            stored = _migrated(stored, stages.from_record(kept))  # as the next run's start will store them
    facts = facts_for(recording, settings, corrections)
    files = all(path.exists() for path, _, _ in subtitle_files(
        settings.subtitles_path(db), published_name(recording), facts.translator != "none", settings.output_format))
    return plan_stages(recording, settings, facts, stored, kept, corrections, redo, files)


def plan_stages(recording: Recording, settings: Settings, facts: stages.Facts, stored: dict[str, str],
                kept: dict | None, corrections: tuple[Correction, ...] = (), redo: tuple[str, ...] = (),
                files_present: bool = True) -> Prepared:
    """The stages a recording needs, and why, from what is known of it (no I/O): the keys of this
    run against the `stored` ones, the inputs `kept` beside them, the stages asked to be redone,
    and whether its subtitle files are still there."""
    keys = stages.keys(settings, facts)
    stale = stages.stale(stored, keys)
    why = stages.reasons(stale, kept, settings, facts)
    asked = {name for stage in redo for name in stages.from_stage(stage)} - set(stale)
    for stage in stages.STAGES:
        if stage.name in asked:
            why[stage.name] = "asked (--redo)" if stage.name in redo or stage.after not in why else f"after {stage.after}"
    if "subtitles" not in why and not files_present:
        why["subtitles"] = "its files are missing"  # deleted since: written again
    ordered = {stage.name: why[stage.name] for stage in stages.STAGES if stage.name in why}
    return Prepared(recording, facts, keys, tuple(ordered), stages.cache_keys(keys, facts), corrections, ordered)


def _record_of(row: dict | None) -> dict | None:
    """The inputs the index kept for a recording's keys (stages.record), or None."""
    try:
        kept = json.loads((row or {}).get("settings") or "null")
    except ValueError:
        return None
    return kept if isinstance(kept, dict) and kept else None


def prepare_stored(recording: Recording, settings: Settings, db: str | Path, redo: tuple[str, ...] = ()) -> Prepared:
    """`prepare` for a recording already indexed, without its media: for redoing its corrections and
    what follows them (`rebuild`). The stages before `correct` keep their stored keys; a run redoes
    them when they are stale."""
    with Index(db) as index:
        row = index.row(recording.id)
        if not row or row["status"] != "indexed":
            raise RecordingIndexError(f"{recording.id}: not indexed yet (run `recording-index run` first)")
        recording = index.recording(recording.id)
        stored = index.stage_keys(recording)
        corrections = tuple(index.corrections(recording.id))
    known = _record_of(row)
    facts = stages.facts_from_record(known) if known else None
    if facts is None:
        raise RecordingIndexError(f"{recording.id}: indexed by an older version; run `recording-index run` on it "
                                  "first")
    # The corrections as they are now; facts added since the row was written have their defaults,
    # which count only for the stages before `correct`.
    facts = dataclasses.replace(facts, corrections=digest(corrections))
    upstream = {name: key for name, key in stored.items() if name not in stages.from_stage("correct")}
    keys = stages.keys(settings, facts, upstream)
    redo = stages.stale(stored, keys)
    if set(redo) - set(stages.from_stage("correct")):
        raise RecordingIndexError(f"{recording.id}: its transcript is not current; run `recording-index run` on it "
                                  "first (corrections are kept meanwhile)")
    return Prepared(recording, facts, keys, tuple(redo), stages.cache_keys(keys, facts), corrections,
                    stages.reasons(redo, known, settings, facts))


def normalise(prepared: Prepared, settings: Settings) -> Path:
    """16 kHz mono WAV of the recording in the cache (ingest/media.py; reused when present)."""
    return media.normalised(prepared.recording, settings)


def transcribe(prepared: Prepared, wav: Path, settings: Settings) -> Transcript:
    recording = prepared.recording
    return transcribe_file(wav, settings, recording.title or recording.id, recording.source,
                           english=prepared.facts.english_with_french, prompt=prepared.facts.prompt)


def segment(prepared: Prepared, transcript: Transcript) -> Transcript:
    """The transcript with sentences as its segments (speech/segmenting.py), from its words."""
    return dataclasses.replace(transcript, segments=sentence_segments(transcript.segments))


def translate(transcript: Transcript, prepared: Prepared, settings: Settings, wav: Path | None) -> Transcript:
    return translate_transcript(transcript, prepared.facts.translator, settings, wav, prepared.recording)


def correct(prepared: Prepared, transcript: Transcript, settings: Settings) -> Transcript:
    """The transcript with people's corrections over it (corrections/layer.py)."""
    return correct_transcript(transcript, prepared.corrections, prepared.facts.translator,
                              lambda segments: retranslate_sentences(segments, settings, prepared.recording))


def chunk(prepared: Prepared, transcript: Transcript, settings: Settings) -> list[Chunk]:
    return chunk_segments(prepared.recording.id, transcript.segments, settings.chunk_seconds)


def stored_transcript(db: str | Path, prepared: Prepared) -> Transcript:
    """The transcript already in the index (with its English), for redoing what follows it alone."""
    with Index(db) as index:
        row = index.row(prepared.recording.id)
        _, segments = index.get(prepared.recording.id)
    return Transcript(segments, row["engine"], row["model"], row["detected_language"] or None,
                      translator=row["translation_engine"] or "", translation_model=row["translation_model"] or "")


def stored_chunks(db: str | Path, prepared: Prepared) -> list[Chunk]:
    with Index(db) as index:
        return index.chunks(prepared.recording.id)


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
            # Transcription not redone: what it found out about the audio stays.
            recording = dataclasses.replace(recording, duration=row["duration"] or recording.duration,
                                            declared_duration=row["declared_duration"] or 0.0)
            warning = row["warning"] or ""
        index.add(recording, transcript.segments, chunks, engine=transcript.engine, model=transcript.model_id,
                  settings=stages.record(settings, prepared.facts), stage_keys=prepared.keys,
                  detected_language=transcript.detected_language, translation_engine=transcript.translator,
                  translation_model=transcript.translation_model, warning=warning, corrections=transcript.corrections)
    return warning


def publish_subtitles(db: str | Path, recording: Recording, transcript: Transcript, settings: Settings) -> list[Path]:
    """Write a recording's subtitle files beside the index (publish/files.py)."""
    return publish(settings.subtitles_path(db), recording, transcript, settings.output_format)


def store_failure(db: str | Path, recording: Recording, error: str) -> Outcome:
    """Note a failure in the index, if that can be done (not on a full disk)."""
    outcome = Outcome(recording.id, recording.title, recording.source, error=error)
    try:
        with Index(db) as index:
            index.record_failure(recording, error)
    except (RecordingIndexError, sqlite3.Error, OSError) as exc:
        outcome.error, outcome.disk_full = describe_storage_error(db, exc), is_disk_full(exc)
    return outcome


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


@dataclass(frozen=True)
class Runner:
    """How `index_recording` calls each stage: as the plain functions above (the default), or
    otherwise with the same arguments (the flow passes Prefect tasks; bench/ passes timed calls)."""

    prepare: Callable[..., Prepared] = prepare
    normalise: Callable[..., Path] = normalise
    transcribe: Callable[..., Transcript] = transcribe
    segment: Callable[..., Transcript] = segment
    translate: Callable[..., Transcript] = translate
    correct: Callable[..., Transcript] = correct
    chunk: Callable[..., list[Chunk]] = chunk
    store: Callable[..., Stored] = store_and_publish


def index_recording(recording: Recording, settings: Settings, db: str | Path, redo: tuple[str, ...] = (),
                    runner: Runner = Runner()) -> Outcome:
    """Index one recording into the index at `db`: do the stages its stage keys say are stale, store
    the results in one transaction and write its subtitle files.

    Never raises for a bad recording: the outcome says why it failed, and the failure is noted in
    the index. A full disk is an outcome too (`disk_full`): the caller stops trying others."""
    started = time.perf_counter()
    outcome = Outcome(recording.id, recording.title, recording.source)
    prepared = None
    try:
        prepared = runner.prepare(recording, settings, db, redo)
        outcome.title, outcome.duration = prepared.recording.title, prepared.recording.duration
        outcome.stages = list(prepared.redo)
        if prepared.up_to_date:
            outcome.status = Status.SKIPPED
        else:
            wav = runner.normalise(prepared, settings) if prepared.needs_audio else None
            if prepared.transcribes:
                transcript = runner.transcribe(prepared, wav, settings)
                outcome.transcription = Transcription.REUSED if transcript.reused else Transcription.DONE
            else:
                transcript = stored_transcript(db, prepared)
            if "segment" in prepared.redo:
                transcript = runner.segment(prepared, transcript)
            if "translate" in prepared.redo:
                # Said here, in the run's own process, whether the English is made now or taken from
                # Prefect's stored results: why it is Whisper's.
                say_fallback(settings, prepared.facts.translator, settings.whisper_language or "fr")
                transcript = runner.translate(transcript, prepared, settings, wav)
            if "correct" in prepared.redo:
                transcript = runner.correct(prepared, transcript, settings)
            chunks = runner.chunk(prepared, transcript, settings) if "chunk" in prepared.redo else stored_chunks(
                db, prepared)
            stored = runner.store(db, prepared, transcript, chunks, settings)
            if stored.error:
                outcome.error, outcome.disk_full = stored.error, stored.disk_full
            else:
                outcome.status = Status.INDEXED if prepared.transcribes else Status.REDONE
                outcome.warning = "; ".join(filter(None, [stored.warning, unfit_line(transcript, prepared.recording)]))
                outcome.worker = transcript.worker
                outcome.segments, outcome.chunks = len(transcript.segments), len(chunks)
    except Exception as exc:  # one recording's failure is its outcome, never the end of the run
        outcome.error, outcome.disk_full = describe_error(exc), is_disk_full(exc)
        if isinstance(exc, BadInputError) and prepared is not None and not outcome.disk_full:
            media.forget(prepared.recording, settings)  # it will never work: what it left in the cache goes
    if outcome.status == Status.FAILED and not outcome.disk_full:
        if (noted := store_failure(db, recording, outcome.error)).disk_full:
            outcome.error, outcome.disk_full = noted.error, True
    outcome.seconds = time.perf_counter() - started
    return outcome


# What a rebuild keeps of the run that made the recording's rows: a run's --output-dir and
# --output-format (or chunk length) hold for its files until another run changes them.
KEPT_BY_REBUILD = ("subtitles_dir", "output_format", "chunk_seconds")


def rebuild(recording_id: str, settings: Settings, db: str | Path) -> Outcome:
    """Redo a recording's corrections and what follows them (chunks, full-text rows, subtitle files)
    from what the index holds, without its media: after a correction is made or reverted. Its files
    are written where, and as, the run that made them wrote them."""
    with Index(db, create=False) as index:
        row = index.row(index.resolve_id(recording_id)) or {}
    stored = _record_of(row) or {}
    kept = {name: stored[name] for name in KEPT_BY_REBUILD if name in stored}
    try:
        chosen = settings.replace(**kept)
        check_settings(chosen)
        # A folder named by the index alone is written to only when a run already published there.
        folder = chosen.subtitles_path(db)
        name = published_name(Recording(id=row["id"], source=row["source"]))
        if chosen.subtitles_dir != settings.subtitles_dir and not any(folder.glob(f"{glob.escape(name)}.*")):
            chosen = chosen.replace(subtitles_dir=settings.subtitles_dir)
    except (ConfigError, TypeError, ValueError, KeyError, OSError):
        chosen = settings  # an index another program wrote: the settings of this command
    return index_recording(Recording(id=recording_id, source=""), chosen, db, runner=Runner(prepare=prepare_stored))


# The stage key a re-segmentation from the stored words leaves (upgrade): not a run's, so the next
# run that has the media redoes the recording as its keys say.
RESEGMENTED = "segment-from-stored-words"


def upgrade(db: str | Path) -> list[str]:
    """Bring the index at `db` up to date in place, without any media: its schema (as opening it
    does); each recording indexed before segments were sentences (its stage keys have no `segment`):
    its sentences are cut again from the stored words, its English shared out to them by time (as
    Whisper's English of a speech chunk is), its chunks made again, and its full-text rows with
    them; and the stage keys of the releases that hashed code, made again from the inputs stored
    beside them (`migrate_keys`). Nothing is transcribed. Returns the ids of the recordings
    re-segmented."""
    done = []
    with Index(db) as index:
        # One query, however large the archive: it runs at the start of every run.
        older = [row[0] for row in index.db.execute(
            "SELECT id FROM recordings WHERE status = 'indexed' AND (stage_keys IS NULL OR NOT json_valid(stage_keys) "
            "OR json_type(stage_keys) != 'object' OR json_type(stage_keys, '$.segment') IS NULL)")]
        for recording_id in older:
            try:
                _resegment(index, recording_id)
            except (RecordingIndexError, sqlite3.Error, ValueError, TypeError, AttributeError, KeyError) as exc:
                # A row another program wrote, say: it stays as it is and the run goes on.
                logger.warning("%s: not re-segmented (%s)", printable(recording_id), describe_error(exc))
                continue
            done.append(recording_id)
        migrate_keys(index)
    return done


def _migrated(old: dict[str, str], found: tuple[Settings, stages.Facts] | None) -> dict[str, str]:
    """Stage keys of the releases that hashed code (`segment-…`) as this form's (`segment.1-…`),
    computed from the inputs `found` beside them (stages.from_record), stage by stage while each was
    made by a run of those inputs; the others are left as they are (and redone)."""
    if found is None:
        return old
    wanted, new = stages.keys(*found), dict(old)
    for stage in stages.STAGES:
        before = old.get(stage.name)
        if not isinstance(before, str) or stages.is_current_form(stage.name, before) or \
                not before.startswith(f"{stage.name}-") or before == RESEGMENTED:
            break
        new[stage.name] = wanted[stage.name]
    return new


def migrate_keys(index: Index) -> int:
    """Give each recording whose stage keys are of the releases that hashed the code (`segment-…`,
    not `segment.1-…`) the keys of this form, computed from the settings and facts stored beside
    them: the same inputs, so the next run skips what is unchanged instead of transcribing the
    archive again. A stage whose inputs are not all stored keeps its old key (it is redone), and
    so do the stages after it. Returns how many recordings were moved."""
    rows = index.db.execute(
        "SELECT id, stage_keys, settings FROM recordings WHERE status = 'indexed' AND json_valid(stage_keys) "
        "AND json_type(stage_keys) = 'object' AND json_extract(stage_keys, '$.transcribe') NOT LIKE 'transcribe.%'"
    ).fetchall()
    moved = 0
    for recording_id, stored_keys, stored_settings in rows:
        old = json.loads(stored_keys)
        kept = _record_of({"settings": stored_settings}) or {}
        found = stages.from_record(kept)
        new = _migrated(old, found)
        if new != old:
            with index.db.atomic():
                index.db.execute("UPDATE recordings SET stage_keys = ?, settings = ? WHERE id = ?",
                                 [json.dumps(new, sort_keys=True),
                                  json.dumps({**kept, **stages.record(*found)}, sort_keys=True), recording_id])
            moved += 1
    return moved


def _resegment(index: Index, recording_id: str) -> None:
    row = index.row(recording_id) or {}
    keys = json.loads(row.get("stage_keys") or "{}")
    stored = json.loads(row.get("settings") or "{}")
    keys, stored = (keys if isinstance(keys, dict) else {}), (stored if isinstance(stored, dict) else {})
    recording, segments = index.get(recording_id)
    if not segments:  # an index from before segments were stored: its chunks are all there is, and stay
        with index.db.atomic():
            index.db.execute("UPDATE recordings SET stage_keys = ? WHERE id = ?",
                             [json.dumps({**keys, "segment": RESEGMENTED}, sort_keys=True), recording_id])
        return
    sentences = sentence_segments(segments)
    assign_by_time(sentences, [Segment(s.index, s.start, s.end, s.text_en) for s in segments if s.text_en])
    for sentence in sentences:
        sentence.translation_engine = row["translation_engine"] or ""
        sentence.translation_model = row["translation_model"] or ""
    seconds = stored.get("chunk_seconds")
    chunks = chunk_segments(recording.id, sentences, seconds if isinstance(seconds, (int, float))
                            and not isinstance(seconds, bool) and seconds > 0 else Settings().chunk_seconds)
    index.add(recording, sentences, chunks, engine=row["engine"] or "", model=row["model"] or "", settings=stored,
              stage_keys={**keys, "segment": RESEGMENTED}, detected_language=row["detected_language"],
              translation_engine=row["translation_engine"] or "", translation_model=row["translation_model"] or "",
              warning=row["warning"] or "")


def after_run(db: str | Path, outcomes: list[Outcome], settings: Settings) -> str:
    """What a run does once its recordings are done, under its lock: when it wrote any recording, it
    merges the search tables' segments if they have piled up. Returns a warning, or ""; a failure
    here (a full disk) loses nothing: the index stays as the run left it."""
    if not any(o.status in (Status.INDEXED, Status.REDONE) for o in outcomes):
        return ""
    try:
        with Index(db) as index:
            index.merge_search_segments()
    except (sqlite3.Error, OSError, RecordingIndexError) as exc:
        return f"search tables not merged ({describe_error(exc)}); searches stay correct, only slower"
    return ""


def publish_site(db: str | Path, outcomes: list[Outcome], settings: Settings) -> str:
    """The static site brought up to date in `site_dir` when the run changed something (the
    settings' `site_dir`, `site_base_url`): what it did in one line, or why it could not."""
    if not settings.site_dir or not any(o.status in (Status.INDEXED, Status.REDONE) for o in outcomes):
        return ""
    from recording_index.publish.site import build_site

    try:
        return build_site(db, settings.site_dir, base_url=settings.site_base_url).line()
    except (RecordingIndexError, sqlite3.Error, OSError) as exc:
        return f"site {settings.site_dir} not published: {describe_error(exc)}"


def describe_error(exc: BaseException) -> str:
    """Our errors are one line that names the input; anything else also says what kind of error it is."""
    return str(exc) if isinstance(exc, RecordingIndexError) else f"{type(exc).__name__}: {exc}"
