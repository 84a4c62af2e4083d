"""Keys naming what a stage produces from what decides it: the audio's content hash, the stage's
settings and the stage's own code. Equal keys mean equal output, so an orchestrator can store a
stage's result under its key and reuse it: a run stopped midway resumes after its last finished
stage, and a change of translator redoes translation and what follows, not transcription.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .config import PIPELINE_VERSION, Settings

# The modules whose code decides each stage's output; editing one of them invalidates that stage.
STAGE_MODULES = {
    "transcribe": ("audio", "transcribe", "repetition", "whisper_models", "models"),
    "translate": ("translate", "sentences"),
    "chunk": ("chunking",),
}

_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def code_version(stage: str) -> str:
    """A hash of the source of the modules behind `stage`."""
    digest = hashlib.sha256(PIPELINE_VERSION.encode())
    for module in STAGE_MODULES[stage]:
        digest.update((_PACKAGE / f"{module}.py").read_bytes())
    return digest.hexdigest()[:12]


def _key(stage: str, *parts: str) -> str:
    return f"{stage}-" + hashlib.sha256("|".join([code_version(stage), *parts]).encode()).hexdigest()[:32]


def transcription_key(content_hash: str, settings: Settings, model_id: str) -> str:
    return _key("transcribe", content_hash, *settings.transcription_settings(model_id))


def translation_key(transcription: str, translation_fingerprint: str) -> str:
    return _key("translate", transcription, translation_fingerprint)


def chunks_key(translation: str, settings: Settings) -> str:
    return _key("chunk", translation, str(settings.chunk_seconds))
