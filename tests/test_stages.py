"""Stage keys (stages.py): what decides a stage's output changes its key and the keys after it, and
nothing else does; the index's skip decision and Prefect's cache both follow them."""

import ast
import importlib.util
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
    "download_minutes": 5.0,
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
        read = set().union(*(_settings_read_by(m) for m in stages.code_of(stage.modules)))
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
    assert all(key.startswith(f"{name}-") for name, key in keys_for(settings).items())


def test_english_decoded_with_the_french_changes_the_cached_transcription_not_the_stored_one():
    """A transcription result carries Whisper's English when it was decoded with the French: Prefect
    must not reuse one without it. The index stores the French alone: a new translator keeps it."""
    facts = stages.Facts("a" * 64, "base-1", "", "whisper", "whisper:base-1", english_with_french=False)
    other = replace(facts, english_with_french=True)
    cache_keys = {f: stages.cache_keys(stages.keys(Settings(), f), f) for f in (facts, other)}
    assert cache_keys[facts]["transcribe"] != cache_keys[other]["transcribe"]
    assert stages.keys(Settings(), facts) == stages.keys(Settings(), other)
    assert cache_keys[facts]["chunk"] == stages.keys(Settings(), facts)["chunk"]


def test_a_new_translation_model_redoes_the_english_not_the_transcript():
    facts = stages.Facts("a" * 64, "base-1", "", "argos", "argos:fr_en-1.9", False)
    before, after = stages.keys(Settings(), facts), stages.keys(Settings(), replace(facts, translation_model="argos:fr_en-2.0"))
    assert stages.stale(before, after) == ["translate", "correct", "chunk", "subtitles"]


def test_a_stage_code_change_changes_its_key_and_a_comment_does_not(monkeypatch):
    read = stages._source.__wrapped__
    compute = stages.code_version.__wrapped__
    before = {s.name: compute(s.modules) for s in stages.STAGES}

    def edited(addition):
        monkeypatch.setattr(stages, "_source", lambda module: read(module) + (
            addition if module == "recording_index.english.sentences" else b""))
        return {s.name: compute(s.modules) for s in stages.STAGES}

    assert edited(b"\n# a comment\n") == before
    assert edited(b'\ndef added():\n    """Only a docstring."""\n') != before  # a new function is new code
    after = edited(b"\nSENTENCE_END = '.'\n")
    assert {name for name in before if before[name] != after[name]} == {"translate", "correct"}  # both translate


def test_a_stage_covers_the_code_it_imports_and_not_the_neutral_modules():
    translation = stages.code_of(stages.BY_NAME["translate"].modules)
    # Whisper's speech translation runs the transcription engine and its guard, over the audio.
    assert {"recording_index.english.sentences", "recording_index.speech.transcribe",
            "recording_index.speech.repetition", "recording_index.ingest.audio"} <= translation
    assert not translation & stages.NEUTRAL_MODULES
    assert "recording_index.index.database" not in translation


def test_a_library_upgrade_redoes_the_stages_it_runs(monkeypatch):
    facts = stages.Facts("a" * 64, "base-1", "", "argos", "argos:fr_en-1.9", False)
    before = stages.keys(Settings(), facts)
    real = stages.library_version.__wrapped__
    monkeypatch.setattr(stages, "library_version", lambda name: "99.0" if name == "argostranslate" else real(name))
    assert stages.stale(before, stages.keys(Settings(), facts)) == ["translate", "correct", "chunk", "subtitles"]
    monkeypatch.setattr(stages, "library_version", lambda name: "99.0" if name == "ctranslate2" else real(name))
    assert stages.stale(before, stages.keys(Settings(), facts))[0] == "transcribe"


def test_the_run_summary_is_a_markdown_table_with_a_row_a_recording():
    summary = Summary([Outcome("a", "Talk | one", "a.mp3", Status.INDEXED, duration=3723, transcription="reused",
                               worker="host:12", stages=["transcribe", "translate"]),
                       Outcome("b", "", "b.mp3", error="b.mp3: no such file")], wall_seconds=2)
    lines = summary.markdown().splitlines()
    assert lines[0].startswith("**1 indexed, 0 skipped (unchanged), 1 failed")
    assert lines[4] == "| Talk \\| one | 1:02:03 | indexed | transcribe → translate (transcript reused) | host:12 | 0.0 |  |"
    assert lines[5].startswith("| b | 0:00:00 | failed | – | – |") and lines[5].endswith("b.mp3: no such file |")
    assert summary.to_dict()["outcomes"][1]["status"] == "failed" and summary.to_dict()["failed"] == 1


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

    # New sentence rules, and --retranslate: both are done (the one does not hide the other).
    read = stages._source.__wrapped__
    monkeypatch.setattr(stages, "_source", lambda module: read(module) + (
        b"\nMAX_SECONDS = 14.0\n" if module.endswith("segmenting") else b""))
    stages.code_version.cache_clear()
    try:
        both = index_recording(recording, moved, db, retranslate=True)
    finally:
        stages.code_version.cache_clear()
    assert both.stages == ["segment", "translate", "correct", "chunk", "subtitles"] and both.transcription == ""


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


def test_what_a_run_read_of_the_code_is_kept_and_used_only_for_the_same_code(tmp_path, monkeypatch):
    """stage-code.json saves an unchanged run from reading 40 syntax trees; it never changes a key."""
    import json

    settings = Settings(cache_dir=str(tmp_path))

    def new_process():
        monkeypatch.setattr(stages, "_READ", {})
        monkeypatch.setattr(stages, "_RECALLED", set())
        monkeypatch.setattr(stages, "_REMEMBERED", {})
        stages.code_version.cache_clear()

    new_process()
    before = keys_for(settings)
    stages.remember_code(settings.cache_path)
    saved = json.loads((tmp_path / stages.CODE_FILE).read_text())
    assert len(saved) == len(stages.code_of(tuple(m for s in stages.STAGES for m in s.modules)))

    new_process()
    read = stages._syntax
    monkeypatch.setattr(stages, "_syntax", lambda module: pytest.fail(f"{module} read again"))
    assert keys_for(settings) == before  # from the file alone

    # Entries naming modules the package does not have, or of another shape, are not taken.
    (tmp_path / stages.CODE_FILE).write_text(json.dumps(
        {key: [["recording_index.nope"], "forged"] if n % 2 else "odd" for n, key in enumerate(saved)}))
    new_process()
    monkeypatch.setattr(stages, "_syntax", read)
    assert keys_for(settings) == before
    stages.code_version.cache_clear()
