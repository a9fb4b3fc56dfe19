"""calendar.* tools: opening hours, booking rules, changes and concurrency.

The fake clock is Monday 2025-12-01 08:30; seeded appointments are APT-1001
(Tue 10:00, +15551230001), APT-1002 (Tue 14:00) and APT-1003 (Wed 09:00,
confirmed).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tools.builtin.calendar import Calendar
from tools.registry import ToolError
from tools.store import DemoStore

TUESDAY, WEDNESDAY, SATURDAY, SUNDAY = "2025-12-02", "2025-12-03", "2025-12-06", "2025-12-07"


async def test_find_slots_leaves_out_booked_times(call: Any) -> None:
    out = await call("calendar.find_slots", day=TUESDAY)
    assert out["slots"] == ["09:00", "11:00", "12:00", "13:00", "15:00", "16:00"]
    assert out["spoken"] == "9 AM, 11 AM, 12 PM, 1 PM, 3 PM or 4 PM"
    assert out["closed"] is False and out["day_spoken"] == "Tuesday, December 2"


async def test_find_slots_part_of_day(call: Any) -> None:
    morning = await call("calendar.find_slots", day=TUESDAY, part_of_day="morning")
    assert morning["slots"] == ["09:00", "11:00"] and morning["spoken"] == "9 AM or 11 AM"
    afternoon = await call("calendar.find_slots", day=SATURDAY, part_of_day="afternoon")
    assert afternoon["slots"] == [] and afternoon["closed"] is False


async def test_saturday_is_a_short_day_and_sunday_is_closed(call: Any) -> None:
    sat = await call("calendar.find_slots", day=SATURDAY)
    assert sat["slots"] == ["09:00", "10:00", "11:00"]
    sun = await call("calendar.find_slots", day=SUNDAY)
    assert sun["closed"] is True and sun["slots"] == [] and sun["available"] is False


async def test_today_offers_only_times_still_ahead(call: Any, clock: Any) -> None:
    assert len((await call("calendar.find_slots", day="2025-12-01"))["slots"]) == 8
    clock.advance(hours=2)  # 10:30
    out = await call("calendar.find_slots", day="2025-12-01")
    assert out["slots"][0] == "11:00" and len(out["slots"]) == 6
    past = await call("calendar.find_slots", day="2025-11-28")
    assert past["past"] is True and past["slots"] == []


async def test_book_a_time_then_the_slot_is_gone(call: Any, store: DemoStore) -> None:
    booking = await call(
        "calendar.book",
        day=TUESDAY,
        time="09:00",
        patient="Ana Lee",
        phone="(555) 987-6543",
        service="cleaning",
    )
    assert booking["when"] == "Tuesday, December 2 at 9:00 AM"
    assert booking["appointment_id"] == "APT-1004" and booking["service"] == "cleaning"
    assert store.appointments["APT-1004"].phone == "+15559876543"
    assert "09:00" not in (await call("calendar.find_slots", day=TUESDAY))["slots"]
    with pytest.raises(ToolError, match="9:00 AM on Tuesday, December 2 is already taken"):
        await call("calendar.book", day=TUESDAY, time="09:00")


async def test_book_without_time_takes_first_free_slot(call: Any) -> None:
    first = await call("calendar.book", day=TUESDAY)
    second = await call("calendar.book", day=TUESDAY, time=None, patient=None)
    assert (first["time"], second["time"]) == ("09:00", "11:00")
    assert first["service"] == "appointment"


async def test_book_refuses_closed_full_past_and_off_hours(call: Any) -> None:
    with pytest.raises(ToolError, match="closed on Sunday, December 7"):
        await call("calendar.book", day=SUNDAY)
    for _ in range(3):
        await call("calendar.book", day=SATURDAY)
    with pytest.raises(ToolError, match="fully booked on Saturday, December 6"):
        await call("calendar.book", day=SATURDAY)
    with pytest.raises(ToolError, match="already passed"):
        await call("calendar.book", day="2025-11-28", time="10:00")
    with pytest.raises(ToolError, match=r"don't book 6:00 PM.*open 9 AM to 5 PM"):
        await call("calendar.book", day=TUESDAY, time="18:00")
    with pytest.raises(ToolError, match="don't book 9:30 AM"):
        await call("calendar.book", day=TUESDAY, time="09:30")
    with pytest.raises(ToolError, match="not a valid date"):
        await call("calendar.book", day="2025-02-30")


async def test_cancel_frees_the_slot_and_is_idempotent(call: Any) -> None:
    out = await call("calendar.cancel", appointment_id="APT-1001")
    assert out["status"] == "cancelled" and out["already_cancelled"] is False
    assert "10:00" in (await call("calendar.find_slots", day=TUESDAY))["slots"]
    again = await call("calendar.cancel", appointment_id="apt-1001")
    assert again["already_cancelled"] is True
    with pytest.raises(ToolError, match="no appointment APT-9999"):
        await call("calendar.cancel", appointment_id="APT-9999")


async def test_reschedule_moves_and_needs_reconfirming(call: Any) -> None:
    out = await call("calendar.reschedule", appointment_id="APT-1003", day=TUESDAY, time="11:00")
    assert out["when"] == "Tuesday, December 2 at 11:00 AM"
    assert out["previous_when"] == "Wednesday, December 3 at 9:00 AM"
    assert out["appointment_id"] == "APT-1003" and out["status"] == "booked"
    assert "09:00" in (await call("calendar.find_slots", day=WEDNESDAY))["slots"]
    with pytest.raises(ToolError, match="already taken"):
        await call("calendar.reschedule", appointment_id="APT-1003", day=TUESDAY, time="14:00")
    await call("calendar.cancel", appointment_id="APT-1002")
    with pytest.raises(ToolError, match="was cancelled"):
        await call("calendar.reschedule", appointment_id="APT-1002", day=WEDNESDAY)


async def test_reschedule_to_its_own_slot_is_allowed(call: Any) -> None:
    out = await call("calendar.reschedule", appointment_id="APT-1001", day=TUESDAY, time="10:00")
    assert out["when"] == out["previous_when"]


async def test_lookup_finds_next_appointment_by_phone(call: Any, clock: Any) -> None:
    out = await call("calendar.lookup", phone="5551230001")
    assert out["found"] is True and out["appointment_id"] == "APT-1001"
    assert out["when"] == "Tuesday, December 2 at 10:00 AM" and out["confirmed"] is False
    assert (await call("calendar.lookup", phone="+15559999999"))["found"] is False
    assert (await call("calendar.lookup", phone="not a number"))["found"] is False
    clock.advance(days=1, hours=2)  # Tuesday 10:30: the appointment has started
    assert (await call("calendar.lookup", phone="+15551230001"))["found"] is False


async def test_confirm_marks_confirmed_but_not_cancelled(call: Any) -> None:
    out = await call("calendar.confirm", appointment_id="APT-1001")
    assert out["confirmed"] is True and out["status"] == "confirmed"
    assert (await call("calendar.lookup", phone="5551230001"))["confirmed"] is True
    await call("calendar.cancel", appointment_id="APT-1001")
    with pytest.raises(ToolError, match="was cancelled"):
        await call("calendar.confirm", appointment_id="APT-1001")


def _race(store: DemoStore, attempt: Any, threads: int = 8) -> tuple[list[Any], list[str]]:
    """Run `attempt(calendar)` in several threads released at once."""
    calendar = Calendar(store)
    start = threading.Barrier(threads)

    def one() -> Any:
        start.wait()
        try:
            return attempt(calendar)
        except ToolError as exc:
            return str(exc)

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: one(), range(threads)))
    wins = [r for r in results if isinstance(r, dict)]
    return wins, [r for r in results if isinstance(r, str)]


def test_last_slot_booked_from_many_threads_has_one_winner(store: DemoStore) -> None:
    cal = Calendar(store)
    cal.book(SATURDAY, "09:00")
    cal.book(SATURDAY, "10:00")
    wins, refusals = _race(store, lambda c: c.book(SATURDAY, "11:00"))
    assert len(wins) == 1 and len(refusals) == 7
    assert all("already taken" in r for r in refusals)
    live = [a for a in store.appointments.values() if a.day.isoformat() == SATURDAY]
    assert len(live) == 3


def test_first_free_slot_from_many_threads_has_one_winner(store: DemoStore) -> None:
    cal = Calendar(store)
    cal.book(SATURDAY, "09:00")
    cal.book(SATURDAY, "11:00")
    wins, refusals = _race(store, lambda c: c.book(SATURDAY))
    assert [w["time"] for w in wins] == ["10:00"]
    assert all("fully booked" in r for r in refusals)
