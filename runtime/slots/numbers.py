"""Number slots: a spoken quantity -> int or float.

Number words become digits with `text2num` ("twenty three" -> 23, "three point
five" -> 3.5, "a hundred and five" -> 105). On top of that this module reads what
text2num leaves as words: halves and quarters ("three and a half" -> 3.5, "a
quarter" -> 0.25), dozens ("a dozen" -> 12, "half a dozen" -> 6), "a couple" (2),
"a hundred"/"a thousand", and a sign ("minus five", "negative 5").

"Oh" among digits is zero ("nine four one oh three" -> 94103). Digit groups
said one after another with no word between them are one number,
the way people say "five five five" or "twenty twenty six" (-> 555, 2026). Two
separate numbers ("two or three", "2 adults and 3 kids") are ambiguous: None.
The value is an int unless the caller said a fraction or a decimal point.
"""

from __future__ import annotations

import re

from runtime.slots.extraction import Extraction
from runtime.slots.words import Rule, normalize, numerals, scan

Number = int | float

_FRACTIONS = {"a half": 0.5, "half": 0.5, "a quarter": 0.25, "3 quarters": 0.75}
_FRACTION = r"(?P<frac>a half|a quarter|3 quarters)"
_SIGN = r"(?P<sign>minus |negative )?"
# Bounded so that every match converts exactly (no huge ints, no float overflow).
_INT_RUN = r"(?P<int>\d{1,15}(?: \d{1,15}){0,5})"
_DECIMAL = r"(?P<dec>\d{0,15}\.\d{1,15})"


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + r"\b")


_WHOLE_AND_FRACTION = _compile(_SIGN + r"(?P<whole>\d+) and " + _FRACTION)
_HALF_DOZEN = _compile(r"(?:a )?half (?:a )?dozen")
_DOZENS = _compile(r"(?:(?P<n>\d+) |a )dozen")
_COUPLE = _compile(r"a couple")
_A_POWER = _compile(r"an? (?P<power>100|1000|1000000)")
_DECIMAL_NUMBER = _compile(_SIGN + _DECIMAL)
_INTEGER = _compile(_SIGN + _INT_RUN + r"(?:st|nd|rd|th)?")
_LONE_FRACTION = _compile(r"(?P<frac>a half|half|a quarter|3 quarters)")


def _signed(m: re.Match[str], value: Number) -> Number:
    return -value if m.group("sign") else value


def _whole_and_fraction(m: re.Match[str]) -> Number:
    return _signed(m, int(m.group("whole")) + _FRACTIONS[m.group("frac")])


def _integer(m: re.Match[str]) -> Number:
    return _signed(m, int(m.group("int").replace(" ", "")))


_RULES: list[Rule[Number]] = [
    (_WHOLE_AND_FRACTION, _whole_and_fraction),
    (_HALF_DOZEN, lambda m: 6),
    (_DOZENS, lambda m: 12 * int(m.group("n") or 1)),
    (_COUPLE, lambda m: 2),
    (_A_POWER, lambda m: int(m.group("power"))),
    (_LONE_FRACTION, lambda m: _FRACTIONS[m.group("frac")]),
    (_DECIMAL_NUMBER, lambda m: _signed(m, float(m.group("dec")))),
    (_INTEGER, _integer),
]


def spoken_number(value: Number) -> str:
    """Digits without a trailing ".0"; at most four decimals."""
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.4f}".rstrip("0")
    return str(value)


_DIGIT_WORDS = frozenset(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
)


def _oh_as_zero(text: str) -> str:
    """ "oh" or "o" said among digits is a zero ("nine four one oh three")."""
    words = text.split()

    def digitish(i: int) -> bool:
        return 0 <= i < len(words) and (words[i] in _DIGIT_WORDS or words[i].isdigit())

    return " ".join(
        "zero" if w in ("oh", "o") and (digitish(i - 1) or digitish(i + 1)) else w
        for i, w in enumerate(words)
    )


def extract_number(utterance: str) -> Extraction | None:
    """The one quantity the caller said, or None for none or several."""
    text = numerals(_oh_as_zero(normalize(utterance)))
    values = {f.value for f in scan(text, _RULES)}
    if len(values) != 1:
        return None
    value = values.pop()
    return Extraction(value, spoken_number(value))
