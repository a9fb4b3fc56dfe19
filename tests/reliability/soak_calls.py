"""Varied, realistic calls for the soak: each call has its own caller number
and one of several scenarios, each with the outcome it must end with.

- book (completed): a dental cleaning on a day and hour no earlier call took
  (weekdays from a week and a day ahead, past the demo's seeded appointments,
  on the hour outside lunch, as an ISO date),
  under a different name each time;
- escalate (escalated): the caller asks for a person mid-booking;
- goodbye (completed): the caller asks the opening hours, then says bye;
- hangup (abandoned): the caller hangs up while choosing a day.

Bookings never collide, so a persistent calendar never fills up mid-run
(a call that found its slot taken would end elsewhere and fail the soak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import httpx

HOURS = (9, 10, 11, 13, 14, 15, 16)
#: The demo data seeds appointments in the coming week: book after it.
FIRST_DAY = 8
FIRST_NAMES = ("Maria", "James", "Aiko", "Olu", "Priya", "Lars", "Chen", "Fatima", "Diego")
LAST_NAMES = ("Garcia", "Smith", "Tanaka", "Adeyemi", "Patel", "Berg", "Wong", "Haddad")
#: scenario name by call number modulo its length: mostly bookings
MIX = ("book", "escalate", "book", "goodbye", "book", "hangup", "book", "escalate")
EXPECTED = {"book": "completed", "escalate": "escalated", "goodbye": "completed"}
EXPECTED["hangup"] = "abandoned"


@dataclass(frozen=True)
class Scenario:
    """One call: who calls, what they say (None = hang up), what must come of it."""

    name: str
    caller: str
    lines: tuple[str | None, ...]
    expected: str


def _slot(booking: int, today: date) -> tuple[date, int]:
    """The `booking`-th (day, hour): weekdays from `FIRST_DAY` days ahead, HOURS each."""
    days, hour = divmod(booking, len(HOURS))
    day = today + timedelta(days=FIRST_DAY)
    while True:
        if day.weekday() < 5:
            if days == 0:
                return day, HOURS[hour]
            days -= 1
        day += timedelta(days=1)


def _spoken_hour(hour: int) -> str:
    return f"{hour} am" if hour < 12 else f"{hour - 12} pm"


def scenario_for(n: int, today: date | None = None) -> Scenario:
    """The n-th call of a soak (n >= 0); bookings get distinct slots."""
    kind = MIX[n % len(MIX)]
    caller = f"+1555{2000000 + n:07d}"
    name = f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[(n // 3) % len(LAST_NAMES)]}"
    if kind == "book":
        rounds, within = divmod(n, len(MIX))
        booking = rounds * MIX.count("book") + MIX[:within].count("book")
        day, hour = _slot(booking, today or date.today())
        lines: tuple[str | None, ...] = (
            "Hi, I need a cleaning",
            day.isoformat(),
            _spoken_hour(hour),
            name,
        )
    elif kind == "escalate":
        lines = ("I want to see the dentist", "can I speak to a real human")
    elif kind == "goodbye":
        lines = ("what are the clinic's opening hours", "no thanks, that's all")
    else:
        lines = ("book a dentist appointment", None)
    return Scenario(kind, caller, lines, EXPECTED[kind])


class SoakCaller:
    """Runs scenarios against a service (`client` has its base URL)."""

    def __init__(self, client: httpx.Client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def run(self, scenario: Scenario) -> tuple[str, int]:
        """Play one call; its outcome ("unfinished" if the script ran out
        before the call ended) and the caller turns sent. The agent's lines of
        the last call are kept in `said`."""
        self.said: list[str] = []
        started = self.client.post(
            "/api/calls",
            json={"agent": "front-desk", "caller": scenario.caller},
            headers=self.headers,
        )
        assert started.status_code == 201, started.text
        call_id = started.json()["call_id"]
        turns = 0
        for line in scenario.lines:
            if line is None:
                hung = self.client.post(f"/api/calls/{call_id}/hangup", headers=self.headers)
                assert hung.status_code == 200, hung.text
                return str(hung.json()["outcome"]), turns
            r = self.client.post(
                f"/api/calls/{call_id}/turns", json={"text": line}, headers=self.headers
            )
            assert r.status_code == 200, r.text
            turns += 1
            body = r.json()
            self.said += [str(e.get("text")) for e in body["events"] if e.get("type") == "agent"]
            outcome = body["outcome"]
            if outcome is not None:
                return str(outcome), turns
        return "unfinished", turns
