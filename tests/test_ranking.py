"""Ranking (index/ranking.py and its compiled ranked_bm25()) against FTS5's bm25() on one index."""

import random
import sqlite3

import pytest

from recording_index.index import pairs, ranking
from recording_index.index.database import FACETS, SEARCH_TABLES, Index
from recording_index.index.search import fts_query, query_phrases
from recording_index.models import Chunk, Recording

FRENCH = ("de la le et les des est en un une du que coordination École école ÉCOLE prévention "
          "criminalité acteurs locaux l'équipe c'est peut-être évaluation Événement naïf cœur 2018").split()
ENGLISH = ("the of and to a in is translation translations translating translated happy happiness happily "
           "crime prevention preventing coordination coordinated local actors assessing assessment "
           "relational relation running runs ran").split()
QUERIES = {"fr": ["coordination", "ecole", "École", "prévention", '"de la"', "coordination locaux", "naif",
                  '"l équipe"', "cœur", "2018", "equipe", '"peut etre"', "evenement criminalite", "c'est"],
           "en": ["translating", "translation", "happy", "happiness", "crime prevention", '"local actors"',
                  "assessment", "relation", "running", "coordinated"]}
CASES = [(side, q) for side, qs in QUERIES.items() for q in qs]


def build(path, recordings=12, chunks=30, seed=3):
    """Chunks of random lengths (3 to 60 words) from both lists, in recordings with their own
    speakers and years: terms repeat within a chunk, lengths vary, facets differ."""
    rng = random.Random(seed)
    ix = Index(path)
    for n in range(recordings):
        rid = f"talk-{n}"
        rec = Recording(id=rid, source=f"/media/{rid}.mp3", title=rid, speakers=[f"Orateur {n % 3}"],
                        event="Série", date=f"{2016 + n % 4}-02-14", duration=60.0 * chunks, content_hash=rid)
        ix.add(rec, [], [Chunk(rid, i, i * 60.0, i * 60.0 + 59, " ".join(rng.choices(FRENCH, k=rng.randint(3, 60))),
                               " ".join(rng.choices(ENGLISH, k=rng.randint(3, 60)))) for i in range(chunks)])
    return ix


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    ix = build(tmp_path_factory.mktemp("ranking") / "i.db")
    if not ranking.usable(ix.db.conn, "chunks_fts"):
        ix.close()
        pytest.skip("ranked_bm25() is not there: recording_index._bm25 was not built (a C compiler, SQLite's and "
                    "Python's headers are needed) or Python's sqlite3 links another SQLite; searches use bm25()")
    yield ix
    ix.close()


def exact_idfs(ix, fts, text, query):
    rows = ix.db.execute(f"SELECT count(*) FROM {fts}").fetchone()[0]
    return [ranking.idf(rows, ix.db.execute(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH ?",
                                            [f'{text} : "{" ".join(phrase)}"']).fetchone()[0])
            for phrase in query_phrases(query)]


def ranked(ix, fts, match, length_column, idfs, filters=0):
    weights = ", ".join(["1.0"] + ["0.0"] * len(FACETS))
    return dict(ix.db.execute(f"SELECT rowid, ranked_bm25({fts}, {length_column}, {weights}, ?) FROM {fts} "
                              f"WHERE {fts} MATCH ?", [ranking.idf_blob([*idfs, *[0.0] * filters]), match]).fetchall())


@pytest.mark.parametrize("side,query", CASES)
def test_ranked_bm25_is_bm25_given_the_same_idfs(index, side, query):
    """With the IDFs bm25() counts and the length it takes (all columns), the compiled function's
    score of every match is bm25()'s: term frequencies by column weight, lengths, mean length."""
    fts, text, _ = SEARCH_TABLES[side]
    match = f"{text} : ({fts_query(query)})"
    theirs = dict(index.db.execute(f"SELECT rowid, bm25({fts}, 1.0{', 0.0' * len(FACETS)}) FROM {fts} "
                                   f"WHERE {fts} MATCH ?", [match]).fetchall())
    ours = ranked(index, fts, match, -1, exact_idfs(index, fts, text, query))
    assert len(theirs) >= 2 and ours.keys() == theirs.keys()
    assert all(ours[r] == pytest.approx(theirs[r], rel=1e-9, abs=1e-12) for r in ours)


def test_filters_select_without_weighing(index):
    fts, text, _ = SEARCH_TABLES["fr"]
    match = f'{text} : ("coordination" "de") AND speakers : "orateur 1" AND date : ^"2017"'
    theirs = dict(index.db.execute(f"SELECT rowid, bm25({fts}, 1.0, 0.0, 0.0, 0.0) FROM {fts} WHERE {fts} MATCH ?",
                                   [match]).fetchall())
    # bm25() gives a filter an IDF too, but a weight of 0 on its column: it adds nothing.
    ours = ranked(index, fts, match, -1, exact_idfs(index, fts, text, "coordination de"), filters=2)
    assert len(theirs) > 5 and all(ours[r] == pytest.approx(theirs[r], rel=1e-9) for r in theirs)


def said_once_reference(ix, fts, text, query):
    """BM25 of a query's matches with each phrase counted once in each (its frequency taken as 1),
    from FTS5's own records: the rows holding the phrases, each row's text length (its docsize's
    first number) and the mean of them."""
    lengths = {rowid: ranking.varints(sizes)[0] for rowid, sizes in ix.db.execute(f"SELECT id, sz FROM {fts}_docsize")}
    mean = sum(lengths.values()) / len(lengths)
    weight = sum(exact_idfs(ix, fts, text, query)) * 2.2  # k1 + 1
    return {rowid: -weight / (1 + 1.2 * (0.25 + 0.75 * lengths[rowid] / mean)) for (rowid,) in ix.db.execute(
        f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?", [f"{text} : ({fts_query(query)})"])}


def said_once(ix, side, query):
    """Whether search scores `query` as said once in each chunk: two-word phrases with a common
    word, found from the word pairs' table, which keeps where a pair is and not how often."""
    return pairs.query_pairs(query_phrases(query), SEARCH_TABLES[side][2], ix._paired(side))[2] is not None


@pytest.mark.parametrize("side,query", CASES)
def test_search_ranks_by_bm25_over_the_text(index, side, query):
    """Search's scores are BM25 with each phrase's real IDF (estimated, exact on a table this
    small) and the text's own length (not the facets'): the order and scores shown. A two-word
    phrase with a common word counts once in each chunk that holds it."""
    fts, text, _ = SEARCH_TABLES[side]
    match = f"{text} : ({fts_query(query)})"
    reference = (said_once_reference(index, fts, text, query) if said_once(index, side, query) else
                 ranked(index, fts, match, 0, exact_idfs(index, fts, text, query)))
    best = sorted(reference, key=lambda r: (reference[r], -r))[:5]
    hits = index.search(query, limit=5, lang=side)
    ids = [index.db.execute("SELECT id FROM chunks WHERE recording_id = ? AND idx = ?",
                            [h.recording_id, h.chunk_index]).fetchone()[0] for h in hits]
    assert ids == best
    assert [h.score for h in hits] == pytest.approx([-reference[r] for r in best], rel=1e-9)


def test_without_the_compiled_function_search_ranks_with_bm25(index):
    fts, text, _ = SEARCH_TABLES["fr"]
    index._ranked = False
    try:
        for query in ("coordination", '"de la"', "prévention criminalité"):
            theirs = index.db.execute(f"SELECT rowid, bm25({fts}, 1.0, 0.0, 0.0, 0.0) s FROM {fts} WHERE {fts} "
                                      f"MATCH ? ORDER BY s, rowid DESC LIMIT 3", [f"{text} : ({fts_query(query)})"])
            assert [h.score for h in index.search(query, limit=3, lang="fr")] == pytest.approx(
                [-s for _, s in theirs], rel=1e-9)
    finally:
        index._ranked = None


def test_ranked_bm25_refuses_wrong_arguments(index):
    for args in ("", "0", "0, 1.0, 0.0, 0.0, 0.0", "9, 1.0, 0.0, 0.0, 0.0, x'00'", "0, 1.0, 0.0, 0.0, 0.0, 1.0",
                 "0, 1.0, 0.0, 0.0, 0.0, x'0000'"):
        with pytest.raises(sqlite3.OperationalError, match="ranked_bm25"):
            index.db.execute(f"SELECT ranked_bm25(chunks_fts{', ' if args else ''}{args}) FROM chunks_fts "
                             "WHERE chunks_fts MATCH 'coordination'").fetchall()


def test_the_table_statistics_are_fts5s(index):
    stats = ranking.table_stats(index.db.conn, "chunks_fts")
    # The text's length: the first column's (each docsize record holds one size a column).
    lengths = [ranking.varints(sz)[0] for (sz,) in index.db.execute("SELECT sz FROM chunks_fts_docsize")]
    assert stats.rows == index.db.execute("SELECT count(*) FROM chunks").fetchone()[0] == len(lengths) == 12 * 30
    assert stats.mean_length == pytest.approx(sum(lengths) / stats.rows)
    with Index(":memory:") as empty:
        assert ranking.table_stats(empty.db.conn, "chunks_fts") is None


def test_varints_read_sqlites_encoding():
    # SQLite's own encodings: 1, 2, 3 and 9 bytes.
    assert ranking.varints(bytes([0x05])) == [5]
    assert ranking.varints(bytes([0x81, 0x00])) == [128]
    assert ranking.varints(bytes([0x81, 0x80, 0x00, 0x7F])) == [16384, 127]
    with pytest.raises(ValueError, match="cut short"):  # a damaged record
        ranking.varints(bytes([0x05, 0x81]))
    assert ranking.varints(bytes([0xFF] * 8 + [0x01])) == [(2**56 - 1) << 8 | 1]


def test_a_common_terms_share_is_estimated_from_its_oldest_matches(tmp_path):
    """A term in more than SAMPLE rows: estimated from how far into the table its oldest SAMPLE reach."""
    with Index(tmp_path / "i.db") as ix:
        for n in range(20):
            rid = f"talk-{n}"
            rec = Recording(id=rid, source=f"/m/{rid}.mp3", title=rid, duration=1.0, content_hash=rid)
            # "pair" in every other chunk, "tiers" in every third: 1,000 and 680 rows of 2,000.
            ix.add(rec, [], [Chunk(rid, i, i, i + 1, ("pair " if i % 2 == 0 else "") + ("tiers " if i % 3 == 0 else "")
                                   + "texte") for i in range(100)])
        bounds = ix.db.execute("SELECT min(id), max(id) FROM chunks").fetchone()
        for word, truth in (("pair", 1000), ("tiers", 680), ("texte", 2000), ("absent", 0)):
            estimate = ranking.rows_holding(ix.db.conn, "chunks_fts", f'text_fr : "{word}"', bounds)
            assert estimate == pytest.approx(truth, rel=0.03), word


def test_a_query_of_many_words_is_ranked(index):
    """The IDFs are one argument: SQLite allows a function 127 (more words than that are typed)."""
    query = " ".join(["coordination"] * 300)
    hits = index.search(query, limit=3, lang="fr")
    assert hits and [h.chunk_index for h in hits] == [h.chunk_index for h in index.search("coordination", limit=3, lang="fr")]


# Queries whose matches FTS5 may either seek one by one or walk to: words, phrases checked by their
# other word (a common word's pair), a longer phrase (its pairs seek), filters, English.
WALKS = [("fr", "coordination", {}), ("fr", '"de coordination"', {}), ("fr", '"la prévention" acteurs', {}),
         ("fr", '"de la"', {}), ("fr", "école", {"speaker": "Orateur 1"}), ("fr", "de", {"date": "2017"}),
         ("en", '"the crime"', {}), ("en", "translation", {"date": "2018"})]


def search_results(ix, side, query, filters):
    return [(h.recording_id, h.chunk_index, round(h.score, 9), h.snippet)
            for h in ix.search(query, limit=8, lang=side, **filters)], ix.count(query, lang=side, **filters)


@pytest.mark.parametrize("side,query,filters", WALKS)
def test_seeking_or_walking_to_the_rows_wanted_finds_the_same(index, side, query, filters, monkeypatch):
    """Whether FTS5 seeks each candidate or walks the lists between the first and the last (the
    cheaper, ranking.cheaper_to_walk), the hits, scores, snippets and count are the same."""
    walked = []
    among = Index._among

    def spy(self, side, rowids, words):
        condition = among(self, side, rowids, words)
        walked.append("+" in condition)
        return condition

    monkeypatch.setattr(Index, "_among", spy)
    monkeypatch.setattr(ranking, "WALK_PER_SEEK", 0)
    seeking = search_results(index, side, query, filters)
    assert seeking[0] and not any(walked)
    walked.clear()
    monkeypatch.setattr(ranking, "WALK_PER_SEEK", 10**9)
    assert search_results(index, side, query, filters) == seeking
    # A phrase with a common word is walked to only when checked by its other word alone (two words,
    # nothing else typed): else walking means reading the common word's list through the archive.
    assert any(walked) == (query not in ('"de la"', '"la prévention" acteurs'))


def test_walking_is_chosen_where_it_reads_less(index):
    fts, text, _ = SEARCH_TABLES["fr"]
    bounds = ranking.bounds_of(index.db.conn)
    common = ['"de"']  # in most chunks
    assert ranking.cheaper_to_walk(index.db.conn, fts, common, [bounds[0], bounds[0] + 5], bounds)
    assert not ranking.cheaper_to_walk(index.db.conn, fts, common, [bounds[0], bounds[1]], bounds)
    # Every row a word is in: walking its list reads each once, seeking reads index pages for each.
    every = [row[0] for row in index.db.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?", [f'{text} : "naïf"'])]
    assert ranking.cheaper_to_walk(index.db.conn, fts, ['"naïf"'], every, bounds)
    # A match of two words walks the shorter list; a word in no chunk has none ("_" is no word to FTS5).
    assert ranking.cheaper_to_walk(index.db.conn, fts, common + ['"naïf"'], every, bounds)
    for absent in ("inconnu", "_"):
        assert not ranking.cheaper_to_walk(index.db.conn, fts, common + [f'"{absent}"'], [bounds[0], bounds[1]], bounds)


def test_a_word_rare_in_the_text_but_in_every_date_is_not_walked_to(tmp_path, monkeypatch):
    """FTS5 keeps one list per word for all columns: "2018" said in five chunks of talks all dated
    2018 is in every row's list, and walking it to those five reads them all."""
    monkeypatch.setattr(ranking, "WALK_PER_SEEK", 10)  # a small table's walks are cheap: as among millions
    with Index(tmp_path / "i.db") as ix:
        for n in range(10):
            rid = f"talk-{n}"
            rec = Recording(id=rid, source=f"/m/{rid}.mp3", title=rid, date="2018-02-14", duration=1.0, content_hash=rid)
            ix.add(rec, [], [Chunk(rid, i, i, i + 1, "en 2018 la prévention" if n % 2 == 0 and i == 0 else "la prévention")
                             for i in range(30)])
        said = [row[0] for row in ix.db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'text_fr : 2018'")]
        assert len(said) == 5 and "+" not in ix._among("fr", said, ["2018"])
        assert "+" in ix._among("fr", said, ["en"])  # "en" is in these five chunks alone
        assert len(ix.search("2018", lang="fr")) == 5


def test_a_filter_of_recent_recordings_is_not_expected_rare(tmp_path, monkeypatch):
    """A speaker of the last recordings only: his oldest matches all lie near the end, which alone
    would make him look rare; counted from the newest end too, he is not."""
    monkeypatch.setattr(ranking, "SAMPLE", 16)  # as a few hundred matches are among millions
    rng = random.Random(5)
    with Index(tmp_path / "i.db") as ix:
        for n in range(12):
            rid = f"talk-{n}"
            rec = Recording(id=rid, source=f"/m/{rid}.mp3", title=rid, speakers=["Zed" if n >= 8 else f"Orateur {n}"],
                            duration=1.0, content_hash=rid)
            ix.add(rec, [], [Chunk(rid, i, i, i + 1, " ".join(rng.choices(FRENCH, k=20))) for i in range(30)])
        fts, text, _ = SEARCH_TABLES["fr"]
        prepared = ranking.arguments(ix.db.conn, fts, text, len(FACETS), [["coordination"]], "chunk_pairs_fr", [[]], 1,
                                     alone=False)
        match = f'{text} : "coordination" AND speakers : "zed"'
        truth = ix.db.execute(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH ?", [match]).fetchone()[0]
        expected = ranking.expected_matches(ix.db.conn, fts, prepared, ['speakers : "zed"'])
        assert truth > 50 and expected >= truth * 0.8


@pytest.mark.parametrize("side,query,filters", WALKS + [("fr", "école prévention", {}), ("fr", "de la", {"speaker": "orateur"})])
@pytest.mark.parametrize("window", [5, 1000])
def test_queries_scored_at_once_or_after_counting_rank_alike(index, side, query, filters, window, monkeypatch):
    """Words and filters expected in fewer chunks than the window are scored as they are listed,
    without counting them first. An estimate that proves wrong (more matches than the window)
    gives what counting first gives: the newest matches."""
    import recording_index.index.database as index_module

    monkeypatch.setattr(index_module, "RANKING_WINDOW", window)
    monkeypatch.setattr(ranking, "expected_matches", lambda *args: float("inf"))
    counted = search_results(index, side, query, filters)
    monkeypatch.setattr(ranking, "expected_matches", lambda *args: 0.0)
    assert search_results(index, side, query, filters) == counted and counted[0]


def test_matches_are_expected_from_each_words_and_filters_share(index):
    fts, text, _ = SEARCH_TABLES["fr"]
    for words, filters in ((["école", "prévention"], []), (["coordination"], ['speakers : "orateur 1"']),
                           (["acteurs", "locaux"], ['date : ^"2017"', 'speakers : "orateur 2"'])):
        phrases = [[w] for w in words]
        prepared = ranking.arguments(index.db.conn, fts, text, len(FACETS), phrases, "chunk_pairs_fr",
                                     [[] for _ in phrases], len(filters), alone=False)
        match = " AND ".join([f'{text} : "{w}"' for w in words] + filters)
        truth = index.db.execute(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH ?", [match]).fetchone()[0]
        expected = ranking.expected_matches(index.db.conn, fts, prepared, filters)
        # Random words are independent of each other and of the facets: the estimate is close.
        assert truth > 10 and expected == pytest.approx(truth, rel=0.35), (words, filters)


@pytest.mark.parametrize("query,filters,sides", [
    ("coordination", {}, {"fr", "en"}), ("prevention", {}, {"fr", "en"}), ("crime prevention", {}, {"en"}),
    ("coordination", {"speaker": "Orateur 2", "date": "2017"}, {"fr", "en"}), ("école naïf", {}, {"fr"})])
def test_both_languages_show_the_best_of_either_side_with_its_snippets(index, query, filters, sides):
    """`lang="any"`: each chunk once, on the side where it scores best, in score order, page after
    page; snippets are made for the hits shown alone, each of its own side's words."""
    def hits(lang, limit, offset=0):
        return [(h.recording_id, h.chunk_index, round(h.score, 9), h.lang, h.snippet)
                for h in index.search(query, limit=limit, offset=offset, lang=lang, **filters)]
    best = {}
    for hit in hits("fr", 1000) + hits("en", 1000):
        if hit[:2] not in best or hit[2] > best[hit[:2]][2]:  # shown scores: higher is better
            best[hit[:2]] = hit
    merged = sorted(best.values(), key=lambda hit: -hit[2])
    assert len(merged) > 12 and {hit[3] for hit in merged} == sides
    pages = [hits("any", 5, offset) for offset in (0, 5, 10)]
    assert [hit[2] for page in pages for hit in page] == [hit[2] for hit in merged[:15]]
    assert all(hit in best.values() for page in pages for hit in page)


# --- chunk lengths kept beside FTS5 (ranking.LENGTHS_TABLE) -------------------------------------------

def search_scores(ix, side, query):
    return [(h.recording_id, h.chunk_index, h.score) for h in ix.search(query, limit=10, lang=side)]


def reference_scores(ix, side, query):
    """The best ten by ranked_bm25() with each length read from FTS5 (no lengths table named)."""
    fts, text, _ = SEARCH_TABLES[side]
    scores = ranked(ix, fts, f"{text} : ({fts_query(query)})", 0, exact_idfs(ix, fts, text, query))
    best = sorted(scores, key=lambda r: (scores[r], -r))[:10]
    places = dict(((row[0], (row[1], row[2])) for row in ix.db.execute(
        f"SELECT id, recording_id, idx FROM chunks WHERE id IN ({', '.join(map(str, best))})")))
    return [(*places[r], -scores[r]) for r in best]


def same_scores(found, expected):
    return [f[:2] for f in found] == [e[:2] for e in expected] and all(
        f[2] == pytest.approx(e[2], rel=1e-9) for f, e in zip(found, expected))


LENGTH_QUERIES = [("fr", "coordination"), ("fr", "prévention criminalité"), ("en", "translation"),
                  ("en", "happy crime")]


def test_the_lengths_kept_are_the_texts_token_counts(index):
    """Each chunk's kept length is its text's number of tokens as FTS5 counts them (fts5vocab's
    instances, a count made apart from the docsize records the lengths are copied from)."""
    for side, (fts, text, _) in SEARCH_TABLES.items():
        index.db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{fts}_instances USING "
                         f"fts5vocab(main, {fts}, 'instance')")
        counted = dict(index.db.execute(
            f"SELECT doc, count(*) FROM temp.{fts}_instances WHERE col = '{text}' GROUP BY doc").fetchall())
        blocks = dict(index.db.execute(f"SELECT block, {side} FROM {ranking.LENGTHS_TABLE}").fetchall())
        kept = {rowid: blocks[rowid // ranking.LENGTH_BLOCK][rowid % ranking.LENGTH_BLOCK]
                for (rowid,) in index.db.execute("SELECT id FROM chunks")}
        assert len(kept) == 360 and kept == {rowid: counted.get(rowid, 0) for rowid in kept}
        assert len(set(kept.values())) > 20  # lengths of 3 to 60 words: they vary
    assert index.lengths_in_step() == "ok"


@pytest.mark.parametrize("damage", [
    None,
    "UPDATE {table} SET fr = NULL WHERE block = 0",  # stale: a write not yet made again
    "UPDATE {table} SET fr = x'0102' WHERE block = 0",  # not a block
    "UPDATE {table} SET fr = hex(zeroblob(128))",  # 256 characters: text, not a blob
    "UPDATE {table} SET fr = zeroblob(256)",  # wrong, and trusted: the integrity check tells
    "DROP TABLE {table}",
    "ALTER TABLE {table} RENAME COLUMN fr TO other",
])
def test_text_lengths_are_read_from_the_lengths_kept_else_from_fts5(tmp_path, damage):
    """What scores a phrase found from its pairs: each row's text length from the lengths kept,
    and FTS5's own (its docsize) for a row they do not hold or a block that is not one."""
    path = tmp_path / "i.db"
    build(path, recordings=4).close()
    if damage:
        with sqlite3.connect(path) as other:
            other.execute(damage.format(table=ranking.LENGTHS_TABLE))
    with Index(path, readonly=True) as ix:
        truth = {rowid: ranking.varints(sizes)[0] for rowid, sizes in ix.db.execute("SELECT id, sz FROM chunks_fts_docsize")}
        wanted = sorted(truth)[::3] + [10**9]  # no such row
        found = ranking.text_lengths_of(ix.db.conn, "chunks_fts", wanted, "fr")
        if damage and "zeroblob(256)" in damage:
            assert found == dict.fromkeys(wanted[:-1], 0)
        else:
            assert found == {rowid: truth[rowid] for rowid in wanted[:-1]} and len(set(found.values())) > 10


def test_a_damaged_size_record_is_an_error_not_a_length(tmp_path):
    """Where the lengths kept do not know a row, FTS5's record of its sizes is read: one cut short
    fails as FTS5 itself would (sqlite3.DatabaseError, one line at the command line), never a
    length made up, nor an IndexError."""
    path = tmp_path / "i.db"
    build(path, recordings=2).close()
    with sqlite3.connect(path) as other:
        other.execute(f"UPDATE {ranking.LENGTHS_TABLE} SET fr = NULL")
        other.execute("UPDATE chunks_fts_docsize SET sz = x'80' WHERE id = 7")
    with Index(path, readonly=True) as ix:
        assert ranking.text_lengths_of(ix.db.conn, "chunks_fts", [5, 6], "fr").keys() == {5, 6}
        with pytest.raises(sqlite3.DatabaseError, match="malformed: chunks_fts_docsize, chunk 7"):
            ranking.text_lengths_of(ix.db.conn, "chunks_fts", [6, 7], "fr")
        assert ranking.text_lengths(ix.db.conn, "chunks_fts", 0)[7] == ranking.UNKNOWN_LENGTH


def test_search_reads_the_lengths_kept_and_the_integrity_check_tells_when_they_are_wrong(tmp_path):
    """The lengths table is what search reads (lengths made wrong on purpose change the scores),
    the integrity check names it, and `upgrade --pairs` makes it again."""
    from click.testing import CliRunner

    from recording_index.cli import main

    path = tmp_path / "i.db"
    build(path, recordings=4).close()
    with Index(path, readonly=True) as ix:
        if not ranking.usable(ix.db.conn, "chunks_fts"):
            pytest.skip("ranked_bm25() is not there")
        expected = {case: reference_scores(ix, *case) for case in LENGTH_QUERIES}
        assert all(same_scores(search_scores(ix, *case), expected[case]) for case in LENGTH_QUERIES)
    with sqlite3.connect(path) as other:  # every chunk one token long
        other.execute(f"UPDATE {ranking.LENGTHS_TABLE} SET fr = x'{'01' * ranking.LENGTH_BLOCK}'")
    with Index(path, readonly=True) as ix:
        assert not same_scores(search_scores(ix, "fr", "coordination"), expected["fr", "coordination"])
        assert same_scores(search_scores(ix, "en", "translation"), expected["en", "translation"])
    with Index(path) as ix:
        assert ix.integrity_check().startswith("chunk_lengths: 1 block(s) of chunk lengths differ")
    assert CliRunner().invoke(main, ["upgrade", "--pairs", "--db", str(path)]).exit_code == 0
    with Index(path) as ix:
        assert ix.integrity_check() == "ok"
    with Index(path, readonly=True) as ix:
        assert all(same_scores(search_scores(ix, *case), expected[case]) for case in LENGTH_QUERIES)


def test_a_reader_reads_the_lengths_again_after_a_write(tmp_path):
    """A connection keeps the lengths it read; another's write is seen at its next search. The
    newest recording indexed again takes the same chunk ids (SQLite gives the next after the
    highest) with texts of other lengths: lengths kept from before would score them wrongly."""
    path = tmp_path / "i.db"
    build(path, recordings=4).close()
    with Index(path, readonly=True) as reader:
        if not ranking.usable(reader.db.conn, "chunks_fts"):
            pytest.skip("ranked_bm25() is not there")
        assert same_scores(search_scores(reader, "fr", "coordination"), reference_scores(reader, "fr", "coordination"))
        ids_before = [row[0] for row in reader.db.execute("SELECT id FROM chunks WHERE recording_id = 'talk-3'")]
        with Index(path) as writer:
            rng = random.Random(11)
            rec = writer.recording("talk-3")
            writer.add(rec, [], [Chunk("talk-3", i, i * 60.0, i * 60.0 + 59,
                                       " ".join(["coordination"] + rng.choices(FRENCH, k=rng.randint(1, 3) * (i % 2) + 1)),
                                       "the crime") for i in range(30)])
        assert [row[0] for row in reader.db.execute("SELECT id FROM chunks WHERE recording_id = 'talk-3'")] == ids_before
        found, expected = search_scores(reader, "fr", "coordination"), reference_scores(reader, "fr", "coordination")
        assert sum(f[0] == "talk-3" for f in found) >= 5 and same_scores(found, expected)


def test_lengths_are_read_from_fts5_in_a_write_not_yet_committed(tmp_path):
    """Inside a transaction, this connection's own changes are not in the data version yet: the
    lengths it read before are not used, and a chunk made longer scores as its new length."""
    path = tmp_path / "i.db"
    with build(path, recordings=4) as ix:
        if not ranking.usable(ix.db.conn, "chunks_fts"):
            pytest.skip("ranked_bm25() is not there")
        assert same_scores(search_scores(ix, "fr", "naif"), reference_scores(ix, "fr", "naif"))
        with ix.db.atomic():
            ix.db.execute("UPDATE chunks SET text_fr = text_fr || ' ' || text_fr || ' ' || text_fr "
                          "WHERE text_fr LIKE '%naïf%'")
            assert same_scores(search_scores(ix, "fr", "naif"), reference_scores(ix, "fr", "naif"))


@pytest.mark.parametrize("damage", [
    None,  # the lengths are wrong (all 0), and used
    "UPDATE {table} SET fr = x'00'",  # blocks of the wrong size
    "UPDATE {table} SET fr = 'text'",  # not blobs
    "INSERT INTO {table} (block, fr, en) VALUES (1000000000000000, zeroblob(256), zeroblob(256))",  # far away
    "UPDATE {table} SET block = -1 - block",  # before the first row
    "DROP TABLE {table}",
])
def test_a_damaged_lengths_table_is_not_trusted(tmp_path, damage):
    """A file from elsewhere may hold anything: what is not a block of lengths is skipped, blocks
    scattered far apart (memory for rows that are not there) leave the table unused, and search
    ranks with the lengths FTS5 counts. No error, no allocation for rows that are not there."""
    path = tmp_path / "i.db"
    build(path, recordings=4).close()
    with sqlite3.connect(path) as other:
        other.execute(f"UPDATE {ranking.LENGTHS_TABLE} SET fr = zeroblob({ranking.LENGTH_BLOCK})")
        if damage:
            other.execute(damage.format(table=ranking.LENGTHS_TABLE))
    with Index(path, readonly=True) as ix:
        if not ranking.usable(ix.db.conn, "chunks_fts"):
            pytest.skip("ranked_bm25() is not there")
        found, expected = search_scores(ix, "fr", "coordination"), reference_scores(ix, "fr", "coordination")
        assert len(found) == 10 and same_scores(found, expected) == (damage is not None)


def test_lengths_scattered_far_apart_take_no_memory(tmp_path):
    """A block a billion rows away would take a gigabyte for rows that are not there: the table is
    left unused instead (the search's process stays small, and ranks as FTS5 counts)."""
    import json
    import subprocess
    import sys

    path = tmp_path / "i.db"
    build(path, recordings=4).close()
    with sqlite3.connect(path) as other:
        other.execute(f"INSERT INTO {ranking.LENGTHS_TABLE} (block, fr, en) VALUES (4000000, zeroblob(256), zeroblob(256))")
    script = ("import json, resource, sys; from recording_index.index.database import Index\n"
              "with Index(sys.argv[1], readonly=True) as ix:\n"
              "    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "    hits = ix.search('coordination', lang='fr')\n"
              "    print(json.dumps([len(hits), before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))")
    found, before, after = json.loads(subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                                                     capture_output=True, text=True).stdout)
    assert found == 10 and after - before < 100 * 1024  # KiB


def test_a_filters_share_is_counted_once_while_the_index_is_unchanged(tmp_path, monkeypatch):
    """Both languages, and every later search with the same filter, use the share counted first;
    another connection's write has it counted again. Results are the same either way."""
    path = tmp_path / "i.db"
    build(path, recordings=6).close()
    probes = []
    rows_holding = ranking.rows_holding
    monkeypatch.setattr(ranking, "rows_holding", lambda db, fts, match, *args: probes.append(match) or rows_holding(
        db, fts, match, *args))
    with Index(path, readonly=True) as ix:
        if not ranking.usable(ix.db.conn, "chunks_fts"):
            pytest.skip("ranked_bm25() is not there")
        first = search_results(ix, "any", "coordination", {"speaker": "Orateur 1"})
        speaker_probes = [m for m in probes if m.startswith("speakers")]
        assert first[0] and len(speaker_probes) == 2  # from the oldest end and the newest, for both sides
        probes.clear()
        assert search_results(ix, "any", "coordination", {"speaker": "Orateur 1"}) == first
        assert search_results(ix, "any", "prevention", {"speaker": "Orateur 1"})[0]
        assert not [m for m in probes if m.startswith("speakers")]
        with Index(path) as writer:
            writer.add(Recording(id="new", source="/new.mp3", speakers=["Orateur 1"], duration=1.0, content_hash="n"),
                       [], [Chunk("new", 0, 0, 1, "coordination")])
        probes.clear()
        assert search_results(ix, "any", "coordination", {"speaker": "Orateur 1"})[0]
        assert len([m for m in probes if m.startswith("speakers")]) == 2
