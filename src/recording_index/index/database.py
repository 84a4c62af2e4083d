"""The SQLite index: opening one (checked first), one-transaction writes per recording, reads.

The database is plain sqlite-utils tables and full-text tables (schema.py): it opens, searches and
edits in the sqlite3 shell, sqlite-utils and Datasette as it is. Searching is search.py.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable


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

from recording_index.errors import DiskFullError, RecordingIndexError  # noqa: E402
from recording_index.index import schema, search as searching  # noqa: E402
from recording_index.index.schema import (CORRECTION_COLUMNS, FACETS, FTS_TABLES, OPTIONAL_TEXT,  # noqa: E402
                                          PROVENANCE_COLUMNS, SCHEMA_VERSION)
from recording_index.index.search import SNIPPET_CLOSE, SNIPPET_OPEN  # noqa: E402
from recording_index.models import Chunk, Correction, Recording, SearchHit, Segment, Word  # noqa: E402
from recording_index.safety import redact_url  # noqa: E402

# More segments than this in a full-text index, and a run that wrote merges them (merge_search_segments).
MOST_SEARCH_SEGMENTS = 4


class Index:
    """A recording index in one SQLite file: `add` a recording's results, `search`, `get`."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False):
        """Open the index at `path`: `readonly` for reading alone (every read command: nothing is
        ever written, not even a journal mode); else for writing, created unless `create` is False,
        and upgraded in place when its schema is older. A file that is no index, or not as this
        program makes one, is refused untouched, before any query runs on it."""
        self.path, self.readonly = Path(path), readonly
        if (readonly or not create) and not self.path.is_file():
            raise RecordingIndexError(f"{self.path}: no index here yet (run `recording-index run` first)")
        try:
            # Told apart through an immutable connection first, which neither writes nor even
            # checkpoints: another program's database is refused exactly as it was.
            version = schema.checked_version(self.path) if self.path.is_file() else 0
            if readonly:
                if version != SCHEMA_VERSION:
                    upgrade = ("; `recording-index upgrade` upgrades it" if 0 < version < SCHEMA_VERSION else "")
                    raise RecordingIndexError(f"{self.path}: index schema version {version}, not {SCHEMA_VERSION}{upgrade}")
                self.db = sqlite_utils.Database(self._connect_readonly())
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(self.path)
            self.db.execute("PRAGMA busy_timeout = 10000")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "db"):
                self.db.close()
            error = DiskFullError if schema.out_of_space(self.path, exc) else RecordingIndexError
            raise error(f"{self.path}: {schema.database_problem(exc, readonly)}") from None
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
                conn.execute("PRAGMA mmap_size = 2147418112")  # B-tree lookups a third faster
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if "unable to open" not in str(exc) or "immutable" in mode:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _enable_wal(self) -> None:
        """WAL mode (readers never wait for a run). SQLite answers "locked" at once, without waiting,
        while another task opening the same new index changes the journal mode: then look again."""
        for _ in range(100):
            try:
                self.db.enable_wal()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                time.sleep(0.05)
        self.db.enable_wal()

    def _ensure_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RecordingIndexError(
                f"{self.path}: index schema version {version} is newer than this program's ({SCHEMA_VERSION}); upgrade it")
        if version == SCHEMA_VERSION:
            return
        self._enable_wal()
        # Several tasks may open a new index at once: the write lock first, then look again.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                if version or self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'recordings'").fetchone():
                    schema.safe_to_upgrade(self.db.conn, self.path)  # again, under the write lock
                    schema.upgrade(self.db.conn, version)
                else:
                    schema.create(self.db.conn)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                schema.refuse_unexpected(self.db.conn, self.path)  # what is committed is what readers accept
            self.db.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise

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
            facets = {name: row[name] for name in FACETS}  # a chunk carries its recording's, for filters
            self.db["chunks"].insert_all(
                ({"recording_id": recording.id, "idx": c.index, "start": c.start, "end": c.end,
                  "text_fr": c.text_fr, "text_en": c.text_en, **facets} for c in chunks), batch_size=500)
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
                self.db["recordings"].upsert({**_recording_row(recording), "status": "failed", "error": error,
                                              "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                             pk="id")  # when it was last tried

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

    # --- reads ---------------------------------------------------------------------------------

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
        """A recording id from an id, a source path or URL, the start of one id (`actualites` for
        `actualites-24ddd432`), or a media file's name (`actualites.mp3`), when one recording has it."""
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
        escaped = recording.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for condition, value in (("id LIKE ? ESCAPE '\\'", f"{escaped}%"),
                                 ("source LIKE ? ESCAPE '\\' OR media_path LIKE ? ESCAPE '\\'", f"%/{escaped}")):
            found = [row[0] for row in self.db.execute(
                f"SELECT id FROM recordings WHERE {condition} LIMIT 3", [value] * condition.count("?"))]
            if len(found) == 1:
                return found[0]
            if found:
                raise RecordingIndexError(f"{recording}: names several recordings ({', '.join(found[:2])}"
                                         f"{'…' if len(found) > 2 else ''}); give more of the id")
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
        def work() -> list[SearchHit]:
            found = self._matching(query, recording, speaker, event, lang, date)
            return searching.search(self.db.conn, found, limit, offset, marks) if found else []
        return self._snapshot(work)

    def count(self, query: str, recording: str | None = None, speaker: str | None = None, event: str | None = None,
              lang: str = "any", date: str | None = None, cap: int = 1000) -> int:
        """How many chunks `search` would find for the same arguments, counted up to `cap` (a common
        word at 10,000 hours is in most chunks: "more than 1,000" says enough, and costs a few ms)."""
        def work() -> int:
            found = self._matching(query, recording, speaker, event, lang, date)
            return searching.count(self.db.conn, found, cap) if found else 0
        return self._snapshot(work)

    def _snapshot(self, work: Callable[[], Any]) -> Any:
        """`work` in one read transaction, so that a search sees the archive as it was at one moment
        while a run writes; tried once more when FTS5 could not open its table meanwhile (SQLite
        says "vtable constructor failed" when a writer holds what it reads at that instant)."""
        conn = self.db.conn
        for attempt in (1, 2):
            began = not conn.in_transaction
            if began:
                conn.execute("BEGIN")
            try:
                return work()
            except sqlite3.OperationalError as exc:
                if attempt == 2 or "vtable constructor failed" not in str(exc):
                    raise
            finally:
                if began and conn.in_transaction:
                    conn.execute("COMMIT")
        raise AssertionError("unreachable")

    def _matching(self, query: str, recording: str | None, speaker: str | None, event: str | None, lang: str,
                  date: str | None) -> searching.Matching | None:
        recording_id = self.resolve_id(recording) if recording else None
        chunk_range = self.db.execute("SELECT min(id), max(id) FROM chunks WHERE recording_id = ?",
                                      [recording_id]).fetchone() if recording else None
        return searching.matching(self.db.conn, query, chunk_range, speaker, event, lang, date, recording_id)

    def merge_search_segments(self, most: int = MOST_SEARCH_SEGMENTS) -> list[str]:
        """Merge the full-text tables whose index has piled up more than `most` segments into one
        (FTS5's 'optimize'), and name them. Each write adds a segment and FTS5 merges them only
        now and then, so a grown archive has a dozen, and every search reads a term's list in each:
        at 10,000 hours one segment halves the median search (bench/history.md). The price is a
        rewrite of the table (seconds at 1,000 hours, 25 s at 10,000), paid every few runs."""
        merged = []
        for fts in FTS_TABLES:
            if self.db.execute(f"SELECT count(DISTINCT segid) FROM [{fts}_idx]").fetchone()[0] > most:
                with self.db.atomic():
                    self.db.execute(f"INSERT INTO [{fts}]([{fts}]) VALUES ('optimize')")
                merged.append(fts)
        return merged

    def integrity_check(self) -> str:
        """"ok", or what is wrong: SQLite's own check, then each full-text table against its text
        (FTS5's 'integrity-check', which reads alone but is asked as a write: on a read-only index,
        through a connection of its own that writes nothing)."""
        result = self.db.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            return result
        conn = self.db.conn
        if self.readonly:
            try:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True)
            except sqlite3.OperationalError:
                return "ok (read-only storage: the full-text tables were not compared with their text)"
        try:
            for fts in FTS_TABLES:
                try:
                    conn.execute(f"INSERT INTO [{fts}]([{fts}], rank) VALUES ('integrity-check', 1)")
                except sqlite3.DatabaseError as exc:
                    return f"{fts}: {exc} (made again from its text by: INSERT INTO {fts}({fts}) VALUES('rebuild'))"
        finally:
            if conn is not self.db.conn:
                conn.close()
        return "ok"


def words_json(words: Iterable[Word]) -> str:
    return json.dumps([[w.start, w.end, w.text, w.probability] for w in words], ensure_ascii=False)


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
