"""What the catalog knows about a recording, given to Whisper: its vocabulary, its speakers, its event.

Whisper spells a name it has read in its prompt: "Éric Joanis", not "Eric Joannis". The prompt is
the recording's own terms, then its event's, then its speakers' names, then its event's title, the
most specific first, within PROMPT_TOKENS (Whisper reads 223 tokens of prompt; what goes past is
dropped, and from the start). The same prompt is given for every window and batch.

A prompt has a known risk: over silence or music, Whisper may write the prompt out as if it were
said. `echoes_prompt` tells a segment that is the prompt recited; `drop_invented` takes out of a
segment the prompt's words written where voice activity detection hears no one speak.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Sequence

from recording_index.models import Recording, Segment

# Whisper reads at most 223 tokens of prompt and drops what goes past, from the start (the most
# specific terms): the prompt stays within this many, counted with Whisper's own tokenizer.
PROMPT_TOKENS = 200
_WORD = re.compile(r"\w+", re.UNICODE)
_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def prompt_parts(recording: Recording) -> list[list[str]]:
    """The prompt's terms in three groups, most specific first: the vocabulary (the recording's, then
    its event's), the speakers, the event's title; each term once, all within PROMPT_TOKENS. The
    speakers are kept first when not everything fits (in half the room at most), then the
    vocabulary in its order, then the title."""
    wanted = [[" ".join(t.split()) for t in terms] for terms in
              (recording.vocabulary, recording.speakers, [recording.event])]
    groups: list[list[str]] = [[], [], []]
    seen: set[str] = set()
    # The speakers' names first (a name misheard is the worst), in half the room at most: the terms
    # of the talk are what the prompt is for.
    for group, room in ((1, PROMPT_TOKENS // 2), (0, PROMPT_TOKENS), (2, PROMPT_TOKENS)):
        for term in wanted[group]:
            if not term or term.casefold() in seen:
                continue
            groups[group].append(term)
            if prompt_tokens(_render(groups)) > room:
                groups[group].pop()
                if group == 1:
                    continue
                return groups  # a less specific term never takes the place of a more specific one
            seen.add(term.casefold())
    return groups


def _render(groups: list[list[str]]) -> str:
    return " ".join(", ".join(group) + "." for group in groups if group)


def prompt_for(recording: Recording) -> str:
    """Whisper's prompt for the recording: each group a short sentence, "RÉSAL, prévention de la
    criminalité. René-André Brisebois. Mini-conférence." Measured on the sample (bench/history.md),
    separate sentences read better to Whisper than one long list. "" when the catalog gives the
    recording no vocabulary: a prompt of names and a title alone made the sample and the Common
    Voice clips worse (bench/history.md), so it comes with the terms of the talk or not at all."""
    groups = prompt_parts(recording)
    return _render(groups) if groups[0] else ""


def prompt_tokens(text: str) -> int:
    """How many tokens Whisper reads in `text`: at most one a byte (so short text needs no count),
    else counted with Whisper's tokenizer (every multilingual Whisper has the same), or, when
    none is installed, estimated from above."""
    if len(text.encode()) <= PROMPT_TOKENS:
        return len(text.encode())
    tokenizer = _tokenizer()
    if tokenizer is not None:
        return len(tokenizer.encode(" " + text, add_special_tokens=False).ids)
    return sum(max(1, -(-len(p) // 3)) if p.isascii() and p.isalpha() and p.islower() else len(p.encode())
               for p in _PIECE.findall(text))


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from recording_index.speech.weights import tokenizer_file

    path = tokenizer_file()
    if path is None:
        return None
    try:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(path))
    except Exception:  # a tokenizer that does not load: the estimate, which errs long
        return None


def echoes_prompt(text: str, prompt: str) -> bool:
    """Whether `text` is the prompt written out rather than speech: whole words of the prompt in its
    order, at least half of the prompt and at least four words. A speaker saying a term or a name of
    the prompt is speech; reciting half the prompt word for word is Whisper's failure."""
    words = [w.casefold() for w in _WORD.findall(text)]
    prompted = [w.casefold() for w in _WORD.findall(prompt)]
    if not prompted or len(words) < max(4, len(prompted) / 2):
        return False
    return any(prompted[i:i + len(words)] == words for i in range(len(prompted) - len(words) + 1))


# A run of this many words of the prompt, word for word, is the prompt written out when no one says it.
INVENTED_RUN = 3
# ...and it is taken for invented when less than this share of its time is speech.
SPOKEN_SHARE = 0.5


def drop_invented(segment: Segment, prompt: str, speech: Sequence[tuple[float, float]]) -> Segment | None:
    """The segment without the prompt's words that Whisper wrote where no one speaks: runs of
    INVENTED_RUN or more words that follow the prompt word for word, lying mostly outside `speech`
    (voice activity's spans, in seconds). A speaker saying the event's title is speech, and stays.
    None when nothing is left; the segment itself when nothing is taken out."""
    prompted = [w.casefold() for w in _WORD.findall(prompt)]
    if not prompted or not segment.words:
        return segment
    tokens: list[tuple[str, int]] = [(t.casefold(), n) for n, word in enumerate(segment.words)
                                     for t in _WORD.findall(word.text)]
    invented: set[int] = set()
    i = 0
    while i < len(tokens):
        run = max((_common_run(tokens, i, prompted, j) for j in range(len(prompted))), default=0)
        if run >= INVENTED_RUN:
            words = sorted({n for _, n in tokens[i:i + run]})
            start, end = segment.words[words[0]].start, segment.words[words[-1]].end
            spoken = sum(max(0.0, min(end, b) - max(start, a)) for a, b in speech)
            if spoken < SPOKEN_SHARE * max(end - start, 0.01):
                invented.update(words)
            i += run
        else:
            i += 1
    if not invented:
        return segment
    kept = [word for n, word in enumerate(segment.words) if n not in invented]
    if not any(word.text.strip() for word in kept):
        return None
    return dataclasses.replace(segment, words=kept, text="".join(w.text for w in kept).strip(),
                               start=kept[0].start, end=kept[-1].end)


def _common_run(tokens: list[tuple[str, int]], i: int, prompted: list[str], j: int) -> int:
    k = 0
    while i + k < len(tokens) and j + k < len(prompted) and tokens[i + k][0] == prompted[j + k]:
        k += 1
    return k
