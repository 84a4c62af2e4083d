"""Word pairs beside the words ("common grams"), so that a phrase with a common word is fast.

FTS5 finds a phrase by walking its words' lists together. When one word is among the language's
commonest (de, la, que, the, of…), its list holds nearly every chunk, and FTS5 seeks into it once
for every chunk that holds the other word: "de prévention" took 10 to 40 ms at 10,000 hours. So
each chunk's every two neighbouring words of which one is common are also indexed, as one token
("deǂpreventionǂ"), as Lucene's CommonGrams filter does, in a table of each side's pairs: a phrase
with a common word is looked for only in the few chunks that hold all its pairs, where FTS5 checks
it whole (Index._ranked_matches).

Pairs are made of the tokens FTS5 itself makes of the text, with the same tokenizer (folded,
stemmed), through an in-memory table: a pair is there exactly where the phrase is. The common
words an index pairs are stored in it (`paired_words`), and queries pair words as it was built.
"""

from __future__ import annotations

import sqlite3
import threading
from functools import lru_cache
from typing import Iterable

# The pairs' own tables keep each token as it is (already folded or stemmed, lower case).
PAIRS_TOKENIZER = "unicode61 remove_diacritics 0"
# A letter (Unicode category Lo, a token character for FTS5) that French and English never write:
# "de" and "la" paired are the one token "deǂlaǂ". It ends the pair too, so that Porter's stemmer
# (English) leaves it whole: each of its rules takes off an ending of Latin letters ("onǂas" would
# lose its "s" and be "on a").
JOIN = "ǂ"

# The commonest words of spoken French and English (frequency lists of subtitles and transcripts),
# commonest first: a word's list is long enough to slow a phrase down from about the 60th on.
COMMON_WORDS = {
    "fr": ("de la le et les des est en un une du que je à il on pas ce qui dans pour a ne se au ça "
           "sur plus avec nous vous y tout mais ou par comme elle fait être son sont bien aussi là donc "
           "ils très cette été leur faire peut alors deux quand ces même "
           # what an apostrophe leaves of le, de, que, ne, se, je, ce, me, te: "l'équipe" is "l équipe"
           "l d qu n s j c m t").split(),
    "en": ("the of and to a in is that it i for you was on with as be this are have not we they at "
           "but by from or so what all there an one can do about if which more their our when has "
           "very also these were been would its people like just").split(),
}


class Tokenizer:
    """The tokens FTS5 makes of texts with one tokenizer, in order: an in-memory FTS5 table and its
    fts5vocab 'instance' view. Thread-safe (the web page searches from several threads)."""

    def __init__(self, tokenizer: str):
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute(f"CREATE VIRTUAL TABLE texts USING fts5(text, tokenize='{tokenizer}')")
        self._db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(texts, 'instance')")
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in texts]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO texts(rowid, text) VALUES (?, ?)",
                                     ((n + 1, text or "") for n, text in enumerate(texts)))
                for doc, term in self._db.execute("SELECT doc, term FROM tokens ORDER BY doc, offset"):
                    out[doc - 1].append(term)
            finally:
                self._db.execute("ROLLBACK")  # the table stays empty
        return out


@lru_cache(maxsize=None)
def tokenizer(spec: str) -> Tokenizer:
    return Tokenizer(spec)


@lru_cache(maxsize=64)
def common_tokens(words: tuple[str, ...], spec: str) -> frozenset[str]:
    """`words` as FTS5 indexes them with tokenizer `spec` ("à" → "a"; Porter's "was" → "wa").
    Remembered: the web page opens the index at each request."""
    return frozenset(token for tokens in tokenizer(spec)(list(words)) for token in tokens)


def pair_tokens(tokens: list[str], common: frozenset[str]) -> list[str]:
    """Each two neighbouring tokens of which one is common, as one token."""
    return [f"{a}{JOIN}{b}{JOIN}" for a, b in zip(tokens, tokens[1:])
            if (a in common or b in common) and JOIN not in a + b]


def pairs_of(texts: list[str | None], spec: str, common: frozenset[str]) -> list[str]:
    """The `pairs` column of each text: its pairs, space-separated."""
    return [" ".join(pair_tokens(tokens, common)) for tokens in tokenizer(spec)([t or "" for t in texts])]


def query_pairs(phrases: list[list[str]], spec: str,
                common: frozenset[str]) -> tuple[list[list[str]], list[list[str]], list[str] | None]:
    """The phrases of a query (each a list of words) that FTS5 keeps with tokenizer `spec` (it drops
    one with no token in it, "_" say, which Python's \\w takes for a word); for each the pairs that
    find it: none for a word alone or a phrase without a common word (FTS5 finds those fast), else
    all its pairs; and, when the pairs are the phrases (each two words, one of them common), the
    other word of each ("de prévention": "prévention"), enough to check and score a chunk that
    holds the pair (None otherwise)."""
    kept, found, others = [], [], []
    for phrase, tokens in zip(phrases, tokenizer(spec)([" ".join(phrase) for phrase in phrases])):
        if tokens:
            kept.append(phrase)
            found.append(list(dict.fromkeys(pair_tokens(tokens, common))))
            uncommon = [word for word, token in zip(phrase, tokens) if token not in common]
            exact = len(tokens) == len(phrase) == 2 and len(found[-1]) == 1 and len(uncommon) == 1
            others.append(uncommon[0] if exact else None)
    return kept, found, (others if others and None not in others else None)


def match(pair_list: Iterable[str]) -> str:
    """An FTS5 query for rows holding every pair of `pair_list`."""
    return " AND ".join(f'"{pair}"' for pair in pair_list)
