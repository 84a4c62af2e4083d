"""The `recording-index` command: a thin layer that parses arguments, calls the library, prints."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import click

from recording_index.config import CHOICES, Settings, check_settings, load_settings
from recording_index.errors import RecordingIndexError
from recording_index.index.database import Index
from recording_index.index.schema import identify
from recording_index.safety import json_text, printable, printable_lines, redact, redact_url
from recording_index.stages import STAGES
from recording_index.utils import hms


def echo(*fields: object, sep: str = "\t", err: bool = False) -> None:
    """Print one line of fields, each cleaned of control characters: titles, sources and
    transcripts come from outside (a page's link text can hold terminal escapes)."""
    click.echo(sep.join(printable(f) for f in fields), err=err)


def echo_json(data: object) -> None:
    click.echo(json_text(data))


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


_STARTED = time.perf_counter()  # this process's start, near enough: a run's wall time includes it


def _db(ctx: click.Context, db: str | None) -> str:
    return db or _settings(ctx).db


db_option = click.option("--db", type=click.Path(dir_okay=False), help="SQLite index (default: `db` in config/settings.toml)")


class FriendlyGroup(click.Group):
    """Turn the package's errors into one line on stderr and exit status 2, not a traceback; take
    `--config FILE` after the subcommand too (`recording-index run --config my.toml …`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        own = {opt for p in self.params if isinstance(p, click.Option) and not p.is_flag for opt in p.opts}
        command = next((i for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] not in own)),
                       len(args))
        sub = self.commands.get(args[command]) if command < len(args) else None
        # The subcommand's options that take a value: "--event --config" means the event "--config".
        valued = {opt for p in getattr(sub, "params", []) if isinstance(p, click.Option) and not p.is_flag
                  and not p.count for opt in p.opts}
        end = args.index("--", command) if "--" in args[command:] else len(args)  # after "--": words
        for i in range(command + 1, end):
            if args[i - 1] in valued:
                continue
            if args[i].startswith("--config="):
                # Just before the subcommand: after any --config given before it, so the later one wins.
                args = [*args[:command], args[i], *args[command:i], *args[i + 1:]]
                break
            if args[i] == "--config" and i + 1 < end and not args[i + 1].startswith("-"):
                args = [*args[:command], *args[i:i + 2], *args[command:i], *args[i + 2:]]
                break
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RecordingIndexError as exc:
            echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (sqlite3.Error, ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError) as exc:
            # An index another program (or a person) filled with what this one never writes (a
            # number for the speakers, an infinite time): one line. RECORDING_INDEX_DEBUG=1 shows the
            # traceback, for a bug.
            if os.environ.get("RECORDING_INDEX_DEBUG"):
                raise
            echo(f"error: {type(exc).__name__}: {str(exc)[:300]} (RECORDING_INDEX_DEBUG=1 shows where)", err=True)
            sys.exit(2)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="settings file (default: config/settings.toml when present)")
@click.version_option(package_name="recording-index")
@click.pass_context
def main(ctx: click.Context, config_file: str | None) -> None:
    """Index recordings of French talks into a searchable SQLite archive."""
    # The library's warnings (a translator falling back, a model converted once) as plain lines on
    # stderr; Prefect's own logging is left as Prefect sets it.
    library = logging.getLogger("recording_index")
    if not library.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        library.addHandler(handler)
        library.setLevel(logging.WARNING)
        logging.getLogger("recording_index.notices").setLevel(logging.INFO)  # said once, when they apply
        library.propagate = False
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    ctx.obj["settings"] = load_settings(config_file)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--catalog", type=click.Path(dir_okay=False), help="catalog of recordings (TOML, see config/)")
@db_option
@click.option("--engine", type=click.Choice(CHOICES["engine"]), help="transcription engine")
@click.option("--model", help="Whisper model: base (embedded), small, medium, large-v3… or a local folder")
@click.option("--language", help="spoken language (fr, en…, or auto)")
@click.option("--translator", type=click.Choice(CHOICES["translator"]), help="how English is made")
@click.option("--beam-size", type=int, help="Whisper's beam size (1: greedy, faster)")
@click.option("--threads", "cpu_threads", type=int, help="CPU threads for Whisper and Argos (0: all cores)")
@click.option("--output-dir", "subtitles_dir", type=click.Path(file_okay=False),
              help="where subtitle, text and JSON files go (default: subtitles/ beside the index)")
@click.option("--output-format", type=click.Choice(CHOICES["output_format"]),
              help="which files to publish there, as whisper (default: all)")
@click.option("--redo", "redo", multiple=True, type=click.Choice([stage.name for stage in STAGES]),
              help="redo this stage (and those after it) for the recordings named, even when current; repeatable")
@click.option("--retranslate", is_flag=True, help="redo the English of recordings already transcribed (--redo translate)")
@click.option("--task-runner", help='where tasks run: "threads", "dask" (a local cluster) or a Dask scheduler address')
@click.option("--dry-run", is_flag=True, help="show what would be processed, change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("-v", "--verbose", is_flag=True, help="show Prefect's logs of the run too")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars nor a line per recording: failures and the summary")
@click.pass_context
def run(ctx, paths, catalog, db, engine, model, language, translator, beam_size, cpu_threads, subtitles_dir,
        output_format, redo, retranslate, task_runner, dry_run, as_json, verbose, quiet):
    """Index the recordings in PATHS and/or a catalog (normalise, transcribe, chunk, index).

    Options override the settings file for this run, as whisper's do."""
    from recording_index import pipeline

    if not paths and not catalog:
        raise click.UsageError("name recordings to index: PATHS and/or --catalog FILE")
    overrides = {"engine": engine, "model": model, "language": language, "translator": translator,
                 "beam_size": beam_size, "cpu_threads": cpu_threads,
                 # absolute: the index keeps it, and a later `correct` rebuilds the files there
                 "subtitles_dir": str(Path(subtitles_dir).resolve()) if subtitles_dir else None,
                 "output_format": output_format, "task_runner": task_runner}
    overrides = {name: value for name, value in overrides.items() if value is not None}
    if quiet:
        overrides["progress"] = False
        logging.getLogger("recording_index").setLevel(logging.ERROR)  # the summary alone
        logging.getLogger("recording_index.notices").setLevel(logging.ERROR)
    if verbose and quiet:
        raise click.UsageError("-v and -q: one or the other")
    settings = _settings(ctx).replace(**overrides)
    options = {"cpu_threads": "--threads", "subtitles_dir": "--output-dir"}
    check_settings(settings, {name: options.get(name, f"--{name.replace('_', '-')}") for name in overrides})
    if not db and not quiet:
        echo(f"index: {_db(ctx, db)} (the settings' `db`; --db names another)", err=True)
    db = _db(ctx, db)
    recordings = pipeline.collect(list(paths), catalog)  # validates the catalog before anything runs
    redo = pipeline.stages_to_redo(redo, retranslate)
    if dry_run:
        # Two files of the run that would publish under one name: refused as the run would refuse them.
        _, clashing = pipeline.distinct(recordings, [pipeline.Resolved([rec]) for rec in recordings])
        refused = {outcome.source: outcome.error for outcome in clashing}
        planned = []
        for rec in recordings:
            try:
                if rec.source in refused:
                    raise RecordingIndexError(refused[rec.source])
                planned += pipeline.plan(rec, settings, db, redo)
            except RecordingIndexError as exc:
                planned.append({"id": rec.id, "title": rec.title, "source": redact_url(rec.source),
                                "plan": f"would fail: {redact(str(exc))}", "stages": []})
        if as_json:
            echo_json(planned)
        else:
            for row in planned:
                echo(row["id"], row["title"], row["source"], row["plan"])
        # Like the run it stands for: status 1 when a recording would fail.
        sys.exit(1 if any(row["plan"].startswith("would fail") for row in planned) else 0)
    from recording_index.locks import exclusive_run

    if not verbose:
        # Prefect's log lines (about twenty a recording, each failure again as a failed task, and a
        # link to a server that ends with the run) give way to a progress bar and one line a
        # recording; -v brings them back. Set before Prefect is imported, which reads it then.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    # Refused here, before anything is written or Prefect starts (a bad setting, the task runner's
    # form included, was refused above): a database that is no index (left untouched), and a
    # second run on the same index.
    if Path(db).is_file():
        identify(Path(db))  # another program's database: refused before a lock file is made beside it
    with exclusive_run(db):
        Index(db).close()  # made, or upgraded, under the lock: a second run is told so, not "locked"
        if (unchanged := _all_unchanged(recordings, settings, db, redo)) is not None:
            _report(unchanged, as_json, quiet)  # nothing to do: said without importing or starting Prefect
        from recording_index_flows.index_recordings import make_task_runner

        make_task_runner(settings)  # prefect-dask installed, for "dask" or an address
        _run_flow(paths, catalog, db, ctx.obj["config_file"], overrides, redo, as_json, verbose, quiet)


def _all_unchanged(recordings, settings, db, redo):
    """The run's summary when every recording is a local file whose every stage is current, else None."""
    from recording_index import pipeline
    from recording_index.ingest.sources import is_remote
    from recording_index.outcomes import Outcome, Status, Summary

    started = time.perf_counter()
    if redo or any(is_remote(r.source) for r in recordings):
        return None
    outcomes = []
    for recording in recordings:
        try:
            prepared = pipeline.prepare(recording, settings, db, dry_run=True)
        except RecordingIndexError:
            return None  # the run reports it, and records it in the index
        if not prepared.up_to_date:
            return None
        outcomes.append(Outcome(recording.id, prepared.recording.title, recording.source, Status.SKIPPED,
                                duration=prepared.recording.duration))
    pipeline.after_run(db, outcomes, settings)
    return Summary(outcomes, wall_seconds=time.perf_counter() - started)


def _run_flow(paths, catalog, db, config_file, overrides, redo, as_json, verbose=False, quiet=False) -> None:
    # The temporary local API otherwise reports usage, which fails offline and clutters the output.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from recording_index_flows.index_recordings import index_recordings

    from recording_index.prefect_server import prefect_api

    # What the flow raises after Ctrl-C may be Prefect's or Dask's own error rather than
    # KeyboardInterrupt: remember the key press.
    interrupted = []

    def on_interrupt(signum, frame):
        interrupted.append(signum)
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    from pydantic import SecretStr

    shown = [redact_url(p) for p in paths]
    credentials = {s: SecretStr(p) for s, p in zip(shown, paths) if s != p}
    try:
        with prefect_api():
            state = index_recordings(paths=shown, catalog=catalog, db=db, settings_file=config_file,
                                     overrides=overrides, redo=list(redo), credentials=credentials or None,
                                     return_state=True)
        # A run in which recordings failed ends Failed, with the summary as its data; a crash, with its error.
        summary = state.result(raise_on_failure=False)
        if isinstance(summary, BaseException):
            raise summary
    except BaseException:
        if not interrupted:
            raise
        summary = None
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        # Each recording is written in one transaction: what was indexed stays, the rest is redone.
        click.echo("Interrupted: recordings indexed before the stop are kept; run the same command again "
                   "to finish the rest.", err=True)
        sys.exit(130)
    _report(summary, as_json, quiet)


def _report(summary, as_json: bool, quiet: bool = False) -> None:
    """The end of a run: a line per recording, failures and warnings on stderr, the summary on
    stdout, the exit status."""
    from recording_index.outcomes import Status

    summary.wall_seconds = max(summary.wall_seconds, time.perf_counter() - _STARTED)  # start-up included
    for outcome in [] if quiet else summary.outcomes:
        if not outcome.error:
            done = outcome.stages_line() if outcome.status != Status.SKIPPED else ""
            echo(f"{outcome.status}: {outcome.title or outcome.recording_id} ({hms(outcome.duration)})"
                 + (f" — {done}" if done else ""), err=True)
    for failure in summary.failed:
        named = failure.error.startswith(failure.source)
        echo(f"FAILED {failure.error if named else failure.source + ': ' + failure.error}", err=True)
    for outcome in summary.outcomes:
        if outcome.warning:
            echo(f"WARNING {outcome.title or outcome.recording_id}: {outcome.warning}", err=True)
    if as_json:
        echo_json(summary.to_dict())
    else:
        echo(summary.line())
    sys.exit(1 if summary.failed else 0)


@main.command()
@click.argument("query")
@db_option
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000), help="how many hits")
@click.option("--offset", default=0, type=click.IntRange(0), help="skip this many hits first (the next page)")
@click.option("--recording", help="only this recording (id or source)")
@click.option("--speaker", help="only recordings with a speaker of these words (the last may be cut: 'lem')")
@click.option("--event", help="only recordings of an event of these words")
@click.option("--date", help="only recordings of this year, month or day (2018, 2018-02, 2018-02-14)")
@click.option("--lang", type=click.Choice(["fr", "en", "any"]), default="any", show_default=True,
              help="search the French, the English, or both")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines of text")
@click.pass_context
def search(ctx, query, db, limit, offset, recording, speaker, event, date, lang, as_json):
    """Search what was said, in French or English: ranked hits with the moment and a link to it."""
    with Index(_db(ctx, db), readonly=True) as index:
        hits = index.search(query, limit=limit, offset=offset, recording=recording, speaker=speaker, event=event,
                            date=date, lang=lang)
    if as_json:
        echo_json([h.to_dict() for h in hits])
        return
    if not hits:
        echo(f"No match for {query!r}.")
        return
    for n, hit in enumerate(hits, 1 + offset):
        who = f" — {', '.join(hit.speakers)}" if hit.speakers else ""
        echo(f"{n}. {hit.title}{who}")
        origin = hit.origin if hit.lang == "fr" else hit.origin_en
        mark = f" ({origin}{' by ' + hit.corrected_by if hit.corrected_by and origin == 'corrected' else ''})" if (
            origin != "machine") else ""
        echo(f"   {hms(hit.moment)}  [{hit.lang}] {hit.snippet}{mark}")
        other = hit.sentence_en if hit.lang == "fr" else hit.sentence_fr  # the matched sentence's counterpart
        if other:
            echo(f"   {'en' if hit.lang == 'fr' else 'fr'}: {_shorten(other)}")
        echo(f"   {hit.url}")


def _shorten(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 1].rsplit(" ", 1)[0] + "…"


def table_options(command):
    """--table, --csv, --tsv, --json for a command that prints rows (as sqlite-utils has them)."""
    for flag, help_text in (("--json", "JSON: a list of objects"), ("--csv", "CSV with a header row"),
                            ("--tsv", "tab-separated with a header row"),
                            ("--table", "a table for reading (the default on a terminal; TSV when piped)")):
        command = click.option(flag, "fmt", flag_value=flag[2:], help=help_text)(command)
    return command


def print_rows(rows: list[dict], columns: list[str], fmt: str | None) -> None:
    """Rows in the format asked for; by default a table on a terminal, and TSV with a header when piped."""
    fmt = fmt or ("table" if sys.stdout.isatty() else "tsv")
    if fmt == "json":
        echo_json(rows)
        return
    cells = [[printable("" if row.get(c) is None else row[c]) for c in columns] for row in rows]
    if fmt == "table":
        from tabulate import tabulate

        click.echo(tabulate(cells, headers=columns, tablefmt="simple", disable_numparse=True))  # ids stay as written
    else:
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerows([columns, *cells])
        click.echo(out.getvalue(), nl=False)


@main.command(name="list")
@db_option
@table_options
@click.pass_context
def list_(ctx, db, fmt):
    """List the indexed recordings, most recently indexed first."""
    with Index(_db(ctx, db), readonly=True) as index:
        rows = index.list_recordings()
    if fmt != "json":
        rows = [{**r, "speakers": ", ".join(r["speakers"]), "length": hms(r["duration"]) if r["duration"] else "",
                 "status": r["status"] + "".join(f" ({r[k]})" for k in ("error", "warning") if r[k])} for r in rows]
    print_rows(rows, ["id", "title", "speakers", "length", "status", "source"], fmt)


@main.command()
@click.argument("recording")
@db_option
@click.option("--format", "fmt", type=click.Choice(["timed", "txt", "srt", "vtt", "tsv", "json"]), default="timed",
              show_default=True, help="timed: a header and each sentence with its time range; txt, srt, vtt, tsv, "
              "json: as whisper writes them (txt plain text; tsv start and end in ms)")
@click.option("--lang", type=click.Choice(["fr", "en", "both"]), default="fr", show_default=True,
              help="the language shown (both: French over English; json keeps both whatever this says)")
@click.pass_context
def transcript(ctx, recording, db, fmt, lang):
    """Print one recording's transcript (RECORDING: its id or its source path)."""
    from recording_index.publish.files import plain_text, render, tsv, whisper_json
    from recording_index.publish.subtitles import cues_for

    with Index(_db(ctx, db), readonly=True) as index:
        rec, segments = index.get(recording)
    if fmt == "json":
        from recording_index.index.schema import OPTIONAL_TEXT

        shown = {k: (v or None) if k in OPTIONAL_TEXT else v for k, v in rec.to_dict().items()}  # unknown: null
        echo_json({"recording": shown, **whisper_json(segments, lang)})
    elif fmt in ("srt", "vtt"):
        cues, _report = cues_for(segments, "fr" if lang == "both" else lang, bilingual=lang == "both")
        click.echo(printable_lines(render(cues, fmt, None if lang == "both" else lang)), nl=False)
    elif fmt in ("txt", "tsv"):
        if lang == "both":
            raise click.UsageError(f"--format {fmt} holds one language: --lang fr or en")
        text = (plain_text if fmt == "txt" else tsv)(segments, lang)  # tabs separate tsv's fields: kept
        click.echo("".join("\t".join(printable(f) for f in line.split("\t")) + "\n" for line in text.splitlines()),
                   nl=False)
    else:
        echo(f"# {rec.title} ({rec.id})")
        for s in segments:
            sides = {"fr": [s.text], "en": [s.text_en or ""], "both": [s.text, "   " + (s.text_en or "")]}[lang]
            click.echo(f"[{hms(s.start)} → {hms(s.end)}] " + "\n".join(printable(side) for side in sides))


@main.command()
@click.argument("targets", nargs=-1, metavar="RECORDING | --check FILE...")
@db_option
@click.option("--lang", type=click.Choice(["fr", "en"]), default="en", show_default=True, help="the subtitles' language")
@click.option("--format", "fmt", type=click.Choice(["srt", "vtt"]), default="srt", show_default=True,
              help="SubRip or WebVTT")
@click.option("--bilingual", is_flag=True, help="French over English in each cue (with --check: two languages "
              "per cue even where the file does not mark them)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write here instead of standard output")
@click.option("--check", is_flag=True, help="check the SRT/VTT files named instead of writing subtitles")
@click.option("--strict", is_flag=True, help="with --check: count unavoidable reading-speed cases too")
@click.pass_context
def subtitles(ctx, targets, db, lang, fmt, bilingual, output, check, strict):
    """Write a recording's subtitles (SRT or WebVTT), or --check subtitle files against the rules.

    The check prints each violation with its cue number and time and exits with status 1 when any;
    reading speed over the limit where no silence follows to extend into is reported as unavoidable
    and does not count (unless --strict). A file that is no subtitle is an error line, the others
    are checked still, and the status is 2.
    """
    from recording_index.publish.files import check_file, render, write_atomically
    from recording_index.publish.subtitles import cues_for

    if check:
        if not targets:
            raise click.UsageError("name the subtitle files to --check")
        failed = unreadable = False
        for path in targets:
            try:
                violations = check_file(path, bilingual=bilingual)
            except RecordingIndexError as exc:  # one file that is no subtitle does not stop the others' check
                echo(f"error: {exc}", err=True)
                unreadable = True
                continue
            for v in violations:
                echo(f"{path}: {v.line()}")
            counted = [v for v in violations if strict or not v.unavoidable]
            unavoidable = len(violations) - len(counted) if not strict else 0
            echo(f"{path}: {len(counted)} violation(s)" + (f", {unavoidable} unavoidable" if unavoidable else ""),
                 err=True)
            failed = failed or bool(counted)
        sys.exit(2 if unreadable else 1 if failed else 0)
    if len(targets) != 1:
        raise click.UsageError("name one RECORDING (id or source), or --check FILE...")
    recording = targets[0]
    with Index(_db(ctx, db), readonly=True) as index:
        _rec, segments = index.get(recording)
    if lang == "en" and not bilingual and not any(s.text_en for s in segments):
        raise RecordingIndexError(f"{recording}: no English in the index (run with a translator)")
    cues, report = cues_for(segments, lang, bilingual=bilingual)
    text = render(cues, fmt, None if bilingual else lang)
    if output:
        write_atomically(Path(output), text)
        click.echo(f"wrote {output}: {report.line()}", err=True)
    else:
        click.echo(printable_lines(text), nl=False)


@main.command()
@click.argument("recording")
@click.option("--from", "from_file", required=True, type=click.Path(dir_okay=False),
              help="an SRT or WebVTT file of RECORDING that a person edited")
@click.option("--lang", type=click.Choice(["fr", "en"]),
              help="the file's language (default: from its name, talk.fr.srt / talk.en.vtt; else fr)")
@click.option("--by", help="who corrected it (kept with each correction)")
@click.option("--dry-run", is_flag=True, help="show the corrections, store nothing")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines of text")
@db_option
@click.pass_context
def correct(ctx, recording, from_file, lang, by, dry_run, as_json, db):
    """Import corrections of RECORDING's transcript from an edited subtitle file.

    The file's words are compared with the transcript's over the time its cues cover: cues merged,
    split or nudged change nothing; each word changed, added or removed becomes a correction of
    that stretch of the timeline, kept beside the machine's output and applied by every later run.
    Chunks, full-text rows and subtitle files of RECORDING are rebuilt at once.
    """
    from recording_index.edits import correct_from_file

    edited = correct_from_file(_db(ctx, db), recording, from_file, _settings(ctx), lang, by, dry_run)
    _report_edit(edited, as_json, f"{from_file}: no change from the transcript", dry_run)
    if edited.outcome and not as_json:
        from recording_index.corrections.vocabulary import suggestions

        ours = {c.id for c in edited.corrections}
        with Index(_db(ctx, db), readonly=True) as index:
            terms = [s.term for s in suggestions(index, recording_id=edited.recording_id) if ours & set(s.corrections)]
        if terms:
            echo(f"names corrected: {', '.join(terms)}; `recording-index vocabulary` offers them for the "
                 "event's catalog vocabulary", err=True)


def _report_edit(edited, as_json: bool, unchanged: str, dry_run: bool = False) -> None:
    if as_json:
        echo_json({"recording": edited.recording_id, "corrections": [_correction_row(c) for c in edited.corrections],
                   "replaced": edited.replaced, "unfit": [_correction_row(c) for c in edited.unfit],
                   "rebuilt": edited.outcome.stages if edited.outcome else []})
        return
    if not edited.corrections:
        echo(unchanged, err=True)
        return
    for c in edited.corrections:
        echo(*_correction_fields(c))
    if dry_run:
        echo(f"{len(edited.corrections)} correction(s) found; nothing stored (--dry-run)", err=True)
        return
    echo(f"{edited.recording_id}: {len(edited.corrections)} correction(s) stored"
         + (f", {len(edited.replaced)} earlier one(s) replaced" if edited.replaced else "")
         + (f"; rebuilt: {', '.join(edited.outcome.stages)}" if edited.outcome else ""), err=True)
    for c in edited.unfit:
        echo(f"warning: #{c.id} does not fit: {c.note}", err=True)


def _correction_fields(c) -> list[str]:
    where = f"{hms(c.start)}" + (f"–{hms(c.end)}" if c.end > c.start else " (inserted)")
    fields = [f"#{c.id or '-'}", c.lang, where, c.status, f"“{c.machine_text}” → “{c.text}”", c.by, c.note]
    return [field for field in fields if field]


def _correction_row(c) -> dict:
    return {"id": c.id, "lang": c.lang, "start": c.start, "end": c.end, "machine_text": c.machine_text,
            "text": c.text, "by": c.by or None, "at": c.at or None, "origin": c.origin, "status": c.status,
            "note": c.note or None}


@main.command()
@click.argument("recording")
@click.option("--all", "show_all", is_flag=True, help="reverted and replaced corrections too")
@click.option("--revert", type=int, multiple=True, metavar="ID", help="revert correction ID (repeatable)")
@click.option("--export", type=click.Path(dir_okay=False), help="write them to this JSON file")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines of text")
@db_option
@click.pass_context
def corrections(ctx, recording, show_all, revert, export, as_json, db):
    """List the corrections of RECORDING, export them, or --revert some (the machine's text comes back)."""
    from recording_index.edits import revert as revert_corrections
    from recording_index.publish.files import write_atomically
    from recording_index.safety import json_text

    path = _db(ctx, db)
    if revert:
        edited = revert_corrections(path, recording, list(revert), _settings(ctx))
        reverted = {c.id for c in edited.corrections}
        for correction_id in revert:
            echo(f"#{correction_id}: " + ("reverted" if correction_id in reverted else "already reverted or replaced"),
                 err=True)
        return
    with Index(path, readonly=True) as index:
        recording_id = index.resolve_id(recording)
        found = [c for c in index.corrections(recording_id)
                 if show_all or export or c.status not in ("reverted", "replaced")]
    rows = [_correction_row(c) for c in found]
    if export:
        write_atomically(Path(export), json_text({"recording": recording_id, "corrections": rows}) + "\n")
        echo(f"wrote {export}: {len(rows)} correction(s)", err=True)
    elif as_json:
        echo_json(rows)
    elif not found:
        echo(f"{recording_id}: no corrections", err=True)
    else:
        for c in found:
            echo(*_correction_fields(c))


@main.command()
@click.option("--event", help="only the suggestions for this event (its title)")
@click.option("--catalog", type=click.Path(dir_okay=False), help="the catalog to add accepted terms to")
@click.option("--accept", multiple=True, metavar="TERM", help="add this suggested term to the catalog (repeatable)")
@click.option("--accept-all", is_flag=True, help="add every suggested term to the catalog")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines of text")
@db_option
@click.pass_context
def vocabulary(ctx, event, catalog, accept, accept_all, as_json, db):
    """Names and terms people corrected, suggested for their event's catalog `vocabulary`.

    Whisper is given an event's vocabulary for its next recordings. Nothing changes until you
    accept: --accept TERM (or --accept-all) with --catalog FILE adds them there, comments kept.
    """
    from recording_index.corrections import vocabulary as suggested

    with Index(_db(ctx, db), readonly=True) as index:
        found = suggested.suggestions(index, event)
    if accept or accept_all:
        if not catalog:
            raise click.UsageError("--accept needs --catalog FILE: the catalog to add the terms to")
        unknown = [t for t in accept if t.casefold() not in {s.term.casefold() for s in found}]
        if unknown:
            raise RecordingIndexError(f"{unknown[0]!r} is not a suggestion (see `recording-index vocabulary`)")
        chosen = found if accept_all else [s for s in found if s.term.casefold() in {t.casefold() for t in accept}]
        added = suggested.accept(catalog, chosen)
        for where, term in added:
            echo(f"{catalog}: {where}.vocabulary += {term!r}", err=True)
        if not added:
            echo(f"{catalog}: nothing to add (already there, or no entry for that event)", err=True)
        return
    if as_json:
        echo_json([s.__dict__ for s in found])
    elif not found:
        echo("no suggestions: no names or acronyms corrected beyond the catalogs' vocabulary", err=True)
    for s in [] if as_json else found:
        echo(s.event or "-", s.term, f"{len(s.corrections)} correction(s) in {', '.join(s.recordings)}")


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="the port to listen on")
@click.option("--name", "names", multiple=True, metavar="NAME",
              help="a name the server is reached by (archive.example.org); requests naming any other host "
                   "are refused; repeatable (the local names are always accepted)")
@click.option("--allow-edits", is_flag=True, help="let the recording page correct sentences (writes the index)")
@click.pass_context
def serve(ctx, db, host, port, names, allow_edits):
    """Serve the search page at http://HOST:PORT/: read-only unless --allow-edits.

    Beyond this machine (--host 0.0.0.0, say), edits need a password, set in the environment as
    RECORDING_INDEX_SERVE_PASSWORD: every request must then carry it (the browser asks once).
    Put the server behind HTTPS (a reverse proxy) when it is reached over a network."""
    import uvicorn

    from recording_index.web import create_app
    from recording_index.web.app import LOCAL_HOSTS

    path = _db(ctx, db)
    Index(path, readonly=True).close()  # a missing or foreign database is an error now, not at the first request
    password = os.environ.get("RECORDING_INDEX_SERVE_PASSWORD") or None
    if allow_edits and host not in LOCAL_HOSTS and not password:
        raise click.UsageError(f"--allow-edits on {host} needs a password: set RECORDING_INDEX_SERVE_PASSWORD "
                               "(anyone who reaches the server could otherwise correct transcripts)")
    mode = "corrections allowed" if allow_edits else "read-only"
    click.echo(f"Serving {path} at http://{host}:{port}/ ({mode}{', password asked' if password else ''}; "
               "Ctrl-C to stop)", err=True)
    if host not in LOCAL_HOSTS and not names:
        click.echo(f"note: requests are answered for {', '.join(LOCAL_HOSTS)} and {host} alone; name the others "
                   "this server is reached by with --name", err=True)
    app = create_app(path, allow_edits=allow_edits, settings=_settings(ctx), hosts=(host, *names), password=password)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@db_option
@click.option("--base-url", default="", help="the address the site is served from (https://example.org/archive/), "
                                             "for the pages' canonical links")
@click.option("--media", type=click.Choice(["link", "copy", "url"]), default="link", show_default=True,
              help="a recording's local media file: linked beside the pages, copied there, or not published "
                   "(media the catalog names by a public URL is played from it)")
@click.pass_context
def site(ctx, out, db, base_url, media):
    """Write the archive as a static website in OUT: pages, subtitles, and a search that runs in the browser.

    A second run writes again only what changed. Serve OUT from any web host, or try it with
    `python -m http.server -d OUT`."""
    from recording_index.publish.site import build_site

    report = build_site(_db(ctx, db), out, base_url=base_url, media=media)
    echo(report.line())


@main.command(name="datasette-metadata")
@db_option
@click.pass_context
def datasette_metadata(ctx, db):
    """Print Datasette metadata for the index: datasette -i INDEX -m FILE (titles, facets, search, queries)."""
    from recording_index.index.datasette import datasette_metadata as metadata

    db = _db(ctx, db)
    with Index(db, readonly=True):  # an index of ours, or one line saying why not
        pass
    echo_json(metadata(db))


@main.command()
@db_option
@click.pass_context
def upgrade(ctx, db):
    """Upgrade an index of an older schema in place (read commands never write, so they cannot)."""
    from recording_index import pipeline
    from recording_index.locks import exclusive_run

    path = _db(ctx, db)
    with exclusive_run(path):
        before = identify(path) if Path(path).is_file() else 0
        with Index(path, create=False) as index:
            version = index.db.execute("PRAGMA user_version").fetchone()[0]
        resegmented = pipeline.upgrade(path)
    echo(f"{path}: index schema version {version}" + (f" (was {before})" if before != version else "")
         + (f"; {len(resegmented)} recording(s) re-segmented into sentences from their stored words: "
            f"{', '.join(resegmented[:10])}" + (f" and {len(resegmented) - 10} more" if len(resegmented) > 10 else "")
            if resegmented else ""))


@main.command()
@db_option
@click.pass_context
def check(ctx, db):
    """Check the index: what it holds is what this program makes, SQLite's own integrity check, and
    each full-text table against its text. Exit status 1 when something is out of step."""
    path = _db(ctx, db)
    with Index(path, readonly=True) as index:
        result = index.integrity_check()
    if not result.startswith("ok"):
        echo(f"{path}: {result}", err=True)
        sys.exit(1)
    echo(f"{path}: {result}")


@main.group()
def models():
    """The models this machine has: Whisper and Argos Translate."""


@models.command(name="list")
@table_options
@click.pass_context
def models_list(ctx, fmt):
    """Show the Whisper and Argos models installed here."""
    from recording_index.inventory import installed_models

    print_rows(installed_models(_settings(ctx)), ["kind", "name", "status", "path"], fmt)


@models.command(name="install")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), help="a local .argosmodel file")
@click.option("--source-language", default="fr", show_default=True, help="the language translated into English")
def models_install(from_file, source_language):
    """Install the Argos Translate package (fr→en) from the Argos index, or from a file."""
    from recording_index.english.translate import install_argos

    package = install_argos(from_file, source_language, "en")
    click.echo(f"installed Argos {package.from_code}→{package.to_code} {package.package_version} "
               f"in {package.package_path}")


@main.command(name="convert-model")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("output", type=click.Path(dir_okay=False))
def convert_model(model_dir, output):
    """Write an openai-whisper checkpoint (.pt) from a CTranslate2 Whisper model folder."""
    from recording_index.speech.convert import convert_ct2_to_openai

    click.echo(f"wrote {convert_ct2_to_openai(Path(model_dir), Path(output))}")


if __name__ == "__main__":
    main()
