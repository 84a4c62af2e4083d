"""Both engines on real French speech, with the same embedded weights."""

import pytest

from recording_index.ingest import audio
from recording_index.evaluation import word_error_rate
from recording_index.speech.transcribe import load_engine, transcribe

# Measured on the sample: 0.24 (faster-whisper int8) and 0.25 (openai-whisper float32), the errors
# being mostly proper nouns and acronyms (Joanis, CNRC, Hansard, Nunavut, inuktitut, ReadAlong).
# The bound leaves room for thread scheduling and library updates, not for a broken pipeline
# (a wrong language, lost words or a loop give 0.6 and more).
WER_BOUND = 0.35

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_audio(sample_mp3, cache_dir):
    return audio.load_audio(audio.normalise(sample_mp3, cache_dir / "audio"))


@pytest.fixture(scope="module")
def faster_segments(sample_audio, settings):
    return list(transcribe(sample_audio, load_engine(settings), "fr", progress=False))


def check_segments(segments, duration):
    assert [s.index for s in segments] == list(range(len(segments)))
    previous_end = 0.0
    for s in segments:
        assert 0 <= s.start < s.end <= duration + 0.5
        assert s.start >= previous_end - 0.5
        previous_end = s.end
        assert s.words and s.text
        for w in s.words:
            assert s.start - 0.5 <= w.start <= w.end <= s.end + 0.5
            assert 0 <= w.probability <= 1


def test_faster_whisper_transcribes_french_with_word_times(faster_segments, sample_reference, sample_audio):
    check_segments(faster_segments, len(sample_audio) / 16000)
    assert word_error_rate(sample_reference, " ".join(s.text for s in faster_segments)) < WER_BOUND


@pytest.mark.parametrize("word", ["traduction", "bilingue", "neuronale", "parallèle"])
def test_word_times_agree_with_forced_alignment(faster_segments, aligned_words, word):
    reference = dict(aligned_words)[word]
    heard = {w.text.strip(" ,.").lower(): w.start for s in faster_segments for w in s.words}
    assert heard[word] == pytest.approx(reference, abs=0.5)


def test_long_audio_is_transcribed_window_by_window_with_whole_recording_times(sample_mp3, cache_dir, settings,
                                                                               aligned_words, sample_reference,
                                                                               monkeypatch):
    monkeypatch.setattr(audio, "WINDOW_SECONDS", 12.0)  # the 34 s sample in windows, as hours would be
    samples = audio.open_audio(audio.normalise(sample_mp3, cache_dir / "audio"))
    assert len(list(audio.windows(samples))) >= 3
    segments = list(transcribe(samples, load_engine(settings), "fr", progress=False))
    check_segments(segments, len(samples) / 16000)
    assert segments[-1].end > 25  # times count from the recording's start, not the window's
    assert word_error_rate(sample_reference, " ".join(s.text for s in segments)) < WER_BOUND
    heard = {w.text.strip(" ,.").lower(): w.start for s in segments for w in s.words}
    assert heard["parallèle"] == pytest.approx(dict(aligned_words)["parallèle"], abs=0.5)


@pytest.mark.parametrize("window", [audio.WINDOW_SECONDS, 12.0])  # one window of two VAD chunks; three windows
def test_english_decoded_with_the_french_equals_a_separate_translation_pass(sample_mp3, cache_dir, settings,
                                                                            window, monkeypatch):
    from recording_index.speech.transcribe import windowed_segments

    monkeypatch.setattr(audio, "WINDOW_SECONDS", window)
    samples = audio.open_audio(audio.normalise(sample_mp3, cache_dir / "audio"))
    engine = load_engine(settings)
    assert engine.shares_encoder  # faster-whisper, batched (the default settings)
    separate = list(windowed_segments(samples, engine, "fr", task="translate"))
    english = []
    french = list(transcribe(samples, engine, "fr", progress=False, english=english))
    assert [s.text for s in english] == [s.text for s in separate] and len(english) >= 2
    assert "programmer" in " ".join(s.text for s in english).lower()  # English, not French again
    assert [s.index for s in english] == list(range(len(english)))
    for shared, alone in zip(english, separate):
        assert 0 <= shared.start < shared.end <= 35 and max(shared.start, alone.start) < min(shared.end, alone.end)
    assert [s.text for s in french] == [s.text for s in transcribe(samples, engine, "fr", progress=False)]


def test_progress_bar_counts_audio_seconds(sample_audio, settings, capsys):
    list(transcribe(sample_audio, load_engine(settings), "fr", progress=True, label="sample"))
    err = capsys.readouterr().err
    assert "sample" in err and "34/34 s audio" in err


def test_openai_whisper_on_converted_weights_matches_faster_whisper(sample_audio, settings, faster_segments,
                                                                    sample_reference):
    pytest.importorskip("whisper")
    engine = load_engine(settings.replace(engine="openai-whisper"))
    segments = list(transcribe(sample_audio, engine, "fr", progress=False))
    check_segments(segments, len(sample_audio) / 16000)
    reference_wer = word_error_rate(sample_reference, " ".join(s.text for s in segments))
    faster_wer = word_error_rate(sample_reference, " ".join(s.text for s in faster_segments))
    assert reference_wer < WER_BOUND
    assert abs(reference_wer - faster_wer) < 0.1
    # Same weights, same words: the two transcripts are close to each other.
    assert word_error_rate(" ".join(s.text for s in faster_segments), " ".join(s.text for s in segments)) < 0.2


def test_an_engine_decodes_with_the_options_of_each_call_and_loads_its_weights_once(settings):
    """The weights are shared; beam size, batch size and VAD are those of the settings asked with."""
    from recording_index.speech.transcribe import load_engine

    first = load_engine(settings.replace(beam_size=5, batch_size=4, vad=True))
    second = load_engine(settings.replace(beam_size=1, batch_size=0, vad=False))
    assert second.model is first.model
    assert (second.settings.beam_size, second.settings.batch_size, second.settings.vad) == (1, 0, False)
    assert first.shares_encoder and not second.shares_encoder




@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
def test_a_prompt_is_not_written_out_over_tone_and_silence(engine, sample_mp3, cache_dir, settings, ffmpeg_exe, tmp_path):
    """Decoding without voice activity detection (`vad = false`, openai-whisper), Whisper
    writes the prompt's event title over 30 s of tone and silence before the talk (seen here before
    the guard); the words no one says are taken out, the speaker's are kept."""
    if engine == "openai-whisper":
        pytest.importorskip("whisper")
    import subprocess

    quiet = tmp_path / "quiet.wav"
    subprocess.run([ffmpeg_exe, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
                    "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=20", "-i", str(sample_mp3), "-filter_complex",
                    "[0:a]aresample=16000,aformat=channel_layouts=mono[a];[1:a]aformat=channel_layouts=mono[b];"
                    "[2:a]aresample=16000,aformat=channel_layouts=mono[c];[a][b][c]concat=n=3:v=0:a=1",
                    "-ar", "16000", "-ac", "1", str(quiet)], check=True)
    prompt = ("CNRC, ReadAlong-Studio, hansard du Nunavut, inuktitut, langues autochtones. Éric Joanis. "
              "Séminaire du CNRC sur les langues autochtones.")
    decoding = load_engine(settings.replace(engine=engine, vad=False))  # batch_size as it is: no VAD, no batches
    assert not decoding.skips_silence
    segments = list(transcribe(audio.load_audio(quiet), decoding, "fr", progress=False, prompt=prompt))
    text = " ".join(s.text for s in segments)
    assert "Séminaire" not in text and "Joanis" in text
    assert segments[0].start > 29.0  # the talk starts at 30 s
    assert [s.index for s in segments] == list(range(len(segments)))
