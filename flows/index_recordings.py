"""The indexing flow: resolve sources, then `pipeline.index_recording` for each recording, its stages
run as Prefect tasks.

Orchestration only: the library decides what each stage does and which stages a recording needs
(`recording_index.stages`); this flow decides retries, result caching, where tasks run, and how many
recordings are in flight, and publishes the run's summary as an artifact.

- Transcription, translation and chunking results are persisted under their stage keys, so a run
  stopped midway resumes after its last finished stage.
- Tasks run on threads, or, as the `task_runner` setting says when a run starts, on a Dask cluster
  (in a subflow on that runner). Whatever runs where, only this flow's process writes the SQLite
  index (one writer).
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from pydantic import SecretStr

from recording_index import pipeline, stages
from recording_index.config import Settings, check_task_runner, load_settings
from recording_index.errors import BadInputError, ConfigError, ModelUnavailableError, RecordingIndexError
from recording_index.locks import exclusive_run
from recording_index.models import Recording
from recording_index.outcomes import Outcome, Summary
from recording_index.safety import printable

# With threads, downloads overlap on this many; transcription runs one recording at a time, since
# one Whisper already uses every core.
DOWNLOADS_AT_ONCE = 4


class _BadInputWithoutTraceback(logging.Filter):
    """A recording that is bad input (no speech, not media…) is a line that names it, not a
    traceback: Prefect logs every failed task with one; a bug keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RecordingIndexError):
            record.exc_info = record.exc_text = None
        return True


for _logger in ("prefect.task_runs", "prefect.flow_runs"):
    logging.getLogger(_logger).addFilter(_BadInputWithoutTraceback())


def make_task_runner(settings: Settings):
    """Threads, a local Dask cluster ("dask"), or an existing Dask scheduler (its address)."""
    check_task_runner(settings)
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=DOWNLOADS_AT_ONCE)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ConfigError(f"task_runner = {settings.task_runner!r} needs prefect-dask: "
                          "pip install 'recording-index[dask]'") from exc
    # Dask's own INFO lines (and a traceback when a cluster shuts down) would bury the run's.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if settings.task_runner == "dask":
        # Two threads a worker: a download can go on while the worker's Whisper runs.
        return DaskTaskRunner(cluster_kwargs={"n_workers": settings.dask_workers, "threads_per_worker": 2,
                                              "processes": True})
    return DaskTaskRunner(address=settings.task_runner)


def _worth_retrying(task, task_run, state) -> bool:
    """Retry what may pass next time (network hiccups), never input that is simply bad."""
    try:
        state.result()
    except (BadInputError, ConfigError, ModelUnavailableError):
        return False
    except Exception:
        return True
    return False


FETCH_RETRIES = dict(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2),
                     retry_jitter_factor=0.5, retry_condition_fn=_worth_retrying)


def _stored_under(stage: str) -> CacheKeyFnPolicy:
    """Cache a stage's result under its key, which `pipeline.prepare` computed (stages.cache_keys)."""
    return CacheKeyFnPolicy(cache_key_fn=lambda context, parameters: parameters["prepared"].cache_keys[stage])


@task(cache_policy=NO_CACHE, task_run_name="resolve {recording.id}", **FETCH_RETRIES)
def resolve(recording: Recording, settings: Settings):
    return pipeline.resolve(recording, settings)


@task(cache_policy=NO_CACHE, task_run_name="prepare {recording.id}", **FETCH_RETRIES)
def prepare(recording: Recording, settings: Settings, db: str, redo: tuple[str, ...]):
    return pipeline.prepare(recording, settings, db, redo)


# Each task run is named after its recording ("transcribe ej-fra"), so Prefect's UI shows one
# recording's work together.

# Not cached by Prefect: the WAV is itself named by content hash and reused while it exists.
@task(cache_policy=NO_CACHE, task_run_name="normalise {prepared.recording.id}")
def normalise(prepared, settings: Settings):
    return pipeline.normalise(prepared, settings)


@task(cache_policy=_stored_under("transcribe"), persist_result=True, task_run_name="transcribe {prepared.recording.id}")
def transcribe(prepared, wav, settings: Settings):
    return pipeline.transcribe(prepared, wav, settings)


@task(cache_policy=_stored_under("segment"), persist_result=True, task_run_name="segment {prepared.recording.id}")
def segment(prepared, transcript):
    return pipeline.segment(prepared, transcript)


@task(cache_policy=_stored_under("translate"), persist_result=True, task_run_name="translate {prepared.recording.id}")
def translate(transcript, prepared, settings: Settings, wav):
    return pipeline.translate(transcript, prepared, settings, wav)


# Not cached by Prefect: applying corrections is quick, and Argos translates again only what they changed.
@task(cache_policy=NO_CACHE, task_run_name="correct {prepared.recording.id}")
def correct(prepared, transcript, settings: Settings):
    return pipeline.correct(prepared, transcript, settings)


@task(cache_policy=_stored_under("chunk"), persist_result=True, task_run_name="chunk {prepared.recording.id}")
def chunk(prepared, transcript, settings: Settings):
    return pipeline.chunk(prepared, transcript, settings)


# The writer: never cached (the index itself records what is done) and called in the flow's own
# process, so the database has one writer however the other stages are spread.
@task(cache_policy=NO_CACHE, task_run_name="store {prepared.recording.id}")
def store(db: str, prepared, transcript, chunks, settings: Settings):
    return pipeline.store_and_publish(db, prepared, transcript, chunks, settings)


def _on_runner(stage, reused: dict[str, list[str]], **options):
    """A stage as `pipeline.Runner` calls it: submitted to the flow's task runner, its result awaited
    (a task's exception is raised here, for `index_recording` to make it the outcome). A result
    taken from Prefect's stored results is noted in `reused`, by recording, for the run's report."""
    stage = stage.with_options(**options) if options else stage

    def call(*args):
        future = stage.submit(*args)
        result = future.result()
        if future.state.name == "Cached":
            prepared = next(arg for arg in args if isinstance(arg, pipeline.Prepared))
            reused.setdefault(prepared.recording.id, []).append(stage.name)
            if stage.name == "transcribe":
                result.reused = True
        return result

    return call


def _runner(settings: Settings, redo: tuple[str, ...], prepared: dict, reused: dict[str, list[str]]) -> pipeline.Runner:
    storage = settings.cache_path / "results"
    # A stage redone on purpose is not taken from Prefect's cache either, nor are those after it.
    fresh = {name for stage in redo for name in stages.from_stage(stage)}

    def stored(stage):
        return _on_runner(stage, reused, result_storage=storage, refresh_cache=stage.name in fresh)

    return pipeline.Runner(
        # Every recording's download was started at once (`prepared`): each waits for its own here.
        prepare=lambda recording, *args: prepared[recording.id].result(),
        normalise=_on_runner(normalise, reused), transcribe=stored(transcribe), segment=stored(segment),
        translate=stored(translate), correct=_on_runner(correct, reused), chunk=stored(chunk),
        store=_one_at_a_time(store))


def _one_at_a_time(stage):
    """`stage` called by one thread at a time: recordings in flight (one a Dask worker) are stored by
    the flow's process, one after the other, so that the index has one writer."""
    lock = threading.Lock()

    def call(*args):
        with lock:
            return stage(*args)

    return call


@flow(name="index-recordings", task_runner=ThreadPoolTaskRunner(max_workers=DOWNLOADS_AT_ONCE))
def index_recordings(paths: list[str] | None = None, catalog: str | None = None, db: str | None = None,
                     model: str | None = None, settings_file: str | None = None, overrides: dict | None = None,
                     retranslate: bool = False, credentials: dict[str, SecretStr] | None = None,
                     redo: list[str] | None = None) -> Summary:
    """Index the recordings of `catalog` and `paths` into the SQLite index at `db` (default: the
    settings' `db`), with Whisper `model` (default: the settings'); `overrides` sets any other setting.
    `redo`: stages to redo (with those after them) even when current; `retranslate`: redo "translate"."""
    started = time.perf_counter()
    settings = share_cores(load_settings(settings_file).replace(**{"model": model, **(overrides or {})}))
    db = db or settings.db
    # URLs that carry a user name and password come as `paths` without them and, in full, as
    # `credentials`: Prefect stores a run's parameters, and shows a SecretStr as "**********".
    unsealed = {k: v.get_secret_value() for k, v in (credentials or {}).items()}
    chosen = pipeline.stages_to_redo(redo or [], retranslate)
    sources = pipeline.collect([unsealed.get(p, p) for p in paths or []], catalog)  # a bad catalog stops the run
    with exclusive_run(db):
        # Created, or upgraded (an index from before sentences re-segmented from its words), or refused
        # (another program's database), before any work.
        for resegmented in pipeline.upgrade(db):
            get_run_logger().warning(f"re-segmented into sentences from its stored words: {printable(resegmented)}")
        if settings.task_runner == "threads":
            summary = _index_all(sources, settings, db, chosen)
        else:  # the task runner is a setting, read when the run starts: its tasks run in a subflow on it
            summary = index_on_task_runner.with_options(task_runner=make_task_runner(settings))(
                sources, settings, db, chosen)
        if warning := pipeline.after_run(db, summary.outcomes, settings):
            get_run_logger().warning(warning)
        if summary_site := pipeline.publish_site(db, summary.outcomes, settings):
            summary.site = summary_site
            get_run_logger().info(summary_site)
    summary.wall_seconds = time.perf_counter() - started
    get_run_logger().info(summary.line())
    create_markdown_artifact(key="index-summary", markdown=summary.markdown(), description=summary.line())
    if summary.failed:  # red in Prefect's UI, as the command line's exit status is 1; the summary says which
        return Failed(message=summary.line(), data=summary)
    return summary


def share_cores(settings: Settings) -> Settings:
    """On a local Dask cluster, each worker's Whisper gets its share of the cores, not all of them."""
    if settings.task_runner == "dask" and not settings.cpu_threads:
        return settings.replace(cpu_threads=max(1, (os.cpu_count() or 1) // settings.dask_workers))
    return settings


@flow(name="index-recordings-on-task-runner")
def index_on_task_runner(sources: list[Recording], settings: Settings, db: str, redo: tuple[str, ...]) -> Summary:
    return _index_all(sources, settings, db, redo)


def _index_all(sources: list[Recording], settings: Settings, db: str, redo: tuple[str, ...]) -> Summary:
    resolved = []
    for future in [resolve.submit(s, settings) for s in sources]:
        try:
            resolved.append(future.result())
        except Exception as exc:
            resolved.append(exc)
    recordings, failed = pipeline.distinct(sources, resolved)
    # Every download starts now; recordings are transcribed a few at a time (one a Dask worker),
    # each stored as soon as it is done.
    prepared = {r.id: prepare.submit(r, settings, db, redo) for r in recordings}
    reused: dict[str, list[str]] = {}  # recording id -> its stages taken from Prefect's stored results
    runner = _runner(settings, redo, prepared, reused)
    full = threading.Event()  # no space left: the recordings not started yet are not tried, and say so

    def one(recording: Recording) -> Outcome:
        if full.is_set():
            return Outcome(recording.id, recording.title, recording.source, error="not tried: disk full")
        outcome = pipeline.index_recording(recording, settings, db, redo, runner)
        taken = reused.pop(recording.id, [])
        outcome.reused = [stage for stage in outcome.stages if stage in taken]
        if outcome.disk_full:
            full.set()
        return outcome

    at_once = 1 if settings.task_runner == "threads" else max(1, settings.dask_workers)
    with ThreadPoolExecutor(at_once) as pool:
        # Each recording runs in its own copy of the flow's context, so its tasks belong to this flow run.
        outcomes = [job.result() for job in [pool.submit(contextvars.copy_context().run, one, r) for r in recordings]]
    logger = get_run_logger()
    for outcome in failed + outcomes:
        line = f"{outcome.status}: {outcome.title or outcome.recording_id}"
        (logger.warning if outcome.error else logger.info)(printable(line + (f" — {outcome.error}" if outcome.error else "")))
    return Summary(failed + outcomes)


if __name__ == "__main__":
    # One machine, no work pool: serve the flow with a nightly schedule (see the README).
    index_recordings.serve(
        name="index-recordings-nightly", cron=os.environ.get("RECORDING_INDEX_CRON", "0 2 * * *"),
        parameters={"catalog": os.environ.get("RECORDING_INDEX_CATALOG", "config/demo.toml")})
