"""Datasette's view of an index: titles, descriptions, facets, full-text search where a person looks
for it, and canned queries ("what was said about…", "a recording's transcript") with links to the moment.

Datasette needs none of it to search: `datasette archive.db` finds `chunks_fts` for `chunks` and
`segments_fts` for `segments`, as sqlite-utils made them. The metadata adds the rest:
`datasette -i archive.db -m metadata.json`, the metadata written by `recording-index
datasette-metadata --db archive.db` (Datasette keys a database's metadata by its file name, hence
one file per index).
"""

from __future__ import annotations

from pathlib import Path

from recording_index.index.schema import FTS_TABLES, SEARCH_TABLES

# A moment as a link: the media's own address with a #t= fragment (what `search` prints for a file).
_LINK = "r.source || '#t=' || printf('%.1f', {start})"


def _said(side: str, language: str) -> dict:
    """The canned query "what was said about…" on one language side of the full-text search."""
    fts, column = SEARCH_TABLES[side]
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
                           "and English, with its time in seconds. Search them with the box above.",
            "fts_table": "segments_fts",
            "facets": ["recording_id", "origin", "origin_en", "translation_engine"], "sort": "start",
            "columns": {"idx": "position in the recording", "start": "seconds from the start",
                        "end": "seconds from the start",
                        "text": "French: as Whisper heard it, or as a person corrected it (origin)",
                        "text_en": "English, from Argos or Whisper (translation_engine), or a person (origin_en)",
                        "origin": "machine, or corrected by a person", "origin_en": "machine; corrected by a person; "
                        "retranslated (Argos, from corrected French); stale (Whisper's, of French since corrected)",
                        "corrected_by": "who made the latest correction, when known", "corrected_at": "when (UTC)",
                        "text_machine": "the machine's French, when corrected",
                        "text_en_machine": "the machine's English, when replaced"},
        },
        "corrections": {
            "description": "What people corrected, beside the machine's output: every run applies them again "
                           "(`recording-index correct`, or the page with `serve --allow-edits`).",
            "facets": ["recording_id", "status", "lang", "by"], "sort_desc": "at", "label_column": "text",
            "columns": {"lang": "fr: the words spoken over start–end; en: the English of the sentence spoken then",
                        "text": "the corrected text", "machine_text": "what the machine had there when last applied",
                        "machine_words": "the machine's words it replaced, with their times (JSON)",
                        "status": "applied; unfit (the transcript's timing moved: see note); reverted; replaced",
                        "origin": "the file imported, or web", "by": "who corrected it", "at": "when (UTC)"},
        },
        "chunks": {
            "description": "The unit of search: whole sentences, about 30 s. Search them in French or English "
                           "with the box above (accents and case ignored; the English of the queries below, and "
                           "of `recording-index search`, is also stemmed).",
            "fts_table": "chunks_fts", "facets": ["recording_id", "event"], "sort": "id",
            "columns": {"text_fr": "French", "text_en": "English", "start": "seconds from the start",
                        "end": "seconds from the start", "speakers": "its recording's speakers (for search filters)",
                        "event": "its recording's event", "date": "its recording's date"},
        },
        "words": {"description": "Every French word with its time, as Whisper timed it (`correction`: the "
                                 "correction that wrote it, timed by sharing out the words it replaced).",
                  "facets": ["recording_id"]},
        **{fts: {"hidden": True} for fts in FTS_TABLES},
    }
    queries = {
        f"said_in_{language}": _said(side, language)
        for side, language in (("fr", "french"), ("en", "english"))
    }
    queries |= {
        "transcript": {
            "title": "A recording's transcript",
            "description": "Its sentences in order, French and English, each with a link to its moment.",
            "sql": f"""SELECT s.start AS seconds, s.text AS french, s.text_en AS english, s.origin, s.corrected_by,
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
