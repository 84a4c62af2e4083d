"""Word pairs (index/pairs.py): a phrase found by its pairs is found exactly where FTS5 finds it."""

import random

import pytest
import sqlite_utils

from recording_index.index import pairs
from recording_index.index.database import PAIRS_TABLES, SCHEMA_VERSION, SEARCH_TABLES, Index
from recording_index.index.search import fts_query, query_phrases
from recording_index.models import Chunk, Recording

FRENCH = ("de la le et les des est en un une du que à il on pas ce qui dans pour l'équipe c'est peut-être "
          "prévention criminalité coordination locale acteurs évaluation maison Événement 2018").split()
ENGLISH = ("the of and to a in is that it for on with as crime prevention preventing local actors "
           "coordination coordinated assessing assessment team house running").split()


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    rng = random.Random(11)
    ix = Index(tmp_path_factory.mktemp("pairs") / "i.db")
    for n in range(8):
        rid = f"talk-{n}"
        rec = Recording(id=rid, source=f"/media/{rid}.mp3", title=rid, speakers=["Marie Tremblay"], duration=60,
                        content_hash=rid)
        ix.add(rec, [], [Chunk(rid, i, i, i + 1, " ".join(rng.choices(FRENCH, k=rng.randint(2, 40))),
                               " ".join(rng.choices(ENGLISH, k=rng.randint(2, 40)))) for i in range(25)])
    yield ix
    ix.close()


def phrase_matches(ix, side, phrase):
    """Rows where FTS5 itself finds the phrase in the text."""
    fts, text, _ = SEARCH_TABLES[side]
    return {r[0] for r in ix.db.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?", [f"{text} : ({fts_query(phrase)})"])}


def pair_matches(ix, side, phrase):
    """Rows holding every pair of the phrase (None: it has no common word, so no pairs)."""
    found = pairs.query_pairs(query_phrases(phrase), SEARCH_TABLES[side][2], ix._paired(side))[1][0]
    if not found:
        return None
    table = PAIRS_TABLES[side]
    return {r[0] for r in ix.db.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?", [pairs.match(found)])}


@pytest.mark.parametrize("side,words", [("fr", FRENCH), ("en", ENGLISH)])
def test_a_phrase_is_found_by_its_pairs_exactly_where_fts5_finds_it(index, side, words):
    rng = random.Random(5)
    texts = [row[0] for row in index.db.execute(f"SELECT text_{side} FROM chunks")]
    paired = 0
    for n in range(300):
        if n % 2:  # a phrase that is in the archive: a run of a chunk's words (with their punctuation)
            tokens = rng.choice(texts).split()
            start = rng.randrange(len(tokens))
            phrase = " ".join(tokens[start:start + rng.randint(2, 4)])
        else:  # words drawn at random, mostly found nowhere in that order
            phrase = " ".join(rng.choices(words, k=rng.randint(2, 4)))
        truth, by_pairs = phrase_matches(index, side, f'"{phrase}"'), pair_matches(index, side, f'"{phrase}"')
        if by_pairs is not None:
            paired += 1
            # Two words: the pair is the phrase. Longer: the pairs may be apart, never missing.
            assert by_pairs == truth if len(query_phrases(phrase)[0]) == 2 else by_pairs >= truth, phrase
        hits = index.search(f'"{phrase}"', limit=1000, lang=side)
        assert {hit_id(index, h) for h in hits} == truth, phrase
        assert index.count(f'"{phrase}"', lang=side) == len(truth) and index.count(
            f'"{phrase}"', lang=side, cap=3) == min(len(truth), 4), phrase
    assert paired > 200  # nearly every phrase here has a common word


def hit_id(ix, hit):
    return ix.db.execute("SELECT id FROM chunks WHERE recording_id = ? AND idx = ?",
                         [hit.recording_id, hit.chunk_index]).fetchone()[0]


def test_a_longer_phrase_is_checked_whole_after_its_pairs():
    with Index(":memory:") as ix:
        rec = Recording(id="a", source="/a.mp3", duration=1, content_hash="a")
        ix.add(rec, [], [Chunk("a", 0, 0, 1, "de la prévention, puis la maison"), Chunk("a", 1, 1, 2, "de la maison")])
        assert pair_matches(ix, "fr", '"de la maison"') == {1, 2}  # both pairs are in chunk 0 too
        assert [h.chunk_index for h in ix.search('"de la maison"')] == [1]
        assert pairs.query_pairs([["de", "la", "maison"], ["grande", "maison"], ["_"], ["la"]], SEARCH_TABLES["fr"][2],
                                 ix._paired("fr")) == ([["de", "la", "maison"], ["grande", "maison"], ["la"]],
                                                       [["deǂlaǂ", "laǂmaisonǂ"], [], []], None)  # FTS5 drops "_"
        # Two-word phrases with one common word: their other words check and score a chunk.
        assert pairs.query_pairs([["de", "prévention"], ["la", "maison"]], SEARCH_TABLES["fr"][2],
                                 ix._paired("fr"))[2] == ["prévention", "maison"]


def test_replacing_a_recording_replaces_its_pairs(index, tmp_path):
    """A contentless table forgets a row only when told what it held: after replacing recordings
    again and again, every pair is listed for exactly the chunks that hold it now."""
    with Index(tmp_path / "i.db") as ix:
        rng = random.Random(3)
        for round_ in range(4):
            for n in range(3):
                rid = f"talk-{n}"
                ix.add(Recording(id=rid, source=f"/{rid}.mp3", duration=1, content_hash=f"{rid}-{round_}"), [],
                       [Chunk(rid, i, i, i + 1, " ".join(rng.choices(FRENCH, k=12)), " ".join(rng.choices(ENGLISH, k=12)))
                        for i in range(rng.randint(1, 6))])
        for side, table in PAIRS_TABLES.items():
            expected: dict[str, set[int]] = {}
            for chunk_id, text in ix.db.execute(f"SELECT id, text_{side} FROM chunks"):
                for pair in pairs.pairs_of([text], SEARCH_TABLES[side][2], ix._paired(side))[0].split():
                    expected.setdefault(pair, set()).add(chunk_id)
            assert expected
            for pair, ids in expected.items():
                assert {r[0] for r in ix.db.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?",
                                                    [f'"{pair}"'])} == ids, pair
            # Nothing is left of the replaced chunks' pairs.
            everything = {r[0] for r in ix.db.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?",
                                                      [" OR ".join(f'"{p}"' for p in expected)])}
            assert everything == set().union(*expected.values())


def test_a_pair_is_one_token_that_both_tokenizers_keep_whole():
    # Porter's endings (s, ies, ed, ing, y, e, ll, ational, ness…) stay: "onǂas" stemmed is "onǂa".
    kept = ["deǂlaǂ", "theǂpreventǂ", "onǂasǂ", "theǂpartiesǂ", "aǂrunningǂ", "isǂhappyǂ", "aǂeǂ", "aǂllǂ",
            "theǂnationalǂ", "theǂhopefulnessǂ", "ofǂcreatedǂ", "2018ǂdeǂ"]
    for spec in [spec for _, _, spec in SEARCH_TABLES.values()] + [pairs.PAIRS_TOKENIZER]:
        assert pairs.tokenizer(spec)([" ".join(kept)]) == [kept]
    # The tokens are FTS5's own: folded in French, stemmed in English, apostrophes and hyphens apart.
    assert pairs.tokenizer(SEARCH_TABLES["fr"][2])(["L'Équipe, peut-être!"]) == [["l", "equipe", "peut", "etre"]]
    assert pairs.tokenizer(SEARCH_TABLES["en"][2])(["The preventing teams"]) == [["the", "prevent", "team"]]
    assert pairs.pair_tokens(["nous", "parlons", "de", "prevention"], frozenset({"de"})) == [
        "parlonsǂdeǂ", "deǂpreventionǂ"]


def test_an_index_pairs_its_own_common_words_whatever_the_code_lists(tmp_path, monkeypatch):
    path = tmp_path / "i.db"
    rec = Recording(id="a", source="/a.mp3", duration=1, content_hash="a")
    with Index(path) as ix:
        ix.add(rec, [], [Chunk("a", 0, 0, 1, "la prévention de la criminalité")])
    monkeypatch.setitem(pairs.COMMON_WORDS, "fr", ["prévention"])  # a later release pairs other words
    with Index(path) as ix:
        assert ix._paired("fr") >= {"de", "la"} and "prevention" not in ix._paired("fr")
        ix.add(Recording(id="b", source="/b.mp3", duration=1, content_hash="b"), [],
               [Chunk("b", 0, 0, 1, "une autre prévention de la drogue")])
        assert {h.recording_id for h in ix.search('"prévention de la"')} == {"a", "b"}
        assert pair_matches(ix, "fr", '"une autre"') == {2}


def make_version_5_index(path):
    """An index as version 5 wrote it: no word pairs."""
    with Index(path) as ix:
        rec = Recording(id="old", source="/old.mp3", title="Ancien", speakers=["Marie Curie"], date="2017-05-04",
                        duration=9, content_hash="old")
        ix.add(rec, [], [Chunk("old", 0, 0, 9, "la radioactivité du polonium", "the radioactivity of polonium")])
    db = sqlite_utils.Database(path)
    for statement in [*(f"DROP TABLE {table}" for table in PAIRS_TABLES.values()), "DROP TABLE paired_words",
                      "DROP TABLE chunk_lengths", "DROP TRIGGER chunks_lengths_ai", "DROP TRIGGER chunks_lengths_au",
                      "PRAGMA user_version = 5"]:
        db.execute(statement)
    db.close()


def test_a_version_5_index_is_paired_in_place(tmp_path):
    path = tmp_path / "v5.db"
    make_version_5_index(path)
    with pytest.raises(Exception, match="schema version 5, not 7; `recording-index upgrade` upgrades it"):
        Index(path, readonly=True)
    with Index(path, create=False) as ix:
        assert ix.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        assert pair_matches(ix, "fr", '"du polonium"') == {1} and pair_matches(ix, "en", '"the radioactive"') == {1}
        assert ix.integrity_check() == "ok"
    with Index(path, readonly=True) as ix:
        assert [h.snippet for h in ix.search('"du polonium"', speaker="curie", date="2017")] == [
            "la radioactivité du **polonium**"]
        assert [h.snippet for h in ix.search('"the radioactive"', lang="en")] == ["the **radioactivity** of polonium"]


def test_chunks_written_by_another_program_are_refused_and_the_pairs_checked_and_made_again(tmp_path):
    """Pairs follow the chunks through this program's connections alone: another program's write
    of a chunk is refused, naming the function that makes pairs; pairs that fell out of step anyway
    are reported by the integrity check and made again."""
    import sqlite3

    path = tmp_path / "i.db"
    with Index(path) as ix:
        ix.add(Recording(id="a", source="/a.mp3", duration=1, content_hash="a"), [],
               [Chunk("a", 0, 0, 1, "la prévention de la criminalité"), Chunk("a", 1, 1, 2, "autre chose")])
    other = sqlite3.connect(path)
    for statement in ("UPDATE chunks SET text_fr = 'la maison de la prévention' WHERE idx = 1",
                      "INSERT INTO chunks (recording_id, idx, start, \"end\", text_fr) VALUES ('a', 2, 2, 3, 'de la')",
                      "DELETE FROM recordings"):
        with pytest.raises(sqlite3.OperationalError, match="no such function: recording_index_word_pairs"):
            other.execute(statement)
    other.close()
    with Index(path) as ix:
        assert ix.integrity_check() == "ok"
        # This program's own writes keep them: a chunk changed, then a recording deleted with its chunks.
        ix.db.execute("UPDATE chunks SET text_fr = 'la maison de la prévention' WHERE idx = 1")
        assert sorted(h.chunk_index for h in ix.search('"de la prévention"')) == [1]
        assert ix.integrity_check() == "ok"
        ix.db.execute("UPDATE chunks SET text_fr = 'autre chose' WHERE idx = 1")
        ix.db.execute("INSERT INTO chunk_pairs_fr(chunk_pairs_fr) VALUES ('delete-all')")  # as a bug might
        assert ix.integrity_check().startswith("chunk_pairs_fr: 4 word pairs out of step")
        assert ix.search('"de la prévention"') == []
    from click.testing import CliRunner

    from recording_index.cli import main
    result = CliRunner().invoke(main, ["upgrade", "--pairs", "--db", str(path)])
    assert result.exit_code == 0 and "word pairs made again" in result.output
    with Index(path) as ix:
        assert ix.integrity_check() == "ok" and [h.chunk_index for h in ix.search('"prévention de la"')] == [0]


@pytest.mark.parametrize("side,phrase,filler", [
    ("fr", "de prévention", "acteurs locaux coordination évaluation maison criminalité équipe réseau"),
    ("en", "the crime", "local actors coordination assessment house prevention team network"),
])
def test_a_two_word_phrase_ranks_as_fts5s_bm25_of_it_where_it_is_said_once_a_chunk(side, phrase, filler):
    """A two-word phrase with a common word is scored from its pair, which tells where it is said,
    not how often: as said once in each chunk that holds it. Where it is, the order and scores are
    FTS5's own bm25() of the phrase, though its other word is said again elsewhere in the chunk."""
    rng = random.Random(17)
    common, other = phrase.split()
    fts, text, _ = SEARCH_TABLES[side]
    with Index(":memory:") as ix:
        for n in range(6):
            rid = f"talk-{n}"
            chunks = []
            for i in range(40):
                words = rng.choices(filler.split(), k=rng.randint(4, 50))
                if rng.random() < 0.4:
                    words.insert(rng.randrange(len(words) + 1), phrase)
                    words += [other] * rng.randint(0, 3)  # the other word again, not after the common one
                chunks.append(Chunk(rid, i, i, i + 1, *((" ".join(words), "") if side == "fr" else ("", " ".join(words)))))
            # No speakers, event or date: bm25() then measures a row by its text alone, as search does.
            ix.add(Recording(id=rid, source=f"/{rid}.mp3", duration=40, content_hash=rid), [], chunks)
        theirs = ix.db.execute(f"SELECT rowid, -bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH ? "
                               f"ORDER BY score DESC, rowid DESC LIMIT 10", [f'{text} : "{phrase}"']).fetchall()
        hits = ix.search(f'"{phrase}"', limit=10, lang=side)
        assert len(theirs) == 10 and [hit_id(ix, h) for h in hits] == [rowid for rowid, _ in theirs]
        assert [h.score for h in hits] == pytest.approx([score for _, score in theirs], rel=1e-9)
        assert all(f"{common} **{other}**" in h.snippet.lower() for h in hits)
        # The other word's frequency is not the phrase's: scored by it, the order would differ.
        by_other = ix.db.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY bm25({fts}), rowid DESC "
                                 f"LIMIT 10", [f'{text} : "{phrase}" AND {text} : "{other}"']).fetchall()
        assert [rowid for (rowid,) in by_other] != [rowid for rowid, _ in theirs]
        # Within one recording (its range of chunks), with the archive's IDF.
        in_talk = [hit_id(ix, h) for h in ix.search(f'"{phrase}"', limit=5, lang=side, recording="talk-2")]
        assert in_talk == [rowid for rowid, _ in ix.db.execute(
            f"SELECT rowid, bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH ? AND rowid BETWEEN 81 AND 120 "
            f"ORDER BY score, rowid DESC LIMIT 5", [f'{text} : "{phrase}"'])]


def test_a_word_fts5_drops_is_no_phrase(index):
    assert {h.chunk_index for h in index.search("prévention _")} == {h.chunk_index for h in index.search("prévention")}
    assert index.search("_") == [] and index.count("_ ‿") == 0
    assert index.search('"de la" _', lang="fr") == index.search('"de la"', lang="fr")


def test_a_phrase_in_more_chunks_than_the_window_lists_its_newest(index, monkeypatch):
    """Too common to rank: the newest matches first (score 0), from the pairs alone when they are
    the phrase (two words, nothing else), else as FTS5 lists them."""
    import collections

    import recording_index.index.database as index_module

    monkeypatch.setattr(index_module, "RANKING_WINDOW", 3)
    queries = []
    for side in ("fr", "en"):  # the commonest two-word phrases with a common word, as typed
        counts = collections.Counter(pair for (text,) in index.db.execute(f"SELECT text_{side} FROM chunks")
                                     for pair in set(zip(text.split(), text.split()[1:])))
        common = {w for w in pairs.COMMON_WORDS[side]}
        best = [f'"{a} {b}"' for (a, b), _ in counts.most_common(50) if a in common or b in common][:3]
        queries += [(query, side) for query in best]
    both = '"' + queries[0][0].strip('"') + '" "' + queries[1][0].strip('"') + '"'  # two phrases: both pairs
    assert {hit_id(index, h) for h in index.search(both, limit=50, lang="fr")} == phrase_matches(index, "fr", both)
    for query, side in queries:
        truth = sorted(phrase_matches(index, side, query), reverse=True)
        assert len(truth) > 3, query
        hits = index.search(query, limit=5, lang=side)
        assert [hit_id(index, h) for h in hits] == truth[:5] and {h.score for h in hits} == {0}, query
        in_talk = [r for r in truth if index.db.execute("SELECT recording_id FROM chunks WHERE id = ?",
                                                        [r]).fetchone()[0] == "talk-3"]
        filtered = index.search(query, limit=5, lang=side, speaker="Tremblay", recording="talk-3")
        assert sorted(hit_id(index, h) for h in filtered) == sorted(in_talk[:5]), query
