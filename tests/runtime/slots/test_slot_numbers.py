"""Number slots: spoken quantities -> int or float."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import extract

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("twenty three", 23),
        ("23", 23),
        ("3.5", 3.5),
        ("three point five", 3.5),
        ("three and a half", 3.5),
        ("two and a quarter", 2.25),
        ("two and three quarters", 2.75),
        ("three quarters", 0.75),
        ("a half", 0.5),
        ("a dozen", 12),
        ("two dozen", 24),
        ("half a dozen", 6),
        ("a couple", 2),
        ("a hundred", 100),
        ("a hundred and five", 105),
        ("one thousand two hundred", 1200),
        ("3,000", 3000),
        ("minus five", -5),
        ("negative 2.5", -2.5),
        ("zero", 0),
        ("um about twenty people", 20),
        ("we are four", 4),
        ("five five five", 555),
        ("twenty twenty six", 2026),
        ("the 2nd", 2),
    ],
)
def test_spoken_numbers(said: str, expected: float) -> None:
    result = extract("number", said, now=NOW)
    assert result is not None, said
    assert result.value == expected
    assert type(result.value) is type(expected)


@pytest.mark.parametrize(
    "said", ["i don't know", "", "um", "two or three", "2 adults and 3 kids", "none", "1" * 40]
)
def test_no_single_number_gives_none(said: str) -> None:
    assert extract("number", said, now=NOW) is None


def test_read_back_drops_trailing_zeros() -> None:
    result = extract("number", "two and a half", now=NOW)
    assert result is not None and result.spoken == "2.5"


@pytest.mark.parametrize(
    ("said", "expected"),
    [("it's nine four one oh three", 94103), ("nine four one one oh", 94110),
     ("two oh five", 205)],
)  # fmt: skip
def test_oh_among_digits_is_zero(said: str, expected: int) -> None:
    result = extract("number", said, now=NOW)
    assert result is not None and result.value == expected


def test_oh_alone_is_not_a_number() -> None:
    assert extract("number", "oh no", now=NOW) is None
