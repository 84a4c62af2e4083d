"""Settings (TOML file, then environment) and the catalog of recordings to index."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from recording_index.errors import BadInputError, ConfigError
from recording_index.models import Recording
from recording_index.safety import open_regular, printable, redact_url, why_bad_id

DEFAULT_SETTINGS_FILE = Path("config") / "settings.toml"
ENV_PREFIX = "RECORDING_INDEX_"


@dataclass
class Settings:
    """Every knob of the pipeline. Defaults suit a 2-core CPU machine with no network."""

    db: str = "data/index.db"
    engine: str = "faster-whisper"  # or "openai-whisper"
    model: str = "base"  # a Whisper size name, or a local model folder
    compute_type: str = "int8"
    language: str = "fr"  # "auto" lets Whisper detect it
    vad: bool = True
    beam_size: int = 5
    batch_size: int = 4  # faster-whisper batched inference over VAD chunks; 0: sequential decoding
    cpu_threads: int = 0  # 0: all cores
    chunk_seconds: float = 30.0
    translator: str = "argos"  # "argos" (falls back to "whisper" when no package), "whisper", "none"
    subtitles_dir: str = ""  # where runs write SRT/VTT files; empty: "subtitles" beside the database
    output_format: str = "all"  # which files a run publishes there: all, srt, vtt, txt, tsv or json (as whisper)
    ffmpeg: str = ""  # a path to ffmpeg; empty: the system's, else imageio-ffmpeg's
    cache_dir: str = ""  # models, normalised audio and stage results; empty: the user's cache directory
    task_runner: str = "threads"  # "threads", "dask" (a local Dask cluster) or a Dask scheduler address
    dask_workers: int = 2  # "dask": worker processes of the local cluster; recordings transcribed at once
    progress: bool = True
    # Bounds on what outside input can make a run do (see safety.py and fetch.py).
    max_page_recordings: int = 100  # recordings one event page may add to a run
    max_hours: float = 12.0  # longest recording accepted, as declared and as decoded
    download_minutes: float = 60.0  # total time one download may take, whatever the server does
    # The static site (`recording-index site`), published after each run that changed something.
    site_dir: str = ""  # where; empty: not published by runs
    site_base_url: str = ""  # the address it is served from, for canonical links (https://…/archive/)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(platformdirs.user_cache_dir("recording-index"))

    @property
    def threads(self) -> int:
        return self.cpu_threads or os.cpu_count() or 1

    @property
    def whisper_language(self) -> str | None:
        return None if self.language in ("", "auto") else self.language

    def subtitles_path(self, db: str | Path) -> Path:
        return Path(self.subtitles_dir) if self.subtitles_dir else Path(db).parent / "subtitles"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# What each setting means: the configuration page of the documentation is made from this, with each
# setting's default, range or choices and environment variable (docs/hooks.py), so it cannot drift.
SETTING_HELP: dict[str, str] = {
    "db": "the SQLite index every command reads and runs write",
    "engine": "the transcription engine: `faster-whisper` (CTranslate2), or `openai-whisper` (the reference "
              "implementation; needs the `openai` extra)",
    "model": "Whisper's weights: `base` is embedded and works offline; `small`, `medium`, `large-v3`… are "
             "downloaded from the Hugging Face Hub where a network is present; or a local CTranslate2 model folder",
    "compute_type": "CTranslate2's compute type (`int8` is fastest on a CPU)",
    "language": "the spoken language, as a code (`fr`); `auto` lets Whisper detect it",
    "vad": "skip silences with Silero's voice activity detection before decoding",
    "beam_size": "Whisper's beam size (1: greedy, faster)",
    "batch_size": "faster-whisper's batched decoding over speech chunks; 0: one at a time",
    "cpu_threads": "threads for Whisper and Argos; 0: all cores",
    "chunk_seconds": "the length a search chunk aims at (chunks never split a sentence)",
    "translator": "how English is made: `argos` (Whisper's speech translation when no Argos fr→en package is "
                  "installed), `whisper`, or `none`",
    "subtitles_dir": "where runs write SRT, WebVTT, text and JSON files; empty: `subtitles/` beside the index",
    "output_format": "which files runs publish there, as whisper's `--output_format`",
    "ffmpeg": "a path to ffmpeg; empty: the system's, else the binary imageio-ffmpeg ships",
    "cache_dir": "models, downloads, normalised audio and stored stage results; empty: the user's cache folder",
    "task_runner": "where tasks run: `threads`, `dask` (a local cluster of `dask_workers` processes), or a Dask "
                   "scheduler's address (`tcp://host:8786`)",
    "dask_workers": "with `dask`: worker processes of the local cluster, and recordings transcribed at once",
    "progress": "progress bars on the terminal",
    "max_page_recordings": "the most recordings one event page may add to a run",
    "max_hours": "the longest recording accepted, as its file declares it and as decoded",
    "download_minutes": "the total time one download may take, whatever the server does",
    "site_dir": "a folder: each run that changes something publishes the static site there; empty: runs do not",
    "site_base_url": "the address the static site is served from (`https://example.org/archive/`), for its "
                     "canonical links",
}


def check_task_runner(settings: Settings) -> None:
    """Refuse a `task_runner` that is neither "threads", "dask" nor a Dask scheduler's address."""
    if settings.task_runner not in ("threads", "dask") and "://" not in settings.task_runner:
        raise ConfigError(f"task_runner = {settings.task_runner!r}: use 'threads', 'dask', or a Dask scheduler "
                          "address such as 'tcp://10.0.0.5:8786'")


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read settings from `path` (or config/settings.toml when present), then RECORDING_INDEX_* variables."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = Path(path or env.get(ENV_PREFIX + "CONFIG") or DEFAULT_SETTINGS_FILE)
    if path.exists():
        values.update(_read_toml(path))
    elif path != DEFAULT_SETTINGS_FILE:
        raise ConfigError(f"{path}: settings file not found")
    known = {f.name: f for f in fields(Settings)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{_at(path, key)}: unknown setting {key!r}")
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{_at(path, key)}: setting {key!r} must be a single value")
    origins = {key: _at(path, key) for key in values}
    for f in known.values():
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is not None:
            values[f.name], origins[f.name] = raw, ENV_PREFIX + f.name.upper()
    coerced = {k: _coerce(k, v, known[k].type, origins[k]) for k, v in values.items()}
    settings = Settings(**coerced)
    check_settings(settings, origins)
    return settings


def check_settings(settings: Settings, origins: dict[str, str] | None = None) -> None:
    """Refuse a setting with a value no stage can use, naming where it came from (`origins`: the
    file and line, the environment variable, or the command-line option)."""
    origins = origins or {}
    for key, (low, high) in BOUNDS.items():
        value = getattr(settings, key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high):
            raise ConfigError(f"{origins.get(key, 'settings')}: setting {key!r} must be from {low:g} to {high:g}, "
                              f"got {value!r}")
    for key, allowed in CHOICES.items():
        if (value := getattr(settings, key)) not in allowed:
            raise ConfigError(f"{origins.get(key, 'settings')}: setting {key!r} must be one of {', '.join(allowed)}, "
                              f"got {value!r}")
    if not LANGUAGE_CODE.fullmatch(settings.language):
        raise ConfigError(f"{origins.get('language', 'settings')}: setting 'language' must be a language code such "
                          f"as 'fr' or 'en', or 'auto', got {settings.language!r}")
    try:
        check_task_runner(settings)
    except ConfigError as exc:
        raise ConfigError(f"{origins.get('task_runner', 'settings')}: {exc}") from None


# The settings with a few allowed values, checked up front (not when the first recording needs them).
CHOICES: dict[str, tuple[str, ...]] = {
    "engine": ("faster-whisper", "openai-whisper"), "translator": ("argos", "whisper", "none"),
    "output_format": ("all", "srt", "vtt", "txt", "tsv", "json"),  # as whisper's --output_format
    "compute_type": ("int8", "int8_float32", "int8_float16", "int16", "float16", "float32", "bfloat16", "default",
                     "auto"),
}
# Whisper's language codes are two letters (three for a few: haw, yue); "auto" lets it detect.
LANGUAGE_CODE = re.compile(r"auto|[a-z]{2,3}|")


# The numeric settings' allowed ranges (NaN and infinity are outside every one): a bound set to
# nan, 0 or 1e10 would switch itself off.
BOUNDS: dict[str, tuple[float, float]] = {
    "beam_size": (1, 20), "batch_size": (0, 64), "cpu_threads": (0, 1024), "chunk_seconds": (5, 600),
    "dask_workers": (1, 1024), "max_page_recordings": (1, 100_000), "max_hours": (0.001, 1000),
    "download_minutes": (0.1, 7 * 24 * 60),
}


def _coerce(name: str, value: Any, type_name: Any, origin: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind in ("int", "float"):
            if isinstance(value, bool) or (isinstance(value, str) and not value.strip().isascii()):
                raise ValueError(value)  # true is no number; nor is "٣" here
            number = float(value)
            if kind == "int" and number != int(number):
                raise ValueError(value)  # 5.9 threads: say so rather than take 5
            return int(number) if kind == "int" else number
        return str(value)
    except (TypeError, ValueError, OverflowError):
        wanted = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(kind, f"a {kind}")
        raise ConfigError(f"{origin}: setting {name!r} must be {wanted}, got {value!r}") from None


MAX_CONFIG_BYTES = 1024**2


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open_regular(path) as handle:  # a FIFO named as a catalog would block the run
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except BadInputError as exc:
        raise ConfigError(f"{path}: {exc.cause}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB: not a settings file or catalog")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def _at(path: Path, key: str, value: str | None = None, nth: int = 1) -> str:
    """`path:line` of the `nth` assignment of `key` (see `_line_of`), or the file alone when the
    line is not found (a key deep in nested tables, say)."""
    line = _line_of(path, key, value, nth)
    return f"{path}:{line}" if line else str(path)


def _line_of(path: Path, key: str, value: str | None = None, nth: int = 1) -> int:
    """The line of the `nth` assignment of `key` (to `value`, if given) or of a `[key]` table header.

    tomllib keeps no positions, so look for it in the text; 0 when not found.
    """
    assigned = rf"{re.escape(key)}\s*=" + (rf"\s*[\"']{re.escape(value)}[\"']" if value is not None else "")
    pattern = re.compile(rf"^\s*(?:{assigned}|\[\[?(?:[\w.]+\.)?{re.escape(key)}\]\]?)")
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if pattern.match(line):
            seen += 1
            if seen == nth:
                return number
    return 0


# --- catalog -------------------------------------------------------------------------------------

RECORDING_FIELDS = {"id", "title", "speakers", "event", "date", "language", "source", "pick", "note", "vocabulary"}
EVENT_FIELDS = {"id", "title", "date", "language", "source", "note", "recordings", "vocabulary"}
# A catalog's vocabulary goes into Whisper's prompt, which holds about 220 tokens: bounded here.
MAX_TERMS, MAX_TERM_CHARS = 50, 80
# Titles, events and names are shown, searched and given to Whisper: one printable line each.
MAX_TEXT_CHARS, MAX_SPEAKERS, MAX_NAME_CHARS = 300, 20, 100


@dataclass
class Catalog:
    path: Path
    recordings: list[Recording] = field(default_factory=list)


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog: `[[recordings]]` entries, or `[[events]]` holding recordings.

    An event's `source` may be its page: its recordings then come from the page (those `pick`
    names, or all of them when the event lists none). Relative local sources are resolved against
    the catalog's folder. Any error names the file, the line and the field before anything runs.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: catalog not found")
    data = _read_toml(path)
    unknown_top = set(data) - {"recordings", "events"}
    if unknown_top:
        key = sorted(unknown_top)[0]
        raise ConfigError(f"{_at(path, key)}: unknown section {key!r} (expected recordings or events)")
    catalog = Catalog(path=path)
    for number, entry in enumerate(_tables(path, data, "recordings", "recordings"), 1):
        catalog.recordings.append(_recording(path, entry, {}, f"recordings[{number}]"))
    for e_number, event in enumerate(_tables(path, data, "events", "events"), 1):
        where = f"events[{e_number}]"
        _check_fields(path, event, EVENT_FIELDS, where)
        for key in ("title", "date", "language", "source"):
            _check_string(path, event, key, where)
        _check_date(path, event, where)
        inherited = {"event": event.get("title", ""), "date": event.get("date", ""),
                     "language": event.get("language", ""), "source": event.get("source", ""),
                     "vocabulary": _vocabulary(path, event, where)}
        entries = _tables(path, event, "recordings", f"{where}.recordings")
        if not entries and event.get("source"):
            entries = [{}]  # everything the event's page links
        elif not entries:
            raise ConfigError(f"{path}: {where}: an event needs a source (its page) or recordings")
        for number, entry in enumerate(entries, 1):
            catalog.recordings.append(_recording(path, entry, inherited, f"{where}.recordings[{number}]"))
    seen: set[str] = set()
    for rec in catalog.recordings:
        if rec.id in seen:
            raise ConfigError(f"{_at(path, 'id', rec.id, nth=2)}: duplicate recording id {rec.id!r}")
        seen.add(rec.id)
    return catalog


def _tables(path: Path, data: dict, key: str, where: str) -> list[dict]:
    """`data[key]`, checked to be a list of tables ([[key]] in TOML)."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(f"{_at(path, key)}: {where}: must be a list of tables ([[{key}]])")
    return value


def _vocabulary(path: Path, entry: dict, where: str) -> list[str]:
    """An entry's `vocabulary`: a list of names and terms, each a short line of printable text."""
    terms = entry.get("vocabulary", [])
    at = _at(path, "vocabulary")
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ConfigError(f"{at}: {where}.vocabulary: must be a list of terms, "
                          'such as ["RÉSAL", "prévention de la criminalité"]')
    if len(terms) > MAX_TERMS:
        raise ConfigError(f"{at}: {where}.vocabulary: {len(terms)} terms, at most {MAX_TERMS}")
    for term in terms:
        if not term.strip() or len(term) > MAX_TERM_CHARS or printable(term) != term or "\n" in term:
            raise ConfigError(f"{at}: {where}.vocabulary: {printable(term)[:40]!r}: a term is one line "
                              f"of 1 to {MAX_TERM_CHARS} printable characters")
    return [" ".join(t.split()) for t in terms]


def _check_date(path: Path, entry: dict, where: str) -> None:
    """A date as ISO 8601 writes it, and a real one: 2018, 2018-02 or 2018-02-14 (search filters
    match from the year on)."""
    date = entry.get("date")
    if not isinstance(date, str) or not date:
        return
    valid = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", date)
    try:
        if valid:
            datetime.date(int(valid[1]), int(valid[2] or 1), int(valid[3] or 1))
    except ValueError:
        valid = None
    if not valid:
        raise ConfigError(f"{_at(path, 'date')}: {where}.date: {printable(date)[:40]!r}: a date as 2018, 2018-02 or "
                          "2018-02-14")


def _check_string(path: Path, entry: dict, key: str, where: str) -> None:
    if key in entry and not isinstance(entry[key], str):
        raise ConfigError(f"{_at(path, key)}: {where}.{key}: must be a string")
    if key in entry and "\x00" in entry[key]:
        raise ConfigError(f"{_at(path, key)}: {where}.{key}: holds a NUL character")
    if key in entry and key != "source" and not _one_line(entry[key], MAX_TEXT_CHARS):
        raise ConfigError(f"{_at(path, key)}: {where}.{key}: {printable(entry[key])[:40]!r}: "
                          f"one line of at most {MAX_TEXT_CHARS} printable characters")


def _one_line(text: str, most: int) -> bool:
    """At most `most` printable characters (no control or bidirectional ones) once spaces, tabs and
    line breaks are made single spaces: a TOML multi-line title is one line here."""
    text = " ".join(text.split())
    return len(text) <= most and text.isprintable()


def _speakers(path: Path, entry: dict, where: str) -> list[str]:
    speakers = entry.get("speakers", [])
    if isinstance(speakers, str):
        speakers = [speakers]
    at = _at(path, "speakers")
    if not isinstance(speakers, list) or not all(isinstance(s, str) for s in speakers):
        raise ConfigError(f"{at}: {where}.speakers: must be a list of names")
    if len(speakers) > MAX_SPEAKERS:
        raise ConfigError(f"{at}: {where}.speakers: {len(speakers)} names, at most {MAX_SPEAKERS}")
    for name in speakers:
        if name.strip(" ") and not name.strip():
            raise ConfigError(f"{at}: {where}.speakers: {ascii(name)[:40]}: a name of invisible spaces alone")
    speakers = [" ".join(name.split()) for name in speakers if name.strip()]  # a blank name names no one
    for name in speakers:
        if not _one_line(name, MAX_NAME_CHARS):
            raise ConfigError(f"{at}: {where}.speakers: {printable(name)[:40]!r}: a name is one line "
                              f"of 1 to {MAX_NAME_CHARS} printable characters")
    return speakers


def _check_fields(path: Path, entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{_at(path, key)}: {where}.{key}: unknown field "
                              f"(expected one of {', '.join(sorted(allowed))})")


def _recording(path: Path, entry: Any, inherited: dict[str, str], where: str) -> Recording:
    _check_fields(path, entry, RECORDING_FIELDS, where)
    source = entry.get("source") or inherited.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{path}: {where}.source: missing (a local path, a media or page URL, or a video URL)")
    pick = entry.get("pick", "")
    if not isinstance(pick, (int, str)) or isinstance(pick, bool) or (isinstance(pick, int) and pick < 1):
        raise ConfigError(f"{_at(path, 'pick')}: {where}.pick: a number from 1 or a text to match")
    speakers = _speakers(path, entry, where)
    for key in ("title", "event", "date", "language", "id", "source"):
        _check_string(path, entry, key, where)
    _check_date(path, entry, where)
    # The recording's own terms first (the most specific), then its event's.
    vocabulary = list(dict.fromkeys(_vocabulary(path, entry, where) + list(inherited.get("vocabulary", []))))
    if "\x00" in source or any("\x00" in s for s in speakers):
        raise ConfigError(f"{path}: {where}: holds a NUL character")
    if "id" in entry and (why := why_bad_id(entry["id"])):
        raise ConfigError(f"{_at(path, 'id')}: {where}.id {entry['id']!r}: {why}")
    if "://" not in source or source.startswith("file://"):
        source = local_source(source, path.parent)
    values = {**{k: v for k, v in inherited.items() if v}, **{k: v for k, v in entry.items() if k != "note"}}
    values["speakers"] = list(speakers)
    for key in ("title", "event"):  # checked as one line, kept as one
        if isinstance(values.get(key), str):
            values[key] = re.sub(r"\s*[\r\n]+\s*", " ", values[key]).strip()
    values["vocabulary"] = vocabulary
    values["source"] = source
    values["pick"] = str(pick)
    values.setdefault("id", recording_id_for(source + (f"#{pick}" if pick else "")))
    return Recording(**values)


def local_source(path: str, base: Path | None = None) -> str:
    """The absolute path of a local source (a plain path or a file:// URL), links resolved where
    they can be: a loop or a missing file is kept as written and fails alone when it is read."""
    if path.startswith("file://"):
        try:
            from urllib.request import url2pathname  # urllib.request loads ssl and http.client: 60 ms of a cold search

            path = url2pathname(urlsplit(path).path)
        except ValueError:  # not a URL after all (a "[" in the host part): the path as written
            path = path.removeprefix("file://")
    local = Path(path).expanduser()
    if base is not None and not local.is_absolute():
        local = base / local
    try:
        return str(local.resolve())
    except (OSError, RuntimeError):  # a symbolic link loop
        return os.path.abspath(local)


def recording_id_for(source: str) -> str:
    """A stable, readable id: the file's stem and a short hash of where it comes from (without the
    user name and password a URL may carry: the id is stored and shown)."""
    source = redact_url(source)
    stem = re.sub(r"[^a-z0-9]+", "-", Path(source.split("?")[0]).stem.lower()).strip("-")[:40] or "recording"
    return f"{stem}-{hashlib.sha1(source.encode()).hexdigest()[:8]}"
