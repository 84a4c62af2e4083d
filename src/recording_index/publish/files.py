"""SRT and WebVTT: write cues, read them back, and check any file against the subtitle rules."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlsplit

from recording_index.config import recording_id_for
from recording_index.errors import BadInputError, RecordingIndexError
from recording_index.links import is_media_url
from recording_index.models import Cue, Recording, Segment, Transcript
from recording_index.safety import inside, is_web_url, json_text, open_regular, replacing
from recording_index.publish.subtitles import SubtitleRules, cues_for, reading_chars

FORMATS = ("srt", "vtt")
MAX_SUBTITLE_BYTES = 64 * 1024**2


def timestamp(seconds: float, separator: str = ",") -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _srt_lines(cue: Cue) -> list[str]:
    # Bilingual: the second language in italics, as subtitlers set a translation apart; players show
    # it, and the checker reads it as the second language (two subtitles of at most two lines each).
    if cue.main_lines is None:
        return list(cue.lines)
    return cue.lines[:cue.main_lines] + [f"<i>{line}</i>" for line in cue.lines[cue.main_lines:]]


def to_srt(cues: Sequence[Cue]) -> str:
    return "".join(f"{n}\n{timestamp(c.start)} --> {timestamp(c.end)}\n" + "\n".join(_srt_lines(c)) + "\n\n"
                   for n, c in enumerate(cues, 1))


def _vtt_text(line: str) -> str:
    # WebVTT cue text is markup: & and < must be escaped, and "-->" may not appear.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_lines(cue: Cue) -> list[str]:
    lines = [_vtt_text(line) for line in cue.lines]
    if cue.main_lines is not None:  # bilingual: the second language is marked, for players and the checker
        lines[cue.main_lines:] = [f"<lang en>{line}</lang>" for line in lines[cue.main_lines:]]
    return lines


def to_vtt(cues: Sequence[Cue], language: str | None = None) -> str:
    header = "WEBVTT" + (f"\nLanguage: {language}" if language else "") + "\n\n"
    return header + "".join(f"{n}\n{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n"
                            + "\n".join(_vtt_lines(c)) + "\n\n" for n, c in enumerate(cues, 1))


def render(cues: Sequence[Cue], fmt: str, language: str | None = None) -> str:
    if fmt == "srt":
        return to_srt(cues)
    if fmt == "vtt":
        return to_vtt(cues, language)
    raise RecordingIndexError(f"unknown subtitle format {fmt!r}: use srt or vtt")


def _srt_cue(index: int, start: float, end: float, lines: list[str]) -> Cue:
    """An SRT cue; one whose last lines, and only they, are in italics is bilingual (see _srt_lines)."""
    italic = [line.startswith("<i>") and line.endswith("</i>") for line in lines]
    main = italic.index(True) if True in italic else None
    if main is None or main == 0 or not all(italic[main:]):
        return Cue(index, start, end, lines)
    return Cue(index, start, end, lines[:main] + [line[3:-4] for line in lines[main:]], main)


def parse(text: str, name: str = "subtitles") -> list[Cue]:
    """Read SRT (with `srt`) or WebVTT (with `webvtt-py`, told by its WEBVTT header) cues; a file that
    is neither, or holds no cue, is an error naming it."""
    import srt
    import webvtt

    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    cues = []
    if text.startswith("WEBVTT"):
        try:
            captions = list(webvtt.from_string(text))
        except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError, ValueError) as exc:
            raise RecordingIndexError(f"{name}: not a valid WebVTT file ({exc})") from None
        for caption in captions:
            marked = [i for i, line in enumerate(caption.lines) if line.startswith("<lang en>")]
            lines = [re.sub(r"<[^>]+>", "", line).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                     for line in caption.lines]
            cues.append(Cue(len(cues) + 1, caption.start_time.in_milliseconds() / 1000,
                            caption.end_time.in_milliseconds() / 1000, lines,
                            marked[0] if marked else None))
    else:
        try:
            subtitles = list(srt.parse(text))
        except (srt.SRTParseError, ValueError):
            # Not the parser's words: they quote the file's content (a link to /etc/passwd, say).
            raise RecordingIndexError(f"{name}: neither SRT nor WebVTT (no subtitle cue where one should be)") from None
        cues = [_srt_cue(i + 1, s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n"))
                for i, s in enumerate(subtitles)]
    if not cues:
        raise RecordingIndexError(f"{name}: no cues: not a subtitle file")
    return cues


@dataclass
class Violation:
    cue: int
    start: float
    rule: str
    message: str
    unavoidable: bool = False

    def line(self) -> str:
        tag = " (unavoidable: no silence to extend into)" if self.unavoidable else ""
        return f"cue {self.cue} at {timestamp(self.start, '.')}: {self.message}{tag}"


def check(cues: Sequence[Cue], rules: SubtitleRules | None = None, bilingual: bool = False) -> list[Violation]:
    """Every breach of the rules, cue by cue. Reading speed over the limit where the cue cannot be
    longer (the next cue follows within the gap, or it is at the maximum duration) is unavoidable."""
    rules = rules or SubtitleRules()
    found: list[Violation] = []
    for k, cue in enumerate(cues):
        two_languages = bilingual or cue.main_lines is not None  # a marked cue says it is bilingual
        max_lines = rules.max_lines * (2 if two_languages else 1)
        def add(rule: str, message: str, unavoidable: bool = False) -> None:
            found.append(Violation(cue.index, cue.start, rule, message, unavoidable))

        duration = cue.end - cue.start
        following = cues[k + 1] if k + 1 < len(cues) else None
        no_room = duration >= rules.max_duration - 0.002 or (
            following is not None and following.start - cue.end <= rules.min_gap + 0.002)
        if not any(line.strip() for line in cue.lines):
            add("empty", "no text")
        if len(cue.lines) > max_lines:
            add("lines", f"{len(cue.lines)} lines > {max_lines}")
        for line in cue.lines:
            if len(line) > rules.max_chars:
                add("length", f"line of {len(line)} characters > {rules.max_chars}: {line!r}")
        if duration <= 0:
            add("timing", "ends before it starts")
            continue
        if duration < rules.min_duration - 0.002:
            add("duration", f"{duration:.2f} s < {rules.min_duration:.2f} s", unavoidable=no_room)
        if duration > rules.max_duration + 0.002:
            add("duration", f"{duration:.2f} s > {rules.max_duration:.2f} s")
        if two_languages and len(cue.lines) > 1:
            # The file marks the second language (<lang en>); else assume the languages share the lines evenly.
            split = cue.main_lines if cue.main_lines is not None else (len(cue.lines) + 1) // 2
            chars = max(reading_chars(cue.lines[:split]), reading_chars(cue.lines[split:]))
        else:
            chars = reading_chars(cue.lines)
        if chars / duration > rules.max_cps + 0.05:
            add("speed", f"reading speed {chars / duration:.1f} cps > {rules.max_cps:g}", unavoidable=no_room)
        if following is not None and following.start < cue.start:
            add("order", f"cue {following.index} starts before it, at {timestamp(following.start, '.')}")
        elif following is not None:
            gap = following.start - cue.end
            if gap < 0:
                add("overlap", f"overlaps cue {following.index} by {-gap:.3f} s")
            elif gap < rules.min_gap - 0.002:
                add("gap", f"{gap * 1000:.0f} ms before cue {following.index} < {rules.min_gap * 1000:.0f} ms")
    return found


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` to `path` whole or not at all (safety.replacing)."""
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return path


def published_name(recording: Recording) -> str:
    """The name a recording's files take: as whisper names them, after the recording's file
    (`talk.mp3` gives `talk.fr.srt`, which players load beside `talk.mp3`), unless a catalog gave
    the recording its id, or the recording has no file name of its own (a video site's page), or
    that name is no plain file name (hidden, invisible or control characters, over 100 characters):
    then its id."""
    if recording.id != recording_id_for(recording.source):
        return recording.id
    if is_web_url(recording.source):
        stem = Path(unquote(urlsplit(recording.source).path)).stem if is_media_url(recording.source) else ""
    else:
        stem = Path(recording.source).stem
    plain = stem.isprintable() and not stem.startswith(".") and "/" not in stem and 0 < len(stem) <= 100
    return stem if plain else recording.id


def subtitle_files(folder: Path, name: str, english: bool = True,
                   output_format: str = "all") -> list[tuple[Path, str, str]]:
    """Each file a run publishes for a recording in `folder`, with its language and format, named
    `name` (`published_name`) as whisper names them: French (and, when English is made, English)
    SRT, WebVTT, plain text and TSV, a bilingual WebVTT ("fr-en"), and one JSON of both;
    `output_format` keeps one kind ("all": every one)."""
    languages = ("fr", "en") if english else ("fr",)
    files = [(lang, fmt) for fmt in ("srt", "vtt", "txt", "tsv") for lang in languages]
    files += [("fr-en", "vtt")] if english else []
    files += [("", "json")]
    chosen = [(lang, fmt) for lang, fmt in files if output_format in ("all", fmt)]
    return [(inside(folder, ".".join(filter(None, (name, lang, fmt)))), lang, fmt) for lang, fmt in chosen]


def plain_text(segments: Sequence[Segment], lang: str) -> str:
    """whisper's .txt: each sentence on its own line, nothing else."""
    lines = [(s.text if lang == "fr" else s.text_en or "").strip() for s in segments]
    return "".join(line + "\n" for line in lines if line)


def tsv(segments: Sequence[Segment], lang: str) -> str:
    """whisper's .tsv: start and end in whole milliseconds, then the text."""
    rows = ["start\tend\ttext"]
    for s in segments:
        text = " ".join((s.text if lang == "fr" else s.text_en or "").split())
        if text:
            rows.append(f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{text}")
    return "\n".join(rows) + "\n"


def whisper_json(segments: Sequence[Segment], lang: str = "fr") -> dict:
    """whisper's .json keys (`text`, `segments` with `id`, `start`, `end`, `text`, `language`) in `lang`
    ("both": French in `text`), with both languages, the provenance and the words of each segment."""
    main = "en" if lang == "en" else "fr"
    rows = [{"id": s.index, "start": s.start, "end": s.end, "text": (s.text_en or "") if main == "en" else s.text,
             "text_fr": s.text, "text_en": s.text_en, "translation_engine": s.translation_engine,
             "origin": s.origin, "origin_en": s.origin_en, "corrected_by": s.corrected_by,
             "corrected_at": s.corrected_at, "text_machine": s.text_machine, "text_en_machine": s.text_en_machine,
             "words": [asdict(w) for w in s.words]} for s in segments]
    return {"text": " ".join(r["text"] for r in rows if r["text"]), "segments": rows, "language": main}


def publish(folder: Path, recording: Recording, transcript: Transcript, output_format: str = "all") -> list[Path]:
    """Write a recording's files (`subtitle_files`), each atomically. English files come with a
    translator, even when its English is empty (then they hold no cue), so that the set of files
    depends on the translator alone."""
    written = []
    english = transcript.translator not in ("", "none") or any(s.text_en for s in transcript.segments)
    for path, lang, fmt in subtitle_files(folder, published_name(recording), english, output_format):
        if fmt == "json":
            text = json_text({"recording_id": recording.id, **whisper_json(transcript.segments)}) + "\n"
        elif fmt in ("txt", "tsv"):
            text = (plain_text if fmt == "txt" else tsv)(transcript.segments, lang)
        elif lang == "fr-en":
            text = render(cues_for(transcript.segments, "fr", bilingual=True)[0], fmt)
        else:
            text = render(cues_for(transcript.segments, lang)[0], fmt, lang)
        written.append(write_atomically(path, text))
    return written


def check_file(path: str | Path, rules: SubtitleRules | None = None, bilingual: bool = False) -> list[Violation]:
    path = Path(path)
    try:
        with open_regular(path) as handle:  # a FIFO would block the check for ever
            text = handle.read(MAX_SUBTITLE_BYTES + 1).decode("utf-8")
    except BadInputError as exc:
        raise RecordingIndexError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingIndexError(f"{path}: cannot read ({exc})") from None
    if len(text) > MAX_SUBTITLE_BYTES:
        raise RecordingIndexError(f"{path}: larger than {MAX_SUBTITLE_BYTES // 1024**2} MiB: not a subtitle file")
    return check(parse(text, str(path)), rules, bilingual)
