"""Calendar tools for the dental clinic: find free slots, book, cancel,
reschedule, look up and confirm appointments.

Opening hours: Monday to Friday 09:00-17:00 and Saturday 09:00-12:00, one-hour
slots starting on the hour; closed on Sunday. A slot holds one appointment that
is not cancelled; times already past (by the store's clock) are not offered and
cannot be booked. Refusals raise `ToolError` with a sentence a caller can hear,
so a graph's `on_error` edge can read `{error}` out.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from tools.builtin.data import BusinessData, BusinessStore, run_in_transaction
from tools.builtin.inputs import (
    DAY_PATTERN,
    TIME_PATTERN,
    params,
    parse_day,
    parse_phone,
    parse_time,
)
from tools.builtin.speech import (
    spoken_clock,
    spoken_day,
    spoken_list,
    spoken_time,
    spoken_when,
)
from tools.registry import Tool, ToolError
from tools.store import Appointment

#: weekday (Monday = 0) -> (first hour, closing hour)
OPENING_HOURS: dict[int, tuple[int, int]] = {
    0: (9, 17),
    1: (9, 17),
    2: (9, 17),
    3: (9, 17),
    4: (9, 17),
    5: (9, 12),
}
NOON = time(12)
DEFAULT_SERVICE = "appointment"
_BUSY = "That time was just taken by another caller; please choose another."

_DAY = {"type": "string", "pattern": DAY_PATTERN, "description": "The day, as YYYY-MM-DD."}
_TIME = {
    "type": "string",
    "pattern": TIME_PATTERN,
    "description": "Start time, 24-hour HH:MM; omit for the first free slot of the day.",
}
_APPOINTMENT_ID = {
    "type": "string",
    "minLength": 1,
    "description": "The appointment id, like APT-1001.",
}


def opening_slots(day: date) -> list[time]:
    """Every bookable start time of `day` (empty when the clinic is closed)."""
    hours = OPENING_HOURS.get(day.weekday())
    if hours is None:
        return []
    first, closing = hours
    return [time(h) for h in range(first, closing)]


def _hours_spoken(day: date) -> str:
    first, closing = OPENING_HOURS[day.weekday()]
    return f"{spoken_time(time(first))} to {spoken_time(time(closing))}"


def appointment_view(apt: Appointment) -> dict[str, Any]:
    """The JSON form of an appointment, with its spoken date and time."""
    return {
        "found": True,
        "appointment_id": apt.appointment_id,
        "day": apt.day.isoformat(),
        "time": apt.time.strftime("%H:%M"),
        "when": spoken_when(apt.day, apt.time),
        "day_spoken": spoken_day(apt.day),
        "time_spoken": spoken_clock(apt.time),
        "service": apt.service,
        "patient": apt.patient,
        "phone": apt.phone,
        "status": apt.status,
        "confirmed": apt.status == "confirmed",
    }


class Calendar:
    """Calendar operations on one store; each runs in one store transaction."""

    def __init__(self, store: BusinessStore) -> None:
        self.store = store

    @staticmethod
    def _free(tx: BusinessData, day: date, ignore: str | None = None) -> list[time]:
        taken = {
            a.time
            for a in tx.appointments_on(day)
            if a.status != "cancelled" and a.appointment_id != ignore
        }
        now = tx.now()
        return [t for t in opening_slots(day) if t not in taken and datetime.combine(day, t) > now]

    @staticmethod
    def _get(tx: BusinessData, appointment_id: str) -> Appointment:
        apt = tx.appointment(appointment_id.strip().upper())
        if apt is None:
            raise ToolError(f"There is no appointment {appointment_id}.")
        return apt

    def _pick_slot(
        self, tx: BusinessData, day: date, at: str | None, ignore: str | None = None
    ) -> time:
        """The slot to book on `day`: `at`, or the first free one. Refuses a past
        day, a closed day, a full day, a time outside hours and a taken slot."""
        if day < tx.today():
            raise ToolError(f"{spoken_day(day)} has already passed.")
        if not opening_slots(day):
            raise ToolError(f"We're closed on {spoken_day(day)}.")
        free = self._free(tx, day, ignore)
        if at is None:
            if not free:
                raise ToolError(f"We're fully booked on {spoken_day(day)}.")
            return free[0]
        slot = parse_time(at)
        offered = spoken_list([spoken_time(t) for t in free]) or "none"
        if slot not in opening_slots(day):
            raise ToolError(
                f"We don't book {spoken_clock(slot)} on {spoken_day(day)}; we're open "
                f"{_hours_spoken(day)} with appointments on the hour. Free times: {offered}."
            )
        if slot not in free:
            reason = (
                "has already passed"
                if datetime.combine(day, slot) <= tx.now()
                else "is already taken"
            )
            raise ToolError(
                f"{spoken_clock(slot)} on {spoken_day(day)} {reason}. Free times: {offered}."
            )
        return slot

    def find_slots(self, day: str, part_of_day: str | None = None) -> dict[str, Any]:
        """Free start times of a day, optionally only the morning (before noon)
        or the afternoon. A closed or past day gives empty `slots`, not an error."""
        d = parse_day(day)
        with self.store.transaction() as tx:
            closed = not opening_slots(d)
            past = d < tx.today()
            free = [] if past else self._free(tx, d)
        if part_of_day == "morning":
            free = [t for t in free if t < NOON]
        elif part_of_day == "afternoon":
            free = [t for t in free if t >= NOON]
        names = [spoken_time(t) for t in free]
        return {
            "day": d.isoformat(),
            "day_spoken": spoken_day(d),
            "part_of_day": part_of_day,
            "closed": closed,
            "past": past,
            "available": bool(free),
            "slots": [t.strftime("%H:%M") for t in free],
            "count": len(free),
            "first_slot": free[0].strftime("%H:%M") if free else None,
            "spoken": spoken_list(names) if names else "no free times",
        }

    def book(
        self,
        day: str,
        time: str | None = None,
        patient: str | None = None,
        phone: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Book `time` on `day` (or the first free slot). Raises `ToolError` for
        a past, closed or full day, a time outside hours or a taken slot; a slot
        taken concurrently by another process is re-checked, never double-booked."""
        d = parse_day(day)
        e164 = parse_phone(phone) if phone else None

        def work(tx: BusinessData) -> dict[str, Any]:
            slot = self._pick_slot(tx, d, time)
            apt = tx.add_appointment(
                d,
                slot,
                (service or DEFAULT_SERVICE).strip(),
                patient.strip() if patient else None,
                e164,
            )
            return appointment_view(apt)

        return run_in_transaction(self.store, work, conflict_message=_BUSY)

    def cancel(self, appointment_id: str) -> dict[str, Any]:
        """Cancel an appointment and free its slot; cancelling again is a no-op
        that reports `already_cancelled`."""
        with self.store.transaction() as tx:
            apt = self._get(tx, appointment_id)
            already = apt.status == "cancelled"
            apt.status = "cancelled"
            tx.save_appointment(apt)
            return {**appointment_view(apt), "already_cancelled": already}

    def reschedule(self, appointment_id: str, day: str, time: str | None = None) -> dict[str, Any]:
        """Move an appointment to `time` on `day` (or that day's first free
        slot), keeping its id; the same refusals as `book`, and a cancelled
        appointment cannot move. A moved appointment needs confirming again."""
        d = parse_day(day)

        def work(tx: BusinessData) -> dict[str, Any]:
            apt = self._get(tx, appointment_id)
            if apt.status == "cancelled":
                raise ToolError(f"Appointment {apt.appointment_id} was cancelled.")
            previous = spoken_when(apt.day, apt.time)
            slot = self._pick_slot(tx, d, time, ignore=apt.appointment_id)
            if (apt.day, apt.time) != (d, slot):
                apt.day, apt.time, apt.status = d, slot, "booked"
                tx.save_appointment(apt)
            return {**appointment_view(apt), "previous_when": previous}

        return run_in_transaction(self.store, work, conflict_message=_BUSY)

    def lookup(self, phone: str) -> dict[str, Any]:
        """The next appointment (not cancelled, not yet started) for a phone
        number, or `{found: false}`."""
        try:
            e164 = parse_phone(phone)
        except ToolError as exc:
            return {"found": False, "phone": phone, "reason": str(exc)}
        with self.store.transaction() as tx:
            now = tx.now()
            upcoming = sorted(
                (
                    a
                    for a in tx.appointments_of_phone(e164)
                    if a.status != "cancelled" and datetime.combine(a.day, a.time) > now
                ),
                key=lambda a: (a.day, a.time),
            )
            if not upcoming:
                return {"found": False, "phone": e164}
            return appointment_view(upcoming[0])

    def confirm(self, appointment_id: str) -> dict[str, Any]:
        """Mark an appointment confirmed (idempotent); a cancelled one is refused."""
        with self.store.transaction() as tx:
            apt = self._get(tx, appointment_id)
            if apt.status == "cancelled":
                raise ToolError(f"Appointment {apt.appointment_id} was cancelled.")
            apt.status = "confirmed"
            tx.save_appointment(apt)
            return appointment_view(apt)


def calendar_tools(store: BusinessStore) -> list[Tool]:
    """The `calendar.*` tools bound to `store`."""
    cal = Calendar(store)
    phone = {"type": "string", "minLength": 1, "description": "Caller's phone number."}
    return [
        Tool(
            "calendar.find_slots",
            "List the free appointment times of a day (hourly; Mon-Fri 9-5, Sat 9-12, "
            "closed Sunday). A closed day returns no slots and closed=true.",
            params(
                {
                    "day": _DAY,
                    "part_of_day": {
                        "type": "string",
                        "enum": ["morning", "afternoon"],
                        "description": "Only morning (before noon) or afternoon slots.",
                    },
                },
                ["day"],
            ),
            cal.find_slots,
        ),
        Tool(
            "calendar.book",
            "Book an appointment on a day, at a given time or the first free slot. "
            "Fails when the day is closed or full or the slot is taken.",
            params(
                {
                    "day": _DAY,
                    "time": _TIME,
                    "patient": {"type": "string", "description": "Patient's name."},
                    "phone": phone,
                    "service": {
                        "type": "string",
                        "description": "What the visit is for, e.g. cleaning.",
                    },
                },
                ["day"],
            ),
            cal.book,
        ),
        Tool(
            "calendar.cancel",
            "Cancel an appointment and free its slot.",
            params({"appointment_id": _APPOINTMENT_ID}, ["appointment_id"]),
            cal.cancel,
        ),
        Tool(
            "calendar.reschedule",
            "Move an appointment to another day and time (or that day's first free slot).",
            params(
                {"appointment_id": _APPOINTMENT_ID, "day": _DAY, "time": _TIME},
                ["appointment_id", "day"],
            ),
            cal.reschedule,
        ),
        Tool(
            "calendar.lookup",
            "Find the next upcoming appointment booked under a phone number.",
            params({"phone": phone}, ["phone"]),
            cal.lookup,
        ),
        Tool(
            "calendar.confirm",
            "Mark an appointment as confirmed by the patient.",
            params({"appointment_id": _APPOINTMENT_ID}, ["appointment_id"]),
            cal.confirm,
        ),
    ]
