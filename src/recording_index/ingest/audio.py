"""ffmpeg: find it, probe a file, normalise its audio to 16 kHz mono PCM."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import ffmpeg  # ffmpeg-python
import numpy as np

from recording_index.errors import BadInputError, RecordingIndexError
from recording_index.safety import open_regular, replacing

SAMPLE_RATE = 16000


@dataclass
class MediaInfo:
    path: str
    format: str
    duration: float
    audio_codec: str
    has_video: bool
    probe_score: int = 100  # ffmpeg's confidence in `format`, 0 to 100
    sample_rate: int = 0  # of the audio stream, as its header declares (0: unknown)


# At this score or below ffmpeg itself warns "misdetection possible" (its AVPROBE_SCORE_RETRY).
UNSURE_PROBE_SCORE = 25
# Below this no speech can be heard; a header declaring 1 Hz once made a 213-KB file into 3.4 GB
# of 16-kHz samples and minutes of CPU.
MIN_SAMPLE_RATE = 2000


@lru_cache(maxsize=None)
def find_ffmpeg(configured: str = "") -> str:
    """The ffmpeg to run: the configured one, else the system's, else the binary imageio-ffmpeg ships."""
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise RecordingIndexError(f"ffmpeg: configured path {configured} is not an executable file")
        return configured
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RecordingIndexError("ffmpeg: not found; install it (apt-get install ffmpeg) or pip install imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffprobe_beside(ffmpeg_exe: str) -> str | None:
    candidate = Path(ffmpeg_exe).with_name("ffprobe")
    if candidate.is_file():
        return str(candidate)
    return shutil.which("ffprobe") if shutil.which("ffmpeg") == ffmpeg_exe else None


def probe(path: str | Path, ffmpeg_exe: str | None = None, max_hours: float | None = None) -> MediaInfo:
    """Describe a media file; raise BadInputError when it is empty, not media, has no audio, or
    declares more than `max_hours` of it."""
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise BadInputError(name, "no such file")
    if path.is_dir():
        raise BadInputError(name, "is a directory, not a media file")
    if path.stat().st_size == 0:
        raise BadInputError(name, "empty file (0 bytes)")
    ffmpeg_exe = ffmpeg_exe or find_ffmpeg()
    ffprobe = _ffprobe_beside(ffmpeg_exe)
    info = _probe_with_ffprobe(path, ffprobe) if ffprobe else _probe_with_ffmpeg(path, ffmpeg_exe)
    if problem := unusable(info):
        raise BadInputError(name, problem)
    if max_hours and info.duration > max_hours * 3600:
        raise BadInputError(name, f"declares {info.duration / 3600:.1f} h of audio, more than max_hours = {max_hours:g}")
    return info


def unusable(info: MediaInfo) -> str | None:
    """Why a probed file holds no audio to transcribe, in a few words; None when it does."""
    if info.audio_codec and 0 < info.sample_rate < MIN_SAMPLE_RATE:
        return f"audio declared at {info.sample_rate} Hz: no speech can be heard below {MIN_SAMPLE_RATE} Hz"
    if info.audio_codec and info.duration > 0:
        return None
    # ffmpeg guesses a format for any bytes: of 2,000 files of random bytes, 7 read as "lrc" lyrics,
    # 2 as raw h263 or vvc video and 1 as audio of no length, each with a low score. Such a guess
    # says nothing about what the file is meant to be.
    if info.probe_score <= UNSURE_PROBE_SCORE:
        return f"not a media file (ffmpeg's best guess, {info.format or 'none'}, is unsure)"
    if not info.audio_codec and info.has_video:
        return "no audio stream (video only)"
    if not info.audio_codec:
        return f"not a media file (no audio or video stream; read as {info.format or 'unknown'})"
    return "audio stream has no duration (0 seconds)"


def _probe_with_ffprobe(path: Path, ffprobe: str) -> MediaInfo:
    try:
        data = ffmpeg.probe(str(path), cmd=ffprobe)
    except ffmpeg.Error as exc:
        raise BadInputError(str(path), f"not a media file ({_last_line(exc.stderr)})") from None
    streams = data.get("streams", [])
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    container = data.get("format", {})
    return MediaInfo(
        path=str(path),
        format=container.get("format_name", ""),
        duration=float(container.get("duration") or (audio or {}).get("duration") or 0),
        audio_codec=(audio or {}).get("codec_name", ""),
        has_video=any(s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
                      for s in streams),
        probe_score=int(container.get("probe_score", 100)),
        sample_rate=int((audio or {}).get("sample_rate") or 0),
    )


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_INPUT = re.compile(r"Input #0, ([^,]+(?:,[^,]+)*?), from")
_AUDIO = re.compile(r"Stream #0:\d+.*?: Audio: (\w+)(?:.*?, (\d+) Hz)?")
_VIDEO = re.compile(r"Stream #0:\d+.*?: Video: (\w+)(?!.*attached pic)")
_LOW_SCORE = re.compile(r"detected only with low score of (\d+)")


def _probe_with_ffmpeg(path: Path, ffmpeg_exe: str) -> MediaInfo:
    """Probe with `ffmpeg -i` where no ffprobe exists (imageio-ffmpeg ships ffmpeg alone)."""
    result = subprocess.run([ffmpeg_exe, "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, text=True, errors="replace")
    text = result.stderr
    if "Input #0" not in text:
        raise BadInputError(str(path), f"not a media file ({_last_line(text)})")
    duration = 0.0
    if match := _DURATION.search(text):
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    audio = _AUDIO.search(text)
    return MediaInfo(
        path=str(path),
        format=(m.group(1) if (m := _INPUT.search(text)) else ""),
        duration=duration,
        audio_codec=audio.group(1) if audio else "",
        has_video=bool(_VIDEO.search(text)),
        probe_score=int(m.group(1)) if (m := _LOW_SCORE.search(text)) else 100,
        sample_rate=int(audio.group(2)) if audio and audio.group(2) else 0,
    )


def _last_line(stderr: bytes | str | None) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return lines[-1] if lines else "ffmpeg gave no reason"


def file_hash(path: str | Path, block_size: int = 1 << 20) -> str:
    """SHA-256 of a file, read in blocks so that hours of audio never sit in memory."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def decoding_limit(declared_seconds: float, max_hours: float) -> float:
    """How much audio to decode at most from a file that declares `declared_seconds`: twice that
    (duration estimates of some files are rough) and ten minutes more, never over `max_hours`."""
    cap = max_hours * 3600
    return min(cap, max(2 * declared_seconds, declared_seconds + 600)) if declared_seconds > 0 else cap


def decoded_seconds(wav: str | Path) -> float:
    """The length of a normalised WAV, from its size."""
    return len(open_audio(wav)) / SAMPLE_RATE


@lru_cache(maxsize=None)
def ffmpeg_version(ffmpeg_exe: str) -> str:
    """ffmpeg's release ("ffmpeg 7.0.2" from "ffmpeg version 7.0.2-static …"): another ffmpeg may
    decode and resample to other samples, so the normalised audio is named and keyed by it."""
    try:
        out = subprocess.run([ffmpeg_exe, "-version"], capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RecordingIndexError(f"ffmpeg: {ffmpeg_exe} does not run ({exc})") from None
    lines = out.decode("utf-8", "replace").splitlines()
    first = lines[0].strip() if lines else "unknown"
    # The release, not a distribution's packaging of it ("6.1.1-3ubuntu5": 6.1.1), which decodes alike.
    return f"ffmpeg {found.group(1)}" if (found := re.match(r"ffmpeg version n?(\d+(?:\.\d+)+)", first)) else first


def normalisation(ffmpeg_exe: str, max_seconds: float | None) -> str:
    """What decides the normalised audio's samples besides the media: the ffmpeg that decodes, the
    format, and how much of the file is decoded. Part of the WAV's name and of the transcription's key."""
    limit = f"at most {max_seconds:.3f} s" if max_seconds else "whole"
    return f"{ffmpeg_version(ffmpeg_exe)}; {SAMPLE_RATE} Hz mono pcm_s16le, first audio stream, {limit}"


def normalised_path(out_dir: str | Path, content_hash: str, how: str) -> Path:
    """Where the WAV of the media with `content_hash`, normalised as `how` says, is cached."""
    return Path(out_dir) / f"{content_hash}-{hashlib.sha256(how.encode()).hexdigest()[:12]}.wav"


def normalise(path: str | Path, out_dir: str | Path, ffmpeg_exe: str | None = None,
              content_hash: str | None = None, max_seconds: float | None = None) -> Path:
    """Decode the first audio stream to 16 kHz mono 16-bit WAV in `out_dir`, `max_seconds` of it
    at most (a bound on disk and CPU, whatever the file's header says), named by content hash and
    by how it was normalised (`normalisation`: another ffmpeg or bound is another file).

    The file is written under a temporary name and renamed, so a crash never leaves a partial WAV
    that a later run would take for finished; an existing one is reused.
    """
    path = Path(path)
    ffmpeg_exe = ffmpeg_exe or find_ffmpeg()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = normalised_path(out_dir, content_hash or file_hash(path), normalisation(ffmpeg_exe, max_seconds))
    if target.exists():
        return target
    try:
        with replacing(target) as partial:
            _decode(path, partial, ffmpeg_exe, max_seconds)
    except ffmpeg.Error as exc:
        raise BadInputError(str(path), f"ffmpeg could not decode its audio ({_last_line(exc.stderr)})") from None
    return target


def _decode(path: str | Path, wav: Path, ffmpeg_exe: str, max_seconds: float | None) -> None:
    (
        ffmpeg.input(str(path))
        .output(str(wav), map="0:a:0", ac=1, ar=SAMPLE_RATE, acodec="pcm_s16le", f="wav",
                **({"t": f"{max_seconds:.3f}"} if max_seconds else {}))
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .overwrite_output()
        .run(cmd=ffmpeg_exe, capture_stdout=True, capture_stderr=True)
    )
    if wav.stat().st_size <= 44:  # a WAV header and no samples
        raise BadInputError(str(path), "decoded to no audio samples")


def load_audio(wav_path: str | Path) -> np.ndarray:
    """Read a whole normalised WAV as float32 samples in [-1, 1] (for short audio; see `windows`)."""
    return to_float(open_audio(wav_path)[:])


class WavSamples:
    """The int16 samples of a normalised WAV, read from disk only when sliced.

    Not a memory map: every page of a map once read counts in the process's resident memory until the
    kernel takes it back, so the peak would grow with the recording's length.
    """

    dtype = np.dtype(np.int16)

    def __init__(self, wav_path: str | Path):
        self.path = Path(wav_path)
        self.offset = _wav_data_offset(wav_path)
        self.length = (self.path.stat().st_size - self.offset) // 2

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, step = key.indices(self.length)
        if step != 1:
            raise ValueError("WavSamples reads contiguous slices only")
        return np.fromfile(self.path, dtype="<i2", count=max(0, stop - start), offset=self.offset + 2 * start)


def open_audio(wav_path: str | Path) -> WavSamples:
    """The samples of a normalised WAV, for `windows`: nothing is read until used."""
    return WavSamples(wav_path)


def to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0 if samples.dtype == np.int16 else samples


# Long recordings are transcribed a window at a time, so memory stays flat whatever the length.
WINDOW_SECONDS = 600.0
# Each window ends at the quietest tenth of a second of its last half minute: never inside a word.
CUT_SEARCH_SECONDS = 30.0
_FRAME = SAMPLE_RATE // 10


def windows(samples: np.ndarray, window_seconds: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (start in seconds, float32 samples) of consecutive windows covering `samples`, one at a time,
    of about `window_seconds` (default WINDOW_SECONDS).

    Only the current window is read and decoded to float32; `samples` may be `open_audio`'s.
    """
    total, size = len(samples), int((window_seconds or WINDOW_SECONDS) * SAMPLE_RATE)
    search = min(int(CUT_SEARCH_SECONDS * SAMPLE_RATE), size // 2)
    start = 0
    while start < total:
        end = start + size
        if end + search >= total:  # the rest fits: no short last window
            end = total
        else:
            end = _quietest_point(samples, end - search, end)
        yield start / SAMPLE_RATE, to_float(samples[start:end])
        start = end


def _quietest_point(samples: np.ndarray, begin: int, end: int) -> int:
    frames = to_float(samples[begin:end])[: (end - begin) // _FRAME * _FRAME].reshape(-1, _FRAME)
    quietest = int(np.argmin(np.square(frames).mean(axis=1)))
    return begin + quietest * _FRAME + _FRAME // 2


def _wav_data_offset(wav_path: str | Path) -> int:
    """Where the samples start: walk the RIFF chunks up to `data` (ffmpeg may add a LIST chunk)."""
    with open(wav_path, "rb") as handle:
        header = handle.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise RecordingIndexError(f"{wav_path}: not a WAV file")
        while chunk := handle.read(8):
            if len(chunk) < 8:
                break
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return handle.tell()
            handle.seek(size + (size & 1), os.SEEK_CUR)
    raise RecordingIndexError(f"{wav_path}: WAV file has no data chunk")
