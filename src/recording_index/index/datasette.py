"""Datasette's view of an index: titles, descriptions, facets, full-text search where a person looks
for it, and canned queries ("what was said about…", "a recording's transcript") with links to the moment.

`datasette -i archive.db -m metadata.json`, the metadata written by `recording-index datasette-metadata
--db archive.db` (Datasette keys a database's metadata by its file name, hence one file per index).
The full-text tables index their text through a view (to carry the speakers, event and date beside
it), which Datasette cannot trace back to `chunks` by itself: `fts_table` and `fts_pk` tell it.
"""

from __future__ import annotations

from pathlib import Path

from recording_index.index.database import SEARCH_TABLES

# A moment as a link: the media's own address with a #t= fragment (what `search` prints for a file).
_LINK = "r.source || '#t=' || printf('%.1f', {start})"


def _said(side: str, language: str) -> dict:
    """The canned query "what was said about…" on one language side of the full-text search."""
    fts, column, _ = SEARCH_TABLES[side]
    other = "text_en" if side == "fr" else "text_fr"
    return {
        "title": f"What was said about… ({language.title()})",
        "description": f"Passages (about 30 s) whose {language.title()} says these words in this order, best "
                       "first, with a link to the moment" + (" (English with stemming)." if side == "en" else "."),
        "sql": f"""SELECT r.title, c.start AS seconds, c.{column} AS passage, c.{other} AS translation,
  {_LINK.format(start="c.start")} AS link
FROM {fts} JOIN chunks c ON c.id = {fts}.rowid JOIN recordings r ON r.id = c.recording_id
WHERE {fts} MATCH '{column} : "' || replace(:words, '"', '""') || '"' ORDER BY rank LIMIT 50""",
    }


def datasette_metadata(db: str | Path) -> dict:
    """Datasette metadata for the index at `db`."""
    fts_fr, fts_en = SEARCH_TABLES["fr"][0], SEARCH_TABLES["en"][0]
    tables = {
        "recordings": {
            "description": "One row a recording: where it came from, what it is, and how it was indexed.",
            "label_column": "title", "sort_desc": "indexed_at",
            "facets": ["event", {"array": "speakers"}, "status", "engine", "translation_engine"],
            "columns": {
                "duration": "seconds of decoded audio", "declared_duration": "seconds the file declares, "
                "when that differs", "content_hash": "SHA-256 of the media file",
                "stage_keys": "the key of each stage that made its rows: what a run compares to redo only "
                "what changed", "settings": "the settings that decided its output, and the translator that ran",
                "vocabulary": "names and terms from the catalog, given to Whisper",
                "warning": "indexed, but worth a look (audio much shorter than its file declares, say)"},
        },
        "segments": {
            "description": "The transcript: one row a sentence (or a clause of at most 15 s), in French "
                           "and English, with its time in seconds.",
            "facets": ["recording_id", "translation_engine"], "sort": "start",
            "columns": {"idx": "position in the recording", "start": "seconds from the start",
                        "end": "seconds from the start", "text": "French, as Whisper heard it",
                        "text_en": "English, from Argos or Whisper (translation_engine)"},
        },
        "chunks": {
            "description": "The unit of search: whole sentences, about 30 s. Search them in French or English "
                           "with the box above (accents and case ignored).",
            "fts_table": fts_fr, "fts_pk": "id", "facets": ["recording_id"], "sort": "id",
            "columns": {"text_fr": "French", "text_en": "English", "start": "seconds from the start",
                        "end": "seconds from the start"},
        },
        "words": {"description": "Every French word with its time, as Whisper timed it.", "facets": ["recording_id"]},
        fts_fr: {"hidden": True}, fts_en: {"hidden": True},
    }
    queries = {
        f"said_in_{language}": _said(side, language)
        for side, language in (("fr", "french"), ("en", "english"))
    }
    queries |= {
        "transcript": {
            "title": "A recording's transcript",
            "description": "Its sentences in order, French and English, each with a link to its moment.",
            "sql": f"""SELECT s.start AS seconds, s.text AS french, s.text_en AS english,
  {_LINK.format(start="s.start")} AS link
FROM segments s JOIN recordings r ON r.id = s.recording_id
WHERE s.recording_id = :recording ORDER BY s.idx""",
        },
    }
    return {
        "title": "Recording index",
        "description": "Seminar recordings, transcribed in French and translated into English by recording-index.",
        "databases": {Path(db).stem: {"tables": tables, "queries": queries}},
    }
