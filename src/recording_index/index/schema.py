"""The index's schema: what it is made of, how an older one is brought up to date in place, and how
a file is checked to be what this program makes before any query runs on it.

A plain SQLite database: sqlite-utils tables, full-text tables as `enable_fts` makes them
(`<table>_fts` over the table itself, kept by triggers), and triggers of plain SQL. The sqlite3
shell, sqlite-utils, Datasette and DB Browser can read, search, edit and delete in it.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache

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


def upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring an index of schema `version` (1 to 7) to this one, in place and inside the caller's
    transaction: every recording, sentence, word, chunk, correction and provenance field is kept;
    the full-text tables are made again from the text."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for kind, names in _OLD_OBJECTS:
        for name in names:
            conn.execute(f"DROP {kind} IF EXISTS [{name}]")
    for name, columns in (("recordings", RECORDING_COLUMNS), ("segments", SEGMENT_COLUMNS), ("words", WORD_COLUMNS),
                          ("chunks", CHUNK_COLUMNS), ("corrections", CORRECTION_COLUMNS)):
        existing = columns_of(conn, name)
        if not existing:
            conn.execute(_create_table(name, columns, pk={"recordings": "id", "corrections": "id", "chunks": "id",
                                                          "segments": ("recording_id", "idx"),
                                                          "words": ("recording_id", "segment_idx", "idx")}[name],
                                       references=name not in ("recordings", "corrections")))
        for column, kind in columns.items():
            if existing and column not in existing:
                conn.execute(f"ALTER TABLE [{name}] ADD COLUMN [{column}] {_sql_type(kind)}")
    if version < 5:  # unknown is NULL from version 5 on, not ""
        for name in (*OPTIONAL_TEXT, "error", "warning"):
            conn.execute(f"UPDATE recordings SET [{name}] = NULL WHERE [{name}] = ''")
    for name in ("fingerprint", "translation_fingerprint"):  # replaced by stage_keys in version 4
        if name in columns_of(conn, "recordings"):
            conn.execute(f"ALTER TABLE recordings DROP COLUMN [{name}]")
    conn.execute("UPDATE chunks SET (speakers, event, date) = "
                 "(SELECT r.speakers, r.event, r.date FROM recordings r WHERE r.id = chunks.recording_id)")
    _create_search(conn)


def columns_of(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, int]]:
    """A table's columns: name → (declared type, hidden: 0, or 2 and 3 for generated columns)."""
    return {row[1]: (row[2], row[6]) for row in conn.execute(f"PRAGMA table_xinfo([{table}])")}


def _normal(sql: str | None) -> str:
    return re.sub(r"\s+", " ", sql or "").strip()


@lru_cache(maxsize=1)
def expected_objects() -> tuple[dict[str, tuple[str, str, str]], dict[str, set[str]]]:
    """What this program's schema holds, as SQLite itself records it: name → (type, table, SQL), and
    each table's columns (made once in memory, FTS5's own tables included)."""
    conn = sqlite3.connect(":memory:")
    try:
        create(conn)
        objects = {name: (kind, table, _normal(sql)) for kind, name, table, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
        return objects, {name: set(columns_of(conn, name)) for name, (kind, _, _) in objects.items() if kind == "table"}
    finally:
        conn.close()


_PLAIN_INDEX = re.compile(r"CREATE (UNIQUE )?INDEX \S+ ON \S+ ?\(([\[\]\w\s,\"`']+)\)( WHERE .*)?$", re.IGNORECASE)


def unexpected(conn: sqlite3.Connection) -> str | None:
    """What in this database is not as this program makes it (None: all is): each of its tables,
    full-text tables, triggers and indexes compared by type and definition, read from sqlite_master
    and table_xinfo alone, so that nothing of the file (a view, a trigger, a generated column)
    runs before it is known. A person's own tables, views and plain indexes beside them are left be;
    a trigger or an index on an expression is code that would run with the program's writes."""
    expected, expected_columns = expected_objects()
    found = {name: (kind, table, _normal(sql)) for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
    for name, (kind, table, sql) in expected.items():
        if name not in found:
            return f"no {kind} {name}"
        their_kind, _, their_sql = found[name]
        if their_kind != kind:
            return f"{name} is a {their_kind}, not a {kind}"
        if kind == "table" and name.startswith(tuple(f"{fts}_" for fts in FTS_TABLES)):
            continue  # FTS5's own tables: their content is its business, and their words its version's
        if kind == "table" and not sql.upper().startswith("CREATE VIRTUAL"):
            theirs = columns_of(conn, name)
            missing = sorted(expected_columns[name] - set(theirs))
            generated = sorted(column for column, (_, hidden) in theirs.items() if hidden)
            if missing or generated:
                return f"table {name}: " + (f"no column {missing[0]}" if missing else f"generated column {generated[0]}")
        elif their_sql != sql:
            return f"{kind} {name} is not defined as this program defines it"
    for name, (kind, table, sql) in found.items():
        if name in expected:
            continue
        if kind == "trigger":
            return f"trigger {name}, which this program does not make"
        if kind == "index" and table in expected and sql and not _PLAIN_INDEX.match(sql):
            return f"index {name} on an expression, which this program does not make"
        if kind == "table" and sql.upper().startswith("CREATE VIRTUAL"):
            return f"virtual table {name}, which this program does not make"
    return None


def refuse_unexpected(conn: sqlite3.Connection, path: object) -> None:
    """Raise, in one line naming `path`, if the database is not as this program makes it."""
    problem = unexpected(conn)
    if problem:
        raise RecordingIndexError(f"{path}: not an index as this program makes it ({problem}); left untouched")


def tables_are_tables(conn: sqlite3.Connection, path: object) -> None:
    """Before an older index is upgraded (its definitions differ by version): its tables of ours are
    tables, not views or virtual tables that would run as they are read."""
    kinds = dict(conn.execute("SELECT name, CASE WHEN type = 'table' AND upper(sql) LIKE 'CREATE VIRTUAL%' "
                              "THEN 'virtual table' ELSE type END FROM sqlite_master"))
    for name in INDEX_TABLES:
        if kinds.get(name, "table") != "table":
            raise RecordingIndexError(f"{path}: not an index as this program makes it ({name} is a {kinds[name]}, "
                                      "not a table); left untouched")


def unmarked_index(conn: sqlite3.Connection, names: set[str]) -> bool:
    """Whether a database without the marker is an index of before it (versions 1 and 2): its
    tables of ours hold at least these columns."""
    tables = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND upper(sql) NOT LIKE 'CREATE VIRTUAL%'")}
    columns = {(table, column) for table in {"recordings", "chunks"} & names & tables
               for column in columns_of(conn, table)}
    return UNMARKED_INDEX_COLUMNS <= columns
