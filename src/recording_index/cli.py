"""The `recording-index` command: a thin layer that parses arguments, calls the library, prints."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .config import Settings, load_settings
from .errors import RecordingIndexError
from .index import Index


def hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _db(ctx: click.Context, db: str | None) -> str:
    return db or _settings(ctx).db


db_option = click.option("--db", type=click.Path(dir_okay=False), help="SQLite index (default: `db` in config/settings.toml)")


class FriendlyGroup(click.Group):
    """Turn the package's errors into one line on stderr and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RecordingIndexError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=FriendlyGroup)
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="settings file (default: config/settings.toml when present)")
@click.version_option(package_name="recording-index")
@click.pass_context
def main(ctx: click.Context, config_file: str | None) -> None:
    """Index recordings of French talks into a searchable SQLite archive."""
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    ctx.obj["settings"] = load_settings(config_file)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--catalog", type=click.Path(dir_okay=False), help="catalog of recordings (TOML, see config/)")
@db_option
@click.option("--engine", type=click.Choice(["faster-whisper", "openai-whisper"]), help="transcription engine")
@click.option("--model", help="Whisper model: base (embedded), small, medium, large-v3… or a local folder")
@click.option("--language", help="spoken language (fr, en…, or auto)")
@click.option("--dry-run", is_flag=True, help="show what would be processed, change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.pass_context
def run(ctx, paths, catalog, db, engine, model, language, dry_run, as_json):
    """Index the recordings in PATHS and/or a catalog (normalise, transcribe, chunk, index)."""
    from . import pipeline

    if not paths and not catalog:
        raise click.UsageError("name recordings to index: PATHS and/or --catalog FILE")
    settings = _settings(ctx).replace(engine=engine, model=model, language=language)
    db = _db(ctx, db)
    recordings = pipeline.collect(list(paths), catalog)  # validates the catalog before anything runs
    if dry_run:
        for rec in recordings:
            try:
                prepared = pipeline.prepare(rec, settings, db)
                state = "unchanged, would skip" if prepared.up_to_date else f"would index ({hms(prepared.recording.duration)})"
            except RecordingIndexError as exc:
                state = f"would fail: {exc}"
            click.echo(f"{rec.id}\t{rec.title}\t{rec.source}\t{state}")
        return
    # The temporary local API otherwise reports usage, which fails offline and clutters the output.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from recording_index_flows.index_recordings import index_recordings

    overrides = {"engine": engine, "model": model, "language": language}
    summary = index_recordings(paths=list(paths), catalog=catalog, db=db,
                               settings_file=ctx.obj["config_file"], overrides=overrides)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        for failure in summary.failed:
            click.echo(f"FAILED {failure.source}: {failure.error}", err=True)
        click.echo(summary.line())
    sys.exit(1 if summary.failed else 0)


@main.command()
@click.argument("query")
@db_option
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--recording", help="only this recording (id or source)")
@click.option("--speaker", help="only recordings with a speaker matching this")
@click.option("--event", help="only recordings of an event matching this")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def search(ctx, query, db, limit, offset, recording, speaker, event, as_json):
    """Search what was said: ranked hits with the moment and a link to it."""
    with Index(_db(ctx, db), create=False) as index:
        hits = index.search(query, limit=limit, offset=offset, recording=recording, speaker=speaker, event=event)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        click.echo(f"No match for {query!r}.")
        return
    for n, hit in enumerate(hits, 1 + offset):
        who = f" — {', '.join(hit.speakers)}" if hit.speakers else ""
        click.echo(f"{n}. {hit.title}{who}")
        click.echo(f"   {hms(hit.moment)}  {hit.snippet}")
        click.echo(f"   {hit.url}")


@main.command(name="list")
@db_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx, db, as_json):
    """List the indexed recordings."""
    with Index(_db(ctx, db), create=False) as index:
        rows = index.list()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(f"{r['id']}\t{r['title']}\t{', '.join(r['speakers'])}\t{hms(r['duration'] or 0)}\t"
                   f"{r['status']}{' (' + r['error'] + ')' if r['error'] else ''}\t{r['source']}")


@main.command()
@click.argument("recording")
@db_option
@click.option("--format", "fmt", type=click.Choice(["txt", "json"]), default="txt", show_default=True)
@click.pass_context
def transcript(ctx, recording, db, fmt):
    """Print one recording's timed transcript (RECORDING: its id or its source path)."""
    with Index(_db(ctx, db), create=False) as index:
        rec, segments = index.get(recording)
    if fmt == "json":
        rows = [{"index": s.index, "start": s.start, "end": s.end, "text": s.text,
                 "words": [w.__dict__ for w in s.words]} for s in segments]
        click.echo(json.dumps({"recording": rec.to_dict(), "segments": rows}, ensure_ascii=False, indent=2))
        return
    click.echo(f"# {rec.title} ({rec.id})")
    for s in segments:
        click.echo(f"[{hms(s.start)} → {hms(s.end)}] {s.text}")


@main.command(name="convert-model")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("output", type=click.Path(dir_okay=False))
def convert_model(model_dir, output):
    """Write an openai-whisper checkpoint (.pt) from a CTranslate2 Whisper model folder."""
    from .convert import convert_ct2_to_openai

    click.echo(f"wrote {convert_ct2_to_openai(Path(model_dir), Path(output))}")


if __name__ == "__main__":
    main()
