"""Corrections: from an edited subtitle file to a layer over the machine's transcript, kept by re-runs.

The first tests isolate the logic (alignment, application, fit) on hand-made transcripts; the last
ones run the real command line on the sample (real Whisper, a real Argos package, real SQLite)."""

import dataclasses
import json
from pathlib import Path

import pytest

from recording_index.corrections.align import corrections_from_cues, corrections_from_text, tokens_of
from recording_index.corrections.layer import correct_transcript, digest
from recording_index.errors import RecordingIndexError
from recording_index.index.database import Index
from recording_index.models import Correction, Cue, Recording, Segment, Transcript, Word
from recording_index.publish.subtitles import cues_for

ROOT = Path(__file__).resolve().parent.parent


def sentence(index, start, words, english=""):
    """A sentence with one word every 0.5 s from `start` (pieces without a space join the word before)."""
    timed, at = [], start
    for text in words:
        timed.append(Word(at, at + 0.4, text, 0.9))
        at += 0.5
    return Segment(index, timed[0].start, timed[-1].end, "".join(w.text for w in timed).strip(), timed,
                   text_en=english or None)


def talk():
    return [sentence(0, 0.0, [" Bonjour,", " je", " m'", "appelle", " Eric", " Joannis."], "Hello, my name is Eric."),
            sentence(1, 4.0, [" Je", " travaille", " au", " hansard", " du", " Nunavut."], "I work at the Hansard."),
            sentence(2, 8.0, [" Le", " corpus", " est", " bilingue."], "The corpus is bilingual.")]


def edited_cues(segments, change=lambda text: text):
    cues, _ = cues_for(segments, "fr")
    return [dataclasses.replace(c, lines=[change(line) for line in c.lines]) for c in cues]


def apply(segments, corrections, translator="none", retranslate=None):
    ids = [dataclasses.replace(c, id=i + 1) for i, c in enumerate(corrections)]
    return correct_transcript(Transcript(segments, "faster-whisper", "base", "fr"), ids, translator, retranslate), ids


def test_pieces_of_one_written_word_are_one_token():
    tokens = tokens_of(talk(), "fr")
    assert [t.text for t in tokens[:4]] == ["Bonjour,", "je", "m'appelle", "Eric"]
    assert tokens[2].start == 1.0 and tokens[2].end == pytest.approx(1.9)


def test_an_unchanged_file_makes_no_correction_even_with_cues_merged_split_and_nudged():
    segments = talk()
    cues = edited_cues(segments)
    assert corrections_from_cues(segments, cues, "fr", "t") == ([], [])
    merged = [dataclasses.replace(cues[0], end=cues[1].end, lines=cues[0].lines + cues[1].lines), *cues[2:]]
    assert corrections_from_cues(segments, merged, "fr", "t") == ([], [])
    words = " ".join(cues[0].lines).split()
    split = [Cue(1, cues[0].start + 0.3, 1.2, [" ".join(words[:2])]),  # times nudged, cut mid-word-time
             Cue(2, 1.2, cues[0].end, [" ".join(words[2:])]), *cues[1:]]
    assert corrections_from_cues(segments, split, "fr", "t") == ([], [])


def test_a_changed_name_is_a_correction_of_its_words_at_their_time():
    segments = talk()
    cues = edited_cues(segments, lambda t: t.replace("Eric Joannis", "Éric Joanis").replace("hansard", "Hansard"))
    found, replaced = corrections_from_cues(segments, cues, "fr", "t")
    assert replaced == []
    assert [(c.machine_text, c.text, c.start, c.end) for c in found] == [
        ("Eric Joannis.", "Éric Joanis.", 2.0, pytest.approx(2.9)), ("hansard", "Hansard", 5.5, pytest.approx(5.9))]


def test_words_added_and_removed():
    segments = talk()
    cues = edited_cues(segments, lambda t: t.replace("corpus est", "corpus parallèle est").replace("du Nunavut.", ""))
    found, _ = corrections_from_cues(segments, cues, "fr", "t")
    by_text = {c.text: c for c in found}
    assert by_text["parallèle"].start == by_text["parallèle"].end == pytest.approx(8.9)  # between its neighbours
    assert by_text[""].machine_text == "du Nunavut."
    corrected, _ = apply(segments, found)
    texts = [s.text for s in corrected.segments]
    assert texts[1] == "Je travaille au hansard" and texts[2] == "Le corpus parallèle est bilingue."


def test_a_file_of_another_recording_is_refused():
    other = [Cue(1, 0.0, 4.0, ["Rien à voir avec ce qui a été dit ici"]), Cue(2, 4.0, 9.0, ["vraiment rien du tout"])]
    with pytest.raises(RecordingIndexError, match="only .* of its words agree"):
        corrections_from_cues(talk(), other, "fr", "t", "autre.srt")
    with pytest.raises(RecordingIndexError, match="hold none of the recording's words"):
        corrections_from_cues(talk(), [Cue(1, 100.0, 104.0, ["Bonjour"])], "fr", "t", "loin.srt")


def test_corrections_apply_once_whatever_the_input_and_give_the_machine_text_back_when_reverted():
    segments = talk()
    found, _ = corrections_from_cues(segments, edited_cues(segments, lambda t: t.replace("hansard", "Hansard")), "fr", "t")
    first, stored = apply(segments, found)
    assert first.segments[1].text == "Je travaille au Hansard du Nunavut."
    assert first.segments[1].origin == "corrected" and first.segments[1].text_machine == "Je travaille au hansard du Nunavut."
    assert [w.correction for w in first.segments[1].words] == [None, None, None, 1, None, None]
    applied = first.corrections
    assert applied[0].status == "applied" and applied[0].machine_words[0].text == " hansard"
    # A run that reads the corrected transcript back (nothing re-transcribed) finds the same.
    again = correct_transcript(first, applied)
    assert [s.text for s in again.segments] == [s.text for s in first.segments]
    reverted = correct_transcript(first, [dataclasses.replace(applied[0], status="reverted")])
    assert reverted.segments[1].text == "Je travaille au hansard du Nunavut." and reverted.segments[1].origin == "machine"
    assert all(w.correction is None for s in reverted.segments for w in s.words)


def test_a_new_transcript_keeps_a_correction_whose_words_moved_a_little_and_reports_one_that_moved_away():
    segments = talk()
    found, _ = corrections_from_cues(segments, edited_cues(segments, lambda t: t.replace("hansard", "Hansard")), "fr", "t")
    _, stored = apply(segments, found)

    def shifted(by):
        moved = talk()
        for s in moved:
            s.words = [dataclasses.replace(w, start=w.start + by, end=w.end + by) for w in s.words]
            s.words[3:4] = [dataclasses.replace(s.words[3], text=" an-saur")] if s.index == 1 else s.words[3:4]
        return moved

    near = correct_transcript(Transcript(shifted(0.2), "faster-whisper", "base", "fr"), stored)
    assert near.segments[1].text == "Je travaille au Hansard du Nunavut."
    assert near.corrections[0].machine_text == "an-saur"  # what the new transcript had there
    far = correct_transcript(Transcript(shifted(1.7), "faster-whisper", "base", "fr"), stored)
    assert "Hansard" not in far.segments[1].text
    assert far.corrections[0].status == "unfit" and "other words" in far.corrections[0].note  # kept, says why


def test_corrected_french_is_translated_again_by_argos_and_marked_stale_with_whisper():
    segments = talk()
    found, _ = corrections_from_cues(segments, edited_cues(segments, lambda t: t.replace("Eric Joannis", "Éric Joanis")), "fr", "t")
    seen = []

    def retranslate(chosen):
        seen.extend(s.text for s in chosen)
        for s in chosen:
            s.text_en = "EN:" + s.text

    argos, _ = apply(talk(), found, "argos", retranslate)
    assert seen == ["Bonjour, je m'appelle Éric Joanis."]
    assert argos.segments[0].text_en == "EN:Bonjour, je m'appelle Éric Joanis." and argos.segments[0].origin_en == "retranslated"
    assert argos.segments[0].text_en_machine == "Hello, my name is Eric."
    assert argos.segments[1].origin_en == "machine"
    whisper, _ = apply(talk(), found, "whisper")
    assert whisper.segments[0].text_en == "Hello, my name is Eric." and whisper.segments[0].origin_en == "stale"


def test_an_english_correction_replaces_its_sentence_and_wins_over_the_translation():
    segments = talk()
    found, _ = corrections_from_text(segments, 1, "I work on the Nunavut Hansard.", "en", "t")
    assert [(c.lang, c.start, c.end) for c in found] == [("en", 4.0, pytest.approx(6.9))]
    corrected, _ = apply(segments, [dataclasses.replace(found[0], by="Anne", at="2026-11-25T10:00:00Z")])
    s = corrected.segments[1]
    assert (s.text_en, s.origin_en, s.text_en_machine, s.corrected_by) == (
        "I work on the Nunavut Hansard.", "corrected", "I work at the Hansard.", "Anne")
    # English cues edited in a file: the same, sentence by sentence.
    cues, _ = cues_for(segments, "en")
    cues = [dataclasses.replace(c, lines=[line.replace("bilingual", "in two languages") for line in c.lines]) for c in cues]
    from_file, _ = corrections_from_cues(segments, cues, "en", "t")
    assert [c.text for c in from_file] == ["The corpus is in two languages."]


def test_an_edit_over_an_earlier_correction_replaces_it_whole():
    segments = talk()
    found, _ = corrections_from_cues(segments, edited_cues(segments, lambda t: t.replace("Eric Joannis", "Éric Joannis")), "fr", "t")
    first, stored = apply(segments, found)
    assert [(c.machine_text, c.text) for c in first.corrections] == [("Eric", "Éric")]
    again, replaced = corrections_from_text(first.segments, 0, "Bonjour, je m'appelle Éric-Joanis.", "fr", "t")
    assert replaced == [1]
    assert [(c.machine_text, c.text) for c in again] == [("Éric Joannis.", "Éric-Joanis.")]
    # Stored, the new one replaces the first, and applies over the machine's words.
    second, _ = apply(first.segments, [dataclasses.replace(first.corrections[0], status="replaced"), *again])
    assert second.segments[0].text == "Bonjour, je m'appelle Éric-Joanis."
    assert second.corrections[1].machine_text == "Eric Joannis."


def test_the_digest_changes_with_what_people_ask_not_with_what_applying_found():
    c = Correction(1, "t", "fr", 1.0, 2.0, "Hansard", by="Anne", at="2026-11-25T10:00:00Z")
    assert digest([c]) == digest([dataclasses.replace(c, status="applied", machine_text="hansard")])
    assert digest([c]) != digest([dataclasses.replace(c, status="reverted")]) != digest([])
    assert digest([c]) != digest([dataclasses.replace(c, text="HANSARD")])


def test_the_index_keeps_corrections_across_writes_and_marks_replaced_english(tmp_path):
    with Index(tmp_path / "index.db") as index:
        rec = Recording(id="t", source="/x.mp3", content_hash="h")
        index.add(rec, talk(), [])
        ids = index.add_corrections([Correction(0, "t", "en", 4.0, 6.9, "First.", by="A", at="2026-01-01T00:00:00Z")])
        newer = index.add_corrections([Correction(0, "t", "en", 4.0, 6.9, "Second.", by="B", at="2026-01-02T00:00:00Z")])
        index.add(rec, talk(), [])  # a run replaces the machine's rows, never the corrections
        stored = {c.id: c for c in index.corrections("t")}
        assert stored[ids[0]].status == "replaced" and stored[ids[0]].note == f"replaced by #{newer[0]}"
        assert stored[newer[0]].text == "Second." and stored[newer[0]].status == "new"
        assert index.revert_corrections("t", [newer[0], 999]) == [newer[0]]
        assert index.integrity_check() == "ok"


# --- the real thing: the sample, indexed, its subtitles edited as a person would -------------------

@pytest.fixture(scope="module")
def indexed(tmp_path_factory, cache_dir, tiny_argos_file):
    """The demo catalog indexed with a real (tiny) Argos package: corrected French is translated again."""
    from test_end_to_end import run_cli

    folder = tmp_path_factory.mktemp("corrections")
    env = {**__import__("os").environ, "RECORDING_INDEX_CACHE_DIR": str(cache_dir),
           "ARGOS_PACKAGES_DIR": str(folder / "argos")}
    assert run_cli("models", "install", "--from", str(tiny_argos_file), env=env).returncode == 0
    db = folder / "index.db"
    result = run_cli("run", "--catalog", "config/demo.toml", "--db", str(db), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return db, env


def heard_as(segments, said, moment):
    """The machine's word for the word `said` at `moment`: the likest of those spoken within 1.5 s."""
    from difflib import SequenceMatcher

    near = [w for s in segments for w in s["words"] if abs(w["start"] - moment) <= 1.5]
    return max(near, key=lambda w: SequenceMatcher(None, w["text"].strip().lower(), said).ratio())


def edit_as_a_person(path: Path, changes: dict[float, str], merge_after: int) -> Path:
    """The SRT at `path` with the word spoken nearest each time replaced, and two cues merged into one."""
    import srt

    cues = list(srt.parse(path.read_text(encoding="utf-8")))
    for (moment, word), new in changes.items():
        cue = min(cues, key=lambda c: max(c.start.total_seconds() - moment, moment - c.end.total_seconds(), 0))
        assert word in cue.content, (word, cue.content)
        cue.content = cue.content.replace(word, new, 1)
    first, second = cues[merge_after], cues[merge_after + 1]
    merged = srt.Subtitle(first.index, first.start, second.end, first.content + "\n" + second.content)
    cues[merge_after:merge_after + 2] = [merged]
    edited = path.with_name("edited.fr.srt")
    edited.write_text(srt.compose(cues), encoding="utf-8")
    return edited


@pytest.mark.slow
def test_corrections_from_an_edited_file_are_found_kept_by_re_runs_and_reverted(indexed, aligned_words, tmp_path):
    from test_end_to_end import phrase_time, run_cli

    db, env = indexed
    machine = json.loads(run_cli("transcript", "ej-fra", "--format", "json", "--db", str(db), env=env).stdout)
    said = {"programmeuse": "programmeur", "Hansard": "hansard"}  # a word fixed (or changed), a name fixed
    spoken = {new: phrase_time(aligned_words, old) for new, old in said.items()}
    changes = {}
    for new, moment in spoken.items():
        word = heard_as(machine["segments"], said[new], moment)
        changes[((word["start"] + word["end"]) / 2, word["text"].strip())] = new
    edited = edit_as_a_person(db.parent / "subtitles" / "ej-fra.fr.srt", changes, merge_after=3)

    result = run_cli("correct", "ej-fra", "--from", str(edited), "--by", "Anne Relectrice", "--db", str(db), env=env)
    assert result.returncode == 0, result.stderr
    assert "programmeuse" in result.stdout and "rebuilt: correct, chunk, subtitles" in result.stderr

    def found(word):
        hits = json.loads(run_cli("search", word, "--db", str(db), "--json", env=env).stdout)
        assert hits, word
        assert hits[0]["moment"] == pytest.approx(spoken[word], abs=2.0)
        return hits[0]

    hit = found("programmeuse")
    assert (hit["origin"], hit["corrected_by"], hit["origin_en"]) == ("corrected", "Anne Relectrice", "retranslated")
    assert hit["corrected_at"].startswith("20") and "programmeuse" in hit["sentence_fr"]
    found("Hansard")
    text = run_cli("transcript", "ej-fra", "--db", str(db), env=env).stdout
    assert "programmeuse" in text and "Hansard" in text
    data = json.loads(run_cli("transcript", "ej-fra", "--format", "json", "--db", str(db), env=env).stdout)
    corrected = [s for s in data["segments"] if "programmeuse" in s["text"]]
    assert corrected[0]["origin"] == "corrected" and "programmeuse" not in corrected[0]["text_machine"]
    assert "programmeuse" in (db.parent / "subtitles" / "ej-fra.fr.srt").read_text(encoding="utf-8")
    assert run_cli("correct", "ej-fra", "--from", str(edited), "--db", str(db), env=env).stderr.strip().endswith(
        "no change from the transcript")  # imported twice: nothing new

    # A re-run that re-transcribes with other decoding settings, then one that translates again.
    settings = tmp_path / "settings.toml"
    settings.write_text("beam_size = 2\nbatch_size = 0\n")
    again = run_cli("--config", str(settings), "run", "--catalog", "config/demo.toml", "--db", str(db), "--json", env=env)
    summary = json.loads(again.stdout[again.stdout.index("{"):])
    assert summary["indexed"] == 1, again.stderr[-2000:]
    retranslated = run_cli("--config", str(settings), "run", "--catalog", "config/demo.toml", "--db", str(db),
                           "--retranslate", "--json", env=env)
    summary = json.loads(retranslated.stdout[retranslated.stdout.index("{"):])
    assert summary["outcomes"][0]["stages"] == ["translate", "correct", "chunk", "subtitles"]
    listed = json.loads(run_cli("corrections", "ej-fra", "--json", "--db", str(db), env=env).stdout)
    assert listed and {c["status"] for c in listed} == {"applied"} and not summary["outcomes"][0]["warning"]
    found("programmeuse")
    found("Hansard")
    with Index(db) as index:
        assert index.integrity_check() == "ok"

    # Reverted: the machine's words come back; the correction is kept, marked.
    ours = next(c for c in listed if c["text"] == "programmeuse")
    reverted = run_cli("corrections", "ej-fra", "--revert", str(ours["id"]), "--db", str(db), env=env)
    assert reverted.returncode == 0 and f"#{ours['id']}: reverted" in reverted.stderr
    assert json.loads(run_cli("search", "programmeuse", "--db", str(db), "--json", env=env).stdout) == []
    everything = json.loads(run_cli("corrections", "ej-fra", "--all", "--json", "--db", str(db), env=env).stdout)
    assert {c["id"]: c["status"] for c in everything}[ours["id"]] == "reverted"
    exported = tmp_path / "corrections.json"
    run_cli("corrections", "ej-fra", "--export", str(exported), "--db", str(db), env=env)
    assert len(json.loads(exported.read_text())["corrections"]) == len(everything)


@pytest.mark.slow
def test_english_corrections_and_a_wrong_file(indexed, tmp_path):
    from test_end_to_end import run_cli

    db, env = indexed
    english = (db.parent / "subtitles" / "ej-fra.en.srt").read_text(encoding="utf-8")
    import srt

    cues = list(srt.parse(english))
    cues[0].content = "Hello, I am Éric Joanis, from the NRC."
    path = tmp_path / "talk.en.srt"
    path.write_text(srt.compose(cues), encoding="utf-8")
    result = run_cli("correct", "ej-fra", "--from", str(path), "--db", str(db), "--json", env=env)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)["corrections"]
    assert [c["lang"] for c in stored] == ["en"] and stored[0]["text"].startswith("Hello, I am Éric Joanis, from the NRC.")
    hits = json.loads(run_cli("search", "NRC", "--lang", "en", "--db", str(db), "--json", env=env).stdout)
    assert hits and hits[0]["origin_en"] == "corrected" and hits[0]["moment"] < 3.0

    wrong = tmp_path / "other.fr.srt"
    wrong.write_text("1\n00:00:01,000 --> 00:00:04,000\nRien de ce qui a été dit là, vraiment rien du tout.\n")
    refused = run_cli("correct", "ej-fra", "--from", str(wrong), "--db", str(db), env=env)
    assert refused.returncode == 2 and refused.stderr.startswith(f"error: {wrong}: only ")
    garbage = tmp_path / "garbage.srt"
    garbage.write_bytes(b"\xff\xfe\x00garbage")
    assert run_cli("correct", "ej-fra", "--from", str(garbage), "--db", str(db), env=env).stderr.startswith(
        f"error: {garbage}: ")


@pytest.mark.parametrize("machine, text, initial, names", [
    ("hansard", "Hansard", False, ["Hansard"]),
    ("Eric Joannis.", "Éric Joanis.", True, ["Éric Joanis"]),  # a name of two words opening the sentence
    ("Bonjour", "Salut", True, []),  # a sentence's first word is capitalised anyway
    ("résal", "RÉSAL", True, ["RÉSAL"]),
    ("au CNRC", "du CNRC", False, []),  # the machine had it as written already
    ("la prévention", "la Prévention de la criminalité", False, ["Prévention"]),
])
def test_names_people_corrected(machine, text, initial, names):
    from recording_index.corrections.vocabulary import names_in

    assert names_in(Correction(1, "t", "fr", 0.0, 1.0, text, machine_text=machine), initial) == names


def test_suggestions_go_to_the_event_s_catalog_vocabulary_when_accepted(tmp_path):
    from recording_index.config import load_catalog
    from recording_index.corrections.vocabulary import accept, suggestions

    with Index(tmp_path / "index.db") as index:
        rec = Recording(id="t", source="/x.mp3", content_hash="h", event="Séminaire 2018", speakers=["Eric Joannis"])
        found, _ = corrections_from_cues(talk(), edited_cues(talk(), lambda t: t.replace("hansard", "Hansard")), "fr", "t")
        index.add(rec, talk(), [])
        ids = index.add_corrections(found)
        applied, _ = apply(talk(), [dataclasses.replace(c, id=i) for c, i in zip(found, ids)])
        index.add(rec, applied.segments, [], corrections=applied.corrections)
        offered = suggestions(index)
    assert [(s.term, s.event, s.recordings) for s in offered] == [("Hansard", "Séminaire 2018", ["t"])]
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('# Our seminars\n[[events]]\ntitle = "Séminaire 2018"  # the title as announced\n'
                       'source = "talk.mp3"\nvocabulary = ["RÉSAL"]\n')
    assert accept(catalog, offered) == [("events[1]", "Hansard")]
    assert "# the title as announced" in catalog.read_text()  # the person's comments are kept
    assert load_catalog(str(catalog)).recordings[0].vocabulary == ["RÉSAL", "Hansard"]
    assert accept(catalog, offered) == []  # there already


def test_control_characters_a_person_types_or_pastes_are_never_stored():
    found, _ = corrections_from_text(talk(), 1, "Je travaille au \x1b[31mHansard\x00 du Nunavut.", "fr", "t")
    assert [(c.machine_text, c.text) for c in found] == [("hansard", "[31mHansard")]
    english, _ = corrections_from_text(talk(), 2, "The\x07 corpus\r\nis in two languages.", "en", "t")
    assert english[0].text == "The corpus is in two languages."


def rebuilt(transcript, corrections):
    """What the next rebuild makes of a corrected transcript read back (and with what status)."""
    return correct_transcript(transcript, corrections)


def test_a_deletion_is_kept_by_the_next_rebuild_and_reverted_word_for_word():
    segments = talk()
    found, _ = corrections_from_text(segments, 2, "Le corpus est", "fr", "t")
    first, _ = apply(segments, found)
    assert first.segments[2].text == "Le corpus est" and first.corrections[0].machine_text == "bilingue."
    again = rebuilt(first, first.corrections)
    assert again.segments[2].text == "Le corpus est" and again.corrections[0].status == "applied"
    back = rebuilt(again, [dataclasses.replace(again.corrections[0], status="reverted")])
    assert [s.text for s in back.segments] == [s.text for s in talk()]
    assert [(s.start, s.end) for s in back.segments] == [(s.start, s.end) for s in talk()]


def test_a_whole_sentence_deleted_stays_a_row_and_comes_back_in_place():
    segments = talk()
    cues = edited_cues(segments, lambda line: "" if "hansard" in line else line)  # the line deleted
    found, _ = corrections_from_cues(segments, cues, "fr", "t")
    first, _ = apply(segments, found)
    texts = [(s.text, s.origin, s.text_en) for s in first.segments]
    assert texts[1] == ("", "corrected", "") and texts[0][0] == talk()[0].text and texts[2][0] == talk()[2].text
    assert first.segments[1].text_machine == "Je travaille au hansard du Nunavut."
    back = rebuilt(rebuilt(first, first.corrections), [dataclasses.replace(c, status="reverted") for c in first.corrections])
    assert [(s.text, s.text_en) for s in back.segments] == [(s.text, s.text_en) for s in talk()]


def test_a_correction_across_two_sentences_changes_both_and_reverts_to_both():
    segments = talk()
    cues = edited_cues(segments, lambda t: t.replace("Nunavut.", "Nunavut, le").replace("Le corpus", "corpus"))
    found, _ = corrections_from_cues(segments, cues, "fr", "t")
    first, _ = apply(segments, found)
    assert " ".join(s.text for s in first.segments if s.text).endswith("du Nunavut, le corpus est bilingue.")
    assert {s.index for s in first.segments if s.origin == "corrected"} == {1, 2}
    back = rebuilt(first, [dataclasses.replace(c, status="reverted") for c in first.corrections])
    assert [s.text for s in back.segments] == [s.text for s in talk()]


def test_an_unchanged_excerpt_changes_nothing_even_in_continuous_speech():
    segments = talk()
    for s in segments[1:]:  # no pause between sentences: the next one starts 0.1 s after
        shift = s.start - (segments[s.index - 1].end + 0.1)
        s.words = [dataclasses.replace(w, start=w.start - shift, end=w.end - shift) for w in s.words]
        s.start, s.end = s.words[0].start, s.words[-1].end
    excerpt = [Cue(1, segments[1].start, segments[1].end, [segments[1].text])]  # the middle sentence alone
    assert corrections_from_cues(segments, excerpt, "fr", "t") == ([], [])
    changed = [Cue(1, segments[1].start, segments[1].end, [segments[1].text.replace("hansard", "Hansard")])]
    assert [c.text for c in corrections_from_cues(segments, changed, "fr", "t")[0]] == ["Hansard"]


def test_a_word_whisper_timed_with_no_length_is_replaced_not_duplicated():
    segments = talk()
    word = segments[1].words[3]
    segments[1].words[3] = dataclasses.replace(word, end=word.start)
    found, _ = corrections_from_text(segments, 1, "Je travaille au Hansard du Nunavut.", "fr", "t")
    corrected, _ = apply(segments, found)
    assert corrected.segments[1].text == "Je travaille au Hansard du Nunavut."


def test_a_rebuild_writes_where_and_as_the_run_wrote(tmp_path):
    """A run with --output-dir out --output-format txt: a correction then rewrites out/*.txt, nothing else."""
    from recording_index import stages
    from recording_index.config import Settings
    from recording_index.edits import correct_sentence
    from recording_index.pipeline import publish_subtitles
    from recording_index.models import Transcript as T

    db, out = tmp_path / "index.db", tmp_path / "out"
    run = Settings(cache_dir=str(tmp_path / "cache"), translator="none", subtitles_dir=str(out), output_format="txt")
    facts = stages.Facts("h", "base", "", "none", "none", False)
    with Index(db) as ix:
        rec = Recording(id="t", source="/x.mp3", content_hash="h")
        ix.add(rec, talk(), [], settings=stages.record(run, facts), stage_keys=stages.keys(run, facts))
    publish_subtitles(db, rec, T(talk(), "faster-whisper", "base", "fr"), run)
    published = sorted(p.name for p in out.iterdir())
    assert published == ["t.en.txt", "t.fr.txt"]
    later = Settings(cache_dir=str(tmp_path / "cache"), translator="none")  # the settings file's defaults
    correct_sentence(db, "t", 1, "Je travaille au Hansard du Nunavut.", "fr", later)
    assert "Hansard" in (out / "t.fr.txt").read_text() and sorted(p.name for p in out.iterdir()) == published
    assert not (tmp_path / "subtitles").exists()


@pytest.mark.parametrize("cues, message", [
    ("1\n00:00:05,000 --> 00:00:03,000\nBonjour, je m'appelle\n", "cue 1 (0:00:05 → 0:00:03) ends before it starts"),
    ("1\n05:00:00,000 --> 05:00:02,000\nBonjour\n", "cue 1 (5:00:00 → 5:00:02) ends after the recording (0:00:34)"),
    ("1\n00:00:00,000 --> 99999999:00:02,000\nBonjour\n", "ends after the recording"),
])
def test_cues_that_end_before_they_start_or_lie_beyond_the_recording_are_refused(tmp_path, cues, message):
    from recording_index import stages
    from recording_index.config import Settings
    from recording_index.edits import correct_from_file

    db = tmp_path / "index.db"
    run = Settings(cache_dir=str(tmp_path / "cache"), translator="none")
    facts = stages.Facts("h", "base", "", "none", "none", False)
    with Index(db) as ix:
        ix.add(Recording(id="t", source="/x.mp3", content_hash="h", duration=34.0), talk(), [],
               settings=stages.record(run, facts), stage_keys=stages.keys(run, facts))
    (tmp_path / "t.fr.srt").write_text(cues)
    with pytest.raises(RecordingIndexError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        correct_from_file(db, "t", tmp_path / "t.fr.srt", run)
    assert "t.fr.srt" in str(refused.value) and "\n" not in str(refused.value)
    with Index(db, readonly=True) as ix:
        assert ix.corrections("t") == []


@pytest.mark.parametrize("text", ["\x00\x01\x1b", "\u202e\u200b\u2066", " \x7f\u200d "])
def test_an_edit_of_invisible_characters_alone_is_refused_as_empty(tmp_path, text):
    from recording_index import stages
    from recording_index.config import Settings
    from recording_index.edits import correct_sentence

    db = tmp_path / "index.db"
    run = Settings(cache_dir=str(tmp_path / "cache"), translator="none")
    facts = stages.Facts("h", "base", "", "none", "none", False)
    with Index(db) as ix:
        ix.add(Recording(id="t", source="/x.mp3", content_hash="h"), talk(), [],
               settings=stages.record(run, facts), stage_keys=stages.keys(run, facts))
    with pytest.raises(RecordingIndexError, match="a sentence of 1 to"):
        correct_sentence(db, "t", 0, text, "fr", run)
    correct_sentence(db, "t", 1, "Je\u202e travaille\u200b au Hansard du Nunavut.", "fr", run)
    with Index(db, readonly=True) as ix:
        stored = [c.text for c in ix.corrections("t")]
        assert stored and all(text.isprintable() and "\u200b" not in text for text in stored), stored


def hour_of_talk():
    """An hour of speech: a sentence of eight words every 5 s."""
    words = ["la", "coordination", "des", "acteurs", "locaux", "est", "essentielle", "ici"]
    return [sentence(n, n * 5.0, [f" {w}{n % 7 if i == 7 else ''}" for i, w in enumerate(words)]) for n in range(720)]


def test_an_edited_hour_is_compared_a_stretch_at_a_time_and_a_cue_of_impossible_speech_is_refused():
    """The comparison grows with the square of the words compared at once: an hour's file is compared
    two minutes at a time (a 19-MB file of one word ran for more than ten minutes before)."""
    from recording_index.corrections import align

    segments = hour_of_talk()
    cues = edited_cues(segments, lambda text: text.replace("coordination", "concertation"))
    found, _ = corrections_from_cues(segments, cues, "fr", "talk", "hour.fr.srt")
    assert len(found) == 720 and {c.text for c in found} == {"concertation"}
    compared = []
    real = align.SequenceMatcher

    def counting(junk, old, new, autojunk):
        compared.append(len(old) * len(new))
        return real(junk, old, new, autojunk=autojunk)

    import unittest.mock
    with unittest.mock.patch.object(align, "SequenceMatcher", counting):
        corrections_from_cues(segments, cues, "fr", "talk", "hour.fr.srt")
    assert len(compared) >= 30 and max(compared) < 250 ** 2  # stretches, never the hour against itself
    flood = [Cue(1, 10.0, 12.0, ["bonjour " * 100_000])]
    with pytest.raises(RecordingIndexError, match="cue 1 holds more words than can be said in its 2.0 s"):
        corrections_from_cues(segments, flood, "fr", "talk", "flood.fr.srt")
    one_word = [Cue(n + 1, n * 2.0, n * 2.0 + 2.0, ["bonjour " * 25]) for n in range(1800)]  # the hour, one word
    with pytest.raises(RecordingIndexError, match="agree with the recording's transcript"):
        corrections_from_cues(segments, one_word, "fr", "talk", "one-word.fr.srt")
