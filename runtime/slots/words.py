"""Spoken-text normalisation and phrase scanning shared by the slot extractors.

Speech-to-text output is lowercase, mostly unpunctuated and spells numbers out.
Extractors read `normalize(text)`: lowercase ASCII words and digits, apostrophes
dropped ("don't" -> "dont", "o'clock" -> "oclock"), and `:` `/` `.` `-` kept only
between digits (times, dates, decimals). Where numbers matter they also apply
`numerals`, which turns number words into digits with `text2num`
("twenty three" -> "23", "fourteenth" -> "14th", "three point five" -> "3.5").

`scan` finds phrases left to right with a list of (pattern, resolver) rules, so
each extractor is a small grammar: at every word the first rule whose pattern
matches there and whose resolver accepts the match wins, and scanning resumes
after it.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from text_to_num import alpha2digit

T = TypeVar("T")

#: Hesitation sounds that carry no content.
FILLERS: frozenset[str] = frozenset(
    {"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "eh", "hmm", "hmmm", "hm", "mm"}
)

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NOT_KEPT = re.compile(r"[^a-z0-9:/.+\-]+")
_LONE_SEPARATOR = re.compile(r"(?<!\d)[:/.\-]|[:/.\-](?!\d)")
_LONE_PLUS = re.compile(r"\+(?!\d)")
_WORD = re.compile(r"\S+")


def ascii_lower(text: str) -> str:
    """Lowercase ASCII form of `text`: accents removed, other scripts dropped."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return text.encode("ascii", "ignore").decode("ascii").lower()


def normalize(text: str) -> str:
    """Lowercase words and digits separated by single spaces (see module doc)."""
    text = _THOUSANDS.sub("", ascii_lower(text)).replace("'", "")
    text = _NOT_KEPT.sub(" ", text)
    text = _LONE_SEPARATOR.sub(" ", text)
    text = _LONE_PLUS.sub(" ", text)
    return " ".join(text.split())


def numerals(text: str) -> str:
    """`text` (already normalised) with every number word turned into digits.

    Ordinals keep a suffix ("third" -> "3rd"); digit groups said apart stay apart
    ("five five five" -> "5 5 5", "twenty twenty six" -> "20 26").
    """
    return alpha2digit(text, "en", threshold=0)


def content_words(text: str) -> list[str]:
    """Words of a normalised text without hesitation fillers."""
    return [w for w in text.split() if w not in FILLERS]


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    """A phrase found by `scan`: its character span and resolved value."""

    start: int
    end: int
    value: T


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], T | None]]


def scan(text: str, rules: Sequence[Rule[T]]) -> list[Found[T]]:
    """Non-overlapping phrases of `text`, left to right.

    At each word start the rules are tried in order; a rule applies when its
    pattern matches there, ends at a word boundary and its resolver returns a
    value (a resolver returns None to reject a match, e.g. "february 30").
    """
    found: list[Found[T]] = []
    starts = [m.start() for m in _WORD.finditer(text)]
    resume = 0
    for start in starts:
        if start < resume:
            continue
        for pattern, resolve in rules:
            m = pattern.match(text, start)
            if m is None or m.end() == start:
                continue
            if m.end() < len(text) and text[m.end()] != " ":
                continue
            value = resolve(m)
            if value is not None:
                found.append(Found(start, m.end(), value))
                resume = m.end()
                break
    return found


_OR = re.compile(r"\bor\b")


def settle(text: str, found: Sequence[Found[T]]) -> T | None:
    """The value a caller settled on among the phrases found in `text`.

    Callers correct themselves ("monday no tuesday"), so the last value counts;
    but two different values offered as alternatives ("monday or tuesday") are
    ambiguous and give None.
    """
    if not found:
        return None
    for before, after in itertools.pairwise(found):
        if before.value != after.value and _OR.search(text, before.end, after.start):
            return None
    return found[-1].value
