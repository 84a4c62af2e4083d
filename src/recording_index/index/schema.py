"""The index's schema: what it is made of, how an older one is brought up to date in place, and how
a file is checked to be what this program makes before any query runs on it.

A plain SQLite database: sqlite-utils tables, full-text tables as `enable_fts` makes them
(`<table>_fts` over the table itself, kept by triggers), and triggers of plain SQL. The sqlite3
shell, sqlite-utils, Datasette and DB Browser can read, search, edit and delete in it.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from functools import lru_cache
from pathlib import Path

from recording_index.errors import RecordingIndexError

# 8: a plain SQLite database. The full-text tables index `chunks` itself (not a view), which holds
#    its recording's speakers, event and date; no word pairs, kept lengths or function of ours in
#    any trigger; deleting a recording deletes its rows. Versions 1-7 are upgraded in place.
SCHEMA_VERSION = 8
# SQLite's own field for "which program's file is this" ("RIDX"): a read command refuses, untouched,
# a database that is not an index.
APPLICATION_ID = 0x52494458
INDEX_TABLES = ("recordings", "segments", "words", "chunks", "corrections")
# What an index of before the marker (versions 1 and 2) holds at least.
UNMARKED_INDEX_COLUMNS = {("recordings", c) for c in ("id", "source", "content_hash", "fingerprint", "status")} | {
    ("chunks", c) for c in ("recording_id", "idx", "text_fr", "text_en")}
# Accent-insensitive French: "équipe" matches "equipe" and the other way round.
FRENCH_TOKENIZER = "unicode61 remove_diacritics 2"
# English with stemming: "translating" finds "translation", "jobs" finds "job".
ENGLISH_TOKENIZER = "porter unicode61 remove_diacritics 2"
# A chunk carries its recording's speakers, event and date, so that a filter is one more term FTS5
# intersects with the words' lists (a join checked on every match took a second at 10,000 hours).
FACETS = ("speakers", "event", "date")
# The full-text tables and the columns each indexes. `chunks_fts` is the table Datasette finds for
# `chunks` (both languages, accents ignored); `chunks_en_fts` is English with stemming, for search.
FTS_TABLES = {
    "chunks_fts": ("chunks", ("text_fr", "text_en", *FACETS), FRENCH_TOKENIZER),
    "chunks_en_fts": ("chunks", ("text_en", *FACETS), ENGLISH_TOKENIZER),
    "segments_fts": ("segments", ("text", "text_en"), FRENCH_TOKENIZER),
}
# Each language side of search: its full-text table and the column holding its text.
SEARCH_TABLES = {"fr": ("chunks_fts", "text_fr"), "en": ("chunks_en_fts", "text_en")}
# Recording fields that may not be known: stored as NULL then.
OPTIONAL_TEXT = ("event", "date", "uploader", "media_path", "content_hash")
RECORDING_COLUMNS = {
    "id": str, "title": str, "speakers": str, "event": str, "date": str, "language": str,
    "source": str, "media_path": str, "duration": float, "content_hash": str, "uploader": str,
    "engine": str, "model": str, "settings": str, "stage_keys": str,
    "translation_engine": str, "translation_model": str,
    "detected_language": str, "status": str, "error": str, "indexed_at": str,
    "declared_duration": float, "warning": str, "vocabulary": str,
}
# Each segment says where its text comes from (models.Segment; corrections/layer.py).
PROVENANCE_COLUMNS = {"origin": str, "origin_en": str, "corrected_by": str, "corrected_at": str,
                      "text_machine": str, "text_en_machine": str}
SEGMENT_COLUMNS = {
    "recording_id": str, "idx": int, "start": float, "end": float, "text": str,
    "text_en": str, "translation_engine": str, "translation_model": str, "avg_logprob": float,
    "no_speech_prob": float, "compression_ratio": float, **PROVENANCE_COLUMNS,
}
WORD_COLUMNS = {"recording_id": str, "segment_idx": int, "idx": int, "start": float, "end": float,
                "text": str, "probability": float, "correction": int}
CHUNK_COLUMNS = {"id": int, "recording_id": str, "idx": int, "start": float, "end": float,
                 "text_fr": str, "text_en": str, "speakers": str, "event": str, "date": str}
CORRECTION_COLUMNS = {"id": int, "recording_id": str, "lang": str, "start": float, "end": float, "text": str,
                      "by": str, "at": str, "origin": str, "status": str, "note": str, "machine_text": str,
                      "machine_words": str}
# What the triggers of plain SQL do besides keeping the full-text tables: a deleted recording takes
# its rows with it (whoever deletes it: foreign keys are off in most SQLite tools), and a recording's
# new speakers, event or date reach its chunks, hence its filters.
TRIGGERS = {
    "recordings_delete_rows": "CREATE TRIGGER [recordings_delete_rows] AFTER DELETE ON [recordings] BEGIN\n"
    + "".join(f"  DELETE FROM [{table}] WHERE recording_id = old.id;\n" for table in INDEX_TABLES[1:])
    + "END",
    "recordings_facets": "CREATE TRIGGER [recordings_facets] AFTER UPDATE OF speakers, event, date ON [recordings] "
    "BEGIN\n  UPDATE [chunks] SET speakers = new.speakers, event = new.event, date = new.date "
    "WHERE recording_id = new.id;\nEND",
}


def _sql_type(kind: type) -> str:
    return {str: "TEXT", int: "INTEGER", float: "FLOAT"}[kind]


def _create_table(name: str, columns: dict[str, type], pk: str | tuple[str, ...],
                  references: bool = True) -> str:
    """A CREATE TABLE as sqlite-utils writes one (so the file reads as any sqlite-utils table)."""
    lines = [f"   [{column}] {_sql_type(kind)}" + (" PRIMARY KEY" if column == pk else "")
             + (" REFERENCES [recordings]([id])" if references and column == "recording_id" else "")
             for column, kind in columns.items()]
    if isinstance(pk, tuple):
        lines.append(f"   PRIMARY KEY ({', '.join(f'[{column}]' for column in pk)})")
    return f"CREATE TABLE [{name}] (\n" + ",\n".join(lines) + "\n)"


def fts_statements(fts: str) -> list[str]:
    """The full-text table `fts` and its triggers, in the very words of sqlite-utils' `enable_fts`
    (create_triggers=True): Datasette finds it for its table, and sqlite-utils can rebuild or drop it."""
    table, columns, tokenizer = FTS_TABLES[fts]
    prefix = fts.removesuffix("_fts")
    listed = ", ".join(f"[{c}]" for c in columns)
    old, new = (", ".join(f"{row}.[{c}]" for c in columns) for row in ("old", "new"))
    return [
        f"CREATE VIRTUAL TABLE [{fts}] USING FTS5 (\n    {listed},\n    tokenize='{tokenizer}',\n    content=[{table}]\n)",
        f"CREATE TRIGGER [{prefix}_ai] AFTER INSERT ON [{table}] BEGIN\n"
        f"  INSERT INTO [{fts}] (rowid, {listed}) VALUES (new.rowid, {new});\nEND",
        f"CREATE TRIGGER [{prefix}_ad] AFTER DELETE ON [{table}] BEGIN\n"
        f"  INSERT INTO [{fts}] ([{fts}], rowid, {listed}) VALUES('delete', old.rowid, {old});\nEND",
        f"CREATE TRIGGER [{prefix}_au] AFTER UPDATE ON [{table}] BEGIN\n"
        f"  INSERT INTO [{fts}] ([{fts}], rowid, {listed}) VALUES('delete', old.rowid, {old});\n"
        f"  INSERT INTO [{fts}] (rowid, {listed}) VALUES (new.rowid, {new});\nEND",
    ]


def create(conn: sqlite3.Connection) -> None:
    """Make the schema in an empty database (inside the caller's transaction)."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(_create_table("recordings", RECORDING_COLUMNS, pk="id", references=False))
    conn.execute(_create_table("segments", SEGMENT_COLUMNS, pk=("recording_id", "idx")))
    conn.execute(_create_table("words", WORD_COLUMNS, pk=("recording_id", "segment_idx", "idx")))
    conn.execute(_create_table("corrections", CORRECTION_COLUMNS, pk="id", references=False))
    conn.execute(_create_table("chunks", CHUNK_COLUMNS, pk="id"))
    _create_search(conn)


def _create_search(conn: sqlite3.Connection) -> None:
    """Indexes, full-text tables and triggers; the full-text tables filled from their tables."""
    conn.execute("CREATE INDEX [idx_corrections_recording_id_lang_start] ON [corrections] ([recording_id], [lang], [start])")
    conn.execute("CREATE UNIQUE INDEX [idx_chunks_recording_id_idx] ON [chunks] ([recording_id], [idx])")
    # chunks_fts first: Datasette takes the first full-text table over `chunks` it finds as its own.
    for fts in FTS_TABLES:
        for statement in fts_statements(fts):
            conn.execute(statement)
        conn.execute(f"INSERT INTO [{fts}]([{fts}]) VALUES('rebuild')")
    for statement in TRIGGERS.values():
        conn.execute(statement)


# Triggers, views and virtual tables of earlier versions (1-7), dropped by the upgrade; the
# full-text tables are then made again from the text, as version 8 makes them.
_OLD_OBJECTS = (
    ("TRIGGER", ("chunks_ai", "chunks_ad", "chunks_au", "chunks_en_ai", "chunks_en_ad", "chunks_en_au",
                 "chunks_search_ai", "chunks_search_ad", "chunks_search_au", "recordings_search_au",
                 "recordings_search_bd", "segments_search_ai", "segments_search_ad", "segments_search_au",
                 "chunks_pairs_ai", "chunks_pairs_ad", "chunks_pairs_au", "chunks_lengths_ai", "chunks_lengths_au")),
    ("VIEW", ("chunk_texts",)),
    ("TABLE", ("chunks_fts", "chunks_en_fts", "segments_fts", "chunk_pairs_fr", "chunk_pairs_en", "paired_words",
               "chunk_lengths")),
    ("INDEX", ("idx_corrections_recording_id_lang_start", "idx_chunks_recording_id_idx")),
)


# Each table of ours, its columns and primary key.
TABLES = {"recordings": (RECORDING_COLUMNS, "id"), "segments": (SEGMENT_COLUMNS, ("recording_id", "idx")),
          "words": (WORD_COLUMNS, ("recording_id", "segment_idx", "idx")), "corrections": (CORRECTION_COLUMNS, "id"),
          "chunks": (CHUNK_COLUMNS, "id")}


def upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring an index of schema `version` (1 to 7) to this one, in place and inside the caller's
    transaction: every recording, sentence, word, chunk (its id too), correction and provenance
    field is kept. The old triggers, views and full-text tables go first, so that none of them runs;
    each table is then made again as this version makes it and its rows copied in (the file then
    reads exactly as a new index, which is what `unexpected` checks); the full-text tables are made
    again from the text. `safe_to_upgrade` must have passed."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    found = _objects(conn)
    theirs = [sql for name, (kind, table, sql) in found.items()  # a person's indexes of our tables: kept
              if kind == "index" and table in TABLES and sql and name not in dict(_OLD_OBJECTS)["INDEX"]]
    for _, names in _OLD_OBJECTS:
        for name in names:
            if name in found:  # as what it is: a view may stand where a table was
                kind = found[name][0]
                conn.execute(f"DROP {'TABLE' if kind == 'table' else kind.upper()} [{name}]")
    # A table renamed keeps the other tables' references to its name as they are.
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        for name, (columns, pk) in TABLES.items():
            existing = columns_of(conn, name)
            if existing:
                conn.execute(f"ALTER TABLE [{name}] RENAME TO [{name}_before_v8]")
            conn.execute(_create_table(name, columns, pk=pk, references=name not in ("recordings", "corrections")))
            if existing:
                kept = ", ".join(f"[{column}]" for column in columns if column in existing)
                conn.execute(f"INSERT INTO [{name}] ({kept}) SELECT {kept} FROM [{name}_before_v8]")
                conn.execute(f"DROP TABLE [{name}_before_v8]")
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
    if version < 5:  # unknown is NULL from version 5 on, not ""
        for name in (*OPTIONAL_TEXT, "error", "warning"):
            conn.execute(f"UPDATE recordings SET [{name}] = NULL WHERE [{name}] = ''")
    conn.execute("UPDATE chunks SET (speakers, event, date) = "
                 "(SELECT r.speakers, r.event, r.date FROM recordings r WHERE r.id = chunks.recording_id)")
    _create_search(conn)
    for sql in theirs:
        conn.execute(sql)


def columns_of(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, int]]:
    """A table's columns: name → (declared type, hidden: 0, or 2 and 3 for generated columns)."""
    return {row[1]: (row[2], row[6]) for row in conn.execute(f"PRAGMA table_xinfo([{table}])")}


@lru_cache(maxsize=1)
def expected_objects() -> dict[str, tuple[str, str, str | None]]:
    """What this program's schema holds, as SQLite itself records it: name → (type, table, SQL),
    FTS5's own tables and SQLite's automatic indexes included (made once in memory)."""
    conn = sqlite3.connect(":memory:")
    try:
        create(conn)
        return _objects(conn)
    finally:
        conn.close()


def _objects(conn: sqlite3.Connection) -> dict[str, tuple[str, str, str | None]]:
    return {name: (kind, table, sql) for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master")}


# SQLite's own objects a database may hold beside ours: statistics the planner reads, and the
# counter of AUTOINCREMENT (sqlite_autoindex_… indexes have no SQL, and are checked by name).
SQLITE_TABLES = {"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}
_NAME = r'(?:\[[^\]]*\]|"(?:[^"]|"")*"|`[^`]*`|\w+)'
# An index on plain columns, each perhaps with its collation and order: no expression, no WHERE.
_COLUMN = rf"{_NAME}(?:\s+COLLATE\s+\w+)?(?:\s+ASC|\s+DESC)?"
_PLAIN_INDEX = re.compile(rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+{_NAME}\s+ON\s+{_NAME}\s*\(\s*{_COLUMN}(?:\s*,\s*{_COLUMN})*\s*\)",
                          re.IGNORECASE)


def unexpected(conn: sqlite3.Connection) -> str | None:
    """What in this database is not as this program makes it (None: all is), read from sqlite_master
    alone, so that nothing of the file (a view, a trigger, a generated column) runs before it is
    known. Each table, full-text table (FTS5's own tables too), trigger and index of this program
    must be there, of its type, defined in the very words this program writes. Beside them, a
    person's own tables, views, and indexes of plain columns are left be; a trigger, a virtual table,
    or an index on an expression or with a WHERE over this program's tables is code that would run
    with its reads or writes, and is refused."""
    expected = expected_objects()
    found = _objects(conn)
    for name, (kind, table, sql) in expected.items():
        if name not in found:
            return f"no {kind} {name}"
        their_kind, their_table, their_sql = found[name]
        if their_kind != kind or their_table != table:
            return f"{name} is a {their_kind} of {their_table}, not a {kind} of {table}"
        if their_sql != sql:
            return f"{kind} {name} is not defined as this program defines it"
    return _foreign(found, set(expected), {table for _, table, _ in expected.values()})


def _foreign(found: dict[str, tuple[str, str, str | None]], known: set[str], ours: set[str]) -> str | None:
    """What, among the objects not `known`, is code that would run with this program's reads or
    writes of its tables `ours` (None when nothing is): a trigger on one of them, an index of one
    on an expression or with a condition, or what claims SQLite's own names. A person's own
    tables, views, full-text tables and their triggers beside them are left be."""
    for name, (kind, table, sql) in found.items():
        if name in known:
            continue
        if name.lower().startswith("sqlite_"):
            if not ((kind == "index" and sql is None) or (kind == "table" and name in SQLITE_TABLES)):
                return f"{kind} {name}, which SQLite does not make"
        elif kind == "trigger" and table in ours:
            return f"trigger {name} on {table}, which this program does not make"
        elif kind == "index" and table in ours and not _PLAIN_INDEX.fullmatch(sql or ""):
            return f"index {name} on an expression or with a condition, which this program does not make"
    return None


def refuse_unexpected(conn: sqlite3.Connection, path: object) -> None:
    """Raise, in one line naming `path`, if the database is not as this program makes it."""
    problem = unexpected(conn)
    if problem:
        raise RecordingIndexError(f"{path}: not an index as this program makes it ({problem}); left untouched")


# Columns of earlier versions that the upgrade leaves behind (replaced by stage_keys in version 4).
_OLD_COLUMNS = {"recordings": {"fingerprint", "translation_fingerprint"}}


def safe_to_upgrade(conn: sqlite3.Connection, path: object) -> None:
    """Before an older index is upgraded (its definitions differ by version), refuse in one line
    what would run as the upgrade reads or writes it, or what it would lose: its tables of ours
    must be plain tables of known columns (a person's own column would not be copied), none of
    them generated; its triggers on them those of earlier versions (dropped before anything is
    written); its indexes on them of plain columns (made again after the copy)."""
    found = _objects(conn)
    old_names = {name for _, names in _OLD_OBJECTS for name in names}
    problem = None
    for name, (columns, _) in TABLES.items():
        kind, _, sql = found.get(name, ("table", name, "CREATE TABLE"))
        virtual = kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")
        if kind != "table" or virtual:
            problem = f"{name} is a {'virtual table' if virtual else kind}, not a table"
            break
        existing = columns_of(conn, name) if name in found else {}
        odd = sorted(column for column, (_, hidden) in existing.items()
                     if hidden or column not in columns and column not in _OLD_COLUMNS.get(name, set()))
        if odd:
            problem = (f"table {name} has a generated column {odd[0]}" if existing[odd[0]][1] else
                       f"table {name} has a column {odd[0]} of its own: move it to a table of your own first")
            break
    problem = problem or _foreign(found, old_names, set(TABLES))
    if problem:
        raise RecordingIndexError(f"{path}: not an index as this program makes it ({problem}); left untouched")


def unmarked_index(conn: sqlite3.Connection, names: set[str]) -> bool:
    """Whether a database without the marker is an index of before it (versions 1 and 2): its
    tables of ours hold at least these columns."""
    tables = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND upper(sql) NOT LIKE 'CREATE VIRTUAL%'")}
    columns = {(table, column) for table in {"recordings", "chunks"} & names & tables
               for column in columns_of(conn, table)}
    return UNMARKED_INDEX_COLUMNS <= columns


def checked_version(path: Path) -> int:
    """The schema version of the index at `path` (0: an empty file); refuse a database that is
    not an index (another program's), not as this program makes one, or damaged.

    Read through an immutable connection (no lock, no file made beside it, no checkpoint), unless
    a WAL file holds part of the database; what that finds wrong is looked at again read-only with
    SQLite's locks, since an immutable read can meet a new index that another task of the run is
    still writing."""
    wal = path.with_name(path.name + "-wal")
    modes = ["mode=ro&immutable=1", "mode=ro"]
    try:
        if wal.stat().st_size:
            modes = modes[1:]
    except FileNotFoundError:  # none, or the last writer just removed it
        pass
    for number, mode in enumerate(modes, 1):
        try:
            return _identity(path, mode)
        except (sqlite3.DatabaseError, RecordingIndexError):
            if number == len(modes):
                raise
    raise AssertionError("unreachable")

def _identity(path: Path, mode: str) -> int:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("BEGIN")  # one snapshot: a new index may be committed between two reads
        marker = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND substr(name, 1, 7) != 'sqlite_'")}
        if marker and marker != APPLICATION_ID:
            raise RecordingIndexError(f"{path}: not a recording-index index (application_id {marker:#x}); "
                                      "left untouched")
        if not marker and names and not (1 <= version <= 2 and unmarked_index(conn, names)):
            shown = ", ".join(sorted(names - set(INDEX_TABLES))[:5]) or "none of its tables"
            raise RecordingIndexError(f"{path}: not a recording-index index (no marker; tables {shown}); "
                                      "left untouched")
        if version == SCHEMA_VERSION:
            refuse_unexpected(conn, path)
        elif names and version < SCHEMA_VERSION:
            safe_to_upgrade(conn, path)
        return version
    finally:
        conn.close()


def identify(path: str | Path) -> int:
    """The schema version of the index at `path`, checked as opening it checks (`checked_version`),
    without opening it: what is wrong is one line naming the file."""
    try:
        return checked_version(Path(path))
    except sqlite3.DatabaseError as exc:
        raise RecordingIndexError(f"{path}: {database_problem(exc, True)}") from None


def out_of_space(path: Path, exc: sqlite3.DatabaseError) -> bool:
    """SQLite says "disk I/O error" when even its shared-memory file cannot be grown: look at the disk."""
    if "full" in str(exc):
        return True
    try:
        return "disk I/O" in str(exc) and shutil.disk_usage(path.parent).free < 1024**2
    except OSError:
        return False


def database_problem(exc: sqlite3.DatabaseError, readonly: bool) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"not an SQLite database, or a damaged one ({text})"
    if "readonly" in text or "read-only" in text:
        return f"cannot write here ({text}); read commands still work"
    if "disk I/O error" in text or "full" in text:
        return f"cannot write: disk full, or failing ({text})"
    if "unable to open" in text:
        return f"cannot open it{' for reading' if readonly else ' for writing'} ({text})"
    return text
