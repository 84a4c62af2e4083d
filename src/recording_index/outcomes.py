"""How each recording of a run ended, and the run's summary (printed, returned as JSON, and shown
in Prefect's UI as a Markdown artifact)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

from recording_index.safety import redact, redact_url
from recording_index.utils import hms


class Status(str, enum.Enum):
    INDEXED = "indexed"
    REDONE = "redone"  # English, chunks or subtitles redone from the stored transcript
    SKIPPED = "skipped"  # nothing to do: every stage's result is current
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class Transcription(str, enum.Enum):
    DONE = "done"
    REUSED = "reused"  # a result an earlier run stored (Prefect's cache)
    NONE = ""  # none needed: the stored transcript is current

    def __str__(self) -> str:
        return self.value


@dataclass
class Outcome:
    """How one recording ended in a run: indexed, partly redone, skipped (unchanged) or failed, and why."""

    recording_id: str
    title: str
    source: str
    status: Status = Status.FAILED
    duration: float = 0.0
    seconds: float = 0.0
    error: str = ""
    segments: int = 0
    chunks: int = 0
    stages: list[str] = field(default_factory=list)  # the stages this run did for it (stages.py)
    transcription: Transcription = Transcription.NONE
    reused: list[str] = field(default_factory=list)  # of `stages`, those taken from an earlier run's stored results
    worker: str = ""
    warning: str = ""  # indexed, but worth a look: audio much shorter than its file declares, say
    disk_full: bool = False  # nothing more can be written: the run stops trying the others

    def __post_init__(self) -> None:
        self.source, self.error = redact_url(self.source), redact(self.error)
        self.status, self.transcription = Status(self.status), Transcription(self.transcription)

    def stages_line(self) -> str:
        """"transcribe (reused) → segment (reused) → translate → …": the stages done, and which of
        them an earlier run's stored results gave."""
        return " → ".join(f"{stage} (reused)" if stage in self.reused else stage for stage in self.stages)


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    site: str = ""  # what publishing the static site did (settings' site_dir), when it did

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def audio_hours(self) -> float:
        return sum(o.duration for o in self.outcomes if o.status == Status.INDEXED) / 3600

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == Status.FAILED]

    def line(self) -> str:
        redone = f"{self.count(Status.REDONE)} redone, " if self.count(Status.REDONE) else ""
        return (f"{self.count(Status.INDEXED)} indexed, {redone}{self.count(Status.SKIPPED)} skipped (unchanged), "
                f"{self.count(Status.FAILED)} failed"
                # Hours of audio transcribed, when any was (a redo works from the stored transcript).
                + (f"; {self.audio_hours:.2f} h of audio" if self.count(Status.INDEXED) else "")
                + f" in {self.wall_seconds:.1f} s" + (f"; {self.site}" if self.site else ""))

    def markdown(self) -> str:
        """The run as a Markdown table: one row a recording (a Prefect artifact shows it in the UI)."""
        rows = ["| recording | duration | status | stages | worker | seconds | error |",
                "|---|---:|---|---|---|---:|---|"]
        for o in self.outcomes:
            stages = o.stages_line()
            cells = [o.title or o.recording_id, hms(o.duration), str(o.status), stages or "–", o.worker or "–",
                     f"{o.seconds:.1f}", o.error]
            rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        return f"**{self.line()}**\n\n" + "\n".join(rows)

    def to_dict(self) -> dict:
        return {"outcomes": [{**asdict(o), "status": str(o.status)} for o in self.outcomes],
                "wall_seconds": self.wall_seconds, "audio_hours": self.audio_hours,
                **{str(status): self.count(status) for status in Status}}
