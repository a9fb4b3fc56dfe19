"""Time slots: a spoken time of day -> "HH:MM" on a 24-hour clock.

Forms read: "2:30 pm", "two thirty in the afternoon", "14:00", "930 am",
"one oh five", "noon", "midnight", "half past ten", "quarter to five",
"twenty past four", "ten to six", "3 o'clock", "at 9", "around 3", and a bare
hour when it is the whole answer ("three").

Morning or afternoon comes from the words said with the time ("am", "pm",
"in the morning", "in the afternoon/evening", "at night", "tonight") or
anywhere in the utterance ("tomorrow morning at 9"). "At night" means 6-11 PM,
midnight for 12, and 1-5 AM. When nothing says which, hours use business hours:
8-11 are AM, 12 is noon, 1-7 are PM; 0 and 13-23 are already 24-hour.
Several different times: the last counts, unless offered as alternatives ("2 or
3"), which gives None.

Why by hand: `dateparser` 1.5 reads none of "two thirty in the afternoon",
"half past ten" or "quarter to five", and turns "at 9" into a date;
`parsedatetime` 2.6 reads "two thirty in the afternoon" as 13:00. Numbers are
first turned into digits by `text2num`.
"""

from __future__ import annotations

import re
from typing import Literal

from runtime.slots.extraction import Extraction
from runtime.slots.words import Rule, content_words, normalize, numerals, scan, settle

Meridiem = Literal["am", "pm", "night"]
HourMinute = tuple[int, int]

_MER_WORDS: dict[str, Meridiem] = {
    "a m": "am", "am": "am", "in the morning": "am", "this morning": "am", "morning": "am",
    "p m": "pm", "pm": "pm", "in the afternoon": "pm", "this afternoon": "pm",
    "afternoon": "pm", "in the evening": "pm", "this evening": "pm", "evening": "pm",
    "tonight": "night", "at night": "night", "night": "night",
}  # fmt: skip
#: Meridiem words that may follow a time ("9 in the morning"); bare "morning" is only a hint.
_MER_AFTER = [w for w in _MER_WORDS if " " in w or w in ("am", "pm", "tonight")]
_MER_ALTERNATIVES = "|".join(sorted(_MER_AFTER, key=len, reverse=True))
_MER = r"(?: oclock)?(?: (?P<mer>" + _MER_ALTERNATIVES + "))"
_MER_OPT = _MER + "?"
_GLUED_MERIDIEM = re.compile(r"(\d)(am|pm)\b")  # "10am" -> "10 am"
_HINT = re.compile(r"\b(morning|afternoon|evening|tonight|night)\b")
_H = r"(?P<h>\d{1,2})"
_LEAD = r"(?:(?:at|around|about|by) )?"


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + r"\b")


_COLON = _compile(_LEAD + _H + r":(?P<m>\d{2})" + _MER_OPT)
_OH_MINUTE = _compile(_LEAD + _H + r" (?:oh|o|0) (?P<m1>\d)" + _MER_OPT)
_SPACED = _compile(_LEAD + _H + r" (?P<m>\d{2})" + _MER_OPT)
_COMPACT = _compile(
    r"(?:at |around |about |by )(?P<hm>\d{3,4})" + _MER_OPT
    + r"|(?P<hm2>\d{3,4})" + _MER.replace("(?P<mer>", "(?P<mer2>")
)  # fmt: skip
_HALF_PAST = _compile(r"half past " + _H + _MER_OPT)
_QUARTER_PAST = _compile(r"(?:a )?quarter (?:past|after) " + _H + _MER_OPT)
_QUARTER_TO = _compile(r"(?:a )?quarter (?:to|before|till|til|of) " + _H + _MER_OPT)
_MINUTES_PAST = _compile(r"(?P<n>\d{1,2})(?: minutes?)? (?:past|after) " + _H + _MER_OPT)
_MINUTES_TO = _compile(r"(?P<n>\d{1,2})(?: minutes?)? (?:to|before|till|til) " + _H + _MER_OPT)
_NOON = _compile(r"(?:12 )?(?P<word>noon|midday|midnight)")
_HOUR_MER = _compile(_LEAD + _H + _MER)
_OCLOCK = _compile(_LEAD + _H + r" oclock")
_AT_HOUR = _compile(r"(?:at|around|about|by|make it|say) " + _H)
_ONLY_HOUR = re.compile(r"(?P<h>\d{1,2})")
#: Words that may surround a bare hour in an answer to "which time?" ("ten is
#: fine", "let's do two", "two would be great"); any other word makes it unsure.
_ACCEPTING = frozenset(
    [
        "is",
        "fine",
        "please",
        "works",
        "work",
        "good",
        "great",
        "lets",
        "let",
        "us",
        "do",
        "would",
        "be",
        "that",
        "ok",
        "okay",
        "sounds",
        "perfect",
        "how",
        "about",
        "ill",
        "i",
        "take",
        "then",
        "yes",
        "yeah",
        "sure",
        "the",
        "one",
        "thanks",
        "thank",
        "you",
        "go",
        "with",
        "for",
        "me",
        "best",
        "suits",
        "suit",
    ]
)


def _resolve(hour: int, minute: int, meridiem: Meridiem | None) -> HourMinute | None:
    """24-hour (hour, minute) from a spoken hour; None when out of range."""
    if not (0 <= minute <= 59 and 0 <= hour <= 23):
        return None
    if meridiem == "am":
        if hour > 12:
            return None
        return (0 if hour == 12 else hour, minute)
    if meridiem == "pm":
        return (hour + 12 if 1 <= hour <= 11 else hour, minute)
    if meridiem == "night":
        if hour == 12:
            return (0, minute)
        return (hour + 12 if 6 <= hour <= 11 else hour, minute)
    if 1 <= hour <= 7:
        return (hour + 12, minute)
    return (hour, minute)


def _rules(hint: Meridiem | None) -> list[Rule[HourMinute]]:
    def mer(m: re.Match[str], group: str = "mer") -> Meridiem | None:
        word = m.groupdict().get(group)
        return _MER_WORDS[word] if word else hint

    def hm(hour: int, minute: int, m: re.Match[str], group: str = "mer") -> HourMinute | None:
        return _resolve(hour, minute, mer(m, group))

    def compact(m: re.Match[str]) -> HourMinute | None:
        digits, group = (m["hm"], "mer") if m["hm"] else (m["hm2"], "mer2")
        return hm(int(digits[:-2]), int(digits[-2:]), m, group)

    def before(hour: int, minutes: int, m: re.Match[str]) -> HourMinute | None:
        # "quarter to one" is 12:45; a spoken clock has no hour before 0.
        if hour == 0 or not 1 <= minutes <= 59:
            return None
        return hm(12 if hour == 1 else hour - 1, 60 - minutes, m)

    def noon(m: re.Match[str]) -> HourMinute:
        return (0, 0) if m["word"] == "midnight" else (12, 0)

    return [
        (_NOON, noon),
        (_COLON, lambda m: hm(int(m["h"]), int(m["m"]), m)),
        (_OH_MINUTE, lambda m: hm(int(m["h"]), int(m["m1"]), m)),
        (_HALF_PAST, lambda m: hm(int(m["h"]), 30, m)),
        (_QUARTER_PAST, lambda m: hm(int(m["h"]), 15, m)),
        (_QUARTER_TO, lambda m: before(int(m["h"]), 15, m)),
        (_MINUTES_PAST, lambda m: hm(int(m["h"]), int(m["n"]), m)),
        (_MINUTES_TO, lambda m: before(int(m["h"]), int(m["n"]), m)),
        (_COMPACT, compact),
        (_SPACED, lambda m: hm(int(m["h"]), int(m["m"]), m)),
        (_HOUR_MER, lambda m: hm(int(m["h"]), 0, m)),
        (_OCLOCK, lambda m: hm(int(m["h"]), 0, m)),
        (_AT_HOUR, lambda m: hm(int(m["h"]), 0, m)),
    ]


def spoken_time(hour: int, minute: int) -> str:
    """Read-back like "2:30 PM", "9 AM", "noon" or "midnight"."""
    if minute == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    suffix = "AM" if hour < 12 else "PM"
    h12 = hour % 12 or 12
    return f"{h12} {suffix}" if minute == 0 else f"{h12}:{minute:02d} {suffix}"


def _bare_hour(text: str, hint: Meridiem | None) -> HourMinute | None:
    """A lone hour (1-12), alone or with accepting words around it."""
    words = text.split()
    hours = [w for w in words if _ONLY_HOUR.fullmatch(w)]
    if len(hours) != 1 or not 1 <= int(hours[0]) <= 12:
        return None
    if any(w not in _ACCEPTING for w in words if w != hours[0]):
        return None
    return _resolve(int(hours[0]), 0, hint)


def extract_time(utterance: str) -> Extraction | None:
    """The time of day the caller named as "HH:MM", or None when none (or several)."""
    text = _GLUED_MERIDIEM.sub(r"\1 \2", normalize(utterance))
    text = " ".join(content_words(numerals(text)))
    hint_match = _HINT.search(text)
    hint = _MER_WORDS[hint_match.group(1)] if hint_match else None
    found = settle(text, scan(text, _rules(hint)))
    if found is None:
        found = _bare_hour(text, hint)
    if found is None:
        return None
    hour, minute = found
    return Extraction(f"{hour:02d}:{minute:02d}", spoken_time(hour, minute))
