"""The in-process demo store behind the built-in tools.

One `DemoStore` holds everything the example agents touch: dental calendar
appointments, customer accounts with their charges and refunds, support
tickets, home routers and network outages. It is seeded deterministically
relative to the store's clock (appointments on the next weekdays, charges in
the last weeks), so a fake clock gives identical data on every run.

Every read and write of the collections must hold `store.lock` (re-entrant);
the tools take it for a whole check-then-change so that two calls racing for
the same slot or charge cannot both succeed. Money is `Decimal` in cents.

Seeded customers (phone, account, what the demo uses them for):

- +15551230001 AC-1001 Maria Garcia: appointment APT-1001; a refunded rental.
- +15551230002 AC-1002 James Wilson: monthly charge billed twice (refundable).
- +15551230003 AC-1003 Aisha Khan: router offline (reset walkthrough).
- +15551230004 AC-1004 Tom Becker: in ZIP 94103, the area with an outage.
- +15551230005 AC-1005 Linda Park: account in credit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

Clock = Callable[[], datetime]
AppointmentStatus = Literal["booked", "confirmed", "cancelled"]
TicketStatus = Literal["open", "pending", "resolved", "closed"]
Priority = Literal["low", "normal", "high"]

CENT = Decimal("0.01")


def _system_clock() -> datetime:
    return datetime.now().astimezone()


@dataclass
class Appointment:
    appointment_id: str
    day: date
    time: time
    service: str
    patient: str | None
    phone: str | None
    status: AppointmentStatus = "booked"


@dataclass
class Account:
    account_number: str
    name: str
    phone: str
    email: str
    plan: str
    zip_code: str
    balance: Decimal
    due_date: date


@dataclass
class Charge:
    charge_id: str
    account_number: str
    day: date
    amount: Decimal
    description: str


@dataclass
class Refund:
    refund_id: str
    account_number: str
    charge_id: str
    amount: Decimal
    reason: str
    idempotency_key: str
    issued_at: datetime


@dataclass
class Ticket:
    ticket_id: str
    summary: str
    status: TicketStatus
    priority: Priority
    category: str
    phone: str | None
    account_number: str | None
    created_at: datetime
    notes: list[str] = field(default_factory=list)


@dataclass
class Router:
    account_number: str
    model: str
    online: bool
    last_seen: datetime


@dataclass
class Outage:
    area: str
    zip_codes: tuple[str, ...]
    started: datetime
    eta: datetime
    cause: str


class DemoStore:
    """Thread-safe, deterministic in-process data for the built-in tools.

    `clock` returns the current time (aware or naive); the store works in its
    wall-clock time. `reset()` discards every change and reseeds relative to the
    clock's current day.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or _system_clock
        self.lock = threading.RLock()
        self.appointments: dict[str, Appointment] = {}
        self.accounts: dict[str, Account] = {}
        self.charges: dict[str, Charge] = {}
        self.refunds: dict[str, Refund] = {}
        self.refunds_by_key: dict[str, str] = {}
        self.tickets: dict[str, Ticket] = {}
        self.routers: dict[str, Router] = {}
        self.service_areas: dict[str, str] = {}
        self.outages: list[Outage] = []
        self._counters: dict[str, int] = {}
        self.reset()

    def now(self) -> datetime:
        """The clock's current wall-clock time, without a time zone."""
        return self.clock().replace(tzinfo=None)

    def today(self) -> date:
        return self.now().date()

    def next_id(self, prefix: str) -> str:
        """A new id `PREFIX-NNNN`, unique within this store until `reset()`."""
        with self.lock:
            n = self._counters.get(prefix, 1001 if prefix != "CH" else 2001)
            self._counters[prefix] = n + 1
            return f"{prefix}-{n}"

    def account_by_phone(self, phone: str) -> Account | None:
        """The account whose E.164 phone number is `phone`, if any."""
        with self.lock:
            return next((a for a in self.accounts.values() if a.phone == phone), None)

    def account_charges(self, account_number: str) -> list[Charge]:
        """Charges of one account, newest first (ties: latest id first)."""
        with self.lock:
            mine = [c for c in self.charges.values() if c.account_number == account_number]
        return sorted(mine, key=lambda c: (c.day, c.charge_id), reverse=True)

    def refund_of_charge(self, charge_id: str) -> Refund | None:
        with self.lock:
            return next((r for r in self.refunds.values() if r.charge_id == charge_id), None)

    @contextmanager
    def transaction(self) -> Iterator[DemoStore]:
        """Hold the store lock for one check-then-change (see `BusinessStore`)."""
        with self.lock:
            yield self

    # The `BusinessData` operations of `tools.builtin.data`; callers hold the lock.

    def appointment(self, appointment_id: str) -> Appointment | None:
        return self.appointments.get(appointment_id)

    def appointments_on(self, day: date) -> list[Appointment]:
        return [a for a in self.appointments.values() if a.day == day]

    def appointments_of_phone(self, phone: str) -> list[Appointment]:
        return [a for a in self.appointments.values() if a.phone == phone]

    def add_appointment(
        self, day: date, at: time, service: str, patient: str | None, phone: str | None
    ) -> Appointment:
        apt = Appointment(self.next_id("APT"), day, at, service, patient, phone)
        self.appointments[apt.appointment_id] = apt
        return apt

    def save_appointment(self, apt: Appointment) -> None:
        self.appointments[apt.appointment_id] = apt

    def account(self, account_number: str) -> Account | None:
        return self.accounts.get(account_number)

    def charge(self, charge_id: str) -> Charge | None:
        return self.charges.get(charge_id)

    def refund_by_key(self, idempotency_key: str) -> Refund | None:
        refund_id = self.refunds_by_key.get(idempotency_key)
        return None if refund_id is None else self.refunds[refund_id]

    def add_refund(
        self,
        account_number: str,
        charge_id: str,
        amount: Decimal,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        refund = Refund(
            self.next_id("RF"),
            account_number,
            charge_id,
            amount,
            reason,
            idempotency_key,
            self.now(),
        )
        self.refunds[refund.refund_id] = refund
        self.refunds_by_key[idempotency_key] = refund.refund_id
        self.accounts[account_number].balance -= amount
        return refund

    def ticket(self, ticket_id: str) -> Ticket | None:
        return self.tickets.get(ticket_id)

    def add_ticket(
        self,
        summary: str,
        priority: Priority,
        category: str,
        phone: str | None,
        account_number: str | None,
    ) -> Ticket:
        ticket = Ticket(
            self.next_id("T"),
            summary,
            "open",
            priority,
            category,
            phone,
            account_number,
            self.now(),
        )
        self.tickets[ticket.ticket_id] = ticket
        return ticket

    def save_ticket(self, ticket: Ticket) -> None:
        self.tickets[ticket.ticket_id] = ticket

    def service_area(self, zip_code: str) -> str | None:
        return self.service_areas.get(zip_code)

    def all_outages(self) -> list[Outage]:
        return list(self.outages)

    def router(self, account_number: str) -> Router | None:
        return self.routers.get(account_number)

    def save_router(self, router: Router) -> None:
        self.routers[router.account_number] = router

    def reset(self) -> None:
        """Forget every change and reseed the demo data for the clock's today."""
        with self.lock:
            for coll in (
                self.appointments,
                self.accounts,
                self.charges,
                self.refunds,
                self.refunds_by_key,
                self.tickets,
                self.routers,
                self.service_areas,
                self._counters,
            ):
                coll.clear()
            self.outages.clear()
            self._seed(self.now())

    def _seed(self, now: datetime) -> None:
        today = now.date()
        weekdays = [d for d in (today + timedelta(days=i) for i in range(1, 8)) if d.weekday() < 5]
        self._seed_accounts(today)
        self._seed_charges(today, now)
        seeded: list[tuple[date, time, str, str, str, AppointmentStatus]] = [
            (weekdays[0], time(10), "cleaning", "Maria Garcia", "+15551230001", "booked"),
            (weekdays[0], time(14), "checkup", "James Wilson", "+15551230002", "booked"),
            (weekdays[1], time(9), "filling", "Aisha Khan", "+15551230003", "confirmed"),
        ]
        for day, at, service, patient, phone, status in seeded:
            apt = Appointment(self.next_id("APT"), day, at, service, patient, phone, status)
            self.appointments[apt.appointment_id] = apt
        ticket = Ticket(
            self.next_id("T"),
            "Wi-Fi drops every evening",
            "resolved",
            "normal",
            "internet",
            "+15551230003",
            "AC-1003",
            now - timedelta(days=10),
            ["Router firmware updated remotely."],
        )
        self.tickets[ticket.ticket_id] = ticket
        self.service_areas.update(
            {
                "94103": "SoMa",
                "94107": "Mission Bay",
                "94110": "the Mission District",
                "94114": "the Castro",
                "94117": "Haight-Ashbury",
            }
        )
        started = now - timedelta(minutes=50)
        eta = _ceil_half_hour(now + timedelta(hours=3))
        self.outages.append(
            Outage("SoMa", ("94103",), started, eta, "a fiber cable damaged by street works")
        )
        for account_number, model, online, seen in (
            ("AC-1001", "Netgear Nighthawk AX8", True, now),
            ("AC-1002", "Eero Pro 6", True, now),
            ("AC-1003", "TP-Link Archer AX55", False, now - timedelta(hours=2, minutes=15)),
            ("AC-1004", "Netgear Nighthawk AX8", False, started),
            ("AC-1005", "Eero 6 Plus", True, now),
        ):
            self.routers[account_number] = Router(account_number, model, online, seen)

    def _seed_accounts(self, today: date) -> None:
        due = today + timedelta(days=12)
        for number, name, phone, plan, zip_code, balance in (
            ("AC-1001", "Maria Garcia", "+15551230001", "Fiber 300", "94107", "42.50"),
            ("AC-1002", "James Wilson", "+15551230002", "Fiber 500", "94110", "89.98"),
            ("AC-1003", "Aisha Khan", "+15551230003", "Fiber 100", "94114", "0.00"),
            ("AC-1004", "Tom Becker", "+15551230004", "Fiber 300", "94103", "59.99"),
            ("AC-1005", "Linda Park", "+15551230005", "Fiber 100", "94117", "-10.00"),
        ):
            email = name.lower().replace(" ", ".") + "@example.com"
            self.accounts[number] = Account(
                number, name, phone, email, plan, zip_code, Decimal(balance), due
            )

    def _seed_charges(self, today: date, now: datetime) -> None:
        for account_number, days_ago, amount, description in (
            ("AC-1001", 33, "59.99", "Fiber 300 monthly service"),
            ("AC-1001", 20, "4.99", "Movie rental"),
            ("AC-1001", 3, "59.99", "Fiber 300 monthly service"),
            ("AC-1002", 34, "44.99", "Fiber 500 monthly service"),
            ("AC-1002", 4, "44.99", "Fiber 500 monthly service"),
            ("AC-1002", 4, "44.99", "Fiber 500 monthly service"),
            ("AC-1003", 6, "29.99", "Fiber 100 monthly service"),
            ("AC-1004", 2, "59.99", "Fiber 300 monthly service"),
            ("AC-1005", 8, "29.99", "Fiber 100 monthly service"),
        ):
            charge = Charge(
                self.next_id("CH"),
                account_number,
                today - timedelta(days=days_ago),
                Decimal(amount),
                description,
            )
            self.charges[charge.charge_id] = charge
        rental = next(c for c in self.charges.values() if c.description == "Movie rental")
        refund = Refund(
            self.next_id("RF"),
            rental.account_number,
            rental.charge_id,
            rental.amount,
            "the rental did not play",
            f"{rental.account_number}:{rental.charge_id}",
            now - timedelta(days=18),
        )
        self.refunds[refund.refund_id] = refund
        self.refunds_by_key[refund.idempotency_key] = refund.refund_id


def _ceil_half_hour(moment: datetime) -> datetime:
    base = moment.replace(minute=0, second=0, microsecond=0)
    steps = -(-(moment - base) // timedelta(minutes=30))
    return base + steps * timedelta(minutes=30)


_default: DemoStore | None = None
_default_lock = threading.Lock()


def default_store() -> DemoStore:
    """The process-wide store, created on first use with the system clock."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DemoStore()
        return _default
