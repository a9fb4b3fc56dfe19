"""Date slots: a spoken day -> ISO date "YYYY-MM-DD", resolved against the call's clock.

Conventions ("today" is the date of `now` in `now`'s own timezone; weeks start
on Monday):

- "today"/"tonight", "tomorrow", "the day after tomorrow", "yesterday".
- A bare weekday ("tuesday", "on tuesday") is the next such day after today,
  never today itself.
- "this tuesday" / "this coming tuesday" is the next such day on or after today.
- "next tuesday" is the Tuesday of next week, as Duckling reads it: said on
  Wednesday 2026-11-25, "next tuesday" is 2026-12-01 and "next friday" is
  2026-12-04 (not the 27th, which plain "friday" gives). "next week tuesday" and
  "tuesday next week" say the same; "tuesday after next" is a week later.
- "in two weeks", "in 3 days", "a month from today", "a week from monday" add
  days, weeks or months to today or to the named day.
- A month and day ("december 3rd", "the 3rd of december", "dec 3") or a numeric
  date ("12/3": month/day in the US and other month-first regions, day/month
  elsewhere; "2026-12-03" always year-month-day) with no year is the next such
  date on or after today: booking flows want the future. With a year it is that
  exact date.
- A day of the month alone ("the 14th", "the fourteenth") is the next 14th on or
  after today; "the 2nd of next month" and "the 30th of this month" are exact.
- A weekday with a day ("friday the 4th", "friday january 1st") is the first
  date within a year from today that is both; if there is none the caller
  slipped, and the answer gives None.
- When a caller names several days the last one counts ("monday no tuesday");
  alternatives ("monday or tuesday") are ambiguous, and "next week" names no
  day: both give None.

Why by hand: `dateparser` 1.5 and `parsedatetime` 2.6 were tried on these forms
with a fixed base time. dateparser returns None for spelled ordinals ("the
fourteenth"), for any surrounding filler ("uh next tuesday i guess") and for "a
week from monday", picks a past date for "the 14th" despite
PREFER_DATES_FROM=future, and reads "at 9" as September 2027; parsedatetime (no
release since 2020) reads "day after tomorrow" as tomorrow and "a week from
monday" as that Monday. The grammar callers use for a day is small, so it is
written here over text whose numbers `text2num` has already turned into digits,
with `dateutil.relativedelta` doing the calendar arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Final, Literal

from dateutil.relativedelta import relativedelta

from runtime.slots.extraction import Extraction
from runtime.slots.words import Rule, normalize, numerals, scan, settle

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_WEEKDAYS = {name.lower(): i for i, name in enumerate(WEEKDAY_NAMES)}
_MONTHS = {name.lower(): i + 1 for i, name in enumerate(MONTH_NAMES)}
_MONTHS.update(
    {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
     "sept": 9, "oct": 10, "nov": 11, "dec": 12}
)  # fmt: skip

#: A weekday and a date that never coincide ("monday december 1st" in 2026).
CONFLICT: Final = "conflict"
Day = date | Literal["conflict"]

#: ISO 3166 regions that write numeric dates month first.
MONTH_FIRST_REGIONS: frozenset[str] = frozenset(
    {"US", "AS", "GU", "MP", "PR", "UM", "VI", "PH", "FM", "MH", "PW"}
)

_WD = r"(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?: (?P<year>\d{4}|20 \d{2}))?"
_COUNT = r"(?P<n>\d{1,3}|a|an|a couple of|couple of)"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_ANCHOR = r"(?P<anchor>now|today|tomorrow|(?:(?P<amod>this|next) )?" + _WD + ")"


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + r"\b")


_ISO = _compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})")
# A dash form needs its year: "3-4 days" is a range, not March 4.
_NUMERIC = _compile(
    r"(?P<a>\d{1,2})(?:/(?P<b>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?"
    r"|-(?P<b2>\d{1,2})-(?P<y2>\d{4}|\d{2}))"
)
_DAY_AFTER_TOMORROW = _compile(r"(?:the )?day after tomorrow")
_OFFSET_FROM = _compile(r"(?:in )?" + _COUNT + " " + _UNIT + r" (?:from|after) " + _ANCHOR)
_OFFSET = _compile(r"(?:in|within) " + _COUNT + " " + _UNIT)
_AFTER_NEXT = _compile(r"(?:the )?" + _WD + r" after next")
_NEXT_WEEK_WD = _compile(
    r"next week (?:on )?" + _WD + "|" + _WD.replace("wd", "wd2") + r" (?:of )?next week"
)
_DAY2 = r"(?P<day2>\d{1,2})(?:st|nd|rd|th)"  # an ordinal: "friday 9" is 9 o'clock
_MONTH2 = _MONTH.replace("(?P<month>", "(?P<month2>")
_WD_AND_DATE = _compile(
    r"(?:(?:this|next|coming) )?" + _WD
    + r" (?:" + _MONTH + r" (?:the )?" + _DAY + r"|(?:the )?" + _DAY2 + r"(?: of " + _MONTH2 + ")?)"
)  # fmt: skip
_THIS_WD = _compile(r"(?:this coming|the coming|coming|this) " + _WD)
_NEXT_WD = _compile(r"next " + _WD)
_BARE_WD = _compile(_WD)
_RELATIVE_DAY = _compile(r"(?P<rel>today|tonight|tomorrow|yesterday)")
_MONTH_DAY = _compile(_MONTH + r" (?:the )?" + _DAY + _YEAR)
_DAY_MONTH = _compile(r"(?:the )?" + _DAY + r" (?:of )?" + _MONTH + _YEAR)
_DAY_OF_MONTH = _compile(r"(?:the )?" + _DAY + r" of (?P<which>this|next) month")
# "the 2nd of <unknown word>" is a misheard month, not the 2nd of this month.
_DAY_ONLY = re.compile(r"(?:the )?(?P<day>\d{1,2})(?:st|nd|rd|th)(?: of the month)?\b(?! of )")


def _count(token: str) -> int:
    return int(token) if token.isdigit() else (2 if "couple" in token else 1)


def _add(start: date, n: int, unit: str) -> date:
    if unit == "day":
        return start + timedelta(days=n)
    if unit == "week":
        return start + timedelta(weeks=n)
    if unit == "month":
        return start + relativedelta(months=n)
    return start + relativedelta(years=n)


def _on_or_after(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _after(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _in_next_week(today: date, weekday: int) -> date:
    return today + timedelta(days=7 - today.weekday() + weekday)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _upcoming(today: date, month: int, day: int) -> date | None:
    """The first (month, day) on or after today; None if no year has it."""
    # Feb 29 recurs within 8 years; anything absent that long never exists.
    for year in range(today.year, today.year + 9):
        found = _safe_date(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _upcoming_day_of_month(today: date, day: int) -> date | None:
    first = today.replace(day=1)
    for k in range(13):
        month_start = first + relativedelta(months=k)
        found = _safe_date(month_start.year, month_start.month, day)
        if found is not None and found >= today:
            return found
    return None


def _weekday_and_date(today: date, weekday: int, month: int | None, day: int) -> Day:
    """The first date within a year from today on that day (of that month) and
    weekday; CONFLICT when they disagree for the whole year (a slip to ask about)."""
    first = today.replace(day=1)
    for k in range(13):
        start = first + relativedelta(months=k)
        if month is not None and start.month != month:
            continue
        found = _safe_date(start.year, start.month, day)
        if found is not None and found >= today and found.weekday() == weekday:
            return found if found <= today + relativedelta(years=1) else CONFLICT
    return CONFLICT


def _year(token: str | None) -> int | None:
    if token is None:
        return None
    digits = token.replace(" ", "")
    return int(digits) + 2000 if len(digits) == 2 else int(digits)


def _month_day(today: date, month: int, day: int, year: int | None) -> date | None:
    if year is None:
        return _upcoming(today, month, day)
    return _safe_date(year, month, day)


def _anchor(today: date, m: re.Match[str]) -> date:
    anchor = m.group("anchor")
    if anchor in ("now", "today"):
        return today
    if anchor == "tomorrow":
        return today + timedelta(days=1)
    weekday = _WEEKDAYS[m.group("wd")]
    if m.group("amod") == "next":
        return _in_next_week(today, weekday)
    if m.group("amod") == "this":
        return _on_or_after(today, weekday)
    return _after(today, weekday)


def _rules(today: date, region: str) -> list[Rule[Day]]:
    month_first = region.upper() in MONTH_FIRST_REGIONS

    def numeric(m: re.Match[str]) -> date | None:
        a, b = int(m["a"]), int(m["b"] or m["b2"])
        month, day = (a, b) if month_first else (b, a)
        return _month_day(today, month, day, _year(m["y"] or m["y2"]))

    def next_week_wd(m: re.Match[str]) -> date:
        return _in_next_week(today, _WEEKDAYS[m.group("wd") or m.group("wd2")])

    def named_month(m: re.Match[str]) -> date | None:
        return _month_day(today, _MONTHS[m["month"]], int(m["day"]), _year(m["year"]))

    def weekday_and_date(m: re.Match[str]) -> Day:
        month_name = m["month"] or m["month2"]
        month = _MONTHS[month_name] if month_name else None
        return _weekday_and_date(today, _WEEKDAYS[m["wd"]], month, int(m["day"] or m["day2"]))

    def day_of_named_month(m: re.Match[str]) -> date | None:
        month = today.replace(day=1) + relativedelta(months=int(m["which"] == "next"))
        return _safe_date(month.year, month.month, int(m["day"]))

    def relative(m: re.Match[str]) -> date:
        shift = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}[m.group("rel")]
        return today + timedelta(days=shift)

    return [
        (_ISO, lambda m: _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))),
        (_NUMERIC, numeric),
        (_DAY_AFTER_TOMORROW, lambda m: today + timedelta(days=2)),
        (_OFFSET_FROM, lambda m: _add(_anchor(today, m), _count(m["n"]), m["unit"])),
        (_OFFSET, lambda m: _add(today, _count(m["n"]), m["unit"])),
        (_WD_AND_DATE, weekday_and_date),
        (_AFTER_NEXT, lambda m: _in_next_week(today, _WEEKDAYS[m["wd"]]) + timedelta(days=7)),
        (_NEXT_WEEK_WD, next_week_wd),
        (_THIS_WD, lambda m: _on_or_after(today, _WEEKDAYS[m["wd"]])),
        (_NEXT_WD, lambda m: _in_next_week(today, _WEEKDAYS[m["wd"]])),
        (_BARE_WD, lambda m: _after(today, _WEEKDAYS[m["wd"]])),
        (_RELATIVE_DAY, relative),
        (_MONTH_DAY, named_month),
        (_DAY_MONTH, named_month),
        (_DAY_OF_MONTH, day_of_named_month),
        (_DAY_ONLY, lambda m: _upcoming_day_of_month(today, int(m["day"]))),
    ]


def _in_calendar(
    resolve: Callable[[re.Match[str]], Day | None],
) -> Callable[[re.Match[str]], Day | None]:
    """A resolver that gives None for days outside the calendar (before year 1 or
    after 9999), which only a clock at those edges can reach."""

    def safe(m: re.Match[str]) -> Day | None:
        try:
            return resolve(m)
        except (OverflowError, ValueError):
            return None

    return safe


def spoken_date(day: date, today: date) -> str:
    """Read-back like "Tuesday, December 1", with the year when it is not this year."""
    text = f"{WEEKDAY_NAMES[day.weekday()]}, {MONTH_NAMES[day.month - 1]} {day.day}"
    return text if day.year == today.year else f"{text}, {day.year}"


def extract_date(utterance: str, now: datetime, region: str) -> Extraction | None:
    """The day the caller named as an ISO date, or None when no single day is named."""
    today = now.date()
    text = numerals(normalize(utterance))
    rules = [(pattern, _in_calendar(resolve)) for pattern, resolve in _rules(today, region)]
    found = settle(text, scan(text, rules))
    if not isinstance(found, date):  # None, or CONFLICT
        return None
    return Extraction(found.isoformat(), spoken_date(found, today))
