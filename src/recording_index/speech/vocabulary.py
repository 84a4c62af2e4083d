"""What the catalog knows about a recording, given to Whisper: its vocabulary, its speakers, its event.

Whisper spells a name it has read in its prompt: "Éric Joanis", not "Eric Joannis". The prompt is
the recording's own terms, then its event's, then its speakers' names, then its event's title, the
most specific first, cut to PROMPT_CHARS (Whisper reads about 220 tokens of prompt; what goes past
is dropped, and from the start). The same prompt is given for every window and batch.

A prompt has a known risk: over silence or music, Whisper may write the prompt out as if it were
said. `echoes_prompt` tells such a segment, so that the transcription can drop it.
"""

from __future__ import annotations

import re

from recording_index.models import Recording

PROMPT_CHARS = 400  # French is about 3 characters a token: well within Whisper's 223-token prompt
_WORD = re.compile(r"\w+", re.UNICODE)


def prompt_parts(recording: Recording) -> list[list[str]]:
    """The prompt's terms in three groups, most specific first: the vocabulary (the recording's, then
    its event's), the speakers, the event's title; each term once, all within PROMPT_CHARS."""
    groups: list[list[str]] = [[], [], []]
    seen, length = set(), 0
    for group, terms in zip(groups, (recording.vocabulary, recording.speakers, [recording.event])):
        for term in terms:
            term = " ".join(term.split())
            if not term or term.casefold() in seen:
                continue
            if length + len(term) + 2 > PROMPT_CHARS:
                return groups
            group.append(term)
            seen.add(term.casefold())
            length += len(term) + 2
    return groups


def prompt_for(recording: Recording) -> str:
    """Whisper's prompt for the recording ("" when the catalog names nothing): each group a short
    sentence, "RÉSAL, prévention de la criminalité. René-André Brisebois. Mini-conférence." Measured
    on the sample (BENCHMARKS.md), separate sentences read better to Whisper than one long list."""
    return " ".join(", ".join(group) + "." for group in prompt_parts(recording) if group)


def echoes_prompt(text: str, prompt: str) -> bool:
    """Whether `text` is the prompt written out rather than speech: whole words of the prompt in its
    order, at least half of the prompt and at least four words. A speaker saying a term or a name of
    the prompt is speech; reciting half the prompt word for word is Whisper's failure."""
    words = [w.casefold() for w in _WORD.findall(text)]
    prompted = [w.casefold() for w in _WORD.findall(prompt)]
    if not prompted or len(words) < max(4, len(prompted) / 2):
        return False
    return any(prompted[i:i + len(words)] == words for i in range(len(prompted) - len(words) + 1))
