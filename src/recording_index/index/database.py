"""The SQLite index: schema, one-transaction writes per recording, and ranked full-text search.

The database is plain sqlite-utils tables, so it opens in Datasette as it is.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable


def _import_sqlite_utils():
    """sqlite-utils imports numpy whenever it is installed, only to name numpy's types as column
    types; the index declares its columns and writes Python values. numpy is half of a cold
    search's start (0.2 s), so a process that has not loaded it (a search, the web page) imports
    sqlite-utils without it: `import numpy` fails while sys.modules holds None for it."""
    if "numpy" in sys.modules:
        import sqlite_utils
        return sqlite_utils
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        del sys.modules["numpy"]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

from recording_index.errors import DiskFullError, RecordingIndexError
from recording_index.models import Chunk, Correction, Recording, SearchHit, Segment, Word
from recording_index.index import pairs, ranking
from recording_index.index.search import TOKEN, facet_query, fold, fts_query, query_phrases, stem_match
from recording_index.links import moment_url
from recording_index.safety import redact_url

# 2: the recordings' speakers, event and date are indexed with each chunk's text (filters in FTS5).
# 3: the index is marked as one (application_id); a recording keeps the duration its file declares
#    beside the decoded one, and a warning (audio much shorter than declared, say).
# 4: a recording keeps the key of each stage that made its rows (stages.py), in `stage_keys`, which
#    replaces the two fingerprints; `settings` holds only the settings that decide the output; and
#    its catalog `vocabulary`. Segments are sentences (speech/segmenting.py).
# 5: people's corrections (corrections/): the `corrections` table; `segments_fts` (the sentences'
#    own full-text table, for Datasette); each segment's provenance
#    (origin, origin_en, corrected_by, corrected_at, and the machine's text where corrected); each
#    word, the correction that wrote it.
# 6: word pairs (pairs.py): `chunk_pairs_fr` and `chunk_pairs_en`, full-text tables of each chunk's
#    pairs of neighbouring words with a common one, and the common words they pair (`paired_words`).
# 7: each chunk's text length in tokens, one byte a chunk in blocks (`chunk_lengths`, ranking.py):
#    ranking reads them from memory instead of FTS5's docsize table, a lookup for each scored chunk.
SCHEMA_VERSION = 7
# SQLite's own field for "which program's file is this" ("RIDX"): a read command refuses, untouched,
# a database that is not an index.
APPLICATION_ID = 0x52494458
INDEX_TABLES = {"recordings", "segments", "words", "chunks", "corrections"}
# What an index of before the marker (versions 1 and 2) holds at least.
UNMARKED_INDEX_TABLES = {"recordings", "chunks"}
UNMARKED_INDEX_COLUMNS = {("recordings", c) for c in ("id", "source", "content_hash", "fingerprint", "status")} | {
    ("chunks", c) for c in ("recording_id", "idx", "text_fr", "text_en")}
# Accent-insensitive French: "équipe" matches "equipe" and the other way round.
FRENCH_TOKENIZER = "unicode61 remove_diacritics 2"
# English with stemming: "translating" finds "translation", "jobs" finds "job".
ENGLISH_TOKENIZER = "porter unicode61 remove_diacritics 2"
LANGUAGES = ("fr", "en", "any")
# More segments than this in a full-text index, and a run that wrote merges them (merge_search_segments).
MOST_SEARCH_SEGMENTS = 4
SENTENCES_FTS = "segments_fts"  # the sentences' own full-text table, for Datasette
# Each language side's full-text table, its text column and tokenizer.
SEARCH_TABLES = {"fr": ("chunks_fts", "text_fr", FRENCH_TOKENIZER),
                 "en": ("chunks_en_fts", "text_en", ENGLISH_TOKENIZER)}
FACETS = ("speakers", "event", "date")
# A block of chunk lengths (ranking.LENGTHS_TABLE) is stale when this side's column is NULL: the
# triggers set every side's at once, and a partial index finds them.
STALE_LENGTHS = next(iter(SEARCH_TABLES))
# Each side's word pairs (pairs.py): a full-text table of their own, kept by triggers on `chunks`.
PAIRS_TABLES = {"fr": "chunk_pairs_fr", "en": "chunk_pairs_en"}
# The triggers' function that makes a text's pairs, defined on this program's writing connections.
PAIRS_FUNCTION = "recording_index_word_pairs"
# Ranking costs time in proportion to the chunks it scores (see Index._search_side): a query matching
# more than RANKING_WINDOW chunks (filters included) lists the newest first; one matching fewer, as
# nearly all do once they name something specific, is ranked by BM25 (ranking.py).
RANKING_WINDOW = 1000
SNIPPET_OPEN, SNIPPET_CLOSE = "**", "**"
# Recording fields that may not be known: stored as NULL then.
OPTIONAL_TEXT = ("event", "date", "uploader", "media_path", "content_hash")
# Each segment says where its text comes from (models.Segment; corrections/layer.py).
PROVENANCE_COLUMNS = {"origin": str, "origin_en": str, "corrected_by": str, "corrected_at": str,
                      "text_machine": str, "text_en_machine": str}
CORRECTION_COLUMNS = {"id": int, "recording_id": str, "lang": str, "start": float, "end": float, "text": str,
                      "by": str, "at": str, "origin": str, "status": str, "note": str, "machine_text": str,
                      "machine_words": str}


class Index:
    """A recording index in one SQLite file: `add` a recording's results, `search`, `get`."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False):
        """Open the index at `path`: `readonly` for reading alone (every read command: nothing is
        ever written, not even a journal mode); else for writing, created unless `create` is False,
        and upgraded in place when its schema is older. A file that is no index is refused untouched."""
        self.path = Path(path)
        self._ranked: bool | None = None  # whether ranked_bm25() is there (ranking.py), once asked
        self._common: dict[str, frozenset[str]] = {}  # each side's paired words, once read
        # Each filter's share of the chunks (ranking.expected_matches), kept while the database is
        # unchanged (its data_version): a speaker or a year is filtered on again and again, and
        # counting one from both ends costs a few tenths of a ms. A share only decides how matches
        # are listed, never which are found.
        self._filter_shares: dict[str, float] = {}
        self._filter_shares_version: int | None = None
        if (readonly or not create) and not self.path.is_file():
            raise RecordingIndexError(f"{self.path}: no index here yet (run `recording-index run` first)")
        try:
            # Told apart through an immutable connection first, which neither writes nor even
            # checkpoints: another program's database is refused exactly as it was.
            version = self._identify() if self.path.is_file() else 0
            if readonly:
                self.db = sqlite_utils.Database(self._connect_readonly())
                if version != SCHEMA_VERSION:
                    upgrade = ("; `recording-index upgrade` upgrades it" if 0 < version < SCHEMA_VERSION else "")
                    raise RecordingIndexError(f"{self.path}: index schema version {version}, not {SCHEMA_VERSION}{upgrade}")
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(self.path)
            self.db.execute("PRAGMA busy_timeout = 10000")
            self.db.conn.create_function(PAIRS_FUNCTION, 2, self._pairs_of, deterministic=True)
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "db"):
                self.db.close()
            error = DiskFullError if _out_of_space(self.path, exc) else RecordingIndexError
            raise error(f"{self.path}: {_database_problem(exc, readonly)}") from None
        except OSError as exc:
            raise RecordingIndexError(f"{self.path}: cannot open ({exc.strerror or exc})") from None
        except RecordingIndexError:
            if hasattr(self, "db"):
                self.db.close()
            raise

    def _connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection: `mode=ro`, or, where even the shared-memory file of a WAL database
        cannot be made (read-only storage), `immutable=1`."""
        uri = self.path.resolve().as_uri()
        for mode in ("mode=ro", "mode=ro&immutable=1"):
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True, check_same_thread=False)
            try:
                conn.execute("PRAGMA busy_timeout = 10000")
                conn.execute("PRAGMA mmap_size = 2147418112")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if "unable to open" not in str(exc) or "immutable" in mode:
                    raise
        raise AssertionError("unreachable")

    def _identify(self) -> int:
        """The schema version of the index at `path` (0: an empty file); refuse a database that is
        not an index (another program's), or a damaged one.

        Read through an immutable connection (no lock, no file made beside it, no checkpoint), unless
        a WAL file holds part of the database; what that finds wrong is looked at again read-only with
        SQLite's locks, since an immutable read can meet a new index that another task of the run is
        still writing."""
        wal = self.path.with_name(self.path.name + "-wal")
        modes = ["mode=ro&immutable=1", "mode=ro"]
        if wal.is_file() and wal.stat().st_size:
            modes = modes[1:]
        for number, mode in enumerate(modes, 1):
            try:
                return self._verdict(*self._identity(mode))
            except (sqlite3.DatabaseError, RecordingIndexError):
                if number == len(modes):
                    raise
        raise AssertionError("unreachable")

    def _identity(self, mode: str) -> tuple[int, int, set[str], set[tuple[str, str]]]:
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            marker = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            names = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")}
            columns = {(table, row[1]) for table in UNMARKED_INDEX_TABLES & names
                       for row in conn.execute(f"PRAGMA table_info({table})")}
            return marker, version, names, columns
        finally:
            conn.close()

    def _verdict(self, marker: int, version: int, names: set[str], columns: set[tuple[str, str]]) -> int:
        if marker == APPLICATION_ID:
            return version
        if marker:
            raise RecordingIndexError(f"{self.path}: not a recording-index index (application_id {marker:#x}); "
                                      "left untouched")
        if not names or (1 <= version <= 2 and UNMARKED_INDEX_COLUMNS <= columns):  # new, or an index of before the marker
            return version
        shown = ", ".join(sorted(names - INDEX_TABLES)[:5]) or "none of its tables"
        raise RecordingIndexError(f"{self.path}: not a recording-index index (no marker; tables {shown}); "
                                  "left untouched")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ---------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RecordingIndexError(
                f"{self.path}: index schema version {version} is newer than this program's ({SCHEMA_VERSION}); upgrade it")
        if version == SCHEMA_VERSION:
            return
        self.db.enable_wal()
        # Several tasks may open a new index at once: the write lock first, then look again.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._create_schema()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise

    def _create_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        # The mark first: sqlite-utils commits as it creates each table, and a task opening the
        # index meanwhile must never see tables without it (it would take them for another program's).
        self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        if version == 1:
            self._drop_version_1_search()
        columns = {
            "id": str, "title": str, "speakers": str, "event": str, "date": str, "language": str,
            "source": str, "media_path": str, "duration": float, "content_hash": str, "uploader": str,
            "engine": str, "model": str, "settings": str, "stage_keys": str,
            "translation_engine": str, "translation_model": str,
            "detected_language": str, "status": str, "error": str, "indexed_at": str,
            "declared_duration": float, "warning": str, "vocabulary": str,
        }
        existing = self._table("recordings", columns, pk="id")
        if 0 < version < 5:  # unknown is NULL from version 5 on, not ""
            for name in (*OPTIONAL_TEXT, "error", "warning"):
                self.db.execute(f"UPDATE recordings SET [{name}] = NULL WHERE [{name}] = ''")
        for name in ("fingerprint", "translation_fingerprint"):  # replaced by stage_keys in version 4
            if name in existing:
                self.db.execute(f"ALTER TABLE recordings DROP COLUMN {name}")
        self._table("segments", {
            "recording_id": str, "idx": int, "start": float, "end": float, "text": str,
            "text_en": str, "translation_engine": str, "translation_model": str, "avg_logprob": float,
            "no_speech_prob": float, "compression_ratio": float, **PROVENANCE_COLUMNS,
        }, pk=("recording_id", "idx"), foreign_keys=[("recording_id", "recordings", "id")])
        self._table("words", {
            "recording_id": str, "segment_idx": int, "idx": int, "start": float, "end": float,
            "text": str, "probability": float, "correction": int,
        }, pk=("recording_id", "segment_idx", "idx"), foreign_keys=[("recording_id", "recordings", "id")])
        self._table("corrections", CORRECTION_COLUMNS, pk="id")
        self.db["corrections"].create_index(["recording_id", "lang", "start"], if_not_exists=True)
        self.db["chunks"].create({
            "id": int, "recording_id": str, "idx": int, "start": float, "end": float,
            "text_fr": str, "text_en": str,
        }, pk="id", foreign_keys=[("recording_id", "recordings", "id")], if_not_exists=True)
        self.db["chunks"].create_index(["recording_id", "idx"], unique=True, if_not_exists=True)
        if version < 2:
            self._create_search()
        if version < 5:
            self._create_sentence_search()
        if version < 6:
            self._create_pairs()
        if version < 7:
            self._create_lengths()
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _create_sentence_search(self) -> None:
        """Full-text search over the sentences themselves (`segments`), for Datasette's search box
        there: an external-content table over `segments`, kept in step by triggers. The command line
        and the page search `chunks` (chunks_fts), with the facets beside the words."""
        columns = "text, text_en"
        statements = [
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {SENTENCES_FTS} USING fts5({columns}, content='segments', "
            f"content_rowid='rowid', tokenize='{FRENCH_TOKENIZER}')",
            f"CREATE TRIGGER IF NOT EXISTS segments_search_ai AFTER INSERT ON segments BEGIN "
            f"INSERT INTO {SENTENCES_FTS}(rowid, {columns}) VALUES (new.rowid, new.text, new.text_en); END",
            f"CREATE TRIGGER IF NOT EXISTS segments_search_ad AFTER DELETE ON segments BEGIN "
            f"INSERT INTO {SENTENCES_FTS}({SENTENCES_FTS}, rowid, {columns}) VALUES ('delete', old.rowid, old.text, "
            f"old.text_en); END",
            f"CREATE TRIGGER IF NOT EXISTS segments_search_au AFTER UPDATE ON segments BEGIN "
            f"INSERT INTO {SENTENCES_FTS}({SENTENCES_FTS}, rowid, {columns}) VALUES ('delete', old.rowid, old.text, "
            f"old.text_en); INSERT INTO {SENTENCES_FTS}(rowid, {columns}) VALUES (new.rowid, new.text, new.text_en); END",
            f"INSERT INTO {SENTENCES_FTS}({SENTENCES_FTS}) VALUES ('rebuild')",
        ]
        for statement in statements:
            self.db.execute(statement)

    def _table(self, name: str, columns: dict[str, type], **options: Any) -> dict[str, type]:
        """Create table `name`, or add the columns a later schema version brought; its columns before."""
        existing = self.db[name].columns_dict
        self.db[name].create(columns, if_not_exists=True, **options)
        for column, kind in columns.items():
            if existing and column not in existing:
                self.db[name].add_column(column, kind)
        return existing

    def _create_search(self) -> None:
        """Both full-text tables, over a view that gives each chunk its recording's facets.

        With the speakers, event and date indexed beside the text, a filter is one more term that
        FTS5 intersects with the words' lists, instead of a join checked on every match (a speaker
        filter on a common word took a second at 10,000 hours). Triggers keep both tables in step
        with `chunks`, and with `recordings` when a recording's facets change.
        """
        def facets(of: str = "") -> str:
            return ", ".join(f"{of}{f}" for f in FACETS)

        tables = SEARCH_TABLES.values()
        statements = [f"""CREATE VIEW chunk_texts AS
            SELECT c.id, c.text_fr, c.text_en, {facets("r.")}
            FROM chunks c JOIN recordings r ON r.id = c.recording_id"""]
        for fts, text, tokenizer in tables:
            statements.append(f"""CREATE VIRTUAL TABLE {fts} USING fts5({text}, {facets()},
                content='chunk_texts', content_rowid='id', tokenize='{tokenizer}')""")
        add = "; ".join(f"INSERT INTO {fts}(rowid, {text}, {facets()}) SELECT new.id, new.{text}, {facets('r.')} "
                        "FROM recordings r WHERE r.id = new.recording_id" for fts, text, _ in tables)
        remove = "; ".join(f"INSERT INTO {fts}({fts}, rowid, {text}, {facets()}) SELECT 'delete', old.id, "
                           f"old.{text}, {facets('r.')} FROM recordings r WHERE r.id = old.recording_id"
                           for fts, text, _ in tables)
        statements += [
            f"CREATE TRIGGER chunks_search_ai AFTER INSERT ON chunks BEGIN {add}; END",
            f"CREATE TRIGGER chunks_search_ad AFTER DELETE ON chunks BEGIN {remove}; END",
            f"CREATE TRIGGER chunks_search_au AFTER UPDATE ON chunks BEGIN {remove}; {add}; END",
        ]
        changed = " OR ".join(f"old.{f} IS NOT new.{f}" for f in FACETS)
        refacet = "; ".join(
            f"INSERT INTO {fts}({fts}, rowid, {text}, {facets()}) SELECT 'delete', c.id, c.{text}, {facets('old.')} "
            f"FROM chunks c WHERE c.recording_id = old.id; "
            f"INSERT INTO {fts}(rowid, {text}, {facets()}) SELECT c.id, c.{text}, {facets('new.')} "
            f"FROM chunks c WHERE c.recording_id = new.id"
            for fts, text, _ in tables)
        statements += [
            f"CREATE TRIGGER recordings_search_au AFTER UPDATE OF {facets()} ON recordings WHEN {changed} "
            f"BEGIN {refacet}; END",
            # The chunks go first, while the facets they were indexed with can still be read.
            "CREATE TRIGGER recordings_search_bd BEFORE DELETE ON recordings BEGIN "
            "DELETE FROM chunks WHERE recording_id = old.id; END",
        ]
        for statement in statements:
            self.db.execute(statement)
        for fts, _, _ in tables:
            self.db.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")

    def _create_pairs(self) -> None:
        """The word-pair tables (pairs.py), filled for the chunks already there. They hold no text
        (contentless) and no positions (detail=none: a pair is one token, only where it is matters).
        Triggers keep them in step with `chunks`, through a function of this program's connections
        that makes a text's pairs with FTS5's own tokenizer: another program cannot make them, and
        its writes to `chunks` fail, naming the function, instead of leaving the pairs behind."""
        self._table("paired_words", {"lang": str, "word": str}, pk=("lang", "word"))
        if not self.db.execute("SELECT 1 FROM paired_words LIMIT 1").fetchone():
            # Not sqlite-utils' insert_all: it commits, and the schema is made in one transaction.
            self.db.conn.executemany("INSERT INTO paired_words (lang, word) VALUES (?, ?)",
                                     [(lang, word) for lang, words in pairs.COMMON_WORDS.items() for word in words])
        for table in PAIRS_TABLES.values():
            self.db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(pairs, content='', "
                            f"detail='none', tokenize='{pairs.PAIRS_TOKENIZER}')")

        def write(row: str, command: str = "") -> str:
            statements = []
            for side, table in PAIRS_TABLES.items():
                columns, values = ("rowid, pairs", "") if not command else (f"{table}, rowid, pairs", f"'{command}', ")
                statements.append(f"INSERT INTO {table}({columns}) VALUES "
                                  f"({values}{row}.id, {PAIRS_FUNCTION}('{side}', {row}.text_{side}))")
            return "; ".join(statements)
        self.db.execute(f"CREATE TRIGGER IF NOT EXISTS chunks_pairs_ai AFTER INSERT ON chunks BEGIN {write('new')}; END")
        self.db.execute(f"CREATE TRIGGER IF NOT EXISTS chunks_pairs_ad AFTER DELETE ON chunks "
                        f"BEGIN {write('old', 'delete')}; END")
        self.db.execute(f"CREATE TRIGGER IF NOT EXISTS chunks_pairs_au AFTER UPDATE OF text_fr, text_en ON chunks "
                        f"BEGIN {write('old', 'delete')}; {write('new')}; END")
        self._fill_pairs()

    def _create_lengths(self) -> None:
        """The chunks' text lengths beside FTS5 (ranking.LENGTHS_TABLE), one column a side, filled
        for the chunks already there. Triggers mark a block stale (NULL) when a chunk of it is
        written, whoever writes it; this program's writes make their stale blocks again before they
        commit (`_refresh_lengths`), and a stale block is read from FTS5 meanwhile: never wrong."""
        table, block = ranking.LENGTHS_TABLE, ranking.LENGTH_BLOCK
        sides = ", ".join(f"{side} BLOB" for side in SEARCH_TABLES)
        stale = ", ".join(f"{side} = NULL" for side in SEARCH_TABLES)
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {table} (block INTEGER PRIMARY KEY, {sides})")
        self.db.execute(f"CREATE INDEX IF NOT EXISTS {table}_stale ON {table}(block) WHERE {STALE_LENGTHS} IS NULL")
        mark = (f"INSERT INTO {table}(block) VALUES (new.id / {block}) ON CONFLICT(block) DO UPDATE SET {stale}")
        self.db.execute(f"CREATE TRIGGER IF NOT EXISTS chunks_lengths_ai AFTER INSERT ON chunks BEGIN {mark}; END")
        self.db.execute(f"CREATE TRIGGER IF NOT EXISTS chunks_lengths_au AFTER UPDATE OF id, text_fr, text_en "
                        f"ON chunks BEGIN {mark}; END")
        self._remake_lengths()

    def _remake_lengths(self) -> None:
        """Every block of chunk lengths made again."""
        table = ranking.LENGTHS_TABLE
        self.db.execute(f"DELETE FROM {table}")
        self.db.execute(f"INSERT INTO {table}(block) SELECT DISTINCT id / {ranking.LENGTH_BLOCK} FROM chunks")
        self._refresh_lengths()

    def _refresh_lengths(self) -> None:
        """Make the stale blocks of chunk lengths again, from FTS5's own (ranking.block_lengths)."""
        table = ranking.LENGTHS_TABLE
        for (block,) in self.db.execute(f"SELECT block FROM {table} WHERE {STALE_LENGTHS} IS NULL").fetchall():
            self.db.execute(f"UPDATE {table} SET {', '.join(f'{side} = :{side}' for side in SEARCH_TABLES)} "
                            "WHERE block = :block",
                            {"block": block, **{side: ranking.block_lengths(ranking.text_lengths(self.db.conn, fts, block),
                                                                            block)
                                                for side, (fts, _, _) in SEARCH_TABLES.items()}})

    def lengths_in_step(self) -> str:
        """"ok", or which blocks of chunk lengths differ from FTS5's own for the chunks there (a stale
        block is not wrong: it is read from FTS5 until made again). Reads every block."""
        table = ranking.LENGTHS_TABLE

        def differs(value: object, fts: str, block: int) -> bool:
            if value is None:  # stale, not wrong
                return False
            kept = ranking.kept_block(value)
            lengths = ranking.text_lengths(self.db.conn, fts, block)
            expected = ranking.block_lengths(lengths, block)
            return kept is None or any(
                kept[at] != expected[at] for at in (rowid - block * ranking.LENGTH_BLOCK for rowid in lengths))
        wrong = [block for block, *kept in self.db.execute(f"SELECT block, {', '.join(SEARCH_TABLES)} FROM {table}")
                 if any(differs(lengths, fts, block) for lengths, (fts, _, _) in zip(kept, SEARCH_TABLES.values()))]
        if wrong:
            return (f"{table}: {len(wrong)} block(s) of chunk lengths differ from the full-text tables' "
                    f"(first: chunks {wrong[0] * ranking.LENGTH_BLOCK} to {(wrong[0] + 1) * ranking.LENGTH_BLOCK - 1}); "
                    f"`recording-index upgrade --pairs` makes them again")
        return "ok"

    def _fill_pairs(self) -> None:
        for side, table in PAIRS_TABLES.items():
            self._paired(side)  # read now: the function that makes pairs runs inside SQLite's statements
            self.db.execute(f"INSERT INTO {table}(rowid, pairs) SELECT id, {PAIRS_FUNCTION}('{side}', text_{side}) "
                            "FROM chunks")

    def _pairs_of(self, side: str, text: str | None) -> str:
        """A chunk text's word pairs, space-separated (the triggers' function)."""
        return pairs.pairs_of([text], SEARCH_TABLES[side][2], self._paired(side))[0] if text else ""

    def rebuild_pairs(self) -> None:
        """Make the word-pair tables and the chunk lengths again from the chunks (`recording-index
        upgrade --pairs`)."""
        with self.db.atomic():
            for table in PAIRS_TABLES.values():
                self.db.execute(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
            self._fill_pairs()
            self._remake_lengths()

    def pairs_in_step(self) -> str:
        """"ok", or which word-pair table differs from what the chunks' texts make, and how much:
        each pair's count of chunks, against the table's own (fts5vocab). Reads every chunk."""
        for side, table in PAIRS_TABLES.items():
            expected: dict[str, int] = {}
            last = 0
            while rows := self.db.execute(f"SELECT id, text_{side} FROM chunks WHERE id > ? ORDER BY id LIMIT 2000",
                                          [last]).fetchall():
                for made in pairs.pairs_of([row[1] for row in rows], SEARCH_TABLES[side][2], self._paired(side)):
                    for pair in set(made.split()):
                        expected[pair] = expected.get(pair, 0) + 1
                last = rows[-1][0]
            self.db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_counts USING fts5vocab(main, {table}, 'row')")
            found = dict(self.db.execute(f"SELECT term, doc FROM temp.{table}_counts").fetchall())
            if found != expected:
                wrong = sum(1 for pair in expected.keys() | found.keys() if expected.get(pair) != found.get(pair))
                return (f"{table}: {wrong} word pairs out of step with the chunks' text "
                        "(`recording-index upgrade --pairs` makes them again)")
        return "ok"

    def _paired(self, side: str) -> frozenset[str]:
        """The tokens of the common words this index pairs on one side (pairs.py)."""
        if side not in self._common:
            words = [row[0] for row in self.db.execute("SELECT word FROM paired_words WHERE lang = ?", [side])]
            self._common[side] = pairs.common_tokens(tuple(sorted(words)), SEARCH_TABLES[side][2])
        return self._common[side]

    def _drop_version_1_search(self) -> None:
        """Version 1 indexed the text alone (no facets); its tables are rebuilt from `chunks`."""
        for trigger in ("chunks_ai", "chunks_ad", "chunks_au", "chunks_en_ai", "chunks_en_ad", "chunks_en_au"):
            self.db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for fts, _, _ in SEARCH_TABLES.values():
            self.db.execute(f"DROP TABLE IF EXISTS {fts}")

    # --- writes ---------------------------------------------------------------------------------

    def stage_keys(self, recording: Recording) -> dict[str, str]:
        """The stage keys (stages.py) this recording's rows were made with; none when they were made
        from other audio, or are not there (never indexed, failed, or indexed by schema version 3)."""
        row = self.row(recording.id)
        if not (row and row["status"] == "indexed" and row["content_hash"] == recording.content_hash):
            return {}
        try:
            stored = json.loads(row["stage_keys"] or "{}")
        except ValueError:
            return {}
        return {k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(
            stored, dict) else {}

    def add(self, recording: Recording, segments: Iterable[Segment], chunks: Iterable[Chunk], *,
            engine: str = "", model: str = "", settings: dict[str, Any] | None = None,
            stage_keys: dict[str, str] | None = None, detected_language: str | None = None,
            translation_engine: str = "", translation_model: str = "", warning: str = "",
            corrections: Iterable[Correction] = ()) -> None:
        """Replace everything about `recording` in one transaction: all of it lands, or none. People's
        corrections stay; `corrections` (as the `correct` stage applied them) update their status."""
        segments, chunks = list(segments), list(chunks)
        row = {
            **_recording_row(recording),
            "engine": engine, "model": model, "settings": json.dumps(settings or {}, sort_keys=True),
            "stage_keys": json.dumps(stage_keys or {}, sort_keys=True), "detected_language": detected_language or "",
            "translation_engine": translation_engine, "translation_model": translation_model,
            "status": "indexed", "error": None, "warning": warning or None, "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._filter_shares_version = None  # this connection's own writes leave data_version as it was
        with self.db.atomic():
            self._delete_rows(recording.id)
            self.db["recordings"].upsert(row, pk="id")
            self.db["segments"].insert_all(
                ({"recording_id": recording.id, "idx": s.index, "start": s.start, "end": s.end, "text": s.text,
                  "text_en": s.text_en, "translation_engine": s.translation_engine,
                  "translation_model": s.translation_model, "avg_logprob": s.avg_logprob,
                  "no_speech_prob": s.no_speech_prob, "compression_ratio": s.compression_ratio,
                  **{name: getattr(s, name) for name in PROVENANCE_COLUMNS}}
                 for s in segments), batch_size=500)
            self.db["words"].insert_all(
                ({"recording_id": recording.id, "segment_idx": s.index, "idx": i, **asdict(w)}
                 for s in segments for i, w in enumerate(s.words)), batch_size=2000)
            self.db["chunks"].insert_all(
                ({"recording_id": recording.id, "idx": c.index, "start": c.start, "end": c.end,
                  "text_fr": c.text_fr, "text_en": c.text_en} for c in chunks), batch_size=500)
            self._refresh_lengths()
            for correction in corrections:  # what applying them found, beside what the person asked
                self.db.execute(
                    "UPDATE corrections SET status = ?, note = ?, machine_text = ?, machine_words = ? "
                    "WHERE id = ? AND recording_id = ? AND status IN ('new', 'applied', 'unfit')",
                    [correction.status, correction.note, correction.machine_text,
                     words_json(correction.machine_words), correction.id, recording.id])

    def record_failure(self, recording: Recording, error: str) -> None:
        """Note a failed attempt; rows of an earlier successful run stay searchable."""
        with self.db.atomic():
            row = self.row(recording.id)
            if row and row["status"] == "indexed":
                self.db["recordings"].update(recording.id, {"error": error})
            else:
                self.db["recordings"].upsert({**_recording_row(recording), "status": "failed", "error": error},
                                             pk="id")

    def corrections(self, recording_id: str) -> list[Correction]:
        """Every correction of a recording (reverted and replaced ones too), oldest first."""
        return [correction_from_row(row) for row in self.db.query(
            "SELECT * FROM corrections WHERE recording_id = ? ORDER BY id", [recording_id])]

    def add_corrections(self, corrections: Iterable[Correction], replaced: Iterable[int] = ()) -> list[int]:
        """Store new corrections (their ids are returned) in one transaction; the earlier ones they
        take in (`replaced`), and earlier English of the same sentences, are marked replaced, not deleted."""
        ids = []
        with self.db.atomic():
            for correction in corrections:
                row = {k: getattr(correction, k) for k in CORRECTION_COLUMNS if k not in ("id", "machine_words")}
                cursor = self.db["corrections"].insert({**row, "machine_words": words_json(correction.machine_words)})
                ids.append(cursor.last_pk)
                others = list(replaced) if correction.lang == "fr" else [r["id"] for r in self.db.query(
                    "SELECT id FROM corrections WHERE recording_id = ? AND lang = 'en' AND id != ? AND status IN "
                    "('new', 'applied', 'unfit') AND min([end], ?) - max(start, ?) > 0.5 * ([end] - start)",
                    [correction.recording_id, cursor.last_pk, correction.end, correction.start])]
                for other in others:
                    self.db.execute("UPDATE corrections SET status = 'replaced', note = ? WHERE id = ? AND "
                                    "recording_id = ?", [f"replaced by #{cursor.last_pk}", other, correction.recording_id])
        return ids

    def revert_corrections(self, recording_id: str, ids: Iterable[int]) -> list[int]:
        """Mark corrections reverted (kept, for the record): the next rebuild gives the machine's text back."""
        done = []
        with self.db.atomic():
            for correction_id in ids:
                cursor = self.db.execute("UPDATE corrections SET status = 'reverted', note = ? WHERE id = ? AND "
                                         "recording_id = ? AND status IN ('new', 'applied', 'unfit')",
                                         [f"reverted {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
                                          correction_id, recording_id])
                if cursor.rowcount:
                    done.append(correction_id)
        return done

    def _delete_rows(self, recording_id: str) -> None:
        for table in ("words", "segments", "chunks"):
            self.db.execute(f"DELETE FROM {table} WHERE recording_id = ?", [recording_id])

    # --- reads ----------------------------------------------------------------------------------

    def row(self, recording_id: str) -> dict[str, Any] | None:
        """The recordings table row of `recording_id`, or None."""
        rows = list(self.db.query("SELECT * FROM recordings WHERE id = ?", [recording_id]))
        return rows[0] if rows else None

    def list_recordings(self) -> list[dict[str, Any]]:
        """Every recording with its status, most recently indexed first."""
        rows = self.db.query(
            "SELECT id, title, speakers, event, date, duration, declared_duration, source, status, error, warning, "
            "engine, model, indexed_at FROM recordings ORDER BY indexed_at DESC, id")
        return [{**r, "speakers": json.loads(r["speakers"] or "[]")} for r in rows]

    def resolve_id(self, recording: str) -> str:
        """A recording id from an id or a source path/URL."""
        if self.row(recording):
            return recording
        candidates = {recording}
        if "://" not in recording:
            candidates.add(str(Path(recording).expanduser().resolve()))
        for candidate in candidates:
            rows = list(self.db.query("SELECT id FROM recordings WHERE source = ? OR media_path = ?",
                                      [candidate, candidate]))
            if rows:
                return rows[0]["id"]
        raise RecordingIndexError(f"{recording}: no such recording in {self.path} (see `recording-index list`)")

    def recording(self, recording: str) -> Recording:
        """A recording (by id or source), without its transcript."""
        row = self.row(self.resolve_id(recording))
        fields = Recording.__dataclass_fields__
        rec = Recording(**{k: v for k, v in row.items() if k in fields and v is not None})
        rec.speakers = json.loads(row["speakers"] or "[]")
        rec.vocabulary = json.loads(row.get("vocabulary") or "[]")
        return rec

    def get(self, recording: str) -> tuple[Recording, list[Segment]]:
        """A recording (by id or source) and its segments with their words."""
        rec = self.recording(recording)
        words: dict[int, list[Word]] = {}
        for w in self.db.query("SELECT segment_idx, start, end, text, probability, correction FROM words "
                               "WHERE recording_id = ? ORDER BY segment_idx, idx", [rec.id]):
            words.setdefault(w.pop("segment_idx"), []).append(Word(**w))
        segments = [
            Segment(index=s["idx"], start=s["start"], end=s["end"], text=s["text"], words=words.get(s["idx"], []),
                    text_en=s["text_en"], translation_engine=s["translation_engine"],
                    translation_model=s["translation_model"], avg_logprob=s["avg_logprob"],
                    no_speech_prob=s["no_speech_prob"], compression_ratio=s["compression_ratio"],
                    **{name: s[name] for name in PROVENANCE_COLUMNS if s[name] is not None})
            for s in self.db.query("SELECT * FROM segments WHERE recording_id = ? ORDER BY idx", [rec.id])
        ]
        return rec, segments

    def chunks(self, recording_id: str) -> list[Chunk]:
        return [Chunk(recording_id=r["recording_id"], index=r["idx"], start=r["start"], end=r["end"],
                      text_fr=r["text_fr"], text_en=r["text_en"])
                for r in self.db.query("SELECT * FROM chunks WHERE recording_id = ? ORDER BY idx", [recording_id])]

    def search(self, query: str, limit: int = 10, offset: int = 0, recording: str | None = None,
               speaker: str | None = None, event: str | None = None, lang: str = "any", date: str | None = None,
               marks: tuple[str, str] = (SNIPPET_OPEN, SNIPPET_CLOSE)) -> list[SearchHit]:
        """Chunks matching `query` as plain words (best bm25 first), with snippets and moment links.

        `lang` picks the side searched: French (`fr`), English (`en`) or both (`any`, each chunk once,
        on the side where it ranks best). Any text a person types is safe: FTS5 operators and stray
        quotes are searched as words. `speaker` and `event` match whole words of a name, the last
        word by its start; `date` matches from the year on ("2018", "2018-02", "2018-02-14").
        """
        prepared = self._matching(query, recording, speaker, event, lang, date)
        if prepared is None:
            return []
        sides, filters, params, phrases = prepared
        params["limit"] = limit + offset
        params["open"], params["close"] = marks
        best: dict[int, tuple[float, str]] = {}  # each chunk's best score, and its side
        shown_with: dict[str, tuple[dict[str, Any], list[str] | None]] = {}
        for side, words in sides.items():
            kept, side_params, walked = self._search_side(
                side, {**params, "words": words, "match": " AND ".join([words, *filters])}, phrases, filters)
            shown_with[side] = (side_params, walked)
            for rowid, score in kept.items():
                if rowid not in best or score < best[rowid][0]:
                    best[rowid] = (score, side)
        chosen = sorted(best.items(), key=lambda item: (item[1][0], -item[0]))[offset:offset + limit]
        rows = sorted((row for side, (side_params, walked) in shown_with.items()
                       for row in self._shown(side, {rowid: score for rowid, (score, of) in chosen if of == side},
                                              side_params, walked)), key=lambda r: (r["score"], -r["id"]))
        wanted = {fold(t) for t in TOKEN.findall(unicodedata.normalize("NFC", query))}
        hits = []
        for r in rows:
            moment, sentence = self._moment(r["recording_id"], r["start"], r["end"], wanted, r["lang"])
            hits.append(SearchHit(
                recording_id=r["recording_id"], title=r["title"] or r["recording_id"],
                speakers=json.loads(r["speakers"] or "[]"), event=r["event"] or "", chunk_index=r["idx"],
                start=r["start"], end=r["end"], moment=moment,
                text=r["text_fr"] if r["lang"] == "fr" else r["text_en"], snippet=r["snippet"],
                url=moment_url(r["source"], moment), score=-r["score"], lang=r["lang"],
                text_fr=r["text_fr"], text_en=r["text_en"] or "", sentence_fr=sentence.get("text") or "",
                sentence_en=sentence.get("text_en") or "", origin=sentence.get("origin") or "machine",
                origin_en=sentence.get("origin_en") or "machine", corrected_by=sentence.get("corrected_by"),
                corrected_at=sentence.get("corrected_at")))
        return hits

    def count(self, query: str, recording: str | None = None, speaker: str | None = None, event: str | None = None,
              lang: str = "any", date: str | None = None, cap: int = 1000) -> int:
        """How many chunks `search` would find for the same arguments, counted up to `cap` (a common
        word at 10,000 hours is in most chunks: "more than 1,000" says enough, and costs a few ms)."""
        prepared = self._matching(query, recording, speaker, event, lang, date)
        if prepared is None:
            return 0
        sides, filters, params, phrases = prepared
        found: set[int] = set()
        for side, words in sides.items():
            fts, _, tokenizer = SEARCH_TABLES[side]
            in_range = f" AND {fts}.rowid BETWEEN :low AND :high" if params["low"] is not None else ""
            _, pair_lists, _ = pairs.query_pairs(phrases, tokenizer, self._paired(side))
            within = self._within_pairs(side, pair_lists, in_range, params, cap) if any(pair_lists) else ""
            if within is None:
                continue
            found.update(row[0] for row in self.db.execute(
                f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match{in_range}{within} LIMIT :cap",
                {**params, "match": " AND ".join([words, *filters]), "cap": cap + 1}))
        return min(len(found), cap + 1)

    def _matching(self, query: str, recording: str | None, speaker: str | None, event: str | None, lang: str,
                  date: str | None) -> tuple[dict[str, str], list[str], dict[str, Any], list[list[str]]] | None:
        """What `search` and `count` ask FTS5: each side's words, the filters' terms, the range of a
        recording's chunks, and the phrases typed (each a list of words); None when nothing can match."""
        if lang not in LANGUAGES:
            raise RecordingIndexError(f"unknown search language {lang!r}: use one of {', '.join(LANGUAGES)}")
        # An accent typed apart from its letter (some keyboards and pastes do) stays in its word.
        query, speaker, event = (unicodedata.normalize("NFC", text) if text else text
                                 for text in (query, speaker, event))
        match = fts_query(query)
        if not match:
            return None
        filters = []
        for column, value in (("speakers", speaker), ("event", event), ("date", date)):
            if value:
                term = facet_query(value, column)
                if not term:
                    return None  # a filter with no word in it names nothing that can match
                # Whole words when some recording has them (an FTS5 prefix query merges the lists
                # of every word with that start: a few ms a query), else the last word as a start.
                fts = SEARCH_TABLES["fr"][0]  # both tables index the same facets
                if column != "date" and not self.db.execute(
                        f"SELECT 1 FROM {fts} WHERE {fts} MATCH ? LIMIT 1", [term]).fetchone():
                    term = facet_query(value, column, by_start=True)
                filters.append(term)
        params: dict[str, Any] = {"low": None, "high": None}
        if recording:
            # A recording's chunks are written in one transaction, so their ids are one range.
            params["low"], params["high"] = self.db.execute(
                "SELECT min(id), max(id) FROM chunks WHERE recording_id = ?", [self.resolve_id(recording)]).fetchone()
            if params["low"] is None:
                return None
        sides = {side: f"{SEARCH_TABLES[side][1]} : ({match})" for side in (("fr", "en") if lang == "any" else (lang,))}
        return sides, filters, params, query_phrases(query)

    def _search_side(self, side: str, params: dict[str, Any], phrases: list[list[str]], filters: list[str]
                     ) -> tuple[dict[int, float], dict[str, Any], list[str] | None]:
        """The best chunks of one language side with their scores, and what `_shown` needs to show
        them: the parameters (`words`, the words snippets mark), and the words FTS5 may walk.

        The matches are listed once, filters included, and scored as they are listed (ranking.py).
        Up to RANKING_WINDOW of them are ranked by BM25; more, and the query is too common to rank:
        the newest come first (score 0). `filters`: the filters' terms, after the words.
        """
        fts, text, _ = SEARCH_TABLES[side]
        in_range = f" AND {fts}.rowid BETWEEN :low AND :high" if params["low"] is not None else ""
        if self._ranked is None:
            self._ranked = ranking.usable(self.db.conn, fts)
        walked: list[str] | None = None
        if self._ranked:
            kept, words, walked = self._ranked_matches(side, in_range, params, phrases, filters)
            params = {**params, "words": words or params["words"]}
        else:
            kept = self._bm25_ranked(fts, in_range, params)
        return kept, params, walked

    def _shown(self, side: str, kept: dict[int, float], params: dict[str, Any], walked: list[str] | None
               ) -> list[dict[str, Any]]:
        """The rows of the `kept` chunks of one side, scored, with their snippets: made for the hits
        shown alone, after both sides are merged (a snippet reads and tokenizes its whole chunk)."""
        if not kept:
            return []
        fts = SEARCH_TABLES[side][0]
        shown = self._rows(f"""
            SELECT c.id, c.recording_id, c.idx, c.start, c.end, c.text_fr, c.text_en, r.title, r.speakers,
                   r.event, r.source, '{side}' AS lang, snippet({fts}, 0, :open, :close, '…', 16) AS snippet
            FROM {fts} JOIN chunks c ON c.id = {fts}.rowid JOIN recordings r ON r.id = c.recording_id
            WHERE {fts} MATCH :words{self._among(side, sorted(kept), walked)}""", params)
        # A run may have replaced a chunk since it was listed: then it is simply not shown.
        return [{**row, "score": kept[row["id"]]} for row in shown]

    def _ranked_matches(self, side: str, in_range: str, params: dict[str, Any], phrases: list[list[str]],
                        filters: list[str]) -> tuple[dict[int, float], str | None, list[str] | None]:
        """The best matches, scored by ranked_bm25() (ranking.py) as they are listed, oldest first:
        FTS5 reads its lists in that order (a phrase of a common word lists in two thirds of the
        time backwards takes), and when all fit in the window, order is moot.

        A phrase with a common word is looked for only in the chunks that hold all its word pairs
        (pairs.py), when they are at most RANKING_WINDOW: FTS5 then checks the query in each of
        them instead of walking the common word's list through the whole archive. When the pairs
        are the phrases (two words each), snippets mark each phrase's other word (FTS5 seeks a common
        word's list slowly, and once for each chunk); without filters, the chunks holding the pairs
        are the matches, each scored as saying each phrase once (ranking.said_once); with filters,
        a chunk is checked by the other words and scored by their frequency.

        Returns the kept matches with their scores; the words snippets mark when they are not the
        query's own (else None); and the words whose lists FTS5 may walk to reach chunks of them
        (None when the query holds a phrase checked whole in its pairs' candidates).
        """
        fts, text, tokenizer = SEARCH_TABLES[side]

        def newest() -> dict[int, float]:
            return dict.fromkeys((row[0] for row in self.db.execute(
                f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match{in_range} ORDER BY rowid DESC LIMIT :limit",
                params)), 0.0)

        phrases, pair_lists, others = pairs.query_pairs(phrases, tokenizer, self._paired(side))
        alone = not filters and params["low"] is None and len(phrases) == 1
        span, words, match = "", None, params["match"]
        walked = None if any(pair_lists) else list(dict.fromkeys(word for phrase in phrases for word in phrase))
        if any(pair_lists):
            candidates = self._holding_pairs(side, pair_lists, in_range, params, RANKING_WINDOW + 1)
            if not candidates:
                return {}, None, None
            if others:
                words, walked = f"{text} : ({fts_query(' '.join(others))})", others
            if others and not filters:
                # Two-word phrases and nothing else: the chunks holding their pairs are the matches.
                if len(candidates) > RANKING_WINDOW:  # too many to rank: the newest first
                    return dict.fromkeys(self._holding_pairs(side, pair_lists, in_range, params, params["limit"],
                                                             newest_first=True), 0.0), words, others
                # Scored without FTS5 reading the other words' lists (a middling word's holds tens of
                # thousands of chunks: checking 655 candidates in one took 22 ms at 10,000 hours).
                holding = ([len(candidates)] if alone else
                           ranking.phrases_holding(self.db.conn, fts, text, phrases, PAIRS_TABLES[side], pair_lists,
                                                   ranking.bounds_of(self.db.conn)))
                scores = ranking.said_once(self.db.conn, fts, candidates, holding, lengths_column=side)
                return dict(sorted(scores.items(), key=lambda item: (item[1], -item[0]))[:params["limit"]]), words, others
            if len(candidates) <= RANKING_WINDOW:
                match = " AND ".join([words, *filters]) if others else match
                # Checked by the other words alone, FTS5 walks their lists rather than seek them
                # for each candidate when that reads less (a middling word is in a few thousand).
                span = self._among(side, candidates, others)
        ranked = ranking.arguments(self.db.conn, fts, text, len(FACETS), phrases, PAIRS_TABLES[side], pair_lists,
                                   len(filters), alone, lengths_column=side)
        if not any(pair_lists) and all(len(phrase) == 1 for phrase in phrases) and (
                alone or ranking.expected_matches(self.db.conn, fts, ranked, filters,
                                                  self._known_filter_shares()) > RANKING_WINDOW * 3 / 4):
            # Words' lists are cheap to walk twice: count first, and score only what will be ranked
            # (scoring a common word's first thousand matches to show ten costs 3 ms). Words and
            # filters expected in a few hundred chunks are scored at once: the listing would walk
            # the same lists (half of such a search).
            listed = [row[0] for row in self.db.execute(
                f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match{in_range} ORDER BY rowid LIMIT :window",
                {**params, "window": RANKING_WINDOW + 1})]
            if len(listed) > RANKING_WINDOW or not listed:
                return (newest() if listed else {}), None, walked
            span = f" AND {fts}.rowid BETWEEN {listed[0]} AND {listed[-1]}"
        names = {f"a{n}": value for n, value in enumerate(ranked.values)}
        scored = self.db.execute(
            f"SELECT rowid, ranked_bm25({fts}, {', '.join(':' + name for name in names)}) FROM {fts} "
            f"WHERE {fts} MATCH :scored{in_range}{span} ORDER BY rowid LIMIT :window",
            {**params, **names, "scored": match, "window": RANKING_WINDOW + 1}).fetchall()
        if len(scored) > RANKING_WINDOW:
            return newest(), None, walked
        # One phrase alone: the listing has every row that holds it, hence its IDF.
        scale = ranking.idf(ranked.stats.rows, len(scored)) if alone and ranked.stats else 1.0
        best = sorted(scored, key=lambda row: (row[1], -row[0]))[:params["limit"]]
        return {rowid: score * scale for rowid, score in best}, words, walked

    def _known_filter_shares(self) -> dict[str, float]:
        """The filters' shares counted while the database has not changed since (ranking.expected_matches)."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._filter_shares_version:
            self._filter_shares, self._filter_shares_version = {}, version
        return self._filter_shares

    def _among(self, side: str, rowids: list[int], walked: list[str] | None) -> str:
        """A condition keeping a MATCH on the side's full-text table to `rowids` (sorted). FTS5 seeks
        each of them in the match's lists; or, where the shortest list of the match's words `walked`
        is short enough between the first and the last (a common word's is, over the ten newest
        chunks), it walks the lists and SQLite keeps the rows (the unary + keeps the IN list from
        FTS5, which would seek each)."""
        listed = ", ".join(map(str, rowids))
        fts = SEARCH_TABLES[side][0]
        if walked and ranking.cheaper_to_walk(self.db.conn, fts, [f'"{word}"' for word in walked], rowids,
                                              ranking.bounds_of(self.db.conn)):
            return f" AND {fts}.rowid BETWEEN {rowids[0]} AND {rowids[-1]} AND +{fts}.rowid IN ({listed})"
        return f" AND {fts}.rowid IN ({listed})"

    def _within_pairs(self, side: str, pair_lists: list[list[str]], in_range: str, params: dict[str, Any],
                      most: int) -> str | None:
        """A condition keeping a query's matches to the chunks that hold all the pairs of its phrases
        when they are at most `most` ("" when more: the phrases are common, and FTS5 walks its
        lists as usual); None when no chunk holds them."""
        candidates = self._holding_pairs(side, pair_lists, in_range, params, most + 1)
        if not candidates:
            return None
        return self._among(side, candidates, None) if len(candidates) <= most else ""

    def _holding_pairs(self, side: str, pair_lists: list[list[str]], in_range: str, params: dict[str, Any],
                       most: int, newest_first: bool = False) -> list[int]:
        """Up to `most` chunks (oldest first, or newest) holding every pair of `pair_lists`, within
        the recording's range `in_range` if any (written for the side's full-text table)."""
        table = PAIRS_TABLES[side]
        return [row[0] for row in self.db.execute(
            f"SELECT rowid FROM {table} WHERE {table} MATCH :pairs{in_range.replace(SEARCH_TABLES[side][0], table)} "
            f"ORDER BY rowid{' DESC' if newest_first else ''} LIMIT :most",
            {**params, "pairs": pairs.match(p for found in pair_lists for p in found), "most": most})]

    def _bm25_ranked(self, fts: str, in_range: str, params: dict[str, Any]) -> dict[int, float]:
        """The best matches by FTS5's bm25(), without the compiled ranking: listed first, newest
        back (FTS5 stops early), and ranked only when RANKING_WINDOW or fewer, since bm25() counts
        every chunk holding each term of the query before it scores one."""
        newest = [row[0] for row in self.db.execute(
            f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match{in_range} ORDER BY rowid DESC LIMIT :window",
            {**params, "window": RANKING_WINDOW + 1})]
        if len(newest) > RANKING_WINDOW or not newest:
            return dict.fromkeys(newest[:params["limit"]], 0.0)
        # Facet columns weigh nothing: a filter selects, it does not rank.
        return dict(self.db.execute(f"""
            SELECT rowid, bm25({fts}, 1.0{", 0.0" * len(FACETS)}) AS score FROM {fts}
            WHERE {fts} MATCH :match AND rowid BETWEEN :first AND :last
            ORDER BY score, rowid DESC LIMIT :limit""", {**params, "first": newest[-1], "last": newest[0]}))

    def _rows(self, sql: str, params: Any) -> list[dict[str, Any]]:
        """Rows as dicts, read in one statement: `db.query` wraps each read in a savepoint (three)."""
        cursor = self.db.execute(sql, params)
        keys = [column[0] for column in cursor.description]
        return [dict(zip(keys, row)) for row in cursor]

    def _moment(self, recording_id: str, start: float, end: float, wanted: set[str],
                lang: str = "fr") -> tuple[float, dict[str, Any]]:
        """When the first matched word is spoken inside a chunk (a better jump target than its start),
        and the segment (a sentence) that holds it, with its French and English.

        English has no word times: there, the start of the first segment whose English matches.
        """
        sentences = self._rows("SELECT idx, start, text, text_en, origin, origin_en, corrected_by, corrected_at "
                               "FROM segments WHERE recording_id = ? AND start >= ? "
                               "AND start <= ? ORDER BY start", [recording_id, start, end])
        if lang == "en":
            best: tuple[int, dict[str, Any], int] | None = None  # terms matched, sentence, where
            for row in sentences:
                tokens = list(TOKEN.finditer(row["text_en"] or ""))
                at = _best_run([fold(t.group()) for t in tokens], wanted, stem_match)
                if at and (best is None or at[0] > best[0]):
                    best = (at[0], row, tokens[at[1]].start())
            if best is None:
                return start, sentences[0] if sentences else {}
            _, row, position = best
            return self._into_sentence(recording_id, row, position / max(1, len(row["text_en"]))), row
        rows = self._rows("SELECT start, text, segment_idx FROM words WHERE recording_id = ? AND start >= ? "
                          "AND start <= ? ORDER BY start", [recording_id, start, end])
        by_index = {row["idx"]: row for row in sentences}
        by_sentence: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            by_sentence.setdefault(row["segment_idx"], []).append(row)
        found: tuple[int, float, Any] | None = None  # terms matched, moment, sentence
        for index, words in by_sentence.items():
            folded = [{fold(t) for t in TOKEN.findall(w["text"])} for w in words]
            at = _best_run(folded, wanted, lambda word, terms: bool(word & terms))
            if at and (found is None or at[0] > found[0]):
                found = (at[0], words[at[1]]["start"], index)
        if found is None:
            return start, sentences[0] if sentences else {}
        return found[1], by_index.get(found[2], {})

    def _into_sentence(self, recording_id: str, sentence: dict[str, Any], share: float) -> float:
        """When the French words are spoken that stand as far into the sentence as `share` (0 to 1) of
        its English: English has no word times, and a sentence's two languages run roughly in step."""
        words = self._rows("SELECT start, text FROM words WHERE recording_id = ? AND segment_idx = ? ORDER BY idx",
                           [recording_id, sentence["idx"]])
        total = sum(len(w["text"]) for w in words)
        at = 0
        for word in words:
            if total and at / total >= share:
                return word["start"]
            at += len(word["text"])
        return words[-1]["start"] if words else sentence["start"]

    def merge_search_segments(self, most: int = MOST_SEARCH_SEGMENTS) -> list[str]:
        """Merge the full-text tables whose index has piled up more than `most` segments into one
        (FTS5's 'optimize'), and name them. Each write adds a segment and FTS5 merges them only
        now and then, so a grown archive has a dozen, and every search reads a term's list in each:
        at 10,000 hours one segment halves the median search (BENCHMARKS.md). The price is a
        rewrite of the table (seconds at 1,000 hours, 25 s at 10,000), paid every few runs."""
        merged = []
        for fts in [fts for fts, _, _ in SEARCH_TABLES.values()] + [SENTENCES_FTS, *PAIRS_TABLES.values()]:
            if self.db.execute(f"SELECT count(DISTINCT segid) FROM {fts}_idx").fetchone()[0] > most:
                with self.db.atomic():
                    self.db.execute(f"INSERT INTO {fts}({fts}) VALUES ('optimize')")
                merged.append(fts)
        return merged

    def integrity_check(self) -> str:
        """"ok", or what is wrong: SQLite's own check, then the full-text tables against their text,
        the word pairs' tables against themselves and against the chunks' text."""
        result = self.db.execute("PRAGMA integrity_check").fetchone()[0]
        checks = [(fts, ", rank", ", 1") for fts in [fts for fts, _, _ in SEARCH_TABLES.values()] + [SENTENCES_FTS]]
        checks += [(table, "", "") for table in PAIRS_TABLES.values()]
        for fts, rank, against_text in checks if result == "ok" else ():
            try:
                self.db.execute(f"INSERT INTO {fts}({fts}{rank}) VALUES ('integrity-check'{against_text})")
            except sqlite3.DatabaseError as exc:
                return f"{fts}: {exc}"
        if result != "ok":
            return result
        result = self.pairs_in_step()
        return self.lengths_in_step() if result == "ok" else result


def _out_of_space(path: Path, exc: sqlite3.DatabaseError) -> bool:
    """SQLite says "disk I/O error" when even its shared-memory file cannot be grown: look at the disk."""
    if "full" in str(exc):
        return True
    try:
        return "disk I/O" in str(exc) and shutil.disk_usage(path.parent).free < 1024**2
    except OSError:
        return False


def _database_problem(exc: sqlite3.DatabaseError, readonly: bool) -> str:
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


def words_json(words: Iterable[Word]) -> str:
    return json.dumps([[w.start, w.end, w.text, w.probability] for w in words], ensure_ascii=False)


def _best_run(tokens: list, wanted: set[str], matches) -> tuple[int, int] | None:
    """Where in a sentence's tokens the searched words are: (how many distinct searched words the
    sentence holds, the position of the match that starts the window holding most of them). A
    sentence with all the words beats one with a common word alone ("the", "du")."""
    hits = [(i, {w for w in wanted if matches(token, {w})}) for i, token in enumerate(tokens)]
    hits = [(i, terms) for i, terms in hits if terms]
    if not hits:
        return None
    total = len(set().union(*(terms for _, terms in hits)))
    span = len(wanted) + 2  # the words of a phrase, and a little room
    best = max(hits, key=lambda hit: (len(set().union(*(t for j, t in hits if hit[0] <= j < hit[0] + span))), -hit[0]))
    return total, best[0]


def correction_from_row(row: dict[str, Any]) -> Correction:
    try:
        words = [Word(float(a), float(b), str(c), float(d)) for a, b, c, d in json.loads(row["machine_words"] or "[]")]
    except (ValueError, TypeError):
        words = []  # written by hand, or damaged: the machine's words of this stretch are not known
    return Correction(**{k: row[k] for k in CORRECTION_COLUMNS if k != "machine_words" and row[k] is not None},
                      machine_words=words)


def _recording_row(recording: Recording) -> dict[str, Any]:
    row = asdict(recording)
    del row["pick"]  # how a catalog chose it from a page, not a fact about the recording
    for name in OPTIONAL_TEXT:  # not known is NULL, not "" (Datasette, SQL and JSON tell them apart)
        row[name] = row[name] or None
    # A URL's user name and password were for fetching it; they are never stored (nor shown).
    return {**row, "source": redact_url(recording.source), "speakers": json.dumps(recording.speakers, ensure_ascii=False),
            "vocabulary": json.dumps(recording.vocabulary, ensure_ascii=False)}
