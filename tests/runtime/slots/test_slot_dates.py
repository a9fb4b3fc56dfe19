"""Date slots resolved against a fixed clock: Wednesday 2026-11-25 10:00 (UTC-5)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import extract

EST = timezone(timedelta(hours=-5))
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=EST)  # a Wednesday


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("today", "2026-11-25"),
        ("tonight", "2026-11-25"),
        ("tomorrow", "2026-11-26"),
        ("tomorrow morning please", "2026-11-26"),
        ("day after tomorrow", "2026-11-27"),
        ("the day after tomorrow", "2026-11-27"),
        ("yesterday", "2026-11-24"),
        # bare weekday: next such day strictly after today
        ("tuesday", "2026-12-01"),
        ("on friday", "2026-11-27"),
        ("wednesday", "2026-12-02"),
        # "this": on or after today
        ("this friday", "2026-11-27"),
        ("this wednesday", "2026-11-25"),
        ("this coming monday", "2026-11-30"),
        # "next": that day of next week (Monday-start weeks)
        ("next tuesday", "2026-12-01"),
        ("next friday", "2026-12-04"),
        ("next week tuesday", "2026-12-01"),
        ("tuesday next week", "2026-12-01"),
        ("tuesday after next", "2026-12-08"),
        ("uh next tuesday i guess", "2026-12-01"),
        # day of month
        ("the 14th", "2026-12-14"),
        ("the fourteenth", "2026-12-14"),
        ("on the fourteenth please", "2026-12-14"),
        ("the twenty fifth", "2026-11-25"),
        ("the thirtieth", "2026-11-30"),
        ("the thirty first", "2026-12-31"),
        ("the 14th of the month", "2026-12-14"),
        ("the second of next month", "2026-12-02"),
        ("the 30th of this month", "2026-11-30"),
        # month and day
        ("december 3rd", "2026-12-03"),
        ("december third", "2026-12-03"),
        ("dec 3", "2026-12-03"),
        ("the third of december", "2026-12-03"),
        ("december the third", "2026-12-03"),
        ("3 december", "2026-12-03"),
        ("november 20", "2027-11-20"),
        ("january fifth", "2027-01-05"),
        ("february 29", "2028-02-29"),
        ("december third twenty twenty seven", "2027-12-03"),
        ("december 3 2027", "2027-12-03"),
        # numeric
        ("12/3", "2026-12-03"),
        ("12/3/27", "2027-12-03"),
        ("1/5/2027", "2027-01-05"),
        ("1-5-2027", "2027-01-05"),
        ("2027-01-05", "2027-01-05"),
        # offsets
        ("in two weeks", "2026-12-09"),
        ("in 2 weeks", "2026-12-09"),
        ("in three days", "2026-11-28"),
        ("in a week", "2026-12-02"),
        ("in a couple of days", "2026-11-27"),
        ("in a month", "2026-12-25"),
        ("two weeks from today", "2026-12-09"),
        ("a week from tomorrow", "2026-12-03"),
        ("a week from monday", "2026-12-07"),
        ("a week from next friday", "2026-12-11"),
        # weekday with a date: the first date that is both
        ("friday the 4th", "2026-12-04"),
        ("friday the first", "2027-01-01"),
        ("tuesday december first", "2026-12-01"),
        ("friday the 1st of january", "2027-01-01"),
        ("friday at 9", "2026-11-27"),
        # self-correction: the last day named counts
        ("monday no sorry tuesday", "2026-12-01"),
        ("monday december 1 sorry tuesday december 1", "2026-12-01"),
    ],
)
def test_spoken_dates(said: str, expected: str) -> None:
    result = extract("date", said, now=NOW)
    assert result is not None, said
    assert result.value == expected


@pytest.mark.parametrize(
    "said",
    [
        "i don't know",
        "um",
        "",
        "next week",
        "sometime soon",
        "monday or tuesday",
        "december",
        "february 30",
        "13/45",
        "at 9",
        "monday december 1st",  # Dec 1 2026 is a Tuesday
        "3-4",
        "whenever works for you",
        "the 2nd of smarch",
        "the 31st of this month",
    ],
)
def test_no_single_day_gives_none(said: str) -> None:
    assert extract("date", said, now=NOW) is None


def test_day_first_regions_read_numeric_dates_day_first() -> None:
    us = extract("date", "12/3", now=NOW, region="US")
    gb = extract("date", "12/3", now=NOW, region="gb")
    assert us is not None and us.value == "2026-12-03"
    assert gb is not None and gb.value == "2027-03-12"


def test_today_is_the_date_in_the_clock_timezone() -> None:
    late = datetime(2026, 11, 25, 23, 30, tzinfo=EST)  # already the 26th in UTC
    result = extract("date", "today", now=late)
    assert result is not None and result.value == "2026-11-25"


def test_next_weekday_from_sunday_is_in_the_coming_week() -> None:
    sunday = datetime(2026, 11, 29, 9, 0, tzinfo=EST)
    result = extract("date", "next monday", now=sunday)
    assert result is not None and result.value == "2026-11-30"


def test_day_of_month_today_counts_as_upcoming() -> None:
    result = extract("date", "the 25th", now=NOW)
    assert result is not None and result.value == "2026-11-25"


def test_missing_day_of_month_skips_to_a_month_that_has_it() -> None:
    jan = datetime(2027, 2, 2, 9, 0, tzinfo=EST)
    result = extract("date", "the 30th", now=jan)
    assert result is not None and result.value == "2027-03-30"


@pytest.mark.parametrize(
    ("said", "spoken"),
    [
        ("next tuesday", "Tuesday, December 1"),
        ("january fifth", "Tuesday, January 5, 2027"),
    ],
)
def test_read_back(said: str, spoken: str) -> None:
    result = extract("date", said, now=NOW)
    assert result is not None and result.spoken == spoken


@pytest.mark.parametrize(
    ("said", "now"),
    [
        ("tomorrow", datetime(9999, 12, 31, 12, 0)),
        ("next monday", datetime(9999, 12, 30, 12, 0)),
        ("in 20 years", datetime(9990, 1, 1, 12, 0)),
        ("the 14th", datetime(9999, 12, 20, 12, 0)),
        ("yesterday", datetime(1, 1, 1, 12, 0)),
    ],
)
def test_days_beyond_the_calendar_give_none(said: str, now: datetime) -> None:
    assert extract("date", said, now=now) is None
