"""Stage keys (stages.py): what decides a stage's output changes its key and the keys after it, and
nothing else does; the index's skip decision and Prefect's cache both follow them."""

import ast
import importlib.util
import json
import os
from dataclasses import fields, replace
from pathlib import Path

import pytest

from recording_index import stages
from recording_index.config import Settings
from recording_index.ingest.audio import find_ffmpeg
from recording_index.models import Recording
from recording_index.outcomes import Outcome, Status, Summary
from recording_index.pipeline import facts_for, index_recording

# A different valid value for every setting. A new setting must be added here, and to DECIDES if it
# decides an output: test_every_setting_is_declared fails until it is.
OTHER_VALUE = {
    "db": "elsewhere.db", "engine": "openai-whisper", "model": "small", "compute_type": "float32",
    "language": "en", "vad": False, "beam_size": 1, "batch_size": 0, "cpu_threads": 1, "chunk_seconds": 10.0,
    "translator": "none", "subtitles_dir": "published", "output_format": "srt", "ffmpeg": "/usr/local/bin/ffmpeg", "cache_dir": None,
    "task_runner": "dask", "dask_workers": 3, "progress": False, "max_page_recordings": 5, "max_hours": 2.0,
    "download_minutes": 5.0, "site_dir": "site", "site_base_url": "https://example.org/archive/",
}
# The stages each setting decides, written out here rather than read from stages.py.
DECIDES = {
    **{name: {"transcribe"} for name in ("engine", "model", "compute_type", "language", "vad", "beam_size",
                                          "batch_size")},
    "translator": {"translate"}, "chunk_seconds": {"chunk"}, "subtitles_dir": {"subtitles"}, "output_format": {"subtitles"},
}
AFTER = {"transcribe": {"transcribe", "segment", "translate", "correct", "chunk", "subtitles"},
         "translate": {"translate", "correct", "chunk", "subtitles"}, "chunk": {"chunk"}, "subtitles": {"subtitles"}}


# Settings' properties, and the field each reads.
PROPERTIES = {"cache_path": "cache_dir", "threads": "cpu_threads", "whisper_language": "language"}


def keys_for(settings: Settings, content_hash: str = "a" * 64) -> dict[str, str]:
    # Two minutes, as probed: the decoding's bound (max_hours) is far.
    recording = Recording(id="r", source="r.mp3", content_hash=content_hash, duration=120.0)
    return stages.keys(settings, facts_for(recording, settings))


def test_every_setting_is_declared():
    assert set(OTHER_VALUE) == {f.name for f in fields(Settings)}


def _settings_read_by(module: str) -> set[str]:
    """`settings.x` and `self.settings.x` in a module's code, properties taken to the field they read."""
    read = set()
    for node in ast.walk(ast.parse(Path(importlib.util.find_spec(module).origin).read_text())):
        if isinstance(node, ast.Attribute) and (
                (isinstance(node.value, ast.Name) and node.value.id == "settings")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "settings")):
            read.add(PROPERTIES.get(node.attr, node.attr))
    return read & {f.name for f in fields(Settings)}  # argostranslate.settings has fields of its own


# Modules whose reads of settings decide no output: loading and checking settings, errors, locks.
LOADING = {f"{stages.PACKAGE}.{m}" for m in ("config", "errors", "safety", "redaction", "locks", "utils")}


def _with_imports(modules) -> set[str]:
    """`modules` and the package modules they import, transitively (read here, in a test alone)."""
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module in seen or module in LOADING or importlib.util.find_spec(module) is None:
            continue
        seen.add(module)
        for node in ast.walk(ast.parse(Path(importlib.util.find_spec(module).origin).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(stages.PACKAGE):
                todo.append(node.module)
                todo.extend(f"{node.module}.{a.name}" for a in node.names
                            if importlib.util.find_spec(node.module).submodule_search_locations)
    return seen


def test_every_setting_a_stage_reads_is_in_its_key_or_said_to_decide_nothing():
    """Read from the stages' own code, not from a list kept by hand: a setting that a stage's code
    reads must be one of its inputs (or its upstream stages'), reach it through a fact, or be
    declared neutral with a reason."""
    assert {name for name, value in vars(Settings).items() if isinstance(value, property)} == set(PROPERTIES)
    for stage in stages.STAGES:
        keyed, upstream = set(), stage
        while upstream:
            keyed |= set(upstream.reads) | {s for s, fact in stages.THROUGH_FACTS.items()
                                           if fact in upstream.facts + upstream.passes_on}
            upstream = stages.BY_NAME.get(upstream.after)
        read = set().union(*(_settings_read_by(m) for m in _with_imports(f"{stages.PACKAGE}.{m}" for m in stage.code)))
        assert read - keyed - set(stages.NEUTRAL_SETTINGS) == set(), stage.name
    assert set(stages.THROUGH_FACTS.values()) <= {f.name for f in fields(stages.Facts)}


def test_the_audio_is_keyed_by_the_ffmpeg_that_decodes_it_not_by_its_path(tmp_path, monkeypatch):
    """Another ffmpeg may resample to other samples: its version names the WAV and keys the
    transcription. The same ffmpeg under another path changes nothing."""
    from recording_index.ingest import audio

    real = audio.find_ffmpeg()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ffmpeg").symlink_to(real)
    settings = Settings(cache_dir=str(tmp_path / "cache"))
    assert keys_for(settings) == keys_for(replace(settings, ffmpeg=str(tmp_path / "bin" / "ffmpeg")))
    how = audio.normalisation(real, 720.0)
    assert audio.ffmpeg_version(real) in how and "720" in how
    before = keys_for(settings)
    monkeypatch.setattr(audio, "ffmpeg_version", lambda exe: "ffmpeg version 99")
    assert stages.stale(before, keys_for(settings))[0] == "transcribe"
    assert audio.normalised_path("c", "h", how) != audio.normalised_path("c", "h", audio.normalisation(real, 720.0))


@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_changing_a_setting_redoes_exactly_the_stages_that_read_it_and_those_after(name, tmp_path):
    base = Settings(cache_dir=str(tmp_path / "cache"), progress=True)
    other = OTHER_VALUE[name] if name != "cache_dir" else str(tmp_path / "other-cache")
    if name == "ffmpeg":  # the same ffmpeg elsewhere: a path decides nothing, its version does
        (tmp_path / "bin").mkdir()
        other = str(tmp_path / "bin" / "ffmpeg")
        Path(other).symlink_to(find_ffmpeg())
    changed = replace(base, **{name: other})
    before, after = keys_for(base), keys_for(changed)
    redone = {stage for stage in before if before[stage] != after[stage]}
    expected = set().union(*(AFTER[s] for s in DECIDES.get(name, set())))
    assert redone == expected, name
    assert stages.stale(before, after) == [s.name for s in stages.STAGES if s.name in expected]


def test_other_audio_redoes_everything_and_equal_inputs_nothing(tmp_path):
    settings = Settings(cache_dir=str(tmp_path))
    assert stages.stale(keys_for(settings), keys_for(settings)) == []
    assert stages.stale(keys_for(settings), keys_for(settings, "b" * 64)) == ["transcribe", "segment", "translate", "correct",
                                                                             "chunk", "subtitles"]
    assert all(key.startswith(f"{name}.{stages.BY_NAME[name].version}-") for name, key in keys_for(settings).items())


def test_english_decoded_with_the_french_changes_the_cached_transcription_not_the_stored_one():
    """A transcription result carries Whisper's English when it was decoded with the French: Prefect
    must not reuse one without it. The index stores the French alone: a new translator keeps it."""
    facts = stages.Facts("a" * 64, "base-1", "", "whisper", "whisper:base-1", english_with_french=False)
    other = replace(facts, english_with_french=True)
    cache_keys = {f: stages.cache_keys(stages.keys(Settings(), f), f) for f in (facts, other)}
    assert cache_keys[facts]["transcribe"] != cache_keys[other]["transcribe"]
    assert stages.keys(Settings(), facts) == stages.keys(Settings(), other)
    assert cache_keys[facts]["chunk"] == cache_keys[other]["chunk"]


def test_a_cached_result_of_another_data_model_is_computed_again_not_loaded(monkeypatch):
    """Prefect's cache keys carry the shape of the dataclasses results are stored as: a result
    pickled before a field was added is not found, rather than failing to load."""
    import dataclasses as dc

    from recording_index import models

    facts = stages.Facts("a" * 64, "base-1", "", "none", "none", False)
    before = stages.cache_keys(stages.keys(Settings(), facts), facts)
    grown = dc.make_dataclass("Segment", [(f.name, f.type, f) for f in dc.fields(models.Segment)] + [("speaker", str, "")])
    monkeypatch.setattr(models, "Segment", grown)
    stages.data_model.cache_clear()
    try:
        after = stages.cache_keys(stages.keys(Settings(), facts), facts)
    finally:
        stages.data_model.cache_clear()
    assert all(before[name] != after[name] for name in before)


def test_a_new_translation_model_redoes_the_english_not_the_transcript():
    facts = stages.Facts("a" * 64, "base-1", "", "argos", "argos:fr_en-1.9", False)
    before, after = stages.keys(Settings(), facts), stages.keys(Settings(), replace(facts, translation_model="argos:fr_en-2.0"))
    assert stages.stale(before, after) == ["translate", "correct", "chunk", "subtitles"]


def test_each_stage_s_code_is_recorded_with_its_version():
    """tests/stage_code.json holds each stage's version and the digest of its own code: a change of
    that code must come with a new version (its output changes) or a new digest (it does not)."""
    import stage_code

    recorded = json.loads(stage_code.FILE.read_text())
    assert stage_code.problems(stage_code.current(), recorded) == []


def test_a_code_change_without_a_new_version_or_digest_names_its_stage(monkeypatch):
    import stage_code

    recorded = stage_code.current()
    real = stage_code._source
    monkeypatch.setattr(stage_code, "_source", lambda module: real(module) + (
        "\nMAX_SECONDS = 14.0\n" if module == "speech.segmenting" else ""))
    found = stage_code.problems(stage_code.current(), recorded)
    assert len(found) == 1 and found[0].startswith("segment: its code changed")
    monkeypatch.setattr(stage_code, "_source", lambda module: real(module) + '\n# a comment\ndef f():\n    """Doc."""\n')
    changed = stage_code.current()
    monkeypatch.setattr(stage_code, "_source", lambda module: real(module) + "\n\n\ndef f():\n    pass\n")
    assert changed == stage_code.current()  # a comment, a docstring, blank lines: no change


def test_keys_read_no_source_code_and_a_new_function_in_the_data_model_changes_none(tmp_path):
    """Any release adds code somewhere: keys computed by a copy of the package with an unused
    function added to models.py are those of the package as it is."""
    import shutil
    import subprocess
    import sys

    package = Path(stages.__file__).parent
    shutil.copytree(package, tmp_path / "recording_index", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "recording_index" / "models.py", "a") as models:
        models.write("\n\ndef unused():\n    return 42\n")
    code = ("import json; from recording_index import stages; from recording_index.config import Settings; "
            "import recording_index; print(recording_index.__file__); "
            "f = stages.Facts('a' * 64, 'base-1', '', 'argos', 'argos:fr_en-1.9', False); "
            "print(json.dumps(stages.keys(Settings(), f)))")
    outputs = []
    (tmp_path / "elsewhere").mkdir()
    for path in (tmp_path, package.parent):
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(path)},
                              capture_output=True, text=True, timeout=60, cwd=tmp_path / "elsewhere")
        assert done.returncode == 0, done.stderr
        where, keys = done.stdout.splitlines()
        assert where.startswith(str(path))
        outputs.append(json.loads(keys))
    assert outputs[0] == outputs[1]


def test_a_library_upgrade_redoes_the_stages_it_runs(monkeypatch):
    facts = stages.Facts("a" * 64, "base-1", "", "argos", "argos:fr_en-1.9", False)
    before = stages.keys(Settings(), facts)
    real = stages.library_version.__wrapped__
    monkeypatch.setattr(stages, "library_version", lambda name, parts=2: "99.0" if name == "argostranslate"
                        else real(name, parts))
    assert stages.stale(before, stages.keys(Settings(), facts)) == ["translate", "correct", "chunk", "subtitles"]
    monkeypatch.setattr(stages, "library_version", lambda name, parts=2: "99.0" if name == "ctranslate2"
                        else real(name, parts))
    assert stages.stale(before, stages.keys(Settings(), facts))[0] == "transcribe"


def test_only_the_part_of_a_library_s_version_that_matters_is_in_the_keys(monkeypatch):
    """A patch release of onnxruntime (faster-whisper's VAD) or of CTranslate2 redoes nothing; a
    minor release of CTranslate2 redoes the transcription."""
    import importlib.metadata

    facts = stages.Facts("a" * 64, "base-1", "", "none", "none", False)

    def keys_with(versions):
        real = importlib.metadata.version
        monkeypatch.setattr(importlib.metadata, "version", lambda name: versions.get(name) or real(name))
        stages.library_version.cache_clear()
        try:
            return stages.keys(Settings(), facts)
        finally:
            stages.library_version.cache_clear()

    before = keys_with({"onnxruntime": "1.17.1", "ctranslate2": "4.4.0"})
    assert keys_with({"onnxruntime": "1.17.3", "ctranslate2": "4.4.2"}) == before
    assert keys_with({"onnxruntime": "1.18.0", "ctranslate2": "4.4.0"}) == before
    assert stages.stale(before, keys_with({"onnxruntime": "1.17.1", "ctranslate2": "4.5.0"}))[0] == "transcribe"
    assert stages.stale(before, keys_with({"onnxruntime": "2.0.0", "ctranslate2": "4.4.0"}))[0] == "transcribe"


def test_the_run_summary_is_a_markdown_table_with_a_row_a_recording():
    summary = Summary([Outcome("a", "Talk | one", "a.mp3", Status.INDEXED, duration=3723, transcription="reused",
                               worker="host:12", stages=["transcribe", "translate"], reused=["transcribe"]),
                       Outcome("b", "", "b.mp3", error="b.mp3: no such file")], wall_seconds=2)
    lines = summary.markdown().splitlines()
    assert lines[0].startswith("**1 indexed, 0 skipped (unchanged), 1 failed")
    assert lines[4] == "| Talk \\| one | 1:02:03 | indexed | transcribe (reused) → translate | host:12 | 0.0 |  |"
    assert lines[5].startswith("| b | 0:00:00 | failed | – | – |") and lines[5].endswith("b.mp3: no such file |")
    assert summary.to_dict()["outcomes"][1]["status"] == "failed" and summary.to_dict()["failed"] == 1
    # A run that transcribed nothing counts no hours of audio.
    redone = Summary([Outcome("a", "Talk", "a.mp3", Status.REDONE, duration=3723)], wall_seconds=7)
    assert redone.line() == "0 indexed, 1 redone, 0 skipped (unchanged), 0 failed in 7.0 s"


@pytest.mark.slow
def test_the_index_redoes_only_the_stale_stages_of_a_real_recording(sample_mp3, cache_dir, tmp_path, monkeypatch):
    """The sample indexed once; then each change redoes its stages alone, from the stored transcript."""
    from recording_index.index.database import Index

    settings = Settings(cache_dir=str(cache_dir), progress=False, translator="none")
    db = tmp_path / "index.db"
    recording = Recording(id="sample", source=str(sample_mp3), title="Échantillon")
    first = index_recording(recording, settings, db)
    assert (first.status, first.stages, first.transcription) == (Status.INDEXED, [
        "transcribe", "segment", "translate", "correct", "chunk", "subtitles"], "done"), first.error
    with Index(db) as index:
        words_before = index.db.execute("SELECT count(*) FROM words").fetchone()[0]
        chunks_before = index.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert index_recording(recording, settings, db).status == Status.SKIPPED

    rechunked = index_recording(recording, settings.replace(chunk_seconds=60.0), db)
    assert (rechunked.status, rechunked.stages, rechunked.transcription) == (Status.REDONE, ["chunk"], "")
    with Index(db) as index:
        assert index.db.execute("SELECT count(*) FROM words").fetchone()[0] == words_before  # words kept
        assert index.db.execute("SELECT count(*) FROM chunks").fetchone()[0] < chunks_before  # one 60-s chunk
        assert index.search("apprentissage")

    moved = settings.replace(chunk_seconds=60.0, subtitles_dir=str(tmp_path / "published"))
    republished = index_recording(recording, moved, db)
    assert (republished.status, republished.stages) == (Status.REDONE, ["subtitles"])
    assert (tmp_path / "published" / "sample.fr.vtt").exists()
    (tmp_path / "published" / "sample.fr.srt").unlink()  # deleted by someone: written again
    assert index_recording(recording, moved, db).stages == ["subtitles"]
    assert (tmp_path / "published" / "sample.fr.srt").exists()
    assert index_recording(recording, moved, db).status == Status.SKIPPED

    # New sentence rules (the segment stage's version bumped), and --redo translate: both are done
    # (the one does not hide the other).
    bumped = tuple(replace(stage, version="2") if stage.name == "segment" else stage for stage in stages.STAGES)
    monkeypatch.setattr(stages, "STAGES", bumped)
    monkeypatch.setattr(stages, "BY_NAME", {stage.name: stage for stage in bumped})
    both = index_recording(recording, moved, db, redo=("translate",))
    assert both.stages == ["segment", "translate", "correct", "chunk", "subtitles"] and both.transcription == ""
    redone = index_recording(recording, moved, db, redo=("transcribe",))
    assert redone.stages[0] == "transcribe" and redone.status == Status.INDEXED


def test_the_catalog_s_vocabulary_is_part_of_the_transcription_key(tmp_path):
    settings = Settings(cache_dir=str(tmp_path))
    plain = Recording(id="r", source="r.mp3", content_hash="a" * 64)
    named = replace(plain, vocabulary=["RÉSAL"], speakers=["René-André Brisebois"])
    before, after = stages.keys(settings, facts_for(plain, settings)), stages.keys(settings, facts_for(named, settings))
    assert stages.stale(before, after) == ["transcribe", "segment", "translate", "correct", "chunk", "subtitles"]
    assert facts_for(named, settings).prompt == "RÉSAL. René-André Brisebois."


def test_a_full_disk_anywhere_stops_the_run_and_keeps_the_media(tmp_path, sample_mp3):
    """Not only the index: a result, a download or the WAV that cannot be written for want of space."""
    import errno

    from recording_index.pipeline import Prepared, Runner

    recording = Recording(id="r", source=str(sample_mp3), media_path=str(sample_mp3), content_hash="a" * 64)
    facts = stages.Facts("a" * 64, "m", "", "none", "none", False)
    prepared = Prepared(recording, facts, {}, ("transcribe", "segment", "translate", "correct", "chunk", "subtitles"))
    wav = tmp_path / "cache" / "audio" / ("a" * 64 + ".wav")
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF")

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    settings = Settings(cache_dir=str(tmp_path / "cache"))
    outcome = index_recording(recording, settings, tmp_path / "i.db",
                              runner=Runner(prepare=lambda *a: prepared, normalise=full))
    assert outcome.status == Status.FAILED and outcome.disk_full and "No space left" in outcome.error
    assert wav.exists()  # a full disk says nothing about the media: it is not forgotten


def test_an_index_of_the_releases_that_hashed_code_is_upgraded_without_transcribing_again(tmp_path, settings):
    """tests/data/ej-fra-v7.db: the demo catalog indexed by the code of db68d06 (index schema 7, stage
    keys that hashed the stages' source). Upgraded, the same inputs give the keys of this release:
    nothing is transcribed, translated or chunked again."""
    import shutil
    import sqlite3

    from recording_index import pipeline
    from recording_index.ingest.audio import decoding_limit, normalisation

    root = Path(__file__).resolve().parent.parent
    db = tmp_path / "index.db"
    shutil.copy(root / "tests" / "data" / "ej-fra-v7.db", db)
    (recording,) = pipeline.collect([], str(root / "config" / "demo.toml"))
    with sqlite3.connect(db) as conn:  # the one fact of this machine: the ffmpeg that decodes (imageio-ffmpeg's)
        kept = json.loads(conn.execute("SELECT settings FROM recordings").fetchone()[0])
        kept["audio"] = normalisation(find_ffmpeg(), decoding_limit(34.13, settings.max_hours))
        conn.execute("UPDATE recordings SET settings = ?", [json.dumps(kept)])
        old_keys = json.loads(conn.execute("SELECT stage_keys FROM recordings").fetchone()[0])
    conn.close()
    assert all(key.startswith(f"{name}-") for name, key in old_keys.items())
    pipeline.upgrade(db)  # `recording-index upgrade`, and the start of every run
    prepared = pipeline.prepare(recording, settings, db, dry_run=True)
    assert prepared.reasons == {"subtitles": "its files are missing"}  # written beside the index it was made by
    outcome = index_recording(recording, settings, db)
    assert (outcome.status, outcome.stages, outcome.transcription) == (Status.REDONE, ["subtitles"], ""), outcome.error
    assert index_recording(recording, settings, db).status == Status.SKIPPED


def test_a_dry_run_says_why_each_stage_would_run(tmp_path, settings, sample_mp3, monkeypatch):
    import subprocess
    import sys

    from recording_index import pipeline

    db = tmp_path / "index.db"
    (recording,) = pipeline.collect([str(sample_mp3)])  # the id the command line gives it
    prepared = pipeline.prepare(recording, settings, db)
    assert prepared.reasons == dict.fromkeys(["transcribe", "segment", "translate", "correct", "chunk", "subtitles"],
                                             "new recording")
    prepared.reasons.clear()
    from recording_index.index.database import Index

    with Index(db) as index:  # as a run that made it would store it, without transcribing here
        index.add(prepared.recording, [], [], settings=stages.record(settings, prepared.facts), stage_keys=prepared.keys)
    for path, _, _ in pipeline.subtitle_files(settings.subtitles_path(db), pipeline.published_name(recording), True, settings.output_format):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    config = tmp_path / "settings.toml"
    config.write_text(f'cache_dir = "{settings.cache_dir}"\nprogress = false\n')

    def plan(*options):
        done = subprocess.run([sys.executable, "-m", "recording_index.cli", "--config", str(config), "run",
                               str(sample_mp3), "--db", str(db), "--dry-run", "--json", *options],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(done.stdout)
        return row

    assert plan()["plan"] == "unchanged, would skip"
    beam = plan("--beam-size", "1")
    assert beam["stages"][0] == {"stage": "transcribe", "reason": "setting beam_size: 5 → 1"}
    assert beam["stages"][1] == {"stage": "segment", "reason": "after transcribe"} and len(beam["stages"]) == 6
    assert beam["plan"].startswith("would index (34 s): transcribe (setting beam_size: 5 → 1), segment (after")
    asked = plan("--redo", "chunk")
    assert asked["stages"] == [{"stage": "chunk", "reason": "asked (--redo)"}]
    english = plan("--redo", "translate")
    assert [s["reason"] for s in english["stages"]] == ["asked (--redo)", "after translate", "after correct", "after correct"]
    assert plan("--translator", "none")["stages"][0] == {"stage": "translate", "reason": "translator; translation model"}
    # A release that bumps the transcription's version: it and every stage after it, said beforehand.
    bumped = tuple(replace(stage, version="2") if stage.name == "transcribe" else stage for stage in stages.STAGES)
    monkeypatch.setattr(stages, "STAGES", bumped)
    monkeypatch.setattr(stages, "BY_NAME", {stage.name: stage for stage in bumped})
    (row,) = pipeline.plan(recording, settings, db)
    assert row["plan"].startswith("would index (34 s): transcribe (version 1 → 2), segment (after transcribe)")
    assert [s["stage"] for s in row["stages"]] == ["transcribe", "segment", "translate", "correct", "chunk", "subtitles"]
