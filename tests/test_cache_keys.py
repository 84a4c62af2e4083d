"""Stage keys: what decides a stage's output changes its key, and nothing else does."""

from recording_index import cache_keys
from recording_index.config import Settings
from recording_index.pipeline import Outcome, Summary


def keys(settings=Settings(), content="a" * 64, translation="argos-fr-en-1.9"):
    transcription = cache_keys.transcription_key(content, settings, "base-123")
    translated = cache_keys.translation_key(transcription, settings.translation_fingerprint(translation))
    return transcription, translated, cache_keys.chunks_key(translated, settings)


def test_equal_inputs_give_equal_keys_named_by_stage():
    assert keys() == keys()
    assert [k.split("-")[0] for k in keys()] == ["transcribe", "translate", "chunk"]


def test_other_audio_changes_every_key():
    assert all(a != b for a, b in zip(keys(), keys(content="b" * 64)))


def test_transcription_settings_change_every_key():
    for change in ({"beam_size": 1}, {"language": "en"}, {"vad": False}, {"engine": "openai-whisper"},
                   {"compute_type": "float32"}, {"batch_size": 0}):
        assert all(a != b for a, b in zip(keys(), keys(Settings(**change)))), change


def test_a_new_translator_keeps_the_transcription_and_changes_what_follows():
    before, after = keys(), keys(translation="whisper-base")
    assert before[0] == after[0] and before[1] != after[1] and before[2] != after[2]


def test_chunk_length_changes_only_the_chunks():
    before, after = keys(), keys(Settings(chunk_seconds=10))
    assert before[:2] == after[:2] and before[2] != after[2]


def test_a_stage_code_change_changes_its_key(tmp_path, monkeypatch):
    for module in {m for modules in cache_keys.STAGE_MODULES.values() for m in modules}:
        (tmp_path / f"{module}.py").write_bytes((cache_keys._PACKAGE / f"{module}.py").read_bytes())
    monkeypatch.setattr(cache_keys, "_PACKAGE", tmp_path)
    compute = cache_keys.code_version.__wrapped__
    before = {stage: compute(stage) for stage in cache_keys.STAGE_MODULES}
    with open(tmp_path / "sentences.py", "a") as f:
        f.write("\n# changed\n")
    after = {stage: compute(stage) for stage in cache_keys.STAGE_MODULES}
    assert before["transcribe"] == after["transcribe"] and before["chunk"] == after["chunk"]
    assert before["translate"] != after["translate"]


def test_the_run_summary_is_a_markdown_table_with_a_row_a_recording():
    summary = Summary([Outcome("a", "Talk | one", "a.mp3", "indexed", duration=3723, transcription="reused",
                               worker="host:12"),
                       Outcome("b", "", "b.mp3", "failed", error="b.mp3: no such file")], wall_seconds=2)
    lines = summary.markdown().splitlines()
    assert lines[0].startswith("**1 indexed, 0 skipped (unchanged), 1 failed")
    assert lines[4] == "| Talk \\| one | 1:02:03 | indexed | reused | host:12 | 0.0 |  |"
    assert lines[5].startswith("| b | 0:00:00 | failed | – | – |") and lines[5].endswith("b.mp3: no such file |")
