import io

import pytest
import srt
import webvtt
from click.testing import CliRunner

from recording_index.cli import main
from recording_index.models import Cue, Segment, Word
from recording_index.publish.files import check, parse, to_srt, to_vtt
from recording_index.timing import spread_words
from recording_index.publish.subtitles import SubtitleRules, break_lines, build_cues, cues_for

RULES = SubtitleRules()


def speech(text, start=0.0, rate=0.3, pauses=None):
    """Timed words: one every `rate` seconds, with extra silence after the words listed in `pauses`."""
    words, at = [], start
    for n, token in enumerate(text.split()):
        words.append(Word(at, at + rate * 0.8, " " + token, 0.9))
        at += rate + (pauses or {}).get(n, 0.0)
    return words


def assert_rules_hold(cues, words, bilingual=False):
    for k, cue in enumerate(cues):
        assert 1 <= len(cue.lines) <= RULES.max_lines * (2 if bilingual else 1)
        assert all(len(line) <= RULES.max_chars for line in cue.lines), cue.lines
        assert cue.end - cue.start <= RULES.max_duration + 1e-6
        if k + 1 < len(cues):
            assert cues[k + 1].start - cue.end >= RULES.min_gap - 1e-6
    spoken = {w.start for w in words}
    assert all(cue.start in spoken for cue in cues)  # a cue starts when its first word is said, never before


TALK = ("La coordination est un facteur de succès. Nous allons voir comment créer des conditions gagnantes "
        "pour les acteurs locaux, et comment évaluer les processus de coordination dans les quartiers. "
        "Merci à tous d'être venus si nombreux aujourd'hui à Montréal.")


def test_cues_keep_every_word_in_order_and_follow_the_rules():
    words = speech(TALK, rate=0.5, pauses={6: 1.0})  # about 14 characters a second: the rules can hold
    cues, report = build_cues(words)
    assert_rules_hold(cues, words)
    assert " ".join(" ".join(c.lines) for c in cues).split() == TALK.split()
    assert report.cues == len(cues) and not report.too_fast


def test_cues_cut_at_sentence_ends_first():
    words = speech(TALK, rate=0.35)
    cues, _ = build_cues(words)
    assert " ".join(cues[0].lines).endswith("succès.")
    assert any(" ".join(c.lines).endswith("quartiers.") for c in cues)


def test_a_long_pause_ends_a_cue_and_short_cues_extend_into_silence():
    words = speech("Bonjour. Voilà", rate=0.3, pauses={0: 3.0})
    cues, report = build_cues(words)
    assert [" ".join(c.lines) for c in cues] == ["Bonjour.", "Voilà"]
    assert cues[0].end - cues[0].start == pytest.approx(RULES.min_duration)  # 0.24 s of speech, shown 5/6 s
    assert not report.too_short


def test_too_fast_speech_is_reported_not_forced():
    words = speech(TALK, rate=0.08)  # about 60 characters per second
    cues, report = build_cues(words)
    assert_rules_hold(cues, words)
    assert report.too_fast
    assert set(report.too_fast) == {v.cue for v in check(cues) if v.rule == "speed"}
    assert all(v.unavoidable for v in check(cues))


def test_line_breaks_are_balanced_without_orphans_or_dangling_articles():
    lines = break_lines("Nous allons voir comment créer des conditions gagnantes pour les acteurs", RULES)
    assert len(lines) == 2 and all(len(line) <= 42 for line in lines)
    assert abs(len(lines[0]) - len(lines[1])) < 20
    last_words = [line.split()[-1] for line in lines]
    assert not set(last_words) & {"des", "pour", "les", "la", "de"}
    assert break_lines("Merci.", RULES) == ["Merci."]
    assert break_lines("x" * 90, RULES) is None  # one word longer than two lines cannot fit


def test_english_cues_from_segment_text_and_bilingual_cues():
    segments = [Segment(0, 0.0, 4.0, "Bonjour, je suis programmeur au centre.", words=speech(
        "Bonjour, je suis programmeur au centre.", rate=0.6), text_en="Hello, I am a programmer at the centre."),
        Segment(1, 5.0, 9.0, "La coordination compte.", words=speech("La coordination compte.", 5.0, rate=1.2),
                text_en="Coordination matters.")]
    en, _ = cues_for(segments, "en")
    assert " ".join(" ".join(c.lines) for c in en).split() == "Hello, I am a programmer at the centre. Coordination matters.".split()
    both, _ = cues_for(segments, "fr", bilingual=True)
    assert both[0].lines[0].startswith("Bonjour") and any("Hello" in line for line in both[0].lines)
    assert "Coordination matters." in both[-1].lines
    assert not [v for v in check(both, bilingual=True) if not v.unavoidable]


def test_spread_words_covers_the_segment():
    words = spread_words("one three fives", 2.0, 5.0)
    assert words[0].start == 2.0 and words[-1].end == pytest.approx(5.0)
    assert words[1].end - words[1].start > words[0].end - words[0].start


def test_srt_and_vtt_parse_with_standard_parsers():
    cues = [Cue(1, 1.5, 3.25, ["Bonjour <script>alert(1)</script> & merci", "deuxième ligne"]),
            Cue(2, 3.5, 3661.001, ["fin --> ici"])]
    parsed = list(srt.parse(to_srt(cues)))
    assert [(p.start.total_seconds(), p.end.total_seconds()) for p in parsed] == [(1.5, 3.25), (3.5, 3661.001)]
    assert parsed[0].content == "Bonjour <script>alert(1)</script> & merci\ndeuxième ligne"
    vtt = webvtt.from_buffer(io.StringIO(to_vtt(cues, "fr")))
    assert [c.start for c in vtt] == ["00:00:01.500", "00:00:03.500"]
    # The file keeps markup escaped, so a browser's <track> shows it as text and runs nothing.
    assert vtt[0].text == "Bonjour &lt;script&gt;alert(1)&lt;/script&gt; &amp; merci\ndeuxième ligne"
    assert "&lt;script&gt;" in to_vtt(cues) and "fin --&gt; ici" in to_vtt(cues)
    assert [c.lines for c in parse(to_vtt(cues))] == [c.lines for c in cues]
    assert [(c.start, c.end, c.lines) for c in parse(to_srt(cues))] == [(c.start, c.end, c.lines) for c in cues]


BAD_SRT = """1
00:00:01,000 --> 00:00:01,300
Trop court.

2
00:00:01,320 --> 00:00:09,000
Une ligne bien trop longue pour tenir dans quarante-deux caractères
deux
trois

3
00:00:08,500 --> 00:00:10,000
Chevauche.
"""


def test_checker_names_each_violation_with_cue_and_time(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_text(BAD_SRT, encoding="utf-8")
    result = CliRunner().invoke(main, ["subtitles", "--check", str(path)])
    assert result.exit_code == 1
    out = result.output
    assert "cue 1 at 00:00:01.000: 0.30 s < 0.83 s" in out
    assert "cue 2 at 00:00:01.320: 3 lines > 2" in out
    assert "line of 67 characters > 42" in out
    assert "cue 2 at 00:00:01.320: 7.68 s > 7.00 s" in out
    assert "overlaps cue 3 by 0.500 s" in out
    assert "gap before cue 2" not in out and "20 ms before cue 2 < 83 ms" in out


def test_a_file_that_is_no_subtitle_does_not_stop_the_check_of_the_others(tmp_path):
    clean = tmp_path / "talk.fr.vtt"
    clean.write_text(to_vtt([Cue(1, 0, 2, ["Bonjour à tous."])]), encoding="utf-8")
    (tmp_path / "talk.fr.tsv").write_text("start\tend\ttext\n0\t2000\tBonjour à tous.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["subtitles", "--check", str(tmp_path / "talk.fr.tsv"), str(clean)])
    assert result.exit_code == 2
    assert "talk.fr.tsv" in result.output and f"{clean}: 0 violation(s)" in result.output


def test_checker_passes_a_clean_file_and_counts_unavoidable_speed(tmp_path):
    clean = tmp_path / "clean.vtt"
    clean.write_text(to_vtt([Cue(1, 0, 2, ["Bonjour à tous."]), Cue(2, 2.1, 4, ["Merci."])]), encoding="utf-8")
    assert CliRunner().invoke(main, ["subtitles", "--check", str(clean)]).exit_code == 0
    fast = tmp_path / "fast.srt"
    fast.write_text(to_srt([Cue(1, 0, 1, ["Une phrase dite bien trop vite"]), Cue(2, 1.084, 3, ["Suite."])]))
    result = CliRunner().invoke(main, ["subtitles", "--check", str(fast)])
    assert result.exit_code == 0 and "unavoidable" in result.output
    assert CliRunner().invoke(main, ["subtitles", "--check", str(fast), "--strict"]).exit_code == 1


def test_bilingual_vtt_marks_the_english_lines_for_players_and_the_checker():
    cue = Cue(1, 0.0, 3.0, ["Bonjour.", "Hello, and welcome to this", "seminar on crime prevention."], main_lines=1)
    text = to_vtt([cue])
    assert "\nBonjour.\n<lang en>Hello, and welcome to this</lang>\n" in text
    parsed = parse(text)[0]
    assert parsed.lines == cue.lines and parsed.main_lines == 1
    vtt = webvtt.from_buffer(io.StringIO(text))
    assert vtt[0].text.startswith("Bonjour.")
    # 8 French characters and 54 English ones in 3 s: the English decides (18 cps), not the sum.
    assert [v.message for v in check([parsed], bilingual=True)] == ["reading speed 18.0 cps > 17"]
    assert [v.message for v in check([parsed])] == ["reading speed 18.0 cps > 17"]  # told by the marks


@pytest.mark.parametrize("garbage", ["hello\nworld\n", "1\nnot a time\ntext\n", "WEBVTT\n\nnonsense --> here\nx\n", ""])
def test_check_refuses_a_file_that_is_no_subtitles(tmp_path, garbage):
    from recording_index.errors import RecordingIndexError
    from recording_index.publish.files import check_file

    path = tmp_path / "garbage.srt"
    path.write_text(garbage)
    with pytest.raises(RecordingIndexError) as raised:
        check_file(path)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_check_reports_cues_out_of_order(tmp_path):
    from recording_index.publish.files import check_file

    path = tmp_path / "order.srt"
    path.write_text("1\n00:00:05,000 --> 00:00:07,000\nSecond\n\n2\n00:00:01,000 --> 00:00:03,000\nFirst\n")
    assert [v.rule for v in check_file(path) if v.rule == "order"] == ["order"]


def test_bilingual_srt_sets_the_english_in_italics_and_passes_the_checker_unaided(tmp_path):
    """`subtitles ID --bilingual --format srt`, then `subtitles --check` on it without --bilingual:
    the italic lines are the second language, judged as a subtitle of their own."""
    import srt

    from recording_index.publish.files import to_srt

    cue = Cue(1, 0.0, 6.0, ["Je suis programmeur", "au centre.", "I am a programmer", "at the centre."], main_lines=2)
    text = to_srt([cue])
    assert "\nau centre.\n<i>I am a programmer</i>\n<i>at the centre.</i>\n" in text
    assert list(srt.parse(text))[0].content.count("<i>") == 2  # a real SRT parser reads it
    parsed = parse(text)[0]
    assert parsed.lines == cue.lines and parsed.main_lines == 2
    assert check([parsed]) == []  # four lines, two per language: no violation
    (tmp_path / "talk.fr-en.srt").write_text(text)
    result = CliRunner().invoke(main, ["subtitles", "--check", str(tmp_path / "talk.fr-en.srt")])
    assert result.exit_code == 0, result.output
    lone = Cue(1, 0.0, 6.0, ["<i>An aside</i>", "in italics"], None)  # italics that are not the last lines
    assert parse(to_srt([lone]))[0].main_lines is None


def test_files_are_named_after_the_recording_s_file_as_whisper_names_them(tmp_path):
    from recording_index.config import load_catalog
    from recording_index.ingest.sources import recording_for_path
    from recording_index.publish.files import published_name, subtitle_files

    talk = tmp_path / "Conférence du 28 février.mp3"
    talk.write_bytes(b"")
    assert published_name(recording_for_path(str(talk))) == "Conférence du 28 février"  # whisper's name
    url = "https://media.example.org/2018/part%201.mp3?X-Amz-Signature=abc"
    assert published_name(recording_for_path(url)) == "part 1"
    # A video site's page has no file name of its own; a hidden or invisible name is no plain one.
    assert published_name(recording_for_path("https://www.youtube.com/watch?v=abc")).startswith("watch-")
    for odd in (".hidden.mp3", "a\u202etxt.mp3", "x" * 101 + ".mp3"):
        assert published_name(recording_for_path(str(tmp_path / odd))) == recording_for_path(str(tmp_path / odd)).id
    # A catalog that names a recording names its files.
    (tmp_path / "catalog.toml").write_text(f'[[recordings]]\nid = "day-1"\nsource = "{talk}"\n')
    (named,) = load_catalog(tmp_path / "catalog.toml").recordings
    assert published_name(named) == "day-1"
    names = [path.name for path, _, _ in subtitle_files(tmp_path, published_name(named), output_format="tsv")]
    assert names == ["day-1.fr.tsv", "day-1.en.tsv"]


def test_two_recordings_of_a_run_whose_files_would_share_a_name_are_not_both_indexed(tmp_path):
    from recording_index import pipeline
    from recording_index.ingest.sources import Resolved

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "talk.mp3").write_bytes(b"")
    sources = pipeline.collect([str(tmp_path / "a" / "talk.mp3"), str(tmp_path / "b" / "talk.mp3")])
    recordings, failed = pipeline.distinct(sources, [Resolved([s]) for s in sources])
    assert [r.source for r in recordings] == [str(tmp_path / "a" / "talk.mp3")]
    (refused,) = failed
    assert refused.source == str(tmp_path / "b" / "talk.mp3") and "talk.*" in refused.error
    assert str(tmp_path / "a" / "talk.mp3") in refused.error and "\n" not in refused.error
    dry = CliRunner().invoke(main, ["run", str(tmp_path / "a" / "talk.mp3"), str(tmp_path / "b" / "talk.mp3"),
                                    "--db", str(tmp_path / "index.db"), "--dry-run"])
    assert dry.exit_code == 1 and dry.output.count("would fail") == 2  # the second's name; the first is no audio
    assert "talk.*" in dry.output.splitlines()[-1] and not (tmp_path / "index.db").exists()
