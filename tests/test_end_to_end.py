"""The whole product on real speech: `recording-index run` (the Prefect flow on Prefect's ephemeral
API), real ffmpeg, the embedded Whisper weights, SQLite; then search it as a user would."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recording_index.evaluation import word_error_rate
from conftest import SHARED_SPEECH
from test_transcribe import WER_BOUND

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "recording_index.cli"]

pytestmark = pytest.mark.slow


def phrase_time(aligned_words, phrase):
    """When the reference alignment has the speaker start `phrase` (its words in sequence)."""
    wanted = phrase.lower().split()
    words = [w.lower() for w, _ in aligned_words]
    for i in range(len(words) - len(wanted) + 1):
        if words[i:i + len(wanted)] == wanted:
            return aligned_words[i][1]
    raise AssertionError(f"{phrase!r} is not in the reference alignment")


def run_cli(*args, env):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def env(cache_dir, tmp_path_factory):
    """A user's environment: the shared model cache, and no Argos package installed."""
    return {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(cache_dir),
            "ARGOS_PACKAGES_DIR": str(tmp_path_factory.mktemp("no-argos"))}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, env, media_dir):
    db = tmp_path_factory.mktemp("e2e") / "index.db"
    result = run_cli("run", "--catalog", "config/demo.toml", str(media_dir / "random.mp3"),
                     str(media_dir / "missing.mp3"), "--db", str(db), "-v", env=env)  # -v: Prefect's logs too
    return db, result


def test_bad_recordings_fail_clearly_while_the_good_one_is_indexed(first_run, media_dir):
    db, result = first_run
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"FAILED {media_dir / 'random.mp3'}: not a media file" in result.stderr
    assert f"{media_dir / 'missing.mp3'}: no such file" in result.stderr
    assert "1 indexed, 0 skipped (unchanged), 2 failed" in result.stdout


def test_transcript_word_error_rate(first_run, env, sample_reference):
    db, _ = first_run
    data = json.loads(run_cli("transcript", "ej-fra", "--db", str(db), "--format", "json", env=env).stdout)
    assert data["recording"]["title"] == "Présentation d'Éric Joanis (ReadAlongs sample)"
    assert data["recording"]["duration"] == pytest.approx(34.1, abs=0.2)
    hypothesis = " ".join(s["text"] for s in data["segments"])
    # The demo catalog names the speaker and five terms of the talk: Whisper is given them (issue 18).
    assert word_error_rate(sample_reference, hypothesis) <= 0.12
    assert "Éric Joanis" in hypothesis


def test_segments_are_sentences_of_at_most_15_seconds(first_run, env):
    db, _ = first_run
    data = json.loads(run_cli("transcript", "ej-fra", "--db", str(db), "--format", "json", env=env).stdout)
    segments = data["segments"]
    assert len(segments) >= 6 and all(s["end"] - s["start"] <= 15.0 for s in segments)
    assert sum(s["text"].rstrip().endswith((".", "?", "!")) for s in segments) >= len(segments) - 1
    # The speaker the catalog names keeps its spelling in the English too (Whisper writes "Eric Joannis").
    assert any("Éric Joanis" in (s["text_en"] or "") for s in segments)


# With common words beside the telling ones ("the", "a", "of"): the sentence that holds them all wins.
@pytest.mark.parametrize("english, french", [("deep learning", "apprentissage"), ("natural language", "langage"),
                                             ("the deep learning", "apprentissage"),
                                             ("a body of bilingual", "corpus")])
def test_an_english_hit_opens_at_the_sentence_that_says_it(first_run, env, aligned_words, english, french):
    db, _ = first_run
    hits = json.loads(run_cli("search", english, "--lang", "en", "--db", str(db), "--json", env=env).stdout)
    assert hits and hits[0]["lang"] == "en"
    assert hits[0]["moment"] == pytest.approx(phrase_time(aligned_words, french), abs=4.0)
    # Beside the hit, the sentence's French: the one that says it, not the chunk's first.
    assert french in hits[0]["sentence_fr"].lower() and len(hits[0]["sentence_fr"]) < len(hits[0]["text_fr"])


# "apprentissage" alone: with the packages resolved on 2026-11-25 Whisper base hears "apprentissage
# profonde", which no French search for "profond" matches (no stemming on the French side).
@pytest.mark.parametrize("phrase", ["traduction automatique", "corpus bilingue", "apprentissage",
                                    "traitement du langage naturel"])
def test_search_finds_the_chunk_that_holds_the_phrase(first_run, env, aligned_words, phrase):
    db, _ = first_run
    result = run_cli("search", phrase, "--db", str(db), "--json", env=env)
    hits = json.loads(result.stdout)
    assert hits, result.stderr
    top = hits[0]
    said_at = phrase_time(aligned_words, phrase)
    assert top["start"] <= said_at <= top["end"]
    assert top["moment"] == pytest.approx(said_at, abs=0.6)
    assert top["recording_id"] == "ej-fra" and top["speakers"] == ["Éric Joanis"]
    assert top["url"].endswith(f"data/sample/ej-fra.mp3#t={top['moment']:.1f}")


def test_second_run_transcribes_nothing_and_index_is_whole(first_run, env):
    db, _ = first_run
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT indexed_at, stage_keys FROM recordings").fetchall()
    result = run_cli("run", "--catalog", "config/demo.toml", "--db", str(db), "--json", "-v", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert (summary["indexed"], summary["skipped"], summary["failed"]) == (0, 1, 0)
    assert [(o["stages"], o["transcription"]) for o in summary["outcomes"]] == [([], "")]
    # Decided before Prefect starts: a run with nothing to do starts no API server and no flow run.
    assert "Beginning flow run" not in result.stderr and "Beginning flow run" in first_run[1].stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT indexed_at, stage_keys FROM recordings").fetchall() == before  # not rewritten
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM chunks WHERE recording_id = 'ej-fra'").fetchone()[0] == 2


def test_list_shows_indexed_and_failed(first_run, env):
    db, _ = first_run
    rows = json.loads(run_cli("list", "--db", str(db), "--json", env=env).stdout)
    assert sorted(r["status"] for r in rows) == ["failed", "failed", "indexed"]


def test_english_comes_from_whisper_offline_and_is_searchable(first_run, env):
    db, result = first_run
    assert result.stderr.count("no Argos fr→en package installed") == 1
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT text_en FROM chunks WHERE recording_id = 'ej-fra'").fetchall()
        engines = conn.execute("SELECT DISTINCT translation_engine FROM segments").fetchall()
    assert rows and all(text and text.strip() for (text,) in rows)
    assert engines == [("whisper",)]
    # His job, asked in English: the French transcript misheard it, Whisper's English has it.
    hits = json.loads(run_cli("search", "programmer", "--lang", "en", "--db", str(db), "--json", env=env).stdout)
    assert hits and hits[0]["lang"] == "en" and "programmer" in hits[0]["text_en"].lower()
    assert hits[0]["start"] <= 2.9 <= hits[0]["end"]  # "programmeur" is said at 2.95 s
    both = json.loads(run_cli("search", "programmer", "--db", str(db), "--json", env=env).stdout)
    assert both[0]["chunk_index"] == hits[0]["chunk_index"]
    text = run_cli("transcript", "ej-fra", "--lang", "both", "--db", str(db), env=env).stdout
    assert "Bonjour" in text and "Hello" in text


@pytest.fixture(scope="module")
def argos_env(env, tmp_path_factory, tiny_argos_file):
    argos_env = {**env, "ARGOS_PACKAGES_DIR": str(tmp_path_factory.mktemp("argos"))}
    result = run_cli("models", "install", "--from", str(tiny_argos_file), env=argos_env)
    assert result.returncode == 0, result.stderr
    assert "installed Argos fr→en 0.1" in result.stdout
    return argos_env


def test_argos_then_whisper_then_argos_again_redo_only_the_english(argos_env, tmp_path):
    db = str(tmp_path / "index.db")
    listed = run_cli("models", "list", "--json", env=argos_env)
    assert any(r["kind"] == "argos" and r["name"] == "fr→en 0.1" for r in json.loads(listed.stdout))

    first = run_cli("run", "--catalog", "config/demo.toml", "--db", db, "--json", env=argos_env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "no Argos" not in first.stderr
    with sqlite3.connect(db) as conn:
        segments = conn.execute("SELECT text_en, translation_engine, translation_model FROM segments").fetchall()
        chunks = conn.execute("SELECT text_en FROM chunks").fetchall()
        recording = conn.execute("SELECT translation_engine, translation_model FROM recordings").fetchone()
    assert all(isinstance(text, str) for text, _, _ in segments)  # every segment has a string, maybe empty
    assert {(engine, model) for _, engine, model in segments} == {("argos", "argos:fr-en@0.1")}
    assert all(text.strip() for (text,) in chunks)
    assert recording == ("argos", "argos:fr-en@0.1")

    with sqlite3.connect(db) as conn:
        words = conn.execute("SELECT * FROM words ORDER BY segment_idx, idx").fetchall()
    switched = run_cli("run", "--catalog", "config/demo.toml", "--db", db, "--json", "--translator", "whisper",
                       env=argos_env)
    summary = json.loads(switched.stdout[switched.stdout.index("{"):])
    assert (summary["indexed"], summary["redone"]) == (0, 1)
    assert [(o["stages"], o["transcription"]) for o in summary["outcomes"]] == [
        (["translate", "correct", "chunk", "subtitles"], "")]  # the transcript is not redone
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT * FROM words ORDER BY segment_idx, idx").fetchall() == words
        assert conn.execute("SELECT DISTINCT translation_engine FROM segments").fetchall() == [("whisper",)]
        assert conn.execute("SELECT count(*) FROM words").fetchone()[0] > 50  # the transcript is kept whole

    forced = run_cli("run", "--catalog", "config/demo.toml", "--db", db, "--json", "--retranslate", env=argos_env)
    summary = json.loads(forced.stdout[forced.stdout.index("{"):])
    assert summary["redone"] == 1 and summary["outcomes"][0]["stages"] == ["translate", "correct", "chunk", "subtitles"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT DISTINCT translation_engine FROM segments").fetchall() == [("argos",)]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_run_publishes_subtitles_that_parse_and_pass_the_checker(first_run, env):
    import io

    import srt
    import webvtt

    db, _ = first_run
    folder = db.parent / "subtitles"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["ej-fra.en.srt", "ej-fra.en.tsv", "ej-fra.en.txt", "ej-fra.en.vtt", "ej-fra.fr-en.vtt",
                     "ej-fra.fr.srt", "ej-fra.fr.tsv", "ej-fra.fr.txt", "ej-fra.fr.vtt",
                     "ej-fra.json"]  # whisper's output formats, "all"
    plain = (folder / "ej-fra.fr.txt").read_text(encoding="utf-8").splitlines()
    published = json.loads((folder / "ej-fra.json").read_text(encoding="utf-8"))
    assert plain == [s["text"] for s in published["segments"]] and published["language"] == "fr"
    assert published["text"] == " ".join(plain) and published["recording_id"] == "ej-fra"
    for lang in ("fr", "en"):
        parsed = list(srt.parse((folder / f"ej-fra.{lang}.srt").read_text(encoding="utf-8")))
        assert len(parsed) >= 5 and parsed[0].start.total_seconds() >= 0.4  # not before the first word
        vtt = webvtt.from_buffer(io.StringIO((folder / f"ej-fra.{lang}.vtt").read_text(encoding="utf-8")))
        assert len(vtt) == len(parsed)
    check = run_cli("subtitles", "--check", str(folder / "ej-fra.fr.srt"), str(folder / "ej-fra.en.srt"),
                    str(folder / "ej-fra.fr.vtt"), str(folder / "ej-fra.en.vtt"), env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 violation(s)" in check.stderr
    bilingual = run_cli("subtitles", "--check", "--bilingual", str(folder / "ej-fra.fr-en.vtt"), env=env)
    assert bilingual.returncode == 0, bilingual.stdout
    made = run_cli("subtitles", "ej-fra", "--lang", "en", "--format", "vtt", "--db", str(db), env=env)
    assert made.stdout == (folder / "ej-fra.en.vtt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def event_site(sample_mp3):
    from http_server import LocalServer

    with LocalServer() as server:
        server.site.files["/media/presentation.mp3"] = (sample_mp3.read_bytes(), "audio/mpeg")
        clip = SHARED_SPEECH / "picovoice-test-fr" / "test_fr.wav"
        server.site.files["/media/lecture.wav"] = (clip.read_bytes() if clip.exists() else sample_mp3.read_bytes(),
                                                   "audio/wav")
        server.site.pages["/seminaires/2018.html"] = """<html><body>
            <h1>Séminaire du midi</h1>
            <h2>Partie 1 : présentation</h2><audio controls><source src="../media/presentation.mp3"></audio>
            <p><a href="/media/lecture.wav">Partie 2 : lecture</a> — <a href="/media/perdu.mp3">Partie 3</a></p>
            </body></html>"""
        yield server


def test_run_on_an_event_page_indexes_every_recording_with_its_title(event_site, env, tmp_path):
    db = str(tmp_path / "index.db")
    page = event_site.url("/seminaires/2018.html")
    result = run_cli("run", page, "--db", db, "--json", env=env)
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert result.returncode == 1, result.stderr[-3000:]
    by_title = {o["title"]: o for o in summary["outcomes"]}
    assert by_title["Partie 1 : présentation"]["status"] == "indexed"
    assert by_title["Partie 2 : lecture"]["status"] == "indexed"
    assert by_title["Partie 3"]["status"] == "failed"
    assert by_title["Partie 3"]["error"] == f"{event_site.url('/media/perdu.mp3')}: HTTP 404 Not Found"
    hits = json.loads(run_cli("search", "traduction automatique", "--db", db, "--json", env=env).stdout)
    assert hits[0]["title"] == "Partie 1 : présentation"
    assert hits[0]["url"] == event_site.url("/media/presentation.mp3") + f"#t={hits[0]['moment']:.1f}"

    before = len(event_site.site.answers)
    again = run_cli("run", page, "--db", db, "--json", env=env)
    summary = json.loads(again.stdout[again.stdout.index("{"):])
    assert sorted(o["status"] for o in summary["outcomes"]) == ["failed", "skipped", "skipped"], [(o["title"], o["stages"]) for o in summary["outcomes"]]
    # Each request of the re-run for the media was conditional (answered 304): not downloaded again.
    # Counted from the re-run alone: a first run may retry a request that hiccuped (it did once in CI).
    answered = [status for path, status in event_site.site.answers[before:] if path == "/media/presentation.mp3"]
    assert answered and set(answered) == {304}, answered


def test_transcript_in_whisper_s_formats(first_run, env):
    db, _ = first_run
    data = json.loads(run_cli("transcript", "ej-fra", "--format", "json", "--lang", "en", "--db", str(db), env=env).stdout)
    assert data["language"] == "en" and data["segments"][0]["text"] == data["segments"][0]["text_en"]
    assert data["segments"][0]["text_fr"].startswith("Bonjour") and data["text"].startswith("Hello")
    plain = run_cli("transcript", "ej-fra", "--format", "txt", "--db", str(db), env=env).stdout
    assert plain.splitlines()[0].startswith("Bonjour") and "[" not in plain and "#" not in plain
    rows = run_cli("transcript", "ej-fra", "--format", "tsv", "--db", str(db), env=env).stdout.splitlines()
    assert rows[0] == "start\tend\ttext" and all(len(r.split("\t")) == 3 for r in rows)
    assert int(rows[1].split("\t")[0]) == round(data["segments"][0]["start"] * 1000)
    srt_text = run_cli("transcript", "ej-fra", "--format", "srt", "--db", str(db), env=env).stdout
    assert srt_text.startswith("1\n00:00:00,")
    timed = run_cli("transcript", "ej-fra", "--db", str(db), env=env).stdout
    assert timed.startswith("# Présentation") and "[0:00:00 → " in timed
    both = run_cli("transcript", "ej-fra", "--format", "txt", "--lang", "both", "--db", str(db), env=env)
    assert both.returncode == 2 and "one language" in both.stderr


def test_whisper_s_options_on_run_override_the_settings_for_that_run(first_run, env, tmp_path):
    db, _ = first_run
    out = tmp_path / "out"
    result = run_cli("run", "--catalog", "config/demo.toml", "--db", str(db), "--output-dir", str(out),
                     "--output-format", "txt", "--json", env=env)
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["outcomes"][0]["stages"] == ["subtitles"]  # the transcript is current: only the files
    assert sorted(p.name for p in out.iterdir()) == ["ej-fra.en.txt", "ej-fra.fr.txt"]
    bad = run_cli("run", "--catalog", "config/demo.toml", "--db", str(db), "--beam-size", "0", "--dry-run", env=env)
    assert bad.returncode == 2 and "--beam-size" in bad.stderr


def test_a_file_named_on_the_command_line_gives_its_name_to_its_files(first_run, sample_mp3, env, tmp_path):
    """As whisper: `run "Conférence 1.mp3" --output-dir out --output-format tsv` writes out/Conférence 1.fr.tsv."""
    talk = tmp_path / "Conférence 1.mp3"
    shutil.copy(sample_mp3, talk)
    out = tmp_path / "out"
    result = run_cli("run", str(talk), "--db", str(tmp_path / "index.db"), "--output-dir", str(out),
                     "--output-format", "tsv", env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["Conférence 1.en.tsv", "Conférence 1.fr.tsv"]
    header, first, *rest = (out / "Conférence 1.fr.tsv").read_text(encoding="utf-8").splitlines()
    start, end, text = first.split("\t")
    assert header == "start\tend\ttext" and 0 <= int(start) < int(end) and text and rest


def test_a_run_says_one_line_a_recording_and_prefect_s_logs_only_when_asked(first_run, env, tmp_path):
    db, _ = first_run
    missing = tmp_path / "absent.mp3"
    quiet = run_cli("run", str(missing), "--db", str(db), env=env)
    assert quiet.returncode == 1
    assert [line for line in quiet.stderr.splitlines() if "absent.mp3" in line] == [
        f"FAILED {missing}: no such file"]  # once, not three times
    assert "Task run" not in quiet.stderr and "View at" not in quiet.stderr
    verbose = run_cli("run", str(missing), "--db", str(db), "-v", env=env)
    assert "Flow run" in verbose.stderr and verbose.returncode == 1
    summary_only = run_cli("run", "--catalog", "config/demo.toml", "--db", str(db), "-q", env=env)
    assert summary_only.stderr == "" and summary_only.stdout.startswith("0 indexed")
