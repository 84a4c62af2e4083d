"""Stage keys: the one rule for "is this result current?".

Each stage declares its inputs once, below: the settings fields it reads, the facts of the run it
depends on (the audio's content hash, the Whisper weights, the translator that will run, whether
English is decoded with the French), the code it runs and the versions of the libraries that run
it. A stage's key is a hash of those inputs and of the key of the stage it follows, so equal keys
mean equal output. The index stores each recording's keys and redoes the stages whose key differs;
Prefect's result cache stores each stage's output under the same key, extended by the inputs that
change only the result it passes on, not what the index stores (`passes_on`: the English that
Whisper decodes with the French goes to translation; the stored transcript is the same without it).

The code a stage runs is its modules and every module of this package they import, read as syntax
trees (a comment or a docstring changes no key), less the modules listed in NEUTRAL_MODULES.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from recording_index.config import Settings

PACKAGE = "recording_index"
# Modules that shape no stage's output: settings are keyed by the values a stage reads, not by the
# code that loads them, and errors, safety checks and locks decide whether a stage runs, not what it
# produces. A new module is part of the code of every stage that imports it unless it is listed here.
NEUTRAL_MODULES = frozenset(f"{PACKAGE}.{m}" for m in ("config", "errors", "safety", "redaction", "locks", "utils"))


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
class Stage:
    name: str
    after: str | None  # the stage whose output this one takes
    reads: tuple[str, ...]  # Settings fields
    facts: tuple[str, ...]  # Facts fields
    modules: tuple[str, ...]  # where its code starts
    passes_on: tuple[str, ...] = ()  # Facts fields that change only the result passed to the next stage
    # Libraries whose version decides the output, by the value of the setting or fact named first.
    libraries: tuple[str, dict[str, tuple[str, ...]]] | None = None


# faster-whisper's VAD runs on onnxruntime, and its tokenizer is Hugging Face's.
WHISPER_LIBRARIES = {"faster-whisper": ("faster-whisper", "ctranslate2", "onnxruntime", "tokenizers"),
                     "openai-whisper": ("openai-whisper", "torch")}

STAGES: tuple[Stage, ...] = (
    Stage("transcribe", after=None,
          reads=("engine", "compute_type", "language", "vad", "beam_size", "batch_size"),
          facts=("content_hash", "audio", "model_id", "prompt"),
          modules=(f"{PACKAGE}.speech.transcribe",), passes_on=("english_with_french",),
          libraries=("engine", WHISPER_LIBRARIES)),
    # Sentences from the words: redone alone (from the stored words) when its rules change.
    Stage("segment", after="transcribe", reads=(), facts=(), modules=(f"{PACKAGE}.speech.segmenting",),
          passes_on=("english_with_french",)),
    # Whisper's speech translation runs the transcription's engine: its inputs are the transcription's.
    Stage("translate", after="segment", reads=(), facts=("translator", "translation_model"),
          modules=(f"{PACKAGE}.english.translate",),
          libraries=("translator", {"argos": ("argostranslate", "ctranslate2", "sentencepiece")})),
    # People's corrections over the machine's output; corrected French is translated again by Argos.
    Stage("correct", after="translate", reads=(), facts=("translator", "translation_model", "corrections"),
          modules=(f"{PACKAGE}.corrections.layer", f"{PACKAGE}.english.translate"),
          libraries=("translator", {"argos": ("argostranslate", "ctranslate2", "sentencepiece")})),
    Stage("chunk", after="correct", reads=("chunk_seconds",), facts=(),
          modules=(f"{PACKAGE}.index.chunking",)),
    # Subtitle (and text, JSON) files are written where `subtitles_dir` says: a new folder gets them all.
    Stage("subtitles", after="correct", reads=("subtitles_dir", "output_format"), facts=(),
          modules=(f"{PACKAGE}.publish.files",)),
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


def keys(settings: Settings, facts: Facts, upstream: dict[str, str] | None = None) -> dict[str, str]:
    """Every stage's key for one recording, by stage name: what the index compares. `upstream`: keys
    taken as they are (those stored, for stages a rebuild does not redo), with the keys after them."""
    if settings.cache_path not in _RECALLED:
        _RECALLED.add(settings.cache_path)
        recall_code(settings.cache_path)
        _REMEMBERED[settings.cache_path] = len(_READ)  # what the file holds already
    out: dict[str, str] = {}
    for stage in STAGES:
        if upstream and stage.name in upstream:
            out[stage.name] = upstream[stage.name]
            continue
        inputs = {
            "stage": stage.name,
            "after": out[stage.after] if stage.after else "",
            "settings": {name: getattr(settings, name) for name in stage.reads},
            "facts": {name: getattr(facts, name) for name in stage.facts},
            "code": code_version(stage.modules),
            "libraries": _library_versions(stage, settings, facts),
        }
        out[stage.name] = _named(stage.name, inputs)
    return out


def cache_keys(index_keys: dict[str, str], facts: Facts) -> dict[str, str]:
    """Every stage's key for Prefect's result cache: its index key (`keys`), with what it passes on."""
    return {name: _named(name, {"key": key, "passes_on": {f: getattr(facts, f) for f in BY_NAME[name].passes_on}})
            if BY_NAME[name].passes_on else key for name, key in index_keys.items()}


def _named(stage: str, inputs: dict) -> str:
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    return f"{stage}-{digest[:32]}"


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


def _library_versions(stage: Stage, settings: Settings, facts: Facts) -> dict[str, str]:
    if stage.libraries is None:
        return {}
    chooser, by_choice = stage.libraries
    choice = getattr(settings, chooser) if hasattr(settings, chooser) else getattr(facts, chooser)
    return {name: library_version(name) for name in by_choice.get(choice, ())}


@functools.cache
def library_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def code_version(modules: tuple[str, ...]) -> str:
    """A hash of the syntax trees of `modules` and of the package modules they import, transitively."""
    digest = hashlib.sha256()
    for module in sorted(code_of(modules)):
        digest.update(module.encode() + b"\0" + _read(module)[1].encode() + b"\0")
    return digest.hexdigest()[:16]


def code_of(modules: tuple[str, ...]) -> set[str]:
    """`modules` and the package modules they import, transitively, less the neutral ones."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen or module in NEUTRAL_MODULES:
            continue
        seen.add(module)
        todo.extend(_read(module)[0])
    return seen


# What reading a module's code found (its package imports, its syntax's digest), by a hash of all it
# depends on: the module's name and source, this reader's own code, Python's version (ast.dump
# differs between versions) and the package's module files (whether `from x import y` imports a
# module). Reading the stages' 40 modules as syntax trees is 0.6 s, most of an unchanged run's
# start: a run keeps what it found in the cache folder (`remember_code`), and the next reads only
# the modules whose source changed. The cache folder is the user's own, as trusted as the results
# and weights kept there.
_READ: dict[str, tuple[list[str], str]] = {}
_RECALLED: set[Path] = set()
_REMEMBERED: dict[Path, int] = {}
CODE_FILE = "stage-code.json"


def _read(module: str) -> tuple[list[str], str]:
    key = hashlib.sha256(_reader().encode() + module.encode() + b"\0" + _source(module)).hexdigest()
    if key not in _READ:
        _READ[key] = (_imports(module), hashlib.sha256(_syntax(module).encode()).hexdigest())
    return _READ[key]


@functools.cache
def _reader() -> str:
    modules = sorted(_package_modules())
    return hashlib.sha256("\n".join([Path(__file__).read_text(), f"{sys.version_info[:2]}", *modules]).encode()
                          ).hexdigest()


@functools.cache
def _package_modules() -> frozenset[str]:
    package = Path(importlib.util.find_spec(PACKAGE).origin).parent
    return frozenset(".".join((PACKAGE, *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
                     for path in package.rglob("*.py"))


def recall_code(folder: Path) -> None:
    """Take what earlier runs found in the code (see _READ) from `folder`; anything odd is ignored."""
    try:
        known = json.loads((folder / CODE_FILE).read_text())
    except (OSError, ValueError):
        return
    if isinstance(known, dict):
        for key, entry in known.items():
            if (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)
                    and all(isinstance(m, str) and m in _package_modules() for m in entry[0])
                    and isinstance(entry[1], str)):
                _READ.setdefault(key, (entry[0], entry[1]))


def remember_code(folder: Path) -> None:
    """Keep what this process found in the code in `folder`, for the next run (a best effort)."""
    from recording_index.safety import replacing

    if not _READ or _REMEMBERED.get(folder) == len(_READ):
        return  # nothing read since the file was written or recalled
    try:
        with replacing(folder / CODE_FILE) as partial:
            partial.write_text(json.dumps({key: list(entry) for key, entry in _READ.items()}))
        _REMEMBERED[folder] = len(_READ)
    except OSError:
        pass


@functools.cache
def _source(module: str) -> bytes:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"no module {module}")
    return Path(spec.origin).read_bytes()


def _tree(module: str) -> ast.Module:
    return ast.parse(_source(module))


def _imports(module: str) -> list[str]:
    found = []
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            found.append(node.module)
            # `from recording_index.ingest import audio` imports a module, not a name
            found.extend(f"{node.module}.{a.name}" for a in node.names
                         if importlib.util.find_spec(node.module).submodule_search_locations is not None
                         and importlib.util.find_spec(f"{node.module}.{a.name}") is not None)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith(PACKAGE + "."))
    return found


def _syntax(module: str) -> str:
    """The module's syntax tree without docstrings: what it does, not how it is explained."""
    tree = _tree(module)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)
