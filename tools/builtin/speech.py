"""Spoken forms of tool results: money, days, times, lists, ids, elapsed time.

Graphs read these `*_spoken` fields straight into agent lines, so each returns
text a TTS voice reads naturally in US English ("$42.50", "Tuesday, December 1
at 9:00 AM", "9 AM, 10 AM or 11 AM"). A `spoken` phrase has no final full stop,
so a template can continue the sentence around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from tools.store import CENT


def money(amount: Decimal) -> float:
    """An amount as a JSON number with at most 2 decimals."""
    return float(amount.quantize(CENT))


def spoken_money(amount: Decimal) -> str:
    """ "$1,042.50"; a negative amount is "minus $10.00"."""
    text = f"${abs(amount.quantize(CENT)):,.2f}"
    return f"minus {text}" if amount < 0 else text


def spoken_balance(balance: Decimal) -> str:
    """What is owed ("$42.50"), or "a credit of $10.00" when negative."""
    if balance < 0:
        return f"a credit of {spoken_money(-balance)}"
    return spoken_money(balance)


def spoken_day(day: date) -> str:
    """ "Tuesday, December 1"."""
    return f"{day:%A}, {day:%B} {day.day}"


def spoken_date(day: date) -> str:
    """ "December 1" (no weekday)."""
    return f"{day:%B} {day.day}"


def _hour12(at: time) -> tuple[int, str]:
    return (at.hour % 12 or 12), ("AM" if at.hour < 12 else "PM")


def spoken_time(at: time) -> str:
    """Short form for lists: "9 AM", "9:30 AM"."""
    hour, half = _hour12(at)
    return f"{hour} {half}" if at.minute == 0 else f"{hour}:{at.minute:02d} {half}"


def spoken_clock(at: time) -> str:
    """Full form for confirmations: "9:00 AM"."""
    hour, half = _hour12(at)
    return f"{hour}:{at.minute:02d} {half}"


def spoken_when(day: date, at: time) -> str:
    """ "Tuesday, December 1 at 9:00 AM"."""
    return f"{spoken_day(day)} at {spoken_clock(at)}"


def spoken_list(items: Sequence[str], conjunction: str = "or") -> str:
    """ "a", "a or b", "a, b or c"; empty input gives ""."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def spoken_id(identifier: str) -> str:
    """An id read out character by character: "T-1004" -> "T 1 0 0 4"."""
    return " ".join(ch for ch in identifier if ch.isalnum())


def spoken_ago(moment: datetime, now: datetime) -> str:
    """How long before `now` `moment` was: "just now", "12 minutes ago",
    "2 hours ago", "3 days ago"."""
    delta = now - moment
    if delta < timedelta(minutes=2):
        return "just now"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} minutes ago"
    hours = minutes // 60
    if hours < 48:
        return "1 hour ago" if hours == 1 else f"{hours} hours ago"
    return f"{hours // 24} days ago"


def spoken_eta(moment: datetime, now: datetime) -> str:
    """When something is expected: "around 3:30 PM", "around 1 AM tomorrow",
    "around 9 AM on Tuesday, December 1"."""
    at = spoken_time(moment.time())
    if moment.date() == now.date():
        return f"around {at}"
    if moment.date() == now.date() + timedelta(days=1):
        return f"around {at} tomorrow"
    return f"around {at} on {spoken_day(moment.date())}"
