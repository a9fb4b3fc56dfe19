"""Time slots: spoken times of day -> "HH:MM" (24-hour)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import extract

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("2:30 pm", "14:30"),
        ("2:30 p.m.", "14:30"),
        ("two thirty in the afternoon", "14:30"),
        ("two thirty", "14:30"),
        ("14:00", "14:00"),
        ("0:30", "00:30"),
        ("noon", "12:00"),
        ("twelve noon", "12:00"),
        ("midnight", "00:00"),
        ("half past ten", "10:30"),
        ("quarter to five", "16:45"),
        ("a quarter past nine", "09:15"),
        ("quarter to one", "12:45"),
        ("twenty past four", "16:20"),
        ("ten to six", "17:50"),
        ("at 9", "09:00"),
        ("at nine", "09:00"),
        ("around three", "15:00"),
        ("3 o'clock", "15:00"),
        ("nine a m", "09:00"),
        ("9 in the morning", "09:00"),
        ("seven in the evening", "19:00"),
        ("930 am", "09:30"),
        ("at 1430", "14:30"),
        ("one oh five", "13:05"),
        ("seven forty five", "19:45"),
        ("twelve fifteen", "12:15"),
        ("12 am", "00:00"),
        ("12 pm", "12:00"),
        ("11 at night", "23:00"),
        ("2 at night", "02:00"),
        ("tomorrow morning at 9", "09:00"),
        ("tonight at eight", "20:00"),
        ("next tuesday at 2:30 pm", "14:30"),
        ("um three", "15:00"),
        ("eight", "08:00"),
        ("seven", "19:00"),
        ("at 3 no make it 4", "16:00"),
    ],
)
def test_spoken_times(said: str, expected: str) -> None:
    result = extract("time", said, now=NOW)
    assert result is not None, said
    assert result.value == expected


@pytest.mark.parametrize(
    "said",
    ["i don't know", "tomorrow", "", "uh", "2 or 3", "25:00", "14 am", "in the afternoon", "soon"],
)
def test_no_time_gives_none(said: str) -> None:
    assert extract("time", said, now=NOW) is None


@pytest.mark.parametrize(
    ("said", "spoken"),
    [("2:30 pm", "2:30 PM"), ("at 9", "9 AM"), ("noon", "noon"), ("0:05", "12:05 AM")],
)
def test_read_back(said: str, spoken: str) -> None:
    result = extract("time", said, now=NOW)
    assert result is not None and result.spoken == spoken


@pytest.mark.parametrize(
    ("said", "expected"),
    [("ten is fine", "10:00"), ("ten please", "10:00"), ("let's do two", "14:00"),
     ("two would be great", "14:00")],
)  # fmt: skip
def test_bare_hour_with_accepting_words(said: str, expected: str) -> None:
    result = extract("time", said, now=NOW)
    assert result is not None and result.value == expected


@pytest.mark.parametrize("said", ["I have ten kids", "ten or eleven", "ten dollars"])
def test_bare_hour_with_other_words_is_unsure(said: str) -> None:
    assert extract("time", said, now=NOW) is None
