"""The data model shared by every stage: plain dataclasses, times in seconds from the audio's start."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Recording:
    """One recording to index: where it comes from, what it is, and what it contains."""

    id: str
    source: str
    title: str = ""
    speakers: list[str] = field(default_factory=list)
    event: str = ""
    date: str = ""
    language: str = "fr"
    media_path: str = ""
    duration: float = 0.0  # of the decoded audio once transcribed; before that, as the file declares
    declared_duration: float = 0.0  # as the file declares, when that differs from the decoded audio
    content_hash: str = ""
    uploader: str = ""  # for video sites
    pick: str = ""  # for a page source: which of its recordings (a number from 1, or text to match)
    vocabulary: list[str] = field(default_factory=list)  # names and terms said in it, most specific first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Word:
    start: float
    end: float
    text: str
    probability: float = 0.0
    correction: int | None = None  # the id of the person's correction that wrote it; None: Whisper's


@dataclass
class Segment:
    """A stretch of speech as Whisper returns it, with its words when word timestamps are on."""

    index: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    text_en: str | None = None
    translation_engine: str | None = None  # "argos", "whisper", "argos-failed"
    translation_model: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    # Provenance: "machine", or "corrected" by a person (corrections/); the English may also be
    # "retranslated" (Argos, from corrected French) or "stale" (Whisper's, of French since corrected).
    origin: str = "machine"
    origin_en: str = "machine"
    corrected_by: str | None = None  # who made the latest correction of this sentence, when known
    corrected_at: str | None = None  # when (ISO 8601, UTC)
    text_machine: str | None = None  # the machine's French, when corrected
    text_en_machine: str | None = None  # the machine's English, when replaced


@dataclass
class Correction:
    """A person's fix of a stretch of one recording's transcript, kept beside the machine's output and
    applied over it by every run (corrections/layer.py).

    French: the words spoken in [start, end] become `text` (an empty span at `start` inserts it).
    English: the English of the sentence spoken over [start, end] becomes `text`."""

    id: int
    recording_id: str
    lang: str
    start: float
    end: float
    text: str
    by: str = ""
    at: str = ""
    origin: str = ""  # the file imported, or "web"
    status: str = "new"  # "applied"; "unfit": the transcript's timing moved under it; "reverted"
    note: str = ""  # why it does not fit
    machine_text: str = ""  # what the machine had there, the last time it was applied
    machine_words: list[Word] = field(default_factory=list)  # French: the machine's words it replaced


@dataclass
class Transcript:
    """One recording's segments and what produced them: the output of transcription, and (with each
    segment's English filled in) of translation."""

    segments: list[Segment]
    engine: str
    model_id: str
    detected_language: str | None
    worker: str = ""  # host:pid of the process that transcribed it (runs may spread over machines)
    # Whisper's English of the same audio, when decoded with the transcription (one encoder pass).
    english_speech: list[Segment] | None = None
    audio_seconds: float = 0.0  # of decoded audio (0: not known, the transcript came from the index)
    translator: str = ""  # what filled the segments' English: "argos", "whisper" or "none"
    translation_model: str = ""
    reused: bool = False  # an earlier run's stored result (Prefect's cache), not decoded in this run
    corrections: list[Correction] = field(default_factory=list)  # as applied to it, with their status


@dataclass
class Chunk:
    """The unit of search: consecutive segments of one recording, with their time range."""

    recording_id: str
    index: int
    start: float
    end: float
    text_fr: str
    text_en: str | None = None


@dataclass
class Cue:
    """The unit of subtitles."""

    index: int
    start: float
    end: float
    lines: list[str]
    main_lines: int | None = None  # bilingual cues: how many lines are in the main language (French)


@dataclass
class SearchHit:
    recording_id: str
    title: str
    speakers: list[str]
    event: str
    chunk_index: int
    start: float  # the chunk's time range
    end: float
    moment: float  # when the first matched word is spoken: where a link opens
    text: str
    snippet: str
    url: str
    score: float
    lang: str = "fr"  # the side that matched
    text_fr: str = ""  # the chunk's French and English
    text_en: str = ""
    sentence_fr: str = ""  # the sentence that holds the matched words, in French and in English
    sentence_en: str = ""
    origin: str = "machine"  # that sentence's provenance (Segment.origin, origin_en, corrected_by/at)
    origin_en: str = "machine"
    corrected_by: str | None = None
    corrected_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
