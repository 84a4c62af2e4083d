import hashlib
import os

import pytest

from recording_index import whisper_models
from recording_index.errors import ModelUnavailableError
from recording_index.whisper_models import EMBEDDED_MODEL_SHA256, embedded_model_path, resolve_model


def test_embedded_base_model_is_joined_verified_and_reused(tmp_path):
    path = embedded_model_path(tmp_path)
    assert path is not None and path.parent == tmp_path / "models"
    digest = hashlib.sha256((path / "model.bin").read_bytes()).hexdigest()
    assert digest == EMBEDDED_MODEL_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", ".verified"):
        assert (path / name).exists()
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".partial")]
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert embedded_model_path(tmp_path) == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime  # reused, not joined again


def test_resolve_default_model_offline(tmp_path):
    location = resolve_model("base", tmp_path, allow_download=False)
    assert (location.path / "model.bin").exists()
    assert location.model_id.startswith("base:")


def test_corrupt_part_is_rejected_and_leaves_nothing(tmp_path, monkeypatch):
    data1, parts = whisper_models._find_parts()
    bad = tmp_path / "model.bin.part2"
    bad.write_bytes(b"not the weights")
    monkeypatch.setattr(whisper_models, "_find_parts", lambda: (data1, [parts[0], bad]))
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
