"""The indexing flow: fetch → normalise → transcribe → translate → chunk → index → subtitles.

Thin by design: each task calls one library stage in `recording_index.pipeline`; the flow decides
order, retries, caching and where work runs, and keeps one failing recording from stopping the others.

- Transcription, translation and chunking results are persisted under keys naming what decides them
  (`recording_index.cache_keys`), so a run stopped midway resumes after its last finished stage.
- Tasks run on the task runner chosen by the `task_runner` setting: threads, or a Dask cluster.
  Whatever runs where, only this flow's process writes the SQLite index (one writer).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from prefect import flow, get_run_logger, task
from pydantic import SecretStr
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from recording_index import pipeline
from recording_index.config import Settings, load_settings
from recording_index.errors import BadInputError, ConfigError, DiskFullError, ModelUnavailableError, RecordingIndexError
from recording_index.index import Index
from recording_index.locks import exclusive_run
from recording_index.models import Recording
from recording_index.safety import printable

# With threads, downloads overlap on this many; transcription runs one recording at a time, since
# one Whisper already uses every core.
DOWNLOADS_AT_ONCE = 4
API_STARTUP_SECONDS = 120


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
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=DOWNLOADS_AT_ONCE)
    if settings.task_runner != "dask" and "://" not in settings.task_runner:
        raise ConfigError(f"task_runner = {settings.task_runner!r}: use 'threads', 'dask', or a Dask scheduler "
                          "address such as 'tcp://10.0.0.5:8786'")
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


def _die_with_parent() -> None:
    """In a child, before exec: have Linux send SIGTERM when the parent dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def temporary_api():
    """Prefect's temporary API server for a run of the command line, when no server is configured.

    Prefect would start one itself, but in the run's process group: Ctrl-C would stop it too, and the
    run would then spend a minute retrying to report its own interruption. Started here, it is in a
    session of its own (and dies with the run, whatever ends it). Its address is also given to the
    processes the run starts, so the workers of a local Dask cluster do not each start their own.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    detached = functools.partial(subprocess.Popen, start_new_session=True,
                                 preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    server = SubprocessASGIServer()
    with patch.object(subprocess, "Popen", detached):
        try:
            # Prefect waits 20 s by default: a loaded machine (a run beside a test suite) can need more.
            server.start(timeout=API_STARTUP_SECONDS)  # stopped at exit, after Prefect has sent its last logs
        except RuntimeError as exc:
            raise RecordingIndexError(f"Prefect's temporary API server did not start ({str(exc).splitlines()[0]}); "
                                      "set PREFECT_API_URL to a running Prefect server") from None
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def _runner_from_settings():
    """The runner a deployment's run gets: the settings file and RECORDING_INDEX_TASK_RUNNER decide."""
    try:
        return make_task_runner(load_settings())
    except RecordingIndexError:  # the flow itself reports a bad settings file when it runs
        return ThreadPoolTaskRunner(max_workers=DOWNLOADS_AT_ONCE)


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


def _stored_under(attribute: str) -> CacheKeyFnPolicy:
    """Cache a stage's result under the key `pipeline.prepare` computed for it (see cache_keys)."""
    return CacheKeyFnPolicy(cache_key_fn=lambda context, parameters: getattr(parameters["prepared"], attribute))


@task(cache_policy=NO_CACHE, **FETCH_RETRIES)
def resolve(recording: Recording, settings: Settings):
    return pipeline.resolve(recording, settings)


@task(cache_policy=NO_CACHE, **FETCH_RETRIES)
def prepare(recording: Recording, settings: Settings, db: str, retranslate: bool):
    return pipeline.prepare(recording, settings, db, retranslate)


# Not cached by Prefect: the WAV is itself named by content hash and reused while it exists.
@task(cache_policy=NO_CACHE)
def normalise(prepared, settings: Settings):
    return pipeline.normalise(prepared.recording, settings)


@task(cache_policy=_stored_under("transcription_key"), persist_result=True)
def transcribe(prepared, wav, settings: Settings):
    recording = prepared.recording
    return pipeline.transcribe_wav(wav, settings, recording.title or recording.id, recording.source,
                                   english=prepared.translator == "whisper")


@task(cache_policy=_stored_under("translation_key"), persist_result=True)
def translate(transcript, prepared, settings: Settings, wav):
    return pipeline.translate(transcript, prepared, settings, wav)


@task(cache_policy=_stored_under("chunks_key"), persist_result=True)
def chunk(prepared, transcript, settings: Settings):
    return pipeline.chunk(prepared.recording, transcript, settings)


# Writers: never cached (the index itself records what is done) and called in the flow's own
# process, so the database has one writer however the other stages are spread.
@task(cache_policy=NO_CACHE)
def store(db: str, prepared, transcript, chunks, settings: Settings):
    return pipeline.store_and_publish(db, prepared, transcript, chunks, settings)


@dataclass
class _InFlight:
    """One recording's submitted stages, awaited in order so the first real error is the one reported."""

    recording: Recording
    outcome: pipeline.Outcome
    started: float
    prepared: Any = None
    stages: tuple = ()


def _error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RecordingIndexError) else f"{type(exc).__name__}: {exc}"


def _stored_stages(settings: Settings, retranslate: bool) -> tuple:
    """transcribe, translate and chunk, storing their results in the run's cache folder (made once a run)."""
    storage = settings.cache_path / "results"
    return (transcribe.with_options(result_storage=storage),
            translate.with_options(result_storage=storage, refresh_cache=retranslate),
            chunk.with_options(result_storage=storage))


def _start(recording, prepared_future, settings: Settings, db: str, stages: tuple) -> _InFlight:
    work = _InFlight(recording, pipeline.Outcome(recording.id, recording.title, recording.source, "failed"), pipeline.timer())
    try:
        prepared = work.prepared = prepared_future.result()
        work.outcome.title, work.outcome.duration = prepared.recording.title, prepared.recording.duration
        if prepared.up_to_date:
            work.outcome.status = "skipped"
            return work
        transcribe_stored, translate_stored, chunk_stored = stages
        wav = normalise.submit(prepared, settings) if prepared.needs_audio else None
        if prepared.work == "all":
            transcript = transcribe_stored.submit(prepared, wav, settings)
        else:
            transcript = pipeline.stored_transcript(db, prepared)
        translated = translate_stored.submit(transcript, prepared, settings, wav)
        chunks = chunk_stored.submit(prepared, translated, settings)
        work.stages = (wav, transcript, translated, chunks)
    except Exception as exc:  # one recording's failure is reported, never the end of the run
        work.outcome.error = _error(exc)
    return work


def _finish(work: _InFlight, settings: Settings, db: str) -> pipeline.Outcome:
    outcome = work.outcome
    if work.stages:
        wav, transcript, translated, chunks = work.stages
        try:
            for stage in work.stages:
                if isinstance(stage, PrefectFuture):
                    stage.result()
            english, pieces = translated.result(), chunks.result()
            stored = store(db, work.prepared, english, pieces, settings)
            if stored.disk_full:
                raise DiskFullError(stored.error)
            if stored.error:
                raise RecordingIndexError(stored.error)
            outcome.status, outcome.warning = ("indexed" if work.prepared.work == "all" else "retranslated"), stored.warning
            outcome.segments, outcome.chunks, outcome.worker = len(english.segments), len(pieces), english.worker
            if isinstance(transcript, PrefectFuture):
                outcome.transcription = "reused" if transcript.state.name == "Cached" else "done"
        except DiskFullError:
            raise
        except Exception as exc:
            outcome.error = _error(exc)
            if isinstance(exc, BadInputError):  # it will never work: what it left in the cache goes
                pipeline.forget_media(work.prepared.recording, settings)
    if outcome.status == "failed" and (unstored := pipeline.store_failure(db, work.recording, outcome.error)).disk_full:
        raise DiskFullError(unstored.error)
    outcome.seconds = pipeline.timer() - work.started
    return outcome


@flow(name="index-recordings", task_runner=_runner_from_settings())
def index_recordings(paths: list[str] | None = None, catalog: str | None = None, db: str | None = None,
                     model: str | None = None, settings_file: str | None = None, overrides: dict | None = None,
                     retranslate: bool = False, credentials: dict[str, SecretStr] | None = None) -> pipeline.Summary:
    """Index the recordings of `catalog` and `paths` into the SQLite index at `db` (default: the
    settings' `db`), with Whisper `model` (default: the settings'); `overrides` sets any other setting."""
    started = pipeline.timer()
    settings = load_settings(settings_file).replace(**{"model": model, **(overrides or {})})
    db = db or settings.db
    # URLs that carry a user name and password come as `paths` without them and, in full, as
    # `credentials`: Prefect stores a run's parameters, and shows a SecretStr as "**********".
    unsealed = {k: v.get_secret_value() for k, v in (credentials or {}).items()}
    paths = [unsealed.get(p, p) for p in paths or []]
    sources = pipeline.collect(paths, catalog)  # a bad catalog stops the run before anything else
    with exclusive_run(db):
        Index(db).close()  # created, or upgraded, or refused (another program's database) before any work
        summary = _index_all(sources, share_cores(settings), db, retranslate)
    summary.wall_seconds = pipeline.timer() - started
    get_run_logger().info(summary.line())
    create_markdown_artifact(key="index-summary", markdown=summary.markdown(), description=summary.line())
    return summary


def share_cores(settings: Settings) -> Settings:
    """On a local Dask cluster, each worker's Whisper gets its share of the cores, not all of them."""
    if settings.task_runner == "dask" and not settings.cpu_threads:
        return settings.replace(cpu_threads=max(1, (os.cpu_count() or 1) // settings.dask_workers))
    return settings


def _index_all(sources, settings: Settings, db: str, retranslate: bool) -> pipeline.Summary:
    logger = get_run_logger()
    summary = pipeline.Summary()
    recordings: list[Recording] = []
    taken: dict[str, str] = {}  # id -> source: what two pages (or a page and a file) share is done once
    for source, found in zip(sources, [resolve.submit(s, settings) for s in sources]):
        try:
            resolved = found.result()
        except Exception as exc:
            summary.outcomes.append(pipeline.Outcome(source.id, source.title, source.source, "failed",
                                                     error=_error(exc)))
            continue
        for refused in resolved.refused:
            summary.outcomes.append(pipeline.Outcome(source.id, source.title, source.source, "failed",
                                                     error=str(refused)))
        for recording in resolved.recordings:
            if recording.id in taken:
                if taken[recording.id] != recording.source:
                    summary.outcomes.append(pipeline.Outcome(
                        recording.id, recording.title, recording.source, "failed",
                        error=f"id {recording.id!r} is already that of {taken[recording.id]}; not indexed twice"))
                continue
            taken[recording.id] = recording.source
            recordings.append(recording)
    # Every download starts now; recordings are transcribed a few at a time (one a worker), and
    # each is stored as soon as it is done, in the order of the catalog.
    stages = _stored_stages(settings, retranslate)
    prepared = [prepare.submit(r, settings, db, retranslate) for r in recordings]
    at_once = 1 if settings.task_runner == "threads" else max(1, settings.dask_workers)
    in_flight: deque[_InFlight] = deque()
    full = None
    for number, (recording, future) in enumerate(zip(recordings, prepared)):
        if full is not None:  # no space left: the others are not tried, and say so
            summary.outcomes.append(pipeline.Outcome(recording.id, recording.title, recording.source, "failed",
                                                     error=f"not tried: {full}"))
            continue
        in_flight.append(_start(recording, future, settings, db, stages))
        while in_flight and (len(in_flight) >= at_once or number == len(recordings) - 1 or full is not None):
            work = in_flight.popleft()
            try:
                summary.outcomes.append(_finish(work, settings, db))
            except DiskFullError as exc:
                full = str(exc)
                summary.outcomes.append(pipeline.Outcome(work.recording.id, work.recording.title,
                                                         work.recording.source, "failed", error=full))
    for outcome in summary.outcomes:
        line = f"{outcome.status}: {outcome.title or outcome.recording_id}"
        (logger.warning if outcome.error else logger.info)(printable(line + (f" — {outcome.error}" if outcome.error else "")))
    return summary


if __name__ == "__main__":
    # One machine, no work pool: serve the flow with a nightly schedule (see the README).
    index_recordings.serve(name="index-recordings-nightly", cron=os.environ.get("RECORDING_INDEX_CRON", "0 2 * * *"),
                           parameters={"catalog": os.environ.get("RECORDING_INDEX_CATALOG", "config/demo.toml")})
