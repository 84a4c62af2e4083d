"""Subtitle cues from timed words, following professional rules: lines, reading speed, timing.

Cues are built from words with times (Whisper's word timestamps for French; for English, each
segment's words spread over the segment's time), split at sentence ends first, then clauses, never
inside a word, and then timed: extended into following silence where reading speed asks for it,
kept apart by two frames, and never started before the speech.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from recording_index.models import Cue, Segment, Word
from recording_index.timing import nearest, spread_words

_SENTENCE_END = (".", "?", "!", "…")
_CLAUSE_END = (",", ";", ":", "—", "–")
# A line should not end on these: they belong with the word that follows.
_FUNCTION_WORDS = {
    "le", "la", "les", "l'", "un", "une", "des", "du", "de", "d'", "à", "au", "aux", "et", "ou", "en", "que", "qu'",
    "qui", "ce", "cette", "ces", "son", "sa", "ses", "leur", "leurs", "mon", "ma", "mes", "pour", "par", "sur", "dans",
    "avec", "sans", "ne", "n'", "se", "s'", "je", "j'", "il", "elle", "on", "nous", "vous", "ils", "elles",
    "the", "a", "an", "of", "to", "and", "or", "in", "on", "at", "for", "with", "by", "from", "that", "is", "are",
    "i", "we", "you", "he", "she", "they", "it", "my", "our", "your", "his", "her", "their", "its", "this", "these",
}


@dataclass
class SubtitleRules:
    max_lines: int = 2
    max_chars: int = 42  # per line
    max_cps: float = 17.0  # characters per second, spaces included, line breaks excluded
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    min_gap: float = 2 / 24  # two frames at 24 fps
    pause: float = 1.5  # a silence this long always ends a cue


@dataclass
class SubtitleReport:
    cues: int = 0
    too_fast: list[int] = field(default_factory=list)  # cue indices still over max_cps after timing
    too_short: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.cues} cues; reading speed unavoidably over the limit in {len(self.too_fast)}, "
                f"unavoidably short in {len(self.too_short)}")


def reading_chars(lines: Sequence[str]) -> int:
    """What a viewer reads: characters and spaces, not the line break."""
    return sum(len(line) for line in lines)


def break_lines(text: str, rules: SubtitleRules) -> list[str] | None:
    """The best 1- or 2-line layout of `text` within the rules, or None when it cannot fit.

    Two lines are balanced, with the break preferably after punctuation and never after a function
    word or leaving one word alone on a line.
    """
    words = text.split()
    if not words:
        return []
    if len(text) <= rules.max_chars and (len(words) < 6 or len(text) <= rules.max_chars * 0.75):
        return [text]
    best, best_cost = None, float("inf")
    for cut in range(1, len(words)):
        top, bottom = " ".join(words[:cut]), " ".join(words[cut:])
        if len(top) > rules.max_chars or len(bottom) > rules.max_chars:
            continue
        cost = abs(len(top) - len(bottom))
        if len(bottom) < len(top):
            cost += 2  # a bottom-heavy pyramid reads better
        if cut == 1 or cut == len(words) - 1:
            cost += 40  # orphan
        last = words[cut - 1]
        if last.endswith(_SENTENCE_END + _CLAUSE_END):
            cost -= 15
        elif last.lower().strip("«»\"()") in _FUNCTION_WORDS or last.lower().endswith("'"):
            cost += 25
        if cost < best_cost:
            best, best_cost = [top, bottom], cost
    if best is None and len(text) <= rules.max_chars:
        return [text]
    return best if rules.max_lines >= 2 else None


def _is_function_word(word: Word) -> bool:
    return word.text.strip().lower().strip("«»\"()") in _FUNCTION_WORDS


def _ends(word: Word, marks: tuple[str, ...]) -> bool:
    return word.text.strip().rstrip("»\")] ").endswith(marks)


def group_words(words: Sequence[Word], fits: Callable[[int, int], bool], rules: SubtitleRules) -> list[tuple[int, int]]:
    """Split words into cue spans [i, j): as long as `fits`, cut at sentence ends, then clauses."""
    spans, i = [], 0
    while i < len(words):
        feasible = []
        for j in range(i + 1, len(words) + 1):
            if j > i + 1 and (words[j - 1].start - words[j - 2].end >= rules.pause
                              or words[j - 1].end - words[i].start > rules.max_duration or not fits(i, j)):
                break
            feasible.append(j)
        end = feasible[-1]
        if end < len(words):
            sentence = [j for j in feasible if _ends(words[j - 1], _SENTENCE_END)]
            clause = [j for j in feasible if _ends(words[j - 1], _CLAUSE_END) and j - i >= max(2, (end - i) // 2)]
            if sentence:
                end = sentence[-1]
            elif clause:
                end = clause[-1]
            else:
                if end - i > 2 and (end + 1 == len(words) or _ends(words[end], _SENTENCE_END)):
                    end -= 1  # leave no one-word orphan for the next cue
                while end - i > max(2, (feasible[-1] - i) // 2) and _is_function_word(words[end - 1]):
                    end -= 1  # "de l'équipe des | technologies": the article goes with its noun
        spans.append((i, end))
        i = end
    return spans


def _text(words: Sequence[Word]) -> str:
    # Whisper's word texts carry their own leading space (" m" "'appelle"): join them as they are.
    return " ".join("".join(w.text for w in words).split())


def english_words(segments: Sequence[Segment]) -> list[Word]:
    """English words with times: each segment's English spread over its time by characters."""
    return [w for s in segments for w in spread_words(s.text_en or "", s.start, s.end)]


def french_words(segments: Sequence[Segment]) -> list[Word]:
    """Whisper's timed words, or each segment's words spread over its time where it has none."""
    return [w for s in segments for w in (s.words or spread_words(s.text, s.start, s.end))]


def build_cues(words: Sequence[Word], rules: SubtitleRules | None = None,
               companion: Sequence[Word] | None = None) -> tuple[list[Cue], SubtitleReport]:
    """Cues from timed words. With `companion` (bilingual), each cue also shows the companion words
    spoken in its time, under the main lines, each language within the line limits."""
    rules = rules or SubtitleRules()
    words = [w for w in words if w.text.strip()]

    def companion_text(i: int, j: int) -> str:
        start, end = words[i].start, words[j - 1].end
        return _text([w for w in companion or [] if start <= (w.start + w.end) / 2 < end])

    def fits(i: int, j: int) -> bool:
        if break_lines(_text(words[i:j]), rules) is None:
            return False
        return not companion or break_lines(companion_text(i, j), rules) is not None

    spans = group_words(words, fits, rules)
    texts = [_text(words[i:j]) for i, j in spans]
    cues = [Cue(n + 1, words[i].start, words[j - 1].end, break_lines(texts[n], rules) or [texts[n]])
            for n, (i, j) in enumerate(spans)]
    chars = [reading_chars(cue.lines) for cue in cues]
    if companion and cues:
        # Every companion word goes to the cue nearest its time, so words said in a pause still show.
        shares: list[list[Word]] = [[] for _ in cues]
        for word in companion:
            shares[nearest(cues, (word.start + word.end) / 2)].append(word)
        for k, cue in enumerate(cues):
            text = _text(shares[k])
            cue.main_lines = len(cue.lines)
            cue.lines = cue.lines + (break_lines(text, rules) or [text] if text else [])
            chars[k] = max(chars[k], len(text))
    report = time_cues(cues, rules, chars)
    return cues, report


def time_cues(cues: list[Cue], rules: SubtitleRules, chars: Sequence[int]) -> SubtitleReport:
    """Fix durations and gaps in place; report the cues whose speech is too fast to fix.

    `chars` is what a viewer reads in each cue (in a bilingual cue, the longer language).
    """
    report = SubtitleReport(cues=len(cues))
    for k, cue in enumerate(cues):
        limit = cues[k + 1].start - rules.min_gap if k + 1 < len(cues) else float("inf")
        wanted = max(rules.min_duration, chars[k] / rules.max_cps)
        # Extend into the following silence: never past the next cue, never over the maximum.
        cue.end = max(cue.end, min(cue.start + wanted, limit, cue.start + rules.max_duration))
        cue.end = max(min(cue.end, limit, cue.start + rules.max_duration), cue.start + 0.001)
        duration = cue.end - cue.start
        if chars[k] / duration > rules.max_cps + 1e-6:
            report.too_fast.append(cue.index)
        if duration < rules.min_duration - 1e-6:
            report.too_short.append(cue.index)
    return report


def cues_for(segments: Sequence[Segment], lang: str, rules: SubtitleRules | None = None,
             bilingual: bool = False) -> tuple[list[Cue], SubtitleReport]:
    """French (`fr`) or English (`en`) cues of a recording's segments; bilingual puts French over English."""
    if bilingual:
        return build_cues(french_words(segments), rules, companion=english_words(segments))
    if lang == "fr":
        return build_cues(french_words(segments), rules)
    if lang == "en":
        return build_cues(english_words(segments), rules)
    raise ValueError(f"unknown subtitle language {lang!r}: use fr or en")
