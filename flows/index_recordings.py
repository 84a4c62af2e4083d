"""The indexing flow: normalise → transcribe → translate → chunk → index → subtitles, for each recording.

Thin by design: each task calls one library stage in `recording_index.pipeline`; the flow decides
order and retries, and keeps one failing recording from stopping the others.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from recording_index import pipeline
from recording_index.config import Settings, load_settings
from recording_index.errors import BadInputError, ConfigError, ModelUnavailableError, RecordingIndexError
from recording_index.locks import exclusive_run


def _worth_retrying(task, task_run, state) -> bool:
    """Retry what may pass next time (I/O hiccups), never input that is simply bad."""
    try:
        state.result()
    except (BadInputError, ConfigError, ModelUnavailableError):
        return False
    except Exception:
        return True
    return False


# Downloads (resolve, prepare) overlap on this many threads; transcription runs one at a time,
# since one Whisper already uses every core.
DOWNLOADS_AT_ONCE = 4


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_worth_retrying, cache_policy=NO_CACHE)
def resolve(recording, settings: Settings):
    return pipeline.resolve(recording, settings)


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_worth_retrying, cache_policy=NO_CACHE)
def prepare(recording, settings: Settings, db: str, retranslate: bool):
    return pipeline.prepare(recording, settings, db, retranslate)


@task(cache_policy=NO_CACHE)
def normalise(recording, settings: Settings):
    return pipeline.normalise(recording, settings)


@task(cache_policy=NO_CACHE)
def transcribe(wav, settings: Settings, label: str, source: str):
    return pipeline.transcribe_wav(wav, settings, label, source)


@task(cache_policy=NO_CACHE)
def stored_transcript(db: str, prepared):
    return pipeline.stored_transcript(db, prepared)


@task(cache_policy=NO_CACHE)
def translate(transcript, prepared, settings: Settings, wav):
    return pipeline.translate(transcript, prepared, settings, wav)


@task(cache_policy=NO_CACHE)
def chunk(recording, transcript, settings: Settings):
    return pipeline.chunk(recording, transcript, settings)


@task(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_worth_retrying, cache_policy=NO_CACHE)
def store(db: str, prepared, transcript, chunks, settings: Settings):
    pipeline.store(db, prepared, transcript, chunks, settings)


@task(cache_policy=NO_CACHE)
def publish_subtitles(db: str, recording, transcript, settings: Settings):
    return pipeline.publish_subtitles(db, recording, transcript, settings)


def _error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RecordingIndexError) else f"{type(exc).__name__}: {exc}"


def index_one(recording, prepared_future, settings: Settings, db: str) -> pipeline.Outcome:
    started = pipeline.timer()
    outcome = pipeline.Outcome(recording.id, recording.title, recording.source, "failed")
    try:
        prepared = prepared_future.result()
        outcome.title = prepared.recording.title
        outcome.duration = prepared.recording.duration
        if prepared.up_to_date:
            outcome.status = "skipped"
        else:
            wav = normalise(prepared.recording, settings) if prepared.needs_audio else None
            if prepared.work == "all":
                transcript = transcribe(wav, settings, recording.title or recording.id, recording.source)
            else:
                transcript = stored_transcript(db, prepared)
            transcript = translate(transcript, prepared, settings, wav)
            chunks = chunk(prepared.recording, transcript, settings)
            store(db, prepared, transcript, chunks, settings)
            publish_subtitles(db, prepared.recording, transcript, settings)
            outcome.status = "indexed" if prepared.work == "all" else "retranslated"
            outcome.segments, outcome.chunks = len(transcript.segments), len(chunks)
    except Exception as exc:  # one recording's failure is reported, never the end of the run
        outcome.error = _error(exc)
        pipeline.store_failure(db, recording, outcome.error)
    outcome.seconds = pipeline.timer() - started
    return outcome


@flow(name="index-recordings", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=DOWNLOADS_AT_ONCE))
def index_recordings(paths: list[str] | None = None, catalog: str | None = None, db: str | None = None,
                     settings_file: str | None = None, overrides: dict | None = None,
                     retranslate: bool = False) -> pipeline.Summary:
    """Index the recordings of `catalog` and `paths` into the SQLite index at `db`."""
    started = pipeline.timer()
    settings = load_settings(settings_file).replace(**(overrides or {}))
    db = db or settings.db
    sources = pipeline.collect(paths, catalog)  # a bad catalog stops the run before anything else
    with exclusive_run(db):
        summary = _index_all(sources, settings, db, retranslate)
    summary.wall_seconds = pipeline.timer() - started
    return summary


def _index_all(sources, settings: Settings, db: str, retranslate: bool) -> pipeline.Summary:
    summary = pipeline.Summary()
    recordings = []
    for source, found in zip(sources, [resolve.submit(s, settings) for s in sources]):
        try:
            recordings += found.result()
        except Exception as exc:
            summary.outcomes.append(pipeline.Outcome(source.id, source.title, source.source, "failed",
                                                     error=_error(exc)))
    # Every download starts now, on the task runner's threads; each recording is indexed in turn.
    prepared = [prepare.submit(r, settings, db, retranslate) for r in recordings]
    for recording, future in zip(recordings, prepared):
        summary.outcomes.append(index_one(recording, future, settings, db))
    for outcome in summary.outcomes:
        print(f"{outcome.status}: {outcome.title or outcome.recording_id}"
              + (f" — {outcome.error}" if outcome.error else ""))
    return summary


if __name__ == "__main__":
    index_recordings.serve(name="index-recordings")
