"""The SQLite index: schema, one-transaction writes per recording, and ranked full-text search.

The database is plain sqlite-utils tables, so it opens in Datasette as it is.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import sqlite_utils

from .errors import RecordingIndexError
from .models import Chunk, Recording, SearchHit, Segment, Word
from .sources import moment_url

SCHEMA_VERSION = 1
# Accent-insensitive French: "équipe" matches "equipe" and the other way round.
FRENCH_TOKENIZER = "unicode61 remove_diacritics 2"
SNIPPET_OPEN, SNIPPET_CLOSE = "**", "**"


class Index:
    """A recording index in one SQLite file: `add` a recording's results, `search`, `get`."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise RecordingIndexError(f"{self.path}: no index here yet (run `recording-index run` first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        self.db.execute("PRAGMA busy_timeout = 10000")
        self._ensure_schema()

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
        with self.db.atomic():
            self.db["recordings"].create({
                "id": str, "title": str, "speakers": str, "event": str, "date": str, "language": str,
                "source": str, "media_path": str, "duration": float, "content_hash": str,
                "engine": str, "model": str, "settings": str, "fingerprint": str,
                "detected_language": str, "status": str, "error": str, "indexed_at": str,
            }, pk="id", if_not_exists=True)
            self.db["segments"].create({
                "recording_id": str, "idx": int, "start": float, "end": float, "text": str,
                "text_en": str, "translation_engine": str, "avg_logprob": float,
                "no_speech_prob": float, "compression_ratio": float,
            }, pk=("recording_id", "idx"), foreign_keys=[("recording_id", "recordings", "id")], if_not_exists=True)
            self.db["words"].create({
                "recording_id": str, "segment_idx": int, "idx": int, "start": float, "end": float,
                "text": str, "probability": float,
            }, pk=("recording_id", "segment_idx", "idx"), foreign_keys=[("recording_id", "recordings", "id")],
                if_not_exists=True)
            self.db["chunks"].create({
                "id": int, "recording_id": str, "idx": int, "start": float, "end": float,
                "text_fr": str, "text_en": str,
            }, pk="id", foreign_keys=[("recording_id", "recordings", "id")], if_not_exists=True)
            self.db["chunks"].create_index(["recording_id", "idx"], unique=True, if_not_exists=True)
            if not self.db["chunks_fts"].exists():
                self.db["chunks"].enable_fts(["text_fr"], tokenize=FRENCH_TOKENIZER, create_triggers=True)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- writes ---------------------------------------------------------------------------------

    def is_current(self, recording: Recording, fingerprint: str) -> bool:
        """True when this recording's audio was indexed with these settings already."""
        row = self._row(recording.id)
        return bool(row and row["status"] == "indexed" and row["content_hash"] == recording.content_hash
                    and row["fingerprint"] == fingerprint)

    def add(self, recording: Recording, segments: Iterable[Segment], chunks: Iterable[Chunk], *,
            engine: str = "", model: str = "", settings: dict[str, Any] | None = None,
            fingerprint: str = "", detected_language: str | None = None) -> None:
        """Replace everything about `recording` in one transaction: all of it lands, or none."""
        segments, chunks = list(segments), list(chunks)
        row = {
            **asdict(recording), "speakers": json.dumps(recording.speakers, ensure_ascii=False),
            "engine": engine, "model": model, "settings": json.dumps(settings or {}, sort_keys=True),
            "fingerprint": fingerprint, "detected_language": detected_language or "",
            "status": "indexed", "error": "", "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with self.db.atomic():
            self._delete_rows(recording.id)
            self.db["recordings"].upsert(row, pk="id")
            self.db["segments"].insert_all(
                ({"recording_id": recording.id, "idx": s.index, "start": s.start, "end": s.end, "text": s.text,
                  "text_en": s.text_en, "translation_engine": s.translation_engine, "avg_logprob": s.avg_logprob,
                  "no_speech_prob": s.no_speech_prob, "compression_ratio": s.compression_ratio}
                 for s in segments), batch_size=500)
            self.db["words"].insert_all(
                ({"recording_id": recording.id, "segment_idx": s.index, "idx": i, **asdict(w)}
                 for s in segments for i, w in enumerate(s.words)), batch_size=2000)
            self.db["chunks"].insert_all(
                ({"recording_id": recording.id, "idx": c.index, "start": c.start, "end": c.end,
                  "text_fr": c.text_fr, "text_en": c.text_en} for c in chunks), batch_size=500)

    def record_failure(self, recording: Recording, error: str) -> None:
        """Note a failed attempt; rows of an earlier successful run stay searchable."""
        with self.db.atomic():
            row = self._row(recording.id)
            if row and row["status"] == "indexed":
                self.db["recordings"].update(recording.id, {"error": error})
            else:
                self.db["recordings"].upsert({
                    **asdict(recording), "speakers": json.dumps(recording.speakers, ensure_ascii=False),
                    "status": "failed", "error": error}, pk="id")

    def _delete_rows(self, recording_id: str) -> None:
        for table in ("words", "segments", "chunks"):
            self.db.execute(f"DELETE FROM {table} WHERE recording_id = ?", [recording_id])

    # --- reads ----------------------------------------------------------------------------------

    def _row(self, recording_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM recordings WHERE id = ?", [recording_id]))
        return rows[0] if rows else None

    def list(self) -> list[dict[str, Any]]:
        """Every recording with its status, most recently indexed first."""
        rows = self.db.query(
            "SELECT id, title, speakers, event, date, duration, source, status, error, engine, model, "
            "indexed_at FROM recordings ORDER BY indexed_at DESC, id")
        return [{**r, "speakers": json.loads(r["speakers"] or "[]")} for r in rows]

    def resolve_id(self, recording: str) -> str:
        """A recording id from an id or a source path/URL."""
        if self._row(recording):
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

    def get(self, recording: str) -> tuple[Recording, list[Segment]]:
        """A recording (by id or source) and its segments with their words."""
        row = self._row(self.resolve_id(recording))
        fields = Recording.__dataclass_fields__
        rec = Recording(**{k: v for k, v in row.items() if k in fields and v is not None})
        rec.speakers = json.loads(row["speakers"] or "[]")
        words: dict[int, list[Word]] = {}
        for w in self.db.query("SELECT segment_idx, start, end, text, probability FROM words "
                               "WHERE recording_id = ? ORDER BY segment_idx, idx", [rec.id]):
            words.setdefault(w.pop("segment_idx"), []).append(Word(**w))
        segments = [
            Segment(index=s["idx"], start=s["start"], end=s["end"], text=s["text"], words=words.get(s["idx"], []),
                    text_en=s["text_en"], translation_engine=s["translation_engine"], avg_logprob=s["avg_logprob"],
                    no_speech_prob=s["no_speech_prob"], compression_ratio=s["compression_ratio"])
            for s in self.db.query("SELECT * FROM segments WHERE recording_id = ? ORDER BY idx", [rec.id])
        ]
        return rec, segments

    def chunks(self, recording_id: str) -> list[Chunk]:
        return [Chunk(recording_id=r["recording_id"], index=r["idx"], start=r["start"], end=r["end"],
                      text_fr=r["text_fr"], text_en=r["text_en"])
                for r in self.db.query("SELECT * FROM chunks WHERE recording_id = ? ORDER BY idx", [recording_id])]

    def search(self, query: str, limit: int = 10, offset: int = 0, recording: str | None = None,
               speaker: str | None = None, event: str | None = None) -> list[SearchHit]:
        """Chunks matching `query` as plain words (best bm25 first), with snippets and moment links.

        Any text a person types is safe: FTS5 operators and stray quotes are searched as words.
        """
        match = fts_query(query)
        if not match:
            return []
        where, params = ["chunks_fts MATCH :match"], {"match": match, "limit": limit, "offset": offset}
        if recording:
            where.append("c.recording_id = :recording")
            params["recording"] = self.resolve_id(recording)
        if speaker:
            where.append("EXISTS (SELECT 1 FROM json_each(r.speakers) WHERE json_each.value LIKE :speaker)")
            params["speaker"] = f"%{speaker}%"
        if event:
            where.append("r.event LIKE :event")
            params["event"] = f"%{event}%"
        sql = f"""
            SELECT c.recording_id, c.idx, c.start, c.end, c.text_fr, r.title, r.speakers, r.event, r.source,
                   snippet(chunks_fts, 0, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '…', 16) AS snippet,
                   bm25(chunks_fts) AS score
            FROM chunks_fts
            JOIN chunks c ON c.id = chunks_fts.rowid
            JOIN recordings r ON r.id = c.recording_id
            WHERE {' AND '.join(where)}
            ORDER BY score LIMIT :limit OFFSET :offset"""
        wanted = {fold(t) for t in _TOKEN.findall(query)}
        hits = []
        for r in self.db.query(sql, params):
            moment = self._moment(r["recording_id"], r["start"], r["end"], wanted)
            hits.append(SearchHit(
                recording_id=r["recording_id"], title=r["title"] or r["recording_id"],
                speakers=json.loads(r["speakers"] or "[]"), event=r["event"] or "", chunk_index=r["idx"],
                start=r["start"], end=r["end"], moment=moment, text=r["text_fr"], snippet=r["snippet"],
                url=moment_url(r["source"], moment), score=-r["score"]))
        return hits

    def _moment(self, recording_id: str, start: float, end: float, wanted: set[str]) -> float:
        """When the first matched word is spoken inside a chunk: a better jump target than its start."""
        rows = self.db.query("SELECT start, text FROM words WHERE recording_id = ? AND start >= ? AND start <= ? "
                             "ORDER BY start", [recording_id, start, end])
        for row in rows:
            if any(fold(t) in wanted for t in _TOKEN.findall(row["text"])):
                return row["start"]
        return start

    def integrity_check(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]


_TOKEN = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case without accents, as the French full-text tokenizer compares words."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def fts_query(text: str) -> str:
    """Turn what a person typed into an FTS5 query of quoted words (all must match).

    Balanced double quotes keep their words together as a phrase; everything else, including
    AND/OR/NOT/NEAR, `*`, `-`, parentheses and a lone quote, is just words or ignored.
    """
    parts = text.split('"')
    if len(parts) % 2 == 0:  # an unbalanced quote: treat the whole text as loose words
        parts = [text.replace('"', " ")]
    terms = []
    for i, part in enumerate(parts):
        tokens = _TOKEN.findall(part)
        if not tokens:
            continue
        if i % 2 == 1:
            terms.append('"' + " ".join(tokens) + '"')
        else:
            terms.extend(f'"{token}"' for token in tokens)
    return " ".join(terms)
