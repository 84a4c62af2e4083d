import sqlite3
import unicodedata

import pytest
import sqlite_utils

from recording_index.index.database import Index
from recording_index.index.schema import APPLICATION_ID, SCHEMA_VERSION
from recording_index.index.search import fts_query
from recording_index.models import Chunk, Recording, Segment, Word

NASTY_QUERIES = ['"coordination (locale', "AND", "*", "-", "", "   ", "OR NOT", "NEAR(a b)", "a AND", '"""',
                 "(", ")", "^", ":", "col:val", "équipe*", "'", "l'équipe", "NOT -x", "a + b", "\x00", "🙂",
                 "x" * 5000, "near/3", "{a b}", "[x]"]


def make_recording(rid="talk-1", speaker="René-André Brisebois", event="Coordination – mini-conférence"):
    return Recording(id=rid, source=f"/media/{rid}.mp3", title=f"Titre {rid}", speakers=[speaker], event=event,
                     language="fr", duration=120.0, content_hash=f"hash-{rid}")


def make_segments(texts, step=10.0):
    segments = []
    for i, text in enumerate(texts):
        start = i * step
        tokens = text.split()
        words = [Word(start + j, start + j + 0.8, " " + t, 0.9) for j, t in enumerate(tokens)]
        segments.append(Segment(i, start, start + step - 1, text, words))
    return segments


def chunks_of(rid, segments, per_chunk=2):
    return [Chunk(rid, n, group[0].start, group[-1].end, " ".join(s.text for s in group))
            for n, group in enumerate(segments[i:i + per_chunk] for i in range(0, len(segments), per_chunk))]


TEXTS = ["La coordination des acteurs locaux est essentielle.",
         "Nous parlons de prévention de la criminalité.",
         "L'équipe du centre évalue les processus.",
         "Les conditions gagnantes pour la coordination locale.",
         "Merci de votre attention."]


@pytest.fixture
def index(tmp_path):
    ix = Index(tmp_path / "index.db")
    rec = make_recording()
    segments = make_segments(TEXTS)
    ix.add(rec, segments, chunks_of(rec.id, segments), engine="faster-whisper", model="base:x",
           stage_keys={"transcribe": "transcribe-1", "chunk": "chunk-1"})
    yield ix
    ix.close()


def test_schema_version_wal_and_plain_tables(index, tmp_path):
    assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert index.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"recordings", "segments", "words", "chunks", "chunks_fts"} <= set(index.db.table_names())
    assert "remove_diacritics 2" in index.db["chunks_fts"].schema
    assert index.integrity_check() == "ok"


def test_search_ranks_and_marks_and_links(index):
    hits = index.search("coordination locale")
    assert hits and hits[0].chunk_index == 1  # both words in one chunk beat one word
    hit = hits[0]
    assert "**coordination**" in hit.snippet and "**locale**" in hit.snippet
    assert hit.start <= hit.moment <= hit.end
    assert hit.moment == 35.0  # when "coordination" is said: the 6th word of segment 3 (30 s)
    assert hit.url == "file:///media/talk-1.mp3#t=35.0"
    assert hit.title == "Titre talk-1" and hit.speakers == ["René-André Brisebois"]


def test_moment_falls_back_to_chunk_start_without_words(tmp_path):
    with Index(tmp_path / "i.db") as ix:
        rec = make_recording()
        segs = [Segment(0, 12.0, 15.0, "Sans mots horodatés.")]
        ix.add(rec, segs, chunks_of(rec.id, segs))
        assert ix.search("horodatés")[0].moment == 12.0


def test_search_is_accent_and_case_insensitive(index):
    for query in ("equipe", "ÉQUIPE", "équipe", "prevention criminalite"):
        assert index.search(query), query


def test_accents_typed_apart_from_their_letter_stay_in_the_word(index):
    decomposed = unicodedata.normalize("NFD", "évalue")
    assert decomposed != "évalue"
    hits = index.search(decomposed, speaker=unicodedata.normalize("NFD", "René-André"))
    assert [h.chunk_index for h in hits] == [1]
    assert hits[0].moment == hits[0].start + 3  # when "évalue" is said, the 4th word of the chunk


def test_phrases_in_quotes_keep_word_order(index):
    assert index.search('"acteurs locaux"')
    assert not index.search('"locaux acteurs"')


def test_filters(index, tmp_path):
    other = make_recording("talk-2", speaker="Pier-Alexandre Lemaire", event="Autre")
    segs = make_segments(["La coordination se mesure."])
    index.add(other, segs, chunks_of(other.id, segs))
    assert {h.recording_id for h in index.search("coordination")} == {"talk-1", "talk-2"}
    assert {h.recording_id for h in index.search("coordination", speaker="Lemaire")} == {"talk-2"}
    assert {h.recording_id for h in index.search("coordination", event="mini-conf")} == {"talk-1"}
    assert {h.recording_id for h in index.search("coordination", recording="/media/talk-2.mp3")} == {"talk-2"}
    assert len(index.search("coordination", limit=1)) == 1
    assert index.search("coordination", limit=1, offset=1)[0].recording_id != index.search("coordination", limit=1)[0].recording_id


def test_filters_match_words_of_names_without_accents_and_dates_from_the_year(index):
    other = make_recording("talk-2", speaker="François Lévesque", event="Journée d'étude")
    other.date = "2019-03-07"
    segs = make_segments(["La coordination se mesure.", "Une coordination réussie."])
    index.add(other, segs, chunks_of(other.id, segs, per_chunk=1))
    found = lambda **filters: {h.recording_id for h in index.search("coordination", **filters)}  # noqa: E731
    assert found(speaker="francois levesque") == found(speaker="Lévesq") == found(speaker="FRANÇOIS") == {"talk-2"}
    assert found(speaker="levesque francois") == found(speaker="Lé") == set()  # in order; 3 letters to start a word
    assert found(speaker="René-André") == found(speaker="rene andre brise") == {"talk-1"}
    assert found(event="journee d etude") == found(event="étude") == {"talk-2"}
    assert found(date="2019") == found(date="2019-03") == found(date="2019-03-07") == {"talk-2"}
    assert found(date="2019-04") == found(date="03") == found(date="2018") == found(date="2019-0") == set()
    assert found(speaker="?") == found(event="–") == set()  # no word: nothing can match
    assert found(speaker="Lévesque", event="étude", date="2019", lang="en") == set()  # no English yet
    assert len(index.search("coordination", recording="talk-2")) == 2
    assert index.search("coordination", speaker="Brisebois", recording="talk-2") == []
    assert index.integrity_check() == "ok"


def test_a_speaker_filter_takes_whole_words_when_some_recording_has_them(index):
    for rid, name in (("talk-2", "Luc Martin"), ("talk-3", "Anne Martineau")):
        segs = make_segments(["La coordination des acteurs."])
        index.add(make_recording(rid, speaker=name), segs, chunks_of(rid, segs))
    found = lambda speaker: {h.recording_id for h in index.search("coordination", speaker=speaker)}  # noqa: E731
    assert found("Martin") == {"talk-2"}  # a whole word: not Martineau
    assert found("Mart") == {"talk-2", "talk-3"}  # no speaker has the word "mart": its start
    assert found("Martinea") == {"talk-3"} and found("Ma") == set()


def test_a_recordings_new_speakers_event_or_date_are_searchable_at_once(index):
    assert index.search("coordination", speaker="Brisebois")
    index.db["recordings"].update("talk-1", {"speakers": '["Nadia Roy"]', "event": "Colloque", "date": "2020-01-02"})
    assert index.search("coordination", speaker="Brisebois") == []
    hits = index.search("coordination", speaker="Nadia Roy", event="colloque", date="2020")
    assert {h.recording_id for h in hits} == {"talk-1"} and hits[0].speakers == ["Nadia Roy"]
    assert index.integrity_check() == "ok"
    index.db["recordings"].delete("talk-1")  # its chunks go with it, from the full-text tables too
    assert index.db["chunks"].count == 0 and index.integrity_check() == "ok"


def test_integrity_check_compares_the_full_text_tables_with_the_chunks(index):
    index.db.execute("DROP TRIGGER chunks_au")
    index.db.execute("UPDATE chunks SET text_fr = 'autre chose' WHERE idx = 0")
    assert index.integrity_check().startswith("chunks_fts:")


def make_version_1_index(path):
    """An index as version 1 wrote it: the text alone in each full-text table."""
    db = sqlite_utils.Database(path)
    db.executescript("""
        CREATE TABLE recordings (id TEXT PRIMARY KEY, title TEXT, speakers TEXT, event TEXT, date TEXT,
            language TEXT, source TEXT, media_path TEXT, duration FLOAT, content_hash TEXT, uploader TEXT,
            engine TEXT, model TEXT, settings TEXT, fingerprint TEXT, translation_engine TEXT,
            translation_model TEXT, translation_fingerprint TEXT, detected_language TEXT, status TEXT,
            error TEXT, indexed_at TEXT);
        CREATE TABLE chunks (id INTEGER PRIMARY KEY, recording_id TEXT REFERENCES recordings(id), idx INTEGER,
            start FLOAT, "end" FLOAT, text_fr TEXT, text_en TEXT);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(text_fr, content=[chunks],
            tokenize='unicode61 remove_diacritics 2');
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text_fr) VALUES (new.id, new.text_fr); END;
        CREATE VIRTUAL TABLE chunks_en_fts USING fts5(text_en, content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2');
        CREATE TRIGGER chunks_en_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_en_fts(rowid, text_en) VALUES (new.id, new.text_en); END;
        INSERT INTO recordings (id, title, speakers, event, date, source, status)
            VALUES ('old-talk', 'Ancien', '["Marie Curie"]', 'Séminaire', '2017-05-04', '/media/old.mp3', 'indexed');
        INSERT INTO chunks (recording_id, idx, start, "end", text_fr, text_en)
            VALUES ('old-talk', 0, 0, 9, 'la radioactivité du polonium', 'the radioactivity of polonium');
        PRAGMA user_version = 1;
    """)
    db.close()


def test_a_version_1_index_is_upgraded_in_place_and_keeps_its_chunks(tmp_path):
    path = tmp_path / "old.db"
    make_version_1_index(path)
    with pytest.raises(Exception, match=f"schema version 1, not {SCHEMA_VERSION}; `recording-index upgrade` upgrades it"):
        Index(path, readonly=True)
    with Index(path, create=False) as ix:
        assert ix.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
        columns = ix.db["recordings"].columns_dict
        assert "stage_keys" in columns and not {"fingerprint", "translation_fingerprint"} & set(columns)
        assert ix.stage_keys(ix.recording("old-talk")) == {}  # made by code that kept no keys: redone when run
        assert ix.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert ix.integrity_check() == "ok"
        assert [h.recording_id for h in ix.search("polonium", speaker="Curie", date="2017", lang="fr")] == ["old-talk"]
        assert [h.snippet for h in ix.search("radioactive", event="seminaire", lang="en")] == \
            ["the **radioactivity** of polonium"]
        assert [h.snippet for h in ix.search('"du polonium"', lang="fr")] == ["la radioactivité **du polonium**"]
    with Index(path, readonly=True) as ix:
        assert ix.search("polonium")


@pytest.mark.parametrize("query", NASTY_QUERIES)
def test_any_typed_text_searches_without_error(index, query):
    assert isinstance(index.search(query), list)


def test_fts_query_quotes_every_word():
    assert fts_query('"coordination (locale') == '"coordination" "locale"'
    assert fts_query("a AND b") == '"a" "AND" "b"'
    assert fts_query('le "centre de prévention" NEAR') == '"le" "centre de prévention" "NEAR"'
    assert fts_query("* - ( )") == ""


def test_get_and_resolve_by_id_or_source(index):
    rec, segments = index.get("/media/talk-1.mp3")
    assert rec.id == "talk-1" and rec.speakers == ["René-André Brisebois"]
    assert [s.text for s in segments] == TEXTS
    assert segments[2].words[0].text == " L'équipe"
    with pytest.raises(Exception, match="no such recording"):
        index.get("nothing")


def test_re_adding_replaces_rows(index):
    rec = make_recording()
    segs = make_segments(["Un tout autre contenu."])
    index.add(rec, segs, chunks_of(rec.id, segs))
    assert not index.search("coordination")
    assert index.search("contenu")
    assert index.db["segments"].count == 1 and index.db["chunks"].count == 1
    assert index.db["chunks_fts"].count == 1


def test_a_failed_write_leaves_the_previous_rows_whole(index):
    rec = make_recording()
    segs = make_segments(["Nouveau contenu."])
    bad_chunks = [Chunk(rec.id, 0, 0, 1, "Nouveau contenu."), Chunk(rec.id, 0, 1, 2, "doublon d'index")]
    with pytest.raises(sqlite3.IntegrityError):
        index.add(rec, segs, bad_chunks)
    assert [s.text for s in index.get("talk-1")[1]] == TEXTS
    assert index.search("coordination") and not index.search("nouveau")
    assert index.integrity_check() == "ok"


def test_stored_stage_keys_are_those_of_the_same_audio_only(index):
    rec = make_recording()
    assert index.stage_keys(rec) == {"transcribe": "transcribe-1", "chunk": "chunk-1"}
    rec.content_hash = "changed"
    assert index.stage_keys(rec) == {}
    index.db.execute("UPDATE recordings SET stage_keys = '[1, 2]'")  # not what this program writes
    assert index.stage_keys(make_recording()) == {}


def test_failures_are_listed_and_never_hide_indexed_rows(index):
    index.record_failure(make_recording("broken"), "broken.mp3: no audio stream")
    index.record_failure(make_recording(), "talk-1.mp3: no such file")
    rows = {r["id"]: r for r in index.list_recordings()}
    assert rows["broken"]["status"] == "failed" and "no audio stream" in rows["broken"]["error"]
    assert rows["talk-1"]["status"] == "indexed" and index.search("coordination")


def test_opening_a_missing_index_for_reading_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="no index here yet"):
        Index(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Index(path).close()
    sqlite_utils.Database(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(Exception, match="newer than this program"):
        Index(path)


def test_many_tasks_opening_a_new_index_at_once_agree_on_one_schema(tmp_path):
    import threading

    errors = []

    def open_it():
        try:
            Index(tmp_path / "new.db").close()
        except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
            errors.append(repr(exc))

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Index(tmp_path / "new.db") as ix:
        assert ix.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert ix.integrity_check() == "ok"


def test_a_query_in_more_chunks_than_the_ranking_window_lists_the_newest_first(tmp_path, monkeypatch):
    import recording_index.index.search as search_module

    monkeypatch.setattr(search_module, "RANKING_WINDOW", 4)
    with Index(tmp_path / "i.db") as ix:
        for n in range(6):  # talk-0 … talk-5, indexed in that order; "rare" only in the oldest
            segs = make_segments(["commun " * (1 + n % 3) + ("rare" if n == 0 else "ordinaire")])
            ix.add(make_recording(f"talk-{n}", speaker="Ancien" if n < 2 else "Nouveau"), segs, chunks_of(f"talk-{n}", segs))
        newest = ix.search("commun", limit=3, lang="fr")
        assert [h.recording_id for h in newest] == ["talk-5", "talk-4", "talk-3"] and {h.score for h in newest} == {0}
        assert [h.recording_id for h in ix.search("commun", limit=2, offset=2, lang="fr")] == ["talk-3", "talk-2"]
        assert [h.recording_id for h in ix.search("commun rare")] == ["talk-0"]  # few matches: ranked
        # Filters come first: 2 matches of 6, ranked by bm25 (the more "commun", the better).
        ranked = ix.search("commun", speaker="Ancien", lang="fr")
        assert [h.recording_id for h in ranked] == ["talk-1", "talk-0"] and ranked[0].score > ranked[1].score > 0
        ranked = ix.search("commun", recording="talk-4", lang="fr")
        assert [h.recording_id for h in ranked] == ["talk-4"] and ranked[0].score > 0


def test_searching_imports_no_audio_or_http_stack():
    """Dependencies point forward: the index, the command line and the web page load no ffmpeg,
    HTTP client, Whisper or Prefect (a cold `search` stays fast)."""
    import subprocess
    import sys

    code = ("import sys, recording_index.index, recording_index.cli, recording_index.web.app, "
            "recording_index.publish.files; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ffmpeg', 'httpx', 'faster_whisper', "
            "'ctranslate2', 'prefect', 'torch', 'tqdm', 'numpy', 'av', 'onnxruntime', 'whisper', 'requests', "
            "'urllib3', 'imageio_ffmpeg', 'argostranslate', 'yt_dlp', 'pandas') "
            "or m.startswith(('recording_index.ingest', "
            "'recording_index.speech', 'recording_index.english'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_index_writes_the_same_with_numpy_loaded_before_or_after_it(tmp_path):
    """sqlite-utils is imported without numpy when numpy is not loaded yet (a cold search is half as
    long); a run loads the audio stack afterwards: numpy works there, and the index takes its
    float64 times (the words' times come from numpy) as it always did."""
    import subprocess
    import sys

    code = ("import sys, recording_index.index.database as d, numpy; "
            "assert d.sqlite_utils.db.np is None and numpy.zeros(2).sum() == 0; "
            "from recording_index.models import Recording, Segment, Word, Chunk; "
            f"ix = d.Index({str(tmp_path / 'i.db')!r}); "
            "ix.add(Recording('r', 'r.mp3', content_hash='h'), [Segment(0, float(numpy.float64(0.5)), 2.0, 'bonjour', "
            "[Word(numpy.float64(0.5), 1.0, ' bonjour', 0.9)])], [Chunk('r', 0, 0.5, 2.0, 'bonjour')]); "
            "print(len(ix.search('bonjour')))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout.strip() == "1", ran.stderr


def test_count_says_how_many_chunks_search_would_find_up_to_a_cap(tmp_path):
    with Index(tmp_path / "index.db") as ix:
        for n in range(3):
            rec = make_recording(f"talk-{n}", speaker="Ann" if n else "Bob")
            segments = make_segments(TEXTS)
            ix.add(rec, segments, chunks_of(rec.id, segments))
        everything = len(ix.search("coordination", limit=100))
        assert ix.count("coordination") == everything >= 3
        assert ix.count("coordination", speaker="Bob") == len(ix.search("coordination", speaker="Bob", limit=100))
        assert ix.count("coordination", cap=2) == 3  # over the cap: cap + 1, "more than 2"
        assert ix.count("") == ix.count("zzzqqq") == 0


def test_a_run_that_wrote_merges_the_search_tables_once_their_segments_pile_up(tmp_path):
    from recording_index.index.database import MOST_SEARCH_SEGMENTS
    from recording_index.outcomes import Outcome, Status
    from recording_index.config import Settings
    from recording_index.pipeline import after_run

    settings = Settings(cache_dir=str(tmp_path / "cache"))

    def segments(ix, fts="chunks_fts"):
        return ix.db.execute(f"SELECT count(DISTINCT segid) FROM {fts}_idx").fetchone()[0]

    db = tmp_path / "index.db"
    with Index(db) as ix:
        for n in range(MOST_SEARCH_SEGMENTS + 2):  # a write a run: a segment each, until FTS5 merges some
            rec = make_recording(f"talk-{n}")
            segs = make_segments(TEXTS)
            ix.add(rec, segs, chunks_of(rec.id, segs))
        assert segments(ix) > MOST_SEARCH_SEGMENTS
        hits_before = [(h.recording_id, h.chunk_index) for h in ix.search("coordination", limit=50)]
    skipped = [Outcome("talk-0", "", "", Status.SKIPPED)]
    assert after_run(db, skipped, settings) == ""
    with Index(db) as ix:
        assert segments(ix) > MOST_SEARCH_SEGMENTS  # a run that wrote nothing rewrites nothing
    assert after_run(db, skipped + [Outcome("talk-1", "", "", Status.INDEXED)], settings) == ""
    with Index(db) as ix:
        assert segments(ix) == 1 and segments(ix, "chunks_en_fts") <= 1 and segments(ix, "segments_fts") == 1
        assert sorted((h.recording_id, h.chunk_index) for h in ix.search("coordination", limit=50)) == sorted(hits_before)
        assert ix.integrity_check() == "ok"
        assert ix.merge_search_segments() == []  # one segment: nothing to do


def test_a_recording_is_found_by_the_start_of_its_id_or_its_file_s_name(tmp_path):
    with Index(tmp_path / "i.db") as ix:
        for rid in ("actualites-24ddd432", "talk_1", "talk-2"):
            segs = make_segments(["la coordination"])
            ix.add(make_recording(rid), segs, chunks_of(rid, segs))
        assert ix.resolve_id("actualites") == "actualites-24ddd432" and ix.resolve_id("talk-2.mp3") == "talk-2"
        assert ix.resolve_id("talk_") == "talk_1"  # '_' is a character here, not LIKE's wildcard
        with pytest.raises(Exception, match="names several recordings"):
            ix.resolve_id("talk")
        with pytest.raises(Exception, match="no such recording"):
            ix.resolve_id("%")


def test_a_chunk_found_in_both_languages_is_shown_in_french(tmp_path):
    with Index(tmp_path / "i.db") as ix:
        segs = make_segments(["Nous étudions la circulation des voitures."])
        ix.add(make_recording(), segs, [Chunk("talk-1", 0, 0.0, 9.0, segs[0].text,
                                              "We study the circulation flow of circulation and circulation.")])
        (hit,) = ix.search("circulation")
        assert hit.lang == "fr" and "**circulation**" in hit.snippet
        (english,) = ix.search("flow")
        assert english.lang == "en"
