"""A recording's media in the cache: obtained (found or downloaded, hashed, probed), normalised to
a 16 kHz mono WAV, or forgotten when it proved bad. The one module that knows how the cache's
`downloads/` and `audio/` folders are laid out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from recording_index.config import Settings
from recording_index.errors import BadInputError
from recording_index.ingest import audio
from recording_index.ingest.fetch import discard
from recording_index.ingest.sources import is_remote, locate
from recording_index.links import is_video_site
from recording_index.models import Recording


def obtain(recording: Recording, settings: Settings) -> Recording:
    """The recording with its local media file, content hash and probed duration (downloaded if
    remote). A download that is no usable media is not kept: BadInputError names the source."""
    recording = locate(recording, settings)
    try:
        info = audio.probe(recording.media_path, audio.find_ffmpeg(settings.ffmpeg), settings.max_hours)
    except BadInputError as exc:
        if is_remote(recording.source):
            forget(recording, settings)
            raise BadInputError(recording.source, exc.cause) from None
        raise
    return dataclasses.replace(recording, duration=info.duration)


def normalised(recording: Recording, settings: Settings) -> Path:
    """16 kHz mono WAV of the recording in the cache, named by content hash and by how it is
    normalised (reused when present)."""
    return audio.normalise(recording.media_path, settings.cache_path / "audio", audio.find_ffmpeg(settings.ffmpeg),
                           recording.content_hash, audio.decoding_limit(recording.duration, settings.max_hours))


def forget(recording: Recording, settings: Settings) -> None:
    """Delete what a recording that proved bad left in the cache: its normalised audio, and its
    download when it came from the web (an input that will never work is not kept)."""
    if recording.content_hash:
        for wav in (settings.cache_path / "audio").glob(f"{recording.content_hash}*.wav"):
            wav.unlink(missing_ok=True)
    if is_remote(recording.source) and not is_video_site(recording.source):
        discard(settings.cache_path / "downloads", recording.source)
