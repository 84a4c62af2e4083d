import json

import pytest
from click.testing import CliRunner

from recording_index.cli import hms, main
from recording_index.index.database import SCHEMA_VERSION, Index
from recording_index.models import Recording
from test_index import TEXTS, chunks_of, make_recording, make_segments


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "index.db"
    with Index(path) as ix:
        rec = make_recording()
        rec.date = "2018-02-14"
        segments = make_segments(TEXTS)
        ix.add(rec, segments, chunks_of(rec.id, segments))
    return str(path)


def invoke(*args, code=None):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, result.output
    return result


def test_hms():
    assert hms(0) == "0:00:00" and hms(3725.9) == "1:02:05"


def test_search_prints_title_speaker_time_snippet_and_link(db):
    result = invoke("search", "coordination locale", "--db", db)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "1. Titre talk-1 — René-André Brisebois"
    assert lines[1].startswith("   0:00:35  ") and "**coordination**" in lines[1]
    assert lines[2] == "   file:///media/talk-1.mp3#t=35.0"


def test_search_json_fields(db):
    hits = json.loads(invoke("search", "équipe", "--db", db, "--json").output)
    assert hits and {"recording_id", "title", "start", "end", "text", "snippet", "url"} <= set(hits[0])
    assert "L'équipe" in hits[0]["text"]


@pytest.mark.parametrize("query", ['"coordination (locale', "AND", "*", "-", ""])
def test_search_never_raises_on_typed_text(db, query):
    result = invoke("search", query, "--db", db, "--json")
    assert result.exit_code == 0
    assert isinstance(json.loads(result.output), list)


def test_search_filters_and_limit(db):
    assert json.loads(invoke("search", "coordination", "--db", db, "--json", "--speaker", "Nobody").output) == []
    assert len(json.loads(invoke("search", "la", "--db", db, "--json", "--limit", "1").output)) == 1
    assert "No match" in invoke("search", "xylophone", "--db", db).output
    found = lambda *args: len(json.loads(invoke("search", "coordination", "--db", db, "--json", *args).output))  # noqa: E731
    assert found("--speaker", "brisebois", "--event", "mini-conf", "--date", "2018-02") == found() == 2
    assert found("--date", "2019") == 0


def test_a_version_1_index_is_left_alone_by_reads_and_upgraded_by_upgrade(tmp_path):
    import hashlib

    from test_index import make_version_1_index

    make_version_1_index(tmp_path / "old.db")
    before = hashlib.sha256((tmp_path / "old.db").read_bytes()).hexdigest()
    refused = invoke("list", "--db", str(tmp_path / "old.db"), code=2)
    assert f"schema version 1, not {SCHEMA_VERSION}; `recording-index upgrade` upgrades it" in refused.output
    assert hashlib.sha256((tmp_path / "old.db").read_bytes()).hexdigest() == before
    assert f"schema version {SCHEMA_VERSION}" in invoke("upgrade", "--db", str(tmp_path / "old.db")).output
    rows = json.loads(invoke("list", "--db", str(tmp_path / "old.db"), "--json").output)
    assert [r["id"] for r in rows] == ["old-talk"]
    hits = json.loads(invoke("search", "polonium", "--db", str(tmp_path / "old.db"), "--speaker", "curie", "--json").output)
    assert [h["recording_id"] for h in hits] == ["old-talk"]


def test_list_and_transcript(db):
    rows = json.loads(invoke("list", "--db", db, "--json").output)
    assert rows[0]["id"] == "talk-1" and rows[0]["status"] == "indexed"
    text = invoke("transcript", "talk-1", "--db", db).output.splitlines()
    assert text[0] == "# Titre talk-1 (talk-1)"
    assert text[1] == "[0:00:00 → 0:00:09] " + TEXTS[0]
    data = json.loads(invoke("transcript", "/media/talk-1.mp3", "--db", db, "--format", "json").output)
    assert [s["text"] for s in data["segments"]] == TEXTS and data["segments"][0]["words"]


def test_errors_are_one_line_with_status_2(tmp_path, db):
    result = CliRunner().invoke(main, ["search", "x", "--db", str(tmp_path / "absent.db")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: ") and "no index here yet" in result.output
    result = CliRunner().invoke(main, ["transcript", "nothing", "--db", db])
    assert result.exit_code == 2 and "nothing: no such recording" in result.output


def test_run_needs_something_to_do():
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2 and "PATHS and/or --catalog" in result.output


def test_run_rejects_a_bad_catalog_before_anything_runs(tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[[recordings]]\nsource = "a.mp3"\nspeeker = "x"\n')
    result = CliRunner().invoke(main, ["run", "--catalog", str(catalog), "--db", str(tmp_path / "i.db")])
    assert result.exit_code == 2
    assert "catalog.toml:3: recordings[1].speeker: unknown field" in result.output
    assert not (tmp_path / "i.db").exists()


def test_dry_run_shows_what_would_happen(tmp_path, media_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("RECORDING_INDEX_CACHE_DIR", str(cache_dir))
    result = CliRunner().invoke(main, ["run", str(media_dir / "tone.mp3"), str(media_dir / "text.wav"),
                                       "--db", str(tmp_path / "i.db"), "--dry-run"])
    assert result.exit_code == 1  # as the run would: one recording would fail
    lines = result.output.splitlines()
    assert "would index (3 s)" in lines[0] and "notice" not in result.output  # a dry run translates nothing
    assert "would fail" in lines[1] and "not a media file" in lines[1]
    as_json = CliRunner().invoke(main, ["run", str(media_dir / "tone.mp3"), "--db", str(tmp_path / "i.db"),
                                        "--dry-run", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)[0]["plan"] == "would index (3 s)"
    assert not (tmp_path / "i.db").exists()


def test_h_is_help():
    assert CliRunner().invoke(main, ["-h"]).output == CliRunner().invoke(main, ["--help"]).output
    assert "Usage:" in CliRunner().invoke(main, ["run", "-h"]).output


def test_an_unknown_task_runner_is_one_line_before_anything_runs(tmp_path, sample_mp3):
    result = CliRunner().invoke(main, ["run", str(sample_mp3), "--db", str(tmp_path / "i.db"), "--task-runner", "dsk"])
    assert result.exit_code == 2
    assert "error: --task-runner: task_runner = 'dsk': use 'threads', 'dask', or a Dask scheduler address" in result.output
    assert not (tmp_path / "i.db").exists()


@pytest.mark.parametrize("variable, value, message", [
    ("RECORDING_INDEX_ENGINE", "foo", "RECORDING_INDEX_ENGINE: setting 'engine' must be one of faster-whisper, "),
    ("RECORDING_INDEX_LANGUAGE", "french", "RECORDING_INDEX_LANGUAGE: setting 'language' must be a language code"),
    ("RECORDING_INDEX_BEAM_SIZE", "five", "RECORDING_INDEX_BEAM_SIZE: setting 'beam_size' must be a whole number"),
    ("RECORDING_INDEX_TRANSLATOR", "deepl", "RECORDING_INDEX_TRANSLATOR: setting 'translator' must be one of"),
])
def test_a_bad_setting_is_refused_up_front_naming_its_real_source(tmp_path, sample_mp3, monkeypatch, variable,
                                                                   value, message):
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["run", str(sample_mp3), "--db", str(tmp_path / "i.db"), "--dry-run"])
    assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1
    assert not (tmp_path / "i.db").exists()


def test_dry_run_json_keeps_fields_whole_whatever_a_title_holds(tmp_path, media_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("RECORDING_INDEX_CACHE_DIR", str(cache_dir))
    (tmp_path / "c.toml").write_text(f'[[recordings]]\ntitle = "Partie\\t1\\tintro"\nsource = "{media_dir / "tone.mp3"}"\n')
    result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "c.toml"), "--db", str(tmp_path / "i.db"),
                                       "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["title"] == "Partie\t1\tintro" and row["plan"] == "would index (3 s)"


def test_list_prints_tsv_csv_json_or_a_table_with_headers(db):
    tsv = invoke("list", "--db", db).output.splitlines()  # piped (not a terminal): TSV with a header
    assert tsv[0] == "id\ttitle\tspeakers\tlength\tstatus\tsource"
    assert tsv[1].split("\t") == ["talk-1", "Titre talk-1", "René-André Brisebois", "0:02:00", "indexed", "/media/talk-1.mp3"]
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(invoke("list", "--db", db, "--csv").output)))
    assert rows[0]["title"] == "Titre talk-1" and rows[0]["length"] == "0:02:00"
    table = invoke("list", "--db", db, "--table").output.splitlines()
    assert table[0].split() == ["id", "title", "speakers", "length", "status", "source"] and set(table[1]) <= {"-", " "}
    data = json.loads(invoke("list", "--db", db, "--json").output)
    assert data[0]["speakers"] == ["René-André Brisebois"] and data[0]["error"] is None  # NULL, not ""
    with Index(db) as ix:
        ix.record_failure(Recording(id="gone", source="/media/gone.mp3"), "/media/gone.mp3: no such file")
    failed = [line.split("\t") for line in invoke("list", "--db", db).output.splitlines() if line.startswith("gone")]
    assert failed[0][3] == "" and failed[0][4].startswith("failed (")  # no length known, not 0:00:00
    assert data[0]["uploader"] is None if "uploader" in data[0] else True


def test_unknown_is_null_in_the_index(db):
    import sqlite3

    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT uploader, error, warning, date FROM recordings").fetchone()
    assert row == (None, None, None, "2018-02-14")


def test_config_may_follow_the_subcommand(db, tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text('db = "%s"\n' % db)
    assert json.loads(invoke("list", "--config", str(settings), "--json", code=0).output)[0]["id"] == "talk-1"
    assert json.loads(invoke("list", f"--config={settings}", "--json", code=0).output)[0]["id"] == "talk-1"
    missing = CliRunner().invoke(main, ["list", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "nope.toml: settings file not found" in missing.output
    # After "--", it is a word to search for, not an option.
    assert "No match for '--config'" in invoke("search", "--db", db, "--", "--config").output


def test_every_option_of_every_command_says_what_it_does():
    import click

    missing = []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        missing.extend(f"{' '.join(path)} {p.opts[0]}" for p in command.params
                       if isinstance(p, click.Option) and not p.help and "--help" not in p.opts)

    walk(main, ["recording-index"])
    assert missing == []
    assert invoke("run", "-h", code=0).output.startswith("Usage: ")


def test_config_after_the_command_never_takes_another_option_s_value(db, tmp_path):
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text('db = "/nonexistent/first.db"\n')
    second.write_text('db = "%s"\n' % db)
    # The later --config wins, as click's options do.
    assert json.loads(invoke("--config", str(first), "list", "--config", str(second), "--json", code=0).output)
    # "--config" as the value of --event is an event to filter by, not a settings file.
    assert json.loads(invoke("search", "coordination", "--db", db, "--event", "--config", "--json", code=0).output) == []


def test_a_table_shows_ids_and_titles_as_written(tmp_path):
    db = tmp_path / "index.db"
    with Index(db) as ix:
        rec = make_recording("1e3")
        rec.title = "1.10"
        ix.add(rec, make_segments(TEXTS[:1]), chunks_of("1e3", make_segments(TEXTS[:1])))
    row = invoke("list", "--db", str(db), "--table", code=0).output.splitlines()[2].split()
    assert row[:2] == ["1e3", "1.10"]


def test_the_transcript_s_json_says_null_for_what_is_not_known(db):
    data = json.loads(invoke("transcript", "talk-1", "--db", db, "--format", "json", code=0).output)
    assert data["recording"]["uploader"] is None and data["recording"]["date"] == "2018-02-14"


def test_corrections_are_listed_one_a_line_with_the_texts_quoted_alike(tmp_path):
    from recording_index import stages
    from recording_index.config import Settings
    from recording_index.edits import correct_sentence

    db, run = str(tmp_path / "index.db"), Settings(cache_dir=str(tmp_path / "cache"), translator="none")
    facts = stages.Facts("h", "base", "", "none", "none", False)
    rec, segments = make_recording(), make_segments(TEXTS)
    with Index(db) as ix:  # as a run stores it
        ix.add(rec, segments, chunks_of(rec.id, segments), settings=stages.record(run, facts),
               stage_keys=stages.keys(run, facts))
    correct_sentence(db, rec.id, 0, "C'est le Hansard.", "fr", run, "Anne")
    (line,) = invoke("corrections", rec.id, "--db", db).output.splitlines()
    number, lang, where, status, change, by = line.split("\t")
    assert (lang, status, by) == ("fr", "applied", "Anne") and number.startswith("#")
    assert change.startswith("“") and change.endswith("”") and " → “" in change and "'" not in change.replace("C'est", "")
