"""Choice slots: a spoken answer -> one entry of the node's `choices`, verbatim.

Tried in order; the first step that settles on exactly one choice decides, and a
step that finds several stops with None (the caller is asked again):

1. Containment: the choice's words appear in the answer as whole words
   ("the deep cleaning please" -> "deep cleaning"), numbers compared as digits
   ("two pm" matches "2 PM"), spaces ignored when the answer is only the choice
   ("check up" -> "checkup"). When one contained choice is part of a longer
   contained one, the longer wins.
2. Position: "the second one", "number 2", "option three", "the last one" (not
   used when a choice itself has such a word, like "first floor").
3. Distinctive words: an answer word that closely matches (rapidfuzz ratio >= 85,
   so "whitning" matches "whitening") words of exactly one choice votes for it;
   votes for two different choices are ambiguous.
4. Whole answer: rapidfuzz WRatio >= 85 against one choice and at least 10 points
   ahead of the next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz, process

from runtime.slots.extraction import Extraction
from runtime.slots.words import FILLERS, normalize, numerals

WORD_MATCH = 85.0
WHOLE_MATCH = 85.0
WHOLE_MARGIN = 10.0

_ORDINAL_WORDS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth",
)  # fmt: skip
_POSITIONS: dict[str, int] = {w: i for i, w in enumerate(_ORDINAL_WORDS)}
_POSITIONS.update({"last": -1, "final": -1, "latter": -1, "former": 0})
_NUMBERED = re.compile(r"\b(?:number|option|choice) (\d{1,2})\b")
_ORDINAL_DIGITS = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b")
#: Words that say nothing about which choice is meant (unless a choice uses them).
_STOP = frozenset(
    {"the", "a", "an", "one", "1", "i", "id", "ill", "would", "like", "want", "wanna", "please",
     "think", "guess", "go", "with", "take", "for", "on", "of", "that", "this", "it", "is",
     "its", "me", "my", "just", "yes", "yeah", "ok", "okay", "sure", "prefer", "lets", "do",
     "be", "will", "option", "choice", "number", "maybe", "probably", "to", "at", "in", "and",
     "thanks", "thank", "you", "we", "need", "get", "have", "can", "could", "book", "pick"}
    | FILLERS
)  # fmt: skip


def _key(text: str) -> str:
    return numerals(normalize(text))


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?<!\S){re.escape(needle)}(?!\S)", haystack) is not None


def _by_containment(answer: str, content: list[str], keys: list[str]) -> list[int]:
    found = [i for i, k in enumerate(keys) if _contains(answer, k)]
    compact = "".join(content)
    found += [i for i, k in enumerate(keys) if k and k.replace(" ", "") == compact]
    found = list(dict.fromkeys(found))
    # A choice contained in a longer contained choice ("cleaning" in "deep cleaning") yields.
    return [i for i in found if not any(j != i and _contains(keys[j], keys[i]) for j in found)]


def _by_position(answer: str, keys: list[str], count: int) -> list[int]:
    words = answer.split()
    if any(w in _POSITIONS or _ORDINAL_DIGITS.fullmatch(w) for k in keys for w in k.split()):
        return []
    picks = {_POSITIONS[w] for w in words if w in _POSITIONS}
    picks |= {int(n) - 1 for n in _ORDINAL_DIGITS.findall(answer)}
    picks |= {int(n) - 1 for n in _NUMBERED.findall(answer)}
    indexes = {p % count if p == -1 else p for p in picks}
    return sorted(i for i in indexes if 0 <= i < count)


def _by_words(content: list[str], keys: list[str]) -> list[int]:
    choice_words = [set(k.split()) - _STOP for k in keys]
    voted: set[int] = set()
    for word in content:
        if len(word) < 3 and not word.isdigit():
            continue
        supports = {
            i
            for i, words in enumerate(choice_words)
            if any(fuzz.ratio(word, w) >= WORD_MATCH for w in words)
        }
        if len(supports) == 1:
            voted |= supports
    return sorted(voted)


def _by_whole(content: list[str], keys: list[str]) -> list[int]:
    query = " ".join(content)
    if not query:
        return []
    best = process.extract(query, keys, scorer=fuzz.WRatio, limit=2)
    if not best or best[0][1] < WHOLE_MATCH:
        return []
    if len(best) > 1 and best[0][1] - best[1][1] < WHOLE_MARGIN:
        return []
    return [best[0][2]]


def extract_choice(utterance: str, choices: Sequence[str]) -> Extraction | None:
    """The one entry of `choices` the caller picked, or None when unclear."""
    keys = [_key(c) for c in choices]
    answer = _key(utterance)
    used = {w for k in keys for w in k.split()}
    content = [w for w in answer.split() if w not in _STOP or w in used]
    if not any(w not in FILLERS for w in answer.split()):
        return None
    for step in (
        lambda: _by_containment(answer, content, keys),
        lambda: _by_position(normalize(utterance) + " " + answer, keys, len(choices)),
        lambda: _by_words(content, keys),
        lambda: _by_whole(content, keys),
    ):
        picked = step()
        if len(picked) == 1:
            choice = choices[picked[0]]
            return Extraction(choice, choice)
        if len(picked) > 1:
            return None
    return None
