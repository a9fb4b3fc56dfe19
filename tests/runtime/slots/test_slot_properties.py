"""Property: `extract` never raises for any utterance and returns the kind's type."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta, timezone

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.slots import SLOT_KINDS, extract

CHOICES = ["cleaning", "checkup", "first floor", "Tuesday 2 PM"]
# Words the extractors react to, so that generated utterances reach deep paths.
VOCAB = [
    "next", "this", "tuesday", "the", "14th", "fourteenth", "of", "december", "in", "two",
    "weeks", "a", "week", "from", "monday", "tomorrow", "12/3", "2027-02-30", "at", "9",
    "half", "past", "quarter", "to", "pm", "am", "noon", "thirty", "oh", "double", "five",
    "plus", "+44", "dot", "com", "gmail", "underscore", "@", "yes", "no", "not", "problem",
    "don't", "sure", "second", "one", "last", "number", "and", "dozen", "minus", "point",
    "3.5", "or", "hundred", "99999999999999999999", "0", "31st", "february", "29", ":",
    "night", "ext", "um", "year", "years", "999", "extension",
]  # fmt: skip
utterances = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=4)), max_size=12).map(" ".join),
)
clocks = st.one_of(
    st.just(datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
)


def _check(kind: str, value: object, now: datetime) -> None:
    json.dumps(value)
    match kind:
        case "text":
            assert isinstance(value, str) and value.strip() == value and value
        case "number":
            assert isinstance(value, int | float) and not isinstance(value, bool)
            assert math.isfinite(value)
        case "yes_no":
            assert isinstance(value, bool)
        case "date":
            assert isinstance(value, str)
            assert isinstance(date.fromisoformat(value), date)
        case "time":
            assert isinstance(value, str)
            m = re.fullmatch(r"(\d\d):(\d\d)", value)
            assert m and int(m[1]) < 24 and int(m[2]) < 60
        case "phone":
            assert isinstance(value, str) and value.startswith("+")
            assert phonenumbers.is_valid_number(phonenumbers.parse(value))
        case "email":
            assert isinstance(value, str) and "@" in value and value == value.lower()
        case "choice":
            assert value in CHOICES


@settings(max_examples=150, deadline=None, derandomize=True)
@given(utterance=utterances, now=clocks)
def test_extract_never_raises_and_is_typed(utterance: str, now: datetime) -> None:
    for kind in SLOT_KINDS:
        result = extract(kind, utterance, now=now, choices=CHOICES)  # type: ignore[arg-type]
        if result is not None:
            _check(kind, result.value, now)
            assert isinstance(result.spoken, str) and result.spoken
