"""Searching the index: what a person typed turned into FTS5 queries, ranked by FTS5's own bm25(),
and the moment in each chunk where the words are spoken.

One path on every Python whose sqlite3 has FTS5: the matches of each language side are listed
newest first, up to RANKING_WINDOW, and ranked by bm25() when they are no more (a word in more
chunks than that says too little to rank by: its newest come first).
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from typing import Any, Callable

from recording_index.errors import RecordingIndexError
from recording_index.index.schema import FTS_TABLES, SEARCH_TABLES
from recording_index.links import moment_url
from recording_index.models import SearchHit

LANGUAGES = ("fr", "en", "any")
# Ranking costs time in proportion to the chunks bm25() scores, and bm25() first counts every chunk
# holding each of the query's terms: a query matching more than RANKING_WINDOW chunks (filters
# included) lists the newest first; one matching fewer, as nearly all do once they name something
# specific, is ranked.
RANKING_WINDOW = 1000
SNIPPET_OPEN, SNIPPET_CLOSE = "**", "**"

TOKEN = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case without accents, as the French full-text tokenizer compares words."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def stem_match(token: str, wanted: set[str]) -> bool:
    """A rough stand-in for Porter stemming: the same word, or a shared stem of 4+ letters."""
    return any(token == w or (len(w) >= 4 and len(token) >= 4 and (token.startswith(w[:max(4, len(w) - 3)])))
               for w in wanted)


def facet_query(value: str, column: str, by_start: bool = False) -> str:
    """A filter as an FTS5 phrase on one column: the words of a name ("Pier-Alexandre Lemaire",
    "lemaire"), or of a date from its year on ("2018", "2018-02" and "2018-02-14" are the phrases
    "^2018", "^2018 02" and "^2018 02 14"). `by_start` lets a name's last word be the start of a
    word ("lem"), from 3 letters: a shorter start would pull in every word that begins with it."""
    tokens = TOKEN.findall(value)
    if not tokens:
        return ""
    if column == "date":
        return f'{column} : ^"{" ".join(tokens)}"'
    return f'{column} : "{" ".join(tokens)}"' + ("*" if by_start and len(tokens[-1]) >= 3 else "")


def query_phrases(text: str) -> list[list[str]]:
    """What a person typed, as the phrases `fts_query` asks FTS5 for: each a list of words.

    Balanced double quotes keep their words together as a phrase; everything else, including
    AND/OR/NOT/NEAR, `*`, `-`, parentheses and a lone quote, is just words or ignored.
    """
    parts = text.split('"')
    if len(parts) % 2 == 0:  # an unbalanced quote: treat the whole text as loose words
        parts = [text.replace('"', " ")]
    phrases = []
    for i, part in enumerate(parts):
        tokens = TOKEN.findall(part)
        if tokens:
            phrases.extend([tokens] if i % 2 == 1 else [[token] for token in tokens])
    return phrases


# What a person types is a few words: a pasted page of them would make FTS5 walk a list for each.
MAX_QUERY_CHARS, MAX_PHRASES = 500, 20


def fts_query(text: str) -> str:
    """Turn what a person typed into an FTS5 query of quoted words and phrases (all must match):
    each once, the first MAX_PHRASES of the first MAX_QUERY_CHARS characters."""
    if len(text) > MAX_QUERY_CHARS:  # cut between words
        text = text[:MAX_QUERY_CHARS + 1].rsplit(None, 1)[0]
    phrases = dict.fromkeys('"' + " ".join(tokens) + '"' for tokens in query_phrases(text))
    return " ".join(list(phrases)[:MAX_PHRASES])


def _rows(conn: sqlite3.Connection, sql: str, params: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    keys = [column[0] for column in cursor.description]
    return [dict(zip(keys, row)) for row in cursor]


class Matching:
    """What a search asks FTS5, once parsed: each side's words (`text_fr : (…)`), the filters' terms,
    the range of one recording's chunks (a recording's chunks are written in one transaction, so
    their ids are one range), and the words a person typed, folded."""

    def __init__(self, sides: dict[str, str], filters: list[str], low: int | None, high: int | None, wanted: set[str],
                 recording_id: str | None = None):
        self.sides, self.filters, self.low, self.high, self.wanted = sides, filters, low, high, wanted
        self.recording_id = recording_id

    def where(self, fts: str) -> str:
        """The condition keeping a side's matches to the recording's range, if any."""
        return f" AND [{fts}].rowid BETWEEN {self.low:d} AND {self.high:d}" if self.low is not None else ""

    def match(self, side: str) -> str:
        return " AND ".join([self.sides[side], *self.filters])


def matching(conn: sqlite3.Connection, query: str, chunk_range: tuple[int | None, int | None] | None,
             speaker: str | None, event: str | None, lang: str, date: str | None,
             recording_id: str | None = None) -> Matching | None:
    """Parse a search (`chunk_range`: one recording's first and last chunk ids, or None for all);
    None when nothing can match. `speaker` and `event` match whole words of a name, the last word
    by its start when no recording has it whole; `date` matches from the year on."""
    if lang not in LANGUAGES:
        raise RecordingIndexError(f"unknown search language {lang!r}: use one of {', '.join(LANGUAGES)}")
    # An accent typed apart from its letter (some keyboards and pastes do) stays in its word.
    query, speaker, event = (unicodedata.normalize("NFC", text) if text else text for text in (query, speaker, event))
    words = fts_query(query)
    if not words:
        return None
    filters = []
    for column, value in (("speakers", speaker), ("event", event), ("date", date)):
        if value:
            term = facet_query(value, column)
            if not term:
                return None  # a filter with no word in it names nothing that can match
            # Whole words when some recording has them (an FTS5 prefix query merges the lists of
            # every word with that start: a few ms a query), else the last word as a start.
            if column != "date" and not conn.execute(
                    "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", [term]).fetchone():
                term = facet_query(value, column, by_start=True)
            filters.append(term)
    low, high = chunk_range if chunk_range else (None, None)
    if chunk_range and low is None:
        return None
    sides = {side: f"{SEARCH_TABLES[side][1]} : ({words})" for side in (("fr", "en") if lang == "any" else (lang,))}
    return Matching(sides, filters, low, high, {fold(t) for t in TOKEN.findall(query)}, recording_id)


def ranked(conn: sqlite3.Connection, found: Matching, side: str, most: int) -> dict[int, float]:
    """The `most` best chunks of one side with their bm25() scores (lower is better): the matches
    are listed newest first (FTS5 stops early); when more than RANKING_WINDOW, the newest are
    the best (score 0), else they are ranked, the speakers, event and date weighing nothing (a
    filter selects, it does not rank)."""
    fts, _ = SEARCH_TABLES[side]
    params = {"match": found.match(side), "window": RANKING_WINDOW + 1}
    newest = [row[0] for row in conn.execute(
        f"SELECT rowid FROM [{fts}] WHERE [{fts}] MATCH :match{found.where(fts)} ORDER BY rowid DESC LIMIT :window",
        params)]
    if len(newest) > RANKING_WINDOW or not newest:
        return dict.fromkeys(newest[:most], 0.0)
    weights = ", ".join("1.0" if column == SEARCH_TABLES[side][1] else "0.0" for column in FTS_TABLES[fts][1])
    # bm25() says NULL when FTS5's totals are damaged (a crafted file): such a match ranks last.
    return dict((rowid, 0.0 if score is None else score) for rowid, score in conn.execute(
        f"SELECT rowid, bm25([{fts}], {weights}) AS score FROM [{fts}] WHERE [{fts}] MATCH :match "
        f"AND rowid BETWEEN :first AND :last ORDER BY score, rowid DESC LIMIT :most",
        {**params, "first": newest[-1], "last": newest[0], "most": most}))


def _shown(conn: sqlite3.Connection, found: Matching, side: str, kept: dict[int, float],
           marks: tuple[str, str]) -> list[dict[str, Any]]:
    """The rows of the `kept` chunks of one side, scored, with their snippets (made for the hits
    shown alone: a snippet reads and tokenizes its whole chunk)."""
    if not kept:
        return []
    fts, _ = SEARCH_TABLES[side]
    shown = _rows(conn, f"""
        SELECT c.id, c.recording_id, c.idx, c.start, c.end, c.text_fr, c.text_en, r.title, r.speakers,
               r.event, r.source, '{side}' AS lang, snippet([{fts}], 0, :open, :close, '…', 16) AS snippet
        FROM [{fts}] JOIN chunks c ON c.id = [{fts}].rowid JOIN recordings r ON r.id = c.recording_id
        WHERE [{fts}] MATCH :words AND [{fts}].rowid IN ({', '.join(str(int(rowid)) for rowid in kept)})""",
        {"words": found.sides[side], "open": marks[0], "close": marks[1]})
    # A run may have replaced a chunk since it was listed: then it is simply not shown. Nor is one of
    # another recording that another program wrote among the recording's ids.
    return [{**row, "score": kept[row["id"]]} for row in shown
            if found.recording_id in (None, row["recording_id"])]


def search(conn: sqlite3.Connection, found: Matching, limit: int, offset: int,
           marks: tuple[str, str] = (SNIPPET_OPEN, SNIPPET_CLOSE)) -> list[SearchHit]:
    """The hits of a parsed search, best first: each chunk once, French first."""
    # Each chunk once: in French when its French holds the words (the archive's language first),
    # else in English, with that side's score.
    best: dict[int, tuple[float, str]] = {}
    for side in found.sides:
        for rowid, score in ranked(conn, found, side, limit + offset).items():
            best.setdefault(rowid, (score, side))
    chosen = sorted(best.items(), key=lambda item: (item[1][0], -item[0]))[offset:offset + limit]
    rows = sorted((row for side in found.sides
                   for row in _shown(conn, found, side, {rowid: score for rowid, (score, of) in chosen if of == side},
                                     marks)), key=lambda r: (r["score"], -r["id"]))
    hits = []
    for r in rows:
        moment, sentence = _moment(conn, r["recording_id"], r["start"], r["end"], found.wanted, r["lang"])
        hits.append(SearchHit(
            recording_id=r["recording_id"], title=r["title"] or r["recording_id"],
            speakers=_speakers(r["speakers"]), event=r["event"] or "", chunk_index=r["idx"],
            start=r["start"], end=r["end"], moment=moment,
            text=r["text_fr"] if r["lang"] == "fr" else r["text_en"], snippet=r["snippet"],
            url=moment_url(r["source"], moment), score=-r["score"], lang=r["lang"],
            text_fr=r["text_fr"], text_en=r["text_en"] or "", sentence_fr=sentence.get("text") or "",
            sentence_en=sentence.get("text_en") or "", origin=sentence.get("origin") or "machine",
            origin_en=sentence.get("origin_en") or "machine", corrected_by=sentence.get("corrected_by"),
            corrected_at=sentence.get("corrected_at")))
    return hits


def count(conn: sqlite3.Connection, found: Matching, cap: int) -> int:
    """How many chunks the search finds, counted up to `cap` (then cap + 1: "more than")."""
    rowids: set[int] = set()
    for side in found.sides:
        fts, _ = SEARCH_TABLES[side]
        rowids.update(row[0] for row in conn.execute(
            f"SELECT rowid FROM [{fts}] WHERE [{fts}] MATCH :match{found.where(fts)} LIMIT :cap",
            {"match": found.match(side), "cap": cap + 1}))
    return min(len(rowids), cap + 1)


def _speakers(value: str | None) -> list[str]:
    """The speakers a row holds (JSON a person may have edited: anything but a list of names is none)."""
    try:
        speakers = json.loads(value or "[]")
    except ValueError:
        return []
    return [str(name) for name in speakers] if isinstance(speakers, list) else []


def _moment(conn: sqlite3.Connection, recording_id: str, start: float, end: float, wanted: set[str],
            lang: str = "fr") -> tuple[float, dict[str, Any]]:
    """When the first matched word is spoken inside a chunk (a better jump target than its start),
    and the segment (a sentence) that holds it, with its French and English.

    English has no word times: there, the start of the first segment whose English matches.
    """
    sentences = _rows(conn, "SELECT idx, start, text, text_en, origin, origin_en, corrected_by, corrected_at "
                            "FROM segments WHERE recording_id = ? AND start >= ? AND start <= ? ORDER BY start",
                      [recording_id, start, end])
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
        return _into_sentence(conn, recording_id, row, position / max(1, len(row["text_en"]))), row
    rows = _rows(conn, "SELECT start, text, segment_idx FROM words WHERE recording_id = ? AND start >= ? "
                       "AND start <= ? ORDER BY start", [recording_id, start, end])
    by_index = {row["idx"]: row for row in sentences}
    by_sentence: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_sentence.setdefault(row["segment_idx"], []).append(row)
    found: tuple[int, float, Any] | None = None  # terms matched, moment, sentence
    for index, words in by_sentence.items():
        folded = [{fold(t) for t in TOKEN.findall(w["text"] or "")} for w in words]
        at = _best_run(folded, wanted, lambda word, terms: bool(word & terms))
        if at and (found is None or at[0] > found[0]):
            found = (at[0], words[at[1]]["start"], index)
    if found is None:
        return start, sentences[0] if sentences else {}
    return found[1], by_index.get(found[2], {})


def _into_sentence(conn: sqlite3.Connection, recording_id: str, sentence: dict[str, Any], share: float) -> float:
    """When the French words are spoken that stand as far into the sentence as `share` (0 to 1) of
    its English: English has no word times, and a sentence's two languages run roughly in step."""
    words = _rows(conn, "SELECT start, text FROM words WHERE recording_id = ? AND segment_idx = ? ORDER BY idx",
                  [recording_id, sentence["idx"]])
    total = sum(len(w["text"] or "") for w in words)
    at = 0
    for word in words:
        if total and at / total >= share:
            return word["start"]
        at += len(word["text"] or "")
    return words[-1]["start"] if words else sentence["start"]


def _best_run(tokens: list, wanted: set[str], matches: Callable[[Any, set[str]], bool]) -> tuple[int, int] | None:
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
