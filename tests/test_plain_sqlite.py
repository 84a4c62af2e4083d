"""The index is a plain SQLite database: other tools edit and delete in it and this program follows;
what is not as this program makes it is refused in one line before any query runs on it; an index
of schema 7 (tests/data/index-v7.db, written by the code of db68d06) is upgraded in place."""

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recording_index.index.database import Index
from recording_index.index.schema import SCHEMA_VERSION
from recording_index.locks import exclusive_run
from test_index import TEXTS, chunks_of, make_recording, make_segments

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ["Coordination of local actors is essential.", "We talk about crime prevention.",
           "The centre's team assesses the processes.", "Winning conditions for local coordination.",
           "Thank you for your attention."]


def cli(args, timeout=60):
    return subprocess.run([sys.executable, "-m", "recording_index.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fts_ok(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for fts in ("chunks_fts", "chunks_en_fts", "segments_fts"):
        conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")  # raises when out of step


def build_archive(path: Path) -> Path:
    """Two recordings of the same five sentences, in French and English."""
    with Index(path) as ix:
        for rid, speaker in (("talk-1", "René-André Brisebois"), ("talk-2", "Nadia Roy")):
            segments = make_segments(TEXTS)
            for segment, english in zip(segments, ENGLISH):
                segment.text_en = english
            chunks = chunks_of(rid, segments)
            for chunk, group in zip(chunks, (segments[0:2], segments[2:4], segments[4:])):
                chunk.text_en = " ".join(s.text_en for s in group)
            ix.add(make_recording(rid, speaker=speaker), segments, chunks)
    return path


@pytest.fixture
def archive(tmp_path):
    return build_archive(tmp_path / "archive.db")


def test_plain_sqlite3_edits_and_deletes_and_the_program_follows(archive):
    with sqlite3.connect(archive) as conn:  # Python's own sqlite3: no function of ours, no foreign keys on
        conn.execute("UPDATE chunks SET text_fr = 'le zanzibar des quartiers' WHERE recording_id = 'talk-1' AND idx = 1")
        conn.execute("UPDATE segments SET text_en = 'The Zanzibar of neighbourhoods.' WHERE recording_id = 'talk-1' "
                     "AND idx = 2")
        conn.execute("UPDATE recordings SET speakers = '[\"Luc Martin\"]' WHERE id = 'talk-1'")
        conn.execute("DELETE FROM recordings WHERE id = 'talk-2'")
    conn.close()
    conn = sqlite3.connect(archive)
    for table in ("segments", "words", "chunks", "corrections"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE recording_id = 'talk-2'").fetchone()[0] == 0, table
    fts_ok(conn)
    assert conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'zanzibar'").fetchone()[0] == 1
    conn.close()
    with Index(archive, readonly=True) as ix:
        hits = ix.search("zanzibar", speaker="Martin")
        assert [(h.recording_id, h.chunk_index) for h in hits] == [("talk-1", 1)] and hits[0].speakers == ["Luc Martin"]
        assert ix.search("coordination", speaker="Brisebois") == []  # the speaker changed, and the filter with it
        assert {h.recording_id for h in ix.search("coordination")} == {"talk-1"}
    found = cli(["search", "zanzibar", "--db", archive])
    assert found.returncode == 0 and "talk-1" in found.stdout, found.stderr
    listed = cli(["list", "--db", archive])
    assert listed.returncode == 0 and "talk-1" in listed.stdout and "talk-2" not in listed.stdout


def test_sqlite_utils_command_line_writes_and_the_program_writes_after_it(archive):
    sqlite_utils = Path(sys.executable).parent / "sqlite-utils"
    for sql in ("UPDATE chunks SET text_en = 'the harbour master' WHERE id = 1",
                "DELETE FROM recordings WHERE id = 'talk-1'"):
        done = subprocess.run([str(sqlite_utils), "query", str(archive), sql], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    with Index(archive) as ix:  # and this program writes again over what the other tool left
        segments = make_segments(["Le capitaine du port parle."])
        ix.add(make_recording("talk-3"), segments, chunks_of("talk-3", segments))
        assert [h.recording_id for h in ix.search("capitaine")] == ["talk-3"]
        assert ix.search("harbour") == []  # its chunk went with talk-1
        assert ix.integrity_check() == "ok"


def endless_view(name: str) -> str:
    return (f"CREATE VIEW {name} AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
            "SELECT x AS id, x AS rowid, '' AS title FROM n")


CRAFTED = {
    "an endless view where a table should be": ["DROP TABLE recordings", endless_view("recordings")],
    "a view where FTS5's own table should be": ["DROP TABLE chunks_fts", endless_view("chunks_fts")],
    "a trigger of another program": ["CREATE TRIGGER evil AFTER INSERT ON chunks BEGIN SELECT evil_function(); END"],
    "a full-text table over a view": ["DROP TABLE chunks_en_fts", endless_view("other"),
                                      "CREATE VIRTUAL TABLE chunks_en_fts USING FTS5 (text_en, speakers, event, date, "
                                      "tokenize='porter unicode61 remove_diacritics 2', content=[other])"],
    "a generated column": ["ALTER TABLE chunks ADD COLUMN shown TEXT AS (upper(text_fr)) VIRTUAL"],
    "an index on an expression": ["CREATE INDEX odd ON chunks (length(text_fr))"],
    "a partial index": ["CREATE INDEX odd ON chunks (id) WHERE length(text_fr) > 0"],
    # LIKE 'sqlite_%' would pass it: '_' matches any character.
    "a trigger named like SQLite's own": ["CREATE TRIGGER sqlitex_ai AFTER INSERT ON chunks BEGIN SELECT 1; END"],
    "FTS5's own table over an endless view": [endless_view("endless"), "DROP TABLE chunks_fts_config",
                                              "CREATE VIRTUAL TABLE chunks_fts_config USING fts5(k, v, content='endless')"],
    "a virtual table where a table should be": ["DROP TABLE words", "CREATE VIRTUAL TABLE words USING rtree(recording_id, "
                                                "segment_idx, idx, +start, +end, +text, +probability, +correction)"],
    "a column that shadows the rowid": ["ALTER TABLE chunks ADD COLUMN rowid INTEGER"],
    # SQLite reads a column named "\xa0date": the trigger would never fire for a new date.
    "a trigger's words changed in place": ["PRAGMA writable_schema = ON", "UPDATE sqlite_master SET sql = replace(sql, "
                                           "', date ON', ',' || char(160) || 'date ON') WHERE name = 'recordings_facets'"],
}


@pytest.mark.parametrize("what", CRAFTED)
def test_an_index_not_as_this_program_makes_it_is_refused_in_one_line_untouched(archive, what):
    with sqlite3.connect(archive) as conn:
        for statement in CRAFTED[what]:
            conn.execute(statement)
    conn.close()
    before = digest(archive)
    for args in (["search", "coordination"], ["list"], ["transcript", "talk-1"], ["run", "nothing.mp3"]):
        result = cli([*args, "--db", archive], timeout=60)
        assert result.returncode == 2, (what, args, result.stderr)
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "not an index as this program " \
            "makes it" in result.stderr and str(archive) in result.stderr, (what, args, result.stderr)
    assert digest(archive) == before


def test_a_person_s_own_tables_views_and_plain_indexes_are_left_be(archive):
    with sqlite3.connect(archive) as conn:
        conn.execute("CREATE TABLE notes (recording_id TEXT, note TEXT)")
        conn.execute("CREATE VIEW long_chunks AS SELECT * FROM chunks WHERE length(text_fr) > 10")
        conn.execute("CREATE INDEX chunks_by_start ON chunks (start)")
        conn.execute("CREATE INDEX [chunks by recording and end] ON chunks (recording_id, \"end\" DESC)")
    conn.close()
    with Index(archive, readonly=True) as ix:
        assert ix.search("coordination")


def test_an_index_of_schema_7_is_upgraded_in_place_keeping_everything(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "data" / "index-v7.db", path)
    conn = sqlite3.connect(path)
    before = {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
              for table in ("segments", "words", "corrections")}
    recordings = conn.execute("SELECT * FROM recordings ORDER BY id").fetchall()
    chunks = conn.execute("SELECT id, recording_id, idx, start, end, text_fr, text_en FROM chunks ORDER BY id").fetchall()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    conn.close()
    refused = cli(["search", "coordination", "--db", path])
    assert refused.returncode == 2 and "schema version 7" in refused.stderr and "upgrade" in refused.stderr
    with exclusive_run(path):  # a run holds the index: a second process is refused in one line
        busy = cli(["upgrade", "--db", path])
        assert busy.returncode == 2 and len(busy.stderr.strip().splitlines()) == 1 and "another run" in busy.stderr
    done = cli(["upgrade", "--db", path])
    assert done.returncode == 0 and f"index schema version {SCHEMA_VERSION} (was 7)" in done.stdout, done.stderr
    conn = sqlite3.connect(path)
    assert {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in before} == before
    assert conn.execute("SELECT * FROM recordings ORDER BY id").fetchall() == recordings  # stage keys and provenance
    assert conn.execute("SELECT id, recording_id, idx, start, end, text_fr, text_en FROM chunks ORDER BY id"
                        ).fetchall() == chunks
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name IN ('chunk_pairs_fr', 'chunk_lengths', "
                            "'chunk_texts', 'paired_words')").fetchall()
    assert all("recording_index_word_pairs" not in (sql or "") for (sql,) in conn.execute("SELECT sql FROM sqlite_master"))
    fts_ok(conn)
    conn.close()
    with Index(path, readonly=True) as ix:
        assert {h.recording_id for h in ix.search("coordination", speaker="Nadia", date="2019")} == {"talk-2"}
        assert ix.search("assesses", lang="en")[0].sentence_en == "The centre's team assesses the processes."
        assert [(c.by, c.text) for c in ix.corrections("talk-1")] == [("Anne", TEXTS[1])]
        _, segments = ix.get("talk-1")
        assert segments[1].origin == "corrected" and segments[1].corrected_by == "Anne"


@pytest.mark.parametrize("statement", [
    "CREATE TRIGGER evil AFTER UPDATE ON chunks BEGIN SELECT 1; END",
    "CREATE INDEX odd ON chunks (length(text_fr))",
    "ALTER TABLE chunks ADD COLUMN shown TEXT AS (upper(text_fr)) VIRTUAL",
    "CREATE TRIGGER sqlitex_ai AFTER INSERT ON words BEGIN SELECT 1; END",
])
def test_an_old_index_holding_code_of_another_program_is_not_upgraded(tmp_path, statement):
    """The upgrade writes: what would run as it reads or writes (a trigger, an expression) is refused first."""
    path = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "data" / "index-v7.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute(statement)
    conn.close()
    before = digest(path)
    for args in (["upgrade"], ["search", "coordination"]):
        result = cli([*args, "--db", path])
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "not an index as this program makes it" in result.stderr or "schema version 7" in result.stderr
    assert digest(path) == before


def test_an_old_index_keeps_a_person_s_indexes_and_views_and_refuses_to_lose_their_column(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "data" / "index-v7.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE INDEX [chunks by end] ON chunks (\"end\")")
        conn.execute("DROP TABLE chunk_lengths")
        conn.execute("CREATE VIEW chunk_lengths AS SELECT 1 AS block")  # a view where a table of version 7 was
    conn.close()
    assert cli(["upgrade", "--db", path]).returncode == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks by end'").fetchone()
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_lengths'").fetchone()
    # Datasette takes the first full-text table over `chunks` as its own: the one of both languages.
    assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE '%VIRTUAL TABLE%content=[chunks]%'")
            ] == ["chunks_fts", "chunks_en_fts"]
    conn.close()
    shutil.copy(ROOT / "tests" / "data" / "index-v7.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE recordings ADD COLUMN my_notes TEXT")
    conn.close()
    refused = cli(["upgrade", "--db", path])
    assert refused.returncode == 2 and "column my_notes of its own" in refused.stderr


def test_a_person_s_own_full_text_table_beside_the_index_is_left_be(archive):
    sqlite_utils = Path(sys.executable).parent / "sqlite-utils"
    with sqlite3.connect(archive) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO notes (note) VALUES ('relire la coordination')")
    conn.close()
    done = subprocess.run([str(sqlite_utils), "enable-fts", str(archive), "notes", "note", "--create-triggers"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with Index(archive) as ix:  # read and written as before
        assert ix.search("coordination")
        segments = make_segments(["Une autre phrase."])
        ix.add(make_recording("talk-3"), segments, chunks_of("talk-3", segments))


def test_a_foreign_database_of_a_table_named_like_sqlite_s_own_is_no_index(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sqlitex (x)")
    conn.close()
    before = digest(path)
    with pytest.raises(Exception, match="not a recording-index index"):
        Index(path)
    assert digest(path) == before


def test_check_names_a_full_text_table_out_of_step_with_its_text(archive):
    good = cli(["check", "--db", archive])
    assert good.returncode == 0 and good.stdout.strip() == f"{archive}: ok"
    with sqlite3.connect(archive) as conn:  # as a tool writing the FTS5 table itself might leave it
        conn.execute("INSERT INTO chunks_en_fts(chunks_en_fts) VALUES ('delete-all')")
    conn.close()
    bad = cli(["check", "--db", archive])
    assert bad.returncode == 1 and bad.stderr.startswith(f"{archive}: chunks_en_fts: ") and len(bad.stderr.splitlines()) == 1
    with sqlite3.connect(archive) as conn:  # what the message says to do
        conn.execute("INSERT INTO chunks_en_fts(chunks_en_fts) VALUES('rebuild')")
    conn.close()
    assert cli(["check", "--db", archive]).returncode == 0
    with sqlite3.connect(archive) as conn:
        conn.execute("CREATE VIEW recordings_v AS SELECT 1")
        conn.execute("DROP TRIGGER chunks_au")
    conn.close()
    refused = cli(["check", "--db", archive])
    assert refused.returncode == 2 and "no trigger chunks_au" in refused.stderr


def test_no_compiled_source_and_index_modules_of_at_most_450_lines():
    compiled = [path for folder in ("src", "flows") for path in (ROOT / folder).rglob("*")
                if path.suffix in (".c", ".h", ".pyx", ".so")]
    assert compiled == [] and not (ROOT / "setup.py").exists()
    for module in (ROOT / "src" / "recording_index" / "index").glob("*.py"):
        assert len(module.read_text().splitlines()) <= 450, module.name
