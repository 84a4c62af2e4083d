"""What a person typed, turned into FTS5 queries; and the word folding that search compares with."""

from __future__ import annotations

import re
import unicodedata

TOKEN = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case without accents, as the French full-text tokenizer compares words."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def stem_match(token: str, wanted: set[str]) -> bool:
    """A rough stand-in for Porter stemming: the same word, or a shared stem of 4+ letters."""
    return any(token == w or (len(w) >= 4 and len(token) >= 4 and (token.startswith(w[:max(4, len(w) - 3)])))
               for w in wanted)


def facet_query(value: str, column: str, by_start: bool = False) -> str:
    """A filter as an FTS5 phrase on one column: the words of a name ("Pier-Alexandre Lemaire",
    "lemaire"), or of a date from its year on ("2018", "2018-02" and "2018-02-14" are the phrases
    "^2018", "^2018 02" and "^2018 02 14"). `by_start` lets a name's last word be the start of a
    word ("lem"), from 3 letters: a shorter start would pull in every word that begins with it."""
    tokens = TOKEN.findall(value)
    if not tokens:
        return ""
    if column == "date":
        return f'{column} : ^"{" ".join(tokens)}"'
    return f'{column} : "{" ".join(tokens)}"' + ("*" if by_start and len(tokens[-1]) >= 3 else "")


def query_phrases(text: str) -> list[list[str]]:
    """What a person typed, as the phrases `fts_query` asks FTS5 for: each a list of words.

    Balanced double quotes keep their words together as a phrase; everything else, including
    AND/OR/NOT/NEAR, `*`, `-`, parentheses and a lone quote, is just words or ignored.
    """
    parts = text.split('"')
    if len(parts) % 2 == 0:  # an unbalanced quote: treat the whole text as loose words
        parts = [text.replace('"', " ")]
    phrases = []
    for i, part in enumerate(parts):
        tokens = TOKEN.findall(part)
        if tokens:
            phrases.extend([tokens] if i % 2 == 1 else [[token] for token in tokens])
    return phrases


def fts_query(text: str) -> str:
    """Turn what a person typed into an FTS5 query of quoted words and phrases (all must match)."""
    return " ".join('"' + " ".join(tokens) + '"' for tokens in query_phrases(text))
