"""Yes/no slots: a spoken answer -> bool.

Contractions are expanded first ("don't" -> "do not", "that's" -> "that is"),
then phrases are matched longest first, so "no problem", "no worries" and "why
not" read as yes, "of course not", "absolutely not", "not really" and "I don't
think so" as no, and "please don't" as no although "please" alone is yes. A
short answer built on the question's verb counts too: "I do", "it is" (at the end
of the answer) are yes, "I don't", "it isn't" are no.

Doubt wins: "not sure", "maybe", "I don't know", "yes and no" give None, as does
an answer with no yes or no in it. When a caller says both, the last one counts
("no wait yes" is yes), since callers correct themselves at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from runtime.slots.extraction import Extraction
from runtime.slots.words import Rule, normalize, scan

Answer = Literal["yes", "no", "unsure"]

_CONTRACTIONS = {
    "dont": "do not", "doesnt": "does not", "didnt": "did not", "isnt": "is not",
    "arent": "are not", "wasnt": "was not", "werent": "were not", "cant": "can not",
    "cannot": "can not", "wont": "will not", "wouldnt": "would not", "shouldnt": "should not",
    "couldnt": "could not", "havent": "have not", "hasnt": "has not", "hadnt": "had not",
    "aint": "is not", "thats": "that is", "its": "it is", "im": "i am", "id": "i would",
    "alright": "all right", "okay": "ok",
}  # fmt: skip

# fmt: off
_PHRASES: dict[Answer, tuple[str, ...]] = {
    "unsure": (
        "i do not know", "do not know", "dunno", "not sure", "i am not sure", "not certain",
        "maybe", "perhaps", "possibly", "it depends", "depends", "yes and no", "i can not say",
        "hard to say", "no idea",
    ),
    "no": (
        "no", "nope", "nah", "nay", "negative", "never", "incorrect", "wrong", "uh uh",
        "not really", "not at all", "absolutely not", "definitely not", "certainly not",
        "of course not", "no way", "no thanks", "no thank you", "not now", "rather not",
        "i would rather not", "i do not think so", "i guess not", "i think not",
        "please do not", "do not", "not interested", "i am good thanks", "not yet",
    ),
    "yes": (
        "yes", "yeah", "yep", "yup", "yea", "ya", "yah", "yes please", "uh huh", "mhm", "mm hmm",
        "sure", "sure thing", "for sure", "correct", "right", "that is right", "that is correct",
        "true", "that is true", "exactly", "absolutely", "definitely", "certainly", "indeed",
        "of course", "affirmative", "ok", "all right", "fine", "good", "great", "perfect",
        "please", "please do", "go ahead", "do it", "sounds good", "sounds great", "that works",
        "works for me", "that would work", "that would be great", "i would like that",
        "i would love that", "i would love to", "you bet", "i think so", "i believe so",
        "i guess so", "why not", "no problem", "no worries", "not a problem", "no doubt",
        "confirm", "confirmed", "that is it", "it is not a problem", "that is not a problem",
    ),
}
# fmt: on

_SUBJECT = r"(?:i|we|it|that|this|they|he|she|you)"
_AUX = r"(?:do|does|did|am|is|are|was|were|will|would|can|could|have|has|had|should)"
#: A yes-word after "not", consumed with it so that "that's not right" holds no "right".
_NEGATED = r"(?:quite |exactly |really )?(?:right|correct|true|it|ok|good|fine|great)"


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + r"\b")


def _constant(answer: Answer) -> Callable[[re.Match[str]], Answer]:
    return lambda _match: answer


def _build_rules() -> list[Rule[Answer]]:
    table: list[tuple[int, str, Answer]] = [
        (len(phrase.split()), re.escape(phrase), answer)
        for answer, phrases in _PHRASES.items()
        for phrase in phrases
    ]
    table += [
        (3, _SUBJECT + " " + _AUX + " not(?: " + _NEGATED + ")?", "no"),
        (2, "not " + _NEGATED, "no"),
        (2, _SUBJECT + " " + _AUX + "$", "yes"),
    ]
    # Longest phrases first so that "no problem" is tried before "no".
    table.sort(key=lambda row: -row[0])
    return [(_compile(pattern), _constant(answer)) for _, pattern, answer in table]


_RULES = _build_rules()


def _expand(text: str) -> str:
    return " ".join(_CONTRACTIONS.get(word, word) for word in text.split())


def extract_yes_no(utterance: str) -> Extraction | None:
    """True for yes, False for no; None when the caller is unsure or says neither."""
    text = _expand(normalize(utterance))
    answers = [f.value for f in scan(text, _RULES)]
    if not answers or "unsure" in answers:
        return None
    yes = answers[-1] == "yes"
    return Extraction(yes, "yes" if yes else "no")
