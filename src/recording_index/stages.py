"""Stage keys: the one rule for "is this result current?", decided by people.

Each stage declares, below, a `version` (bumped by whoever changes what it outputs), the settings
fields it reads, the facts of the run it depends on (the audio's content hash, the Whisper weights,
the translator that will run…), and the libraries whose release changes its output, at the part of
their version that matters. Its key is a hash of those and of the key of the stage it follows, so
equal keys mean equal output. The index stores each recording's keys and redoes the stages whose
key differs; Prefect's result cache stores each stage's output under the same key, extended by the
inputs that change only the result it passes on (`passes_on`).

Nothing is read from source code at run time: a release that changes no stage's output redoes
nothing. `code` names the modules that are a stage's own code: tests/test_stages.py keeps their
digest in tests/stage_code.json and fails, naming the stage, when that code changes while neither
the version nor the file does (the developer then bumps the version, or runs `make stage-code`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass, fields

from recording_index.config import Settings

PACKAGE = "recording_index"


@dataclass(frozen=True)
class Facts:
    """What a run knows about one recording beyond its settings, before doing any work."""

    content_hash: str  # of the media file
    model_id: str  # the Whisper weights that `model` names (speech.weights.model_id)
    prompt: str  # Whisper's prompt from the catalog: the recording's vocabulary, speakers, event (speech.vocabulary)
    translator: str  # the translator that will run: "argos", "whisper" or "none" (argos falls back to whisper)
    translation_model: str  # the Argos package or Whisper weights that translate ("none" without English)
    english_with_french: bool  # Whisper decodes the English with the French, from one encoder pass
    corrections: str = ""  # what people's corrections of the recording ask for (corrections.layer.digest)
    audio: str = ""  # how the media is normalised: ffmpeg's version, the format, the bound (ingest.audio.normalisation)


@dataclass(frozen=True)
class Library:
    """A library whose releases can change a stage's output, and how much of its version says so:
    2 is major.minor (a patch release changes nothing), 1 the major version alone."""

    distribution: str
    parts: int = 2


@dataclass(frozen=True)
class Stage:
    name: str
    version: str  # bumped by whoever changes this stage's output: every recording's stage is redone
    after: str | None  # the stage whose output this one takes
    reads: tuple[str, ...]  # Settings fields
    facts: tuple[str, ...]  # Facts fields
    code: tuple[str, ...]  # its own modules, whose digest tests/stage_code.json keeps (never read at run time)
    passes_on: tuple[str, ...] = ()  # Facts fields that change only the result passed to the next stage
    # Libraries whose version decides the output, by the value of the setting or fact named first.
    libraries: tuple[str, dict[str, tuple[Library, ...]]] | None = None


# faster-whisper decodes with CTranslate2, its VAD runs on onnxruntime (a model of its own, changed
# by major releases), its tokenizer is Hugging Face's. openai-whisper's releases are dates.
WHISPER_LIBRARIES = {
    "faster-whisper": (Library("faster-whisper"), Library("ctranslate2"), Library("onnxruntime", 1),
                       Library("tokenizers", 1)),
    "openai-whisper": (Library("openai-whisper", 1), Library("torch")),
}
ARGOS_LIBRARIES = {"argos": (Library("argostranslate"), Library("ctranslate2"), Library("sentencepiece", 1))}

STAGES: tuple[Stage, ...] = (
    Stage("transcribe", "1", after=None,
          reads=("engine", "compute_type", "language", "vad", "beam_size", "batch_size"),
          facts=("content_hash", "audio", "model_id", "prompt"),
          code=("speech.transcribe", "speech.repetition", "speech.vocabulary", "speech.convert", "ingest.audio"),
          passes_on=("english_with_french",), libraries=("engine", WHISPER_LIBRARIES)),
    # Sentences from the words: redone alone (from the stored words) when its rules change.
    Stage("segment", "1", after="transcribe", reads=(), facts=(), code=("speech.segmenting", "timing"),
          passes_on=("english_with_french",)),
    # Whisper's speech translation runs the transcription's engine: its inputs are the transcription's.
    Stage("translate", "1", after="segment", reads=(), facts=("translator", "translation_model"),
          code=("english.translate", "english.sentences", "timing"), libraries=("translator", ARGOS_LIBRARIES)),
    # People's corrections over the machine's output; corrected French is translated again by Argos.
    Stage("correct", "1", after="translate", reads=(), facts=("translator", "translation_model", "corrections"),
          code=("corrections.layer", "timing"), libraries=("translator", ARGOS_LIBRARIES)),
    Stage("chunk", "1", after="correct", reads=("chunk_seconds",), facts=(), code=("index.chunking",)),
    # Subtitle (and text, JSON) files are written where `subtitles_dir` says: a new folder gets them all.
    # 2: a bilingual SRT sets its English in italics (the checker reads it as the second language).
    # 3: files named after the recording's file, as whisper names them (`published_name`), and TSV.
    Stage("subtitles", "3", after="correct", reads=("subtitles_dir", "output_format"), facts=(),
          code=("publish.files", "publish.subtitles", "timing")),
)
BY_NAME = {stage.name: stage for stage in STAGES}

# Settings a stage's code reads that reach its key through a fact, which says what they decide
# (`model` names weights: their id counts, not the name).
THROUGH_FACTS = {"model": "model_id", "translator": "translator", "ffmpeg": "audio", "max_hours": "audio"}
# Settings a stage's code reads that decide nothing in its output.
NEUTRAL_SETTINGS = {
    "progress": "progress bars",
    "cpu_threads": "how many cores decode: the speed, not the words",
    "cache_dir": "where weights and results are kept",
}


def _check_declarations() -> None:
    settings, facts = {f.name for f in fields(Settings)}, {f.name for f in fields(Facts)}
    for stage in STAGES:
        assert set(stage.reads) <= settings, f"{stage.name} reads unknown settings"
        assert set(stage.facts) | set(stage.passes_on) <= facts, f"{stage.name} reads unknown facts"
        assert stage.after is None or stage.after in BY_NAME, f"{stage.name} follows an unknown stage"


_check_declarations()


def inputs(stage: Stage, settings: Settings, facts: Facts) -> dict:
    """What decides one stage's output, besides the stage before it."""
    return {"version": stage.version, "settings": {name: getattr(settings, name) for name in stage.reads},
            "facts": {name: getattr(facts, name) for name in stage.facts},
            "libraries": libraries_of(stage, settings, facts)}


def keys(settings: Settings, facts: Facts, upstream: dict[str, str] | None = None) -> dict[str, str]:
    """Every stage's key for one recording, by stage name: what the index compares. `upstream`: keys
    taken as they are (those stored, for stages a rebuild does not redo), with the keys after them."""
    out: dict[str, str] = {}
    for stage in STAGES:
        if upstream and stage.name in upstream:
            out[stage.name] = upstream[stage.name]
            continue
        out[stage.name] = _named(stage, {"after": out[stage.after] if stage.after else "",
                                         **inputs(stage, settings, facts)})
    return out


def cache_keys(index_keys: dict[str, str], facts: Facts) -> dict[str, str]:
    """Every stage's key for Prefect's result cache: its index key (`keys`), with what it passes on
    and the shape of the data model its result is stored as (a result of another shape would not
    load: it is computed again instead)."""
    return {name: _named(BY_NAME[name], {"key": key, "model": data_model(),
                                         "passes_on": {f: getattr(facts, f) for f in BY_NAME[name].passes_on}})
            for name, key in index_keys.items()}


@functools.cache
def data_model() -> str:
    """The fields of the dataclasses results are stored as (their names and types, as declared)."""
    from recording_index import models

    shapes = {cls.__name__: [(f.name, str(f.type)) for f in fields(cls)]
              for cls in (models.Transcript, models.Segment, models.Word, models.Chunk, models.Correction)}
    return hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:16]


def _named(stage: Stage, inputs: dict) -> str:
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    return f"{stage.name}.{stage.version}-{digest[:32]}"


def is_current_form(stage: str, key: str) -> bool:
    """Whether a stored key is of this form (`transcribe.1-…`), not of the releases that hashed code."""
    return key.startswith(f"{stage}.")


def stale(stored: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """The stages to redo, in order: those whose stored key differs from the wanted one (a stage
    redone redoes the stages after it, since its key is part of theirs)."""
    return [stage.name for stage in STAGES if stored.get(stage.name) != wanted[stage.name]]


def from_stage(name: str) -> list[str]:
    """`name` and every stage that takes its output, directly or not, in order."""
    chosen = {name}
    for stage in STAGES:
        if stage.after in chosen:
            chosen.add(stage.name)
    return [stage.name for stage in STAGES if stage.name in chosen]


def libraries_of(stage: Stage, settings: Settings, facts: Facts) -> dict[str, str]:
    if stage.libraries is None:
        return {}
    chooser, by_choice = stage.libraries
    choice = getattr(settings, chooser) if hasattr(settings, chooser) else getattr(facts, chooser)
    return {library.distribution: library_version(library.distribution, library.parts)
            for library in by_choice.get(choice, ())}


@functools.cache
def library_version(distribution: str, parts: int = 2) -> str:
    """The part of a library's version that decides output ("1.2" of 1.2.3), or "absent"."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
    return ".".join(version.split("+")[0].split(".")[:parts])


def _recorded_settings() -> list[str]:
    """The settings a record keeps: those the stages read, and the model the weights are named by."""
    return sorted({name for stage in STAGES for name in stage.reads} | {"model"})


def record(settings: Settings, facts: Facts) -> dict:
    """What the index keeps beside a recording's keys: every input of every stage (the settings
    they read, the facts, their versions and libraries), so that a later run can say why a stage
    is redone, and an upgrade can compute the keys of another form from the same inputs."""
    return {**{name: getattr(settings, name) for name in _recorded_settings()}, **asdict(facts),
            "stage_versions": {stage.name: stage.version for stage in STAGES},
            "libraries": {name: version for stage in STAGES
                          for name, version in libraries_of(stage, settings, facts).items()}}


def facts_from_record(kept: dict) -> Facts | None:
    """The facts a `record` holds (those added since it was written have their defaults), or None
    when it lacks one without a default (written by an older release, or by another program)."""
    try:
        return Facts(**{f.name: kept[f.name] for f in fields(Facts) if f.name in kept})
    except TypeError:
        return None


def from_record(kept: dict) -> tuple[Settings, Facts] | None:
    """The settings and facts a `record` holds, or None when it lacks one of them."""
    facts = facts_from_record(kept)
    try:
        settings = Settings().replace(**{name: kept[name] for name in _recorded_settings()})
    except (KeyError, TypeError, ValueError):
        return None
    return (settings, facts) if facts else None


# How a fact is named when it is why a stage is redone.
FACT_REASONS = {"content_hash": "new audio", "audio": "audio decoded otherwise (ffmpeg)", "model_id": "other weights",
                "prompt": "vocabulary (Whisper's prompt)", "translator": "translator", "translation_model":
                "translation model", "corrections": "corrections", "english_with_french": "English decoded with the French"}


def reasons(redo: list[str], kept: dict | None, settings: Settings, facts: Facts) -> dict[str, str]:
    """Why each stage of `redo` is redone, in words: its version, a setting, a fact (new audio,
    corrections…) or a library that changed, or the stage before it; `kept`: the stored `record`."""
    out: dict[str, str] = {}
    for name in redo:
        stage = BY_NAME[name]
        if not kept:
            out[name] = "new recording"
            continue
        if stage.after in out:
            out[name] = f"after {stage.after}"
            continue
        was = kept.get("stage_versions", {}).get(name) if isinstance(kept.get("stage_versions"), dict) else None
        now = inputs(stage, settings, facts)
        changed = ([f"version {was} → {stage.version}"] if was is not None and was != stage.version else []) + [
            f"setting {key}: {kept.get(key)!r} → {value!r}" for key, value in now["settings"].items()
            if kept.get(key) != value] + [
            FACT_REASONS.get(key, key) for key, value in now["facts"].items() if kept.get(key) != value]
        libraries = kept.get("libraries") if isinstance(kept.get("libraries"), dict) else None
        if libraries is not None:
            changed += [f"library {lib} {libraries.get(lib, 'absent')} → {version}"
                        for lib, version in now["libraries"].items() if libraries.get(lib) != version]
        out[name] = "; ".join(changed) or ("stored by an older release" if was is None else "its key changed")
    return out
