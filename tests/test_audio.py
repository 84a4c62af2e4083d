import wave
from pathlib import Path

import numpy as np
import pytest

from recording_index.ingest import audio
from recording_index.errors import BadInputError, RecordingIndexError

GOOD = ["tone.mp3", "tone.m4a", "tone.aac", "tone.ogg", "tone.opus", "tone.wav", "tone.flac",
        "tone.mp4", "tone.webm", "tone.mkv"]


@pytest.mark.parametrize("name", GOOD)
def test_common_formats_probe_and_normalise_to_16k_mono(name, media_dir, tmp_path, ffmpeg_exe):
    info = audio.probe(media_dir / name, ffmpeg_exe)
    assert info.audio_codec
    assert info.duration == pytest.approx(3.0, abs=0.15)
    wav = audio.normalise(media_dir / name, tmp_path, ffmpeg_exe)
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() / 16000 == pytest.approx(3.0, abs=0.15)
    samples = audio.load_audio(wav)
    assert samples.dtype.name == "float32"
    assert len(samples) == pytest.approx(48000, abs=2400)
    assert 0.1 < abs(samples).max() <= 0.14  # lavfi's sine has amplitude 1/8: scaled, not clipped
    spectrum = np.abs(np.fft.rfft(samples[:32000]))
    assert np.argmax(spectrum) * 16000 / 32000 == pytest.approx(440, abs=2)  # resampled, not sped up


def test_video_is_detected_beside_its_audio(media_dir, ffmpeg_exe):
    assert audio.probe(media_dir / "tone.mp4", ffmpeg_exe).has_video
    assert not audio.probe(media_dir / "tone.mp3", ffmpeg_exe).has_video


@pytest.mark.parametrize("name, cause", [
    ("empty.mp3", "empty file"),
    ("random.mp3", "not a media file"),
    ("text.wav", "not a media file"),
    ("lyrics.mp3", "not a media file (no audio or video stream; read as lrc)"),
    ("video-only.mp4", "no audio stream"),
])
def test_bad_media_fails_with_one_line_naming_file_and_cause(name, cause, media_dir, ffmpeg_exe):
    with pytest.raises(BadInputError) as raised:
        audio.probe(media_dir / name, ffmpeg_exe)
    message = str(raised.value)
    assert str(media_dir / name) in message
    assert cause in message
    assert "\n" not in message


def test_random_bytes_that_ffmpeg_reads_as_video_are_not_media(ffmpeg_exe):
    # 2 KB of random bytes in which this ffmpeg finds an h263 start code ("low score of 25").
    path = Path(__file__).parent / "data" / "random-bytes-read-as-h263.mp3"
    with pytest.raises(BadInputError, match=r"random-bytes-read-as-h263\.mp3: not a media file"):
        audio.probe(path, ffmpeg_exe)


@pytest.mark.parametrize("guess, cause", [
    (dict(format="lrc", audio_codec="", probe_score=5), "not a media file (ffmpeg's best guess, lrc, is unsure)"),
    (dict(format="h263", audio_codec="", has_video=True, probe_score=25),
     "not a media file (ffmpeg's best guess, h263, is unsure)"),
    (dict(format="mp3", audio_codec="mp3", duration=0.0, probe_score=1),
     "not a media file (ffmpeg's best guess, mp3, is unsure)"),
    (dict(format="mov,mp4", audio_codec="", has_video=True), "no audio stream (video only)"),
    (dict(format="lrc", audio_codec=""), "not a media file (no audio or video stream; read as lrc)"),
    (dict(format="wav", audio_codec="pcm_s16le", duration=0.0), "audio stream has no duration (0 seconds)"),
    (dict(format="mp3", audio_codec="mp3", probe_score=1), None),  # an unsure guess that holds audio is used
])
def test_why_a_probed_file_is_unusable(guess, cause):
    info = audio.MediaInfo(**{"path": "x.mp3", "duration": 3.0, "has_video": False, **guess})
    assert audio.unusable(info) == cause


def test_missing_path_and_directory(media_dir, tmp_path, ffmpeg_exe):
    with pytest.raises(BadInputError, match="no such file"):
        audio.probe(tmp_path / "nope.mp3", ffmpeg_exe)
    with pytest.raises(BadInputError, match="is a directory"):
        audio.probe(media_dir, ffmpeg_exe)


def test_truncated_mp3_either_decodes_what_is_there_or_fails_clearly(media_dir, tmp_path, ffmpeg_exe):
    try:
        info = audio.probe(media_dir / "truncated.mp3", ffmpeg_exe)
        wav = audio.normalise(media_dir / "truncated.mp3", tmp_path, ffmpeg_exe)
    except BadInputError as exc:
        assert "truncated.mp3" in str(exc)
    else:
        assert info.duration > 0 and wav.exists()


def test_probe_without_ffprobe_matches_ffprobe_where_both_exist(media_dir, ffmpeg_exe):
    for name in ("tone.mp3", "tone.mkv", "video-only.mp4"):
        parsed = audio._probe_with_ffmpeg(media_dir / name, ffmpeg_exe)
        assert parsed.duration == pytest.approx(3.0, abs=0.15)
        assert bool(parsed.audio_codec) == (name != "video-only.mp4")
        assert parsed.has_video == name.endswith(("mkv", "mp4"))
        ffprobe = audio._ffprobe_beside(ffmpeg_exe)
        if ffprobe:
            probed = audio._probe_with_ffprobe(media_dir / name, ffprobe)
            assert probed.duration == pytest.approx(parsed.duration, abs=0.05)


def test_normalised_file_is_named_by_content_and_by_how_and_reused(media_dir, tmp_path, ffmpeg_exe):
    first = audio.normalise(media_dir / "tone.flac", tmp_path, ffmpeg_exe)
    assert first == audio.normalised_path(tmp_path, audio.file_hash(media_dir / "tone.flac"),
                                          audio.normalisation(ffmpeg_exe, None))
    assert first.stem.startswith(audio.file_hash(media_dir / "tone.flac") + "-")
    mtime = first.stat().st_mtime_ns
    again = audio.normalise(media_dir / "tone.flac", tmp_path, ffmpeg_exe)
    assert again == first and again.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".partial-*"))
    # Another bound on the length decoded is another file, never the first one reused.
    bounded = audio.normalise(media_dir / "tone.flac", tmp_path, ffmpeg_exe, max_seconds=0.5)
    assert bounded != first and audio.decoded_seconds(bounded) == pytest.approx(0.5, abs=0.05)


def test_failed_decode_leaves_no_partial_file(media_dir, tmp_path, ffmpeg_exe):
    with pytest.raises(BadInputError):
        audio.normalise(media_dir / "text.wav", tmp_path, ffmpeg_exe)
    assert list(tmp_path.iterdir()) == []


def test_configured_ffmpeg_must_exist(tmp_path):
    with pytest.raises(RecordingIndexError, match="not an executable"):
        audio.find_ffmpeg(str(tmp_path / "ffmpeg"))


def test_configured_ffmpeg_is_used(ffmpeg_exe):
    assert audio.find_ffmpeg(ffmpeg_exe) == ffmpeg_exe


def bursts_with_gaps(gaps: list[float], total: float) -> np.ndarray:
    """Loud noise everywhere except 0.4 s gaps of near-silence starting at each of `gaps` (seconds)."""
    rng = np.random.default_rng(3)
    samples = (rng.standard_normal(int(total * 16000)) * 8000).astype(np.int16)
    for gap in gaps:
        samples[int(gap * 16000):int((gap + 0.4) * 16000)] //= 400
    return samples


def test_windows_cover_the_audio_once_and_cut_only_in_silence():
    gaps = [52.0, 105.3, 150.7]  # one in the last half minute of each 60 s window
    samples = bursts_with_gaps(gaps, 200.0)
    pieces = list(audio.windows(samples, window_seconds=60))
    starts = [start for start, _ in pieces]
    assert starts[0] == 0 and len(pieces) == 4
    joined = np.concatenate([window for _, window in pieces])
    assert joined.dtype == np.float32 and len(joined) == len(samples)
    assert np.array_equal(joined, samples.astype(np.float32) / 32768)
    for cut, gap in zip(starts[1:], gaps):
        assert gap <= cut <= gap + 0.4, (cut, gap)


def test_a_short_tail_joins_the_last_window_and_short_audio_is_one_window():
    samples = bursts_with_gaps([], 75.0)
    assert [len(w) / 16000 for _, w in audio.windows(samples, window_seconds=60)] == [75.0]
    assert len(list(audio.windows(samples[:16000], window_seconds=60))) == 1
    assert list(audio.windows(samples[:0])) == []


def test_open_audio_reads_only_the_slices_asked_for(media_dir, tmp_path, ffmpeg_exe):
    wav = audio.normalise(media_dir / "tone.wav", tmp_path, ffmpeg_exe)
    samples = audio.open_audio(wav)
    whole = audio.load_audio(wav)
    assert len(samples) == len(whole) and samples.dtype == np.int16
    for part in (slice(0, 100), slice(1000, 1234), slice(len(whole) - 50, len(whole) + 99), slice(-10, None)):
        assert np.array_equal(audio.to_float(samples[part]), whole[part])
    assert len(samples[5:5]) == 0
    assert np.array_equal(np.concatenate([w for _, w in audio.windows(samples, window_seconds=1)]), whole)
