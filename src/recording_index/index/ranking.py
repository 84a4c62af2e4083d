"""Ranking search matches by BM25 without FTS5's bm25() counting the whole table at every query.

FTS5's bm25() counts, before it scores the first row, every row of the table that holds each phrase
of the query, filters included (for the phrases' IDF): at 10,000 hours that is most of a search's
time, whatever the results (a year filter alone is in 80,000 chunks). `ranked_bm25()`, a small
function in C (`_bm25.c`, registered on every connection when the compiled module is there),
scores each row exactly as bm25() does but takes the IDFs as arguments. They come from here:
- a query that is one phrase and nothing else: its listing has every row that holds it;
- otherwise each phrase's share of the table, counted from its oldest matches when it has fewer
  than SAMPLE, else estimated from how far into the table they reach (rowids grow with time, and
  a word is spread through it). IDF is a logarithm: a share known within a few per cent moves a
  score by well under one per cent.
Each row's length comes from a compact table beside FTS5 (LENGTHS_TABLE, `block_lengths`) when it
is there and up to date: FTS5 reads it from its docsize table, one B-tree lookup a scored row.
Two-word phrases with a common word and no filter are scored from the chunks the word pairs'
table lists and their lengths (`said_once`): it keeps which chunks hold a pair, not how often.
Without the compiled module, searches rank with bm25() itself (Index._search_side).
"""

from __future__ import annotations

import math
import sqlite3
import struct
from dataclasses import dataclass

from recording_index.index import pairs

try:  # registers ranked_bm25() on the connections opened from now on
    from recording_index import _bm25  # noqa: F401
    COMPILED = True
except ImportError:  # built without a C compiler: bm25() it is
    COMPILED = False

SAMPLE = 256
# BM25's constants, as FTS5's bm25() and ranked_bm25() (_bm25.c) have them.
K1 = 1.2
B = 0.75
# Each chunk's text length in tokens, one byte a chunk, LENGTH_BLOCK chunks a row (`block` is the
# rowid // LENGTH_BLOCK); ranked_bm25() reads them all into memory once per connection (_bm25.c).
# UNKNOWN_LENGTH: 255 tokens or more, or no such chunk; ranked_bm25() asks FTS5 then.
LENGTHS_TABLE = "chunk_lengths"
LENGTH_BLOCK = 256
UNKNOWN_LENGTH = 255


@dataclass(frozen=True)
class TableStats:
    rows: int
    mean_length: float  # tokens of text per row (the first column: what ranked_bm25() measures a row by)


def varints(blob: bytes) -> list[int]:
    """SQLite's variable-length integers, as FTS5 writes its records (1 to 9 bytes, big-endian)."""
    values, at = [], 0
    while at < len(blob):
        value = 0
        for n in range(9):
            if at >= len(blob):
                raise ValueError("a record of SQLite varints cut short")
            byte = blob[at]
            at += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        values.append(value)
    return values


def table_stats(db: sqlite3.Connection, fts: str) -> TableStats | None:
    """Rows and mean row length of an FTS5 table, from its averages record (row 1 of `%_data`, part
    of FTS5's file format, which SQLite keeps readable across releases); None when empty."""
    found = db.execute(f"SELECT block FROM {fts}_data WHERE id = 1").fetchone()
    numbers = varints(found[0]) if found and found[0] else []
    if len(numbers) < 2 or numbers[0] <= 0:
        return None
    return TableStats(rows=numbers[0], mean_length=numbers[1] / numbers[0])


def idf(rows: int, holding: float) -> float:
    """bm25()'s inverse document frequency, with its floor for a phrase in over half the rows."""
    value = math.log((rows - holding + 0.5) / (holding + 0.5))
    return value if value > 0 else 1e-6


def rows_holding(db: sqlite3.Connection, fts: str, match: str, bounds: tuple[int, int],
                 newest: bool = False) -> float:
    """How many rows of `fts` match `match`: counted when under SAMPLE, else estimated from the
    rowid its SAMPLE-th oldest match has within `bounds` (the table's lowest and highest rowids),
    or its SAMPLE-th newest. Oldest first: FTS5 reads its lists in that order, and backwards costs
    more."""
    found = [row[0] for row in db.execute(
        f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid{' DESC' if newest else ''} LIMIT ?",
        [match, SAMPLE])]
    if len(found) < SAMPLE:
        return len(found)
    low, high = bounds
    return SAMPLE * (high - low + 1) / max(1, (high - found[-1] if newest else found[-1] - low) + 1)


def text_size(sizes: object) -> int | None:
    """The text's length in tokens in one `%_docsize` record of FTS5 (one varint a column's size;
    the text is the first column); None when the record is not one (a damaged file)."""
    if not isinstance(sizes, bytes) or not sizes:
        return None
    try:
        return varints(sizes)[0]
    except ValueError:
        return None


def text_lengths(db: sqlite3.Connection, fts: str, block: int) -> dict[int, int]:
    """The text length of each row of one block that FTS5 holds, rowid: length, from its `%_docsize`
    table (UNKNOWN_LENGTH for a damaged record: FTS5 then reads it, and says what is wrong)."""
    low = block * LENGTH_BLOCK
    return {rowid: UNKNOWN_LENGTH if (size := text_size(sizes)) is None else size for rowid, sizes in db.execute(
        f"SELECT id, sz FROM {fts}_docsize WHERE id BETWEEN ? AND ?", [low, low + LENGTH_BLOCK - 1])}


def block_lengths(lengths: dict[int, int], block: int) -> bytes:
    """One block of LENGTHS_TABLE made from its rows' `text_lengths`."""
    kept = bytearray([UNKNOWN_LENGTH]) * LENGTH_BLOCK
    for rowid, length in lengths.items():
        kept[rowid - block * LENGTH_BLOCK] = min(length, UNKNOWN_LENGTH)
    return bytes(kept)


def kept_block(value: object) -> bytes | None:
    """A value of LENGTHS_TABLE as a block of lengths, or None when it is not one (a stale block is
    NULL; a file from elsewhere may hold anything)."""
    return value if isinstance(value, bytes) and len(value) == LENGTH_BLOCK else None


def text_lengths_of(db: sqlite3.Connection, fts: str, rowids: list[int], lengths_column: str) -> dict[int, int]:
    """The text length of each of `rowids` that FTS5 holds: from LENGTHS_TABLE's `lengths_column`
    where it knows it (a block written whole, up to date, under 255 tokens), else from FTS5's docsize
    (sqlite3.DatabaseError for a damaged record, as FTS5 itself would fail)."""
    blocks = sorted({rowid // LENGTH_BLOCK for rowid in rowids})
    known: dict[int, bytes] = {}
    try:
        for block, value in db.execute(f"SELECT block, {lengths_column} FROM {LENGTHS_TABLE} "
                                       f"WHERE block IN ({', '.join(map(str, blocks))})"):
            if (lengths := kept_block(value)) is not None:
                known[block] = lengths
    except sqlite3.OperationalError:  # no such table or column in a file from elsewhere: FTS5 knows
        pass
    found: dict[int, int] = {}
    for rowid in rowids:
        lengths = known.get(rowid // LENGTH_BLOCK)
        if lengths is not None and lengths[rowid % LENGTH_BLOCK] != UNKNOWN_LENGTH:
            found[rowid] = lengths[rowid % LENGTH_BLOCK]
    unknown = [rowid for rowid in rowids if rowid not in found]
    if unknown:
        for rowid, sizes in db.execute(f"SELECT id, sz FROM {fts}_docsize WHERE id IN ({', '.join(map(str, unknown))})"):
            size = text_size(sizes)
            if size is None:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {fts}_docsize, chunk {rowid}")
            found[rowid] = size
    return found


def said_once(db: sqlite3.Connection, fts: str, rowids: list[int], holding: list[float],
              lengths_column: str) -> dict[int, float]:
    """BM25 of rows that hold each of a query's phrases, each said once, as ranked_bm25() scores
    (minus the score: lower is better): `holding` is how many rows of the table hold each phrase
    (for its IDF), and a row's length is its text's (`text_lengths_of`).

    For phrases found from the word pairs' table (pairs.py), which keeps where a pair is, not how
    often: a phrase of two words is seldom said twice in one chunk. On the 10,000-hour benchmark this
    ranking agrees better with FTS5's own bm25() of the phrase than scoring by the phrase's other
    word, whose frequency counts it wherever it is said (BENCHMARKS.md)."""
    stats = table_stats(db, fts)
    if stats is None or not rowids:
        return {}
    weight = sum(idf(stats.rows, held) for held in holding) * (K1 + 1.0)
    mean = stats.mean_length if stats.mean_length > 0 else 1.0
    return {rowid: -weight / (1.0 + K1 * (1.0 - B + B * length / mean))
            for rowid, length in text_lengths_of(db, fts, rowids, lengths_column).items()}


def usable(db: sqlite3.Connection, fts: str) -> bool:
    """Whether `ranked_bm25()` is registered on this connection (the compiled module was imported
    before it was opened, and links the SQLite that Python's sqlite3 uses)."""
    if not COMPILED:
        return False
    try:
        db.execute(f"SELECT ranked_bm25({fts}) FROM {fts} WHERE {fts} MATCH 'x' LIMIT 0").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


@dataclass(frozen=True)
class Arguments:
    """What ranking a query needs besides its matches (`arguments`)."""
    values: list[float | bytes | str]  # ranked_bm25()'s arguments after the table
    stats: TableStats | None
    holding: list[float]  # how many rows hold each phrase; empty when not counted (`alone`, an empty table)
    bounds: tuple[int, int]  # the table's lowest and highest rowids


def bounds_of(db: sqlite3.Connection) -> tuple[int, int]:
    """The lowest and highest chunk ids (the search tables' rowids)."""
    # Two statements: min() and max() together make SQLite scan the table instead of two seeks.
    return db.execute("SELECT (SELECT min(id) FROM chunks), (SELECT max(id) FROM chunks)").fetchone()


def arguments(db: sqlite3.Connection, fts: str, text_column: str, facets: int, phrases: list[list[str]],
              pairs_table: str, pair_lists: list[list[str]], filters: int, alone: bool,
              lengths_column: str | None = None) -> Arguments:
    """ranked_bm25()'s arguments after the table: the text column as the row's length, weight 1 on
    it and 0 on the `facets` columns after it (a filter selects, it does not rank), then the IDF of
    each phrase and 0 for each of the `filters` (one phrase each, after the text's), as one blob;
    then, given `lengths_column`, where LENGTHS_TABLE keeps the text's lengths.

    Phrases are counted by `phrases_holding`. `alone`: the query is its one phrase, without filters:
    its IDF is the caller's to put in once it has counted the listing (1.0 here)."""
    stats = table_stats(db, fts)
    bounds = bounds_of(db)
    head: list[float | bytes | str] = [0, 1.0] + [0.0] * facets
    tail: list[float | bytes | str] = [LENGTHS_TABLE, lengths_column] if lengths_column else []
    if stats is None or (alone and len(phrases) == 1):
        return Arguments(head + [idf_blob([1.0] * len(phrases) + [0.0] * filters)] + tail, stats, [], bounds)
    holding = phrases_holding(db, fts, text_column, phrases, pairs_table, pair_lists, bounds)
    return Arguments(head + [idf_blob([idf(stats.rows, h) for h in holding] + [0.0] * filters)] + tail, stats,
                     holding, bounds)


def phrases_holding(db: sqlite3.Connection, fts: str, text_column: str, phrases: list[list[str]],
                    pairs_table: str, pair_lists: list[list[str]], bounds: tuple[int, int]) -> list[float]:
    """How many rows hold each phrase (`rows_holding`): a phrase with pairs (`pair_lists`, pairs.py)
    is counted in `pairs_table` from its pairs, the rows holding them all, as many as hold the
    phrase when it is two words (about as many when longer)."""
    return [rows_holding(db, pairs_table, pairs.match(found), bounds) if found else
            rows_holding(db, fts, f'{text_column} : "{" ".join(phrase)}"', bounds)
            for phrase, found in zip(phrases, pair_lists)]


def expected_matches(db: sqlite3.Connection, fts: str, ranked: Arguments, filter_terms: list[str],
                     filter_shares: dict[str, float] | None = None) -> float:
    """How many rows would hold all of a query's phrases (`ranked.holding`) and its filters, were
    they spread through the table independently of each other: enough to tell a query of a few
    hundred matches from one of thousands before listing them. `filter_shares`: each filter's
    share of the rows, by term, as counted before (both full-text tables index the same facets);
    the shares counted here are added to it."""
    rows = ranked.stats.rows if ranked.stats else 0
    if not rows or not ranked.holding:
        return float("inf")
    shares = [held / rows for held in ranked.holding]
    known = {} if filter_shares is None else filter_shares
    for term in filter_terms:
        if term not in known:
            # A filter selects whole recordings, runs of rows: a speaker of recent years is far
            # denser at the newest end than his oldest matches say. Counted from both ends, the
            # larger share stands.
            known[term] = max(rows_holding(db, fts, term, ranked.bounds, newest) for newest in (False, True)) / rows
        shares.append(known[term])
    return rows * math.prod(shares)


# FTS5 finds one given row of a match by seeking in each of its lists (about 30 µs a row on the
# 10,000-hour archive) and walks a list at about 0.15 µs an entry (BENCHMARKS.md): below a hundred
# entries walked for each row wanted, walking costs less.
WALK_PER_SEEK = 100


def cheaper_to_walk(db: sqlite3.Connection, fts: str, words: list[str], rowids: list[int],
                    bounds: tuple[int, int]) -> bool:
    """Whether FTS5 reads less walking a match's lists from the first of `rowids` (sorted) to the
    last than seeking each. Walking costs the shortest list of the match's `words` (each one word
    as FTS5 lists it, all columns: a year is in the text and in the date's; FTS5 walks the shortest
    and skips through the others), its rows counted or estimated (`rows_holding`, at most SAMPLE
    entries read) and taken as spread evenly through the table."""
    low, high = bounds
    if low is None or not rowids or not words:
        return False
    share = (rowids[-1] - rowids[0] + 1) / max(1, high - low + 1)
    # A word in no row has no list: FTS5 drops it from the match ("_"), or the match is empty.
    shortest = min((held for held in (rows_holding(db, fts, word, bounds) for word in words) if held), default=0)
    return shortest * share <= WALK_PER_SEEK * len(rowids)


def idf_blob(idfs: list[float]) -> bytes:
    """IDFs as ranked_bm25() takes them: one blob of native doubles."""
    return struct.pack(f"={len(idfs)}d", *idfs)
