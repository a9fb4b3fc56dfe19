"""What the built-in tools need from a store of demo business data.

Two stores implement `BusinessStore`: the in-process `tools.store.DemoStore`
(tests, conversation tests, `switchboard chat`) and the database-backed
`tools.db_store.DbStore` (the service, `seed-demo`). A tool runs each
check-then-change inside one `transaction()`: the in-process store holds its
lock for it; the database store runs one database transaction, where a
concurrent writer that got there first surfaces as `StoreConflict` (a unique
constraint fired) and the work is run again on fresh data by `run_in_transaction`.

The tools are synchronous: the registry runs them in a worker thread, so the
database store uses a synchronous engine there and never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime, time
from decimal import Decimal
from typing import Protocol, TypeVar

from tools.registry import ToolError
from tools.store import (
    Account,
    Appointment,
    Charge,
    Outage,
    Priority,
    Refund,
    Router,
    Ticket,
)

T = TypeVar("T")

#: How often a transaction that lost a race to a concurrent writer is re-run.
CONFLICT_ATTEMPTS = 3


class StoreConflict(Exception):
    """A concurrent transaction already wrote the row this one tried to add
    (a unique constraint fired); the transaction was rolled back."""


class BusinessData(Protocol):
    """The demo business data seen inside one transaction. Returned objects
    are values: a change is written with the matching `save_*` method."""

    def now(self) -> datetime:
        """The store clock's wall-clock time, without a time zone."""
        ...

    def today(self) -> date: ...

    def appointment(self, appointment_id: str) -> Appointment | None: ...

    def appointments_on(self, day: date) -> list[Appointment]:
        """Every appointment of `day`, cancelled ones included."""
        ...

    def appointments_of_phone(self, phone: str) -> list[Appointment]:
        """Every appointment booked under an E.164 phone number."""
        ...

    def add_appointment(
        self,
        day: date,
        at: time,
        service: str,
        patient: str | None,
        phone: str | None,
    ) -> Appointment:
        """Store a new booked appointment under a new id; `StoreConflict` when
        a concurrent booking took the slot."""
        ...

    def save_appointment(self, apt: Appointment) -> None:
        """Write an appointment's day, time and status; `StoreConflict` when a
        concurrent booking took the slot it moves to."""
        ...

    def account(self, account_number: str) -> Account | None: ...

    def account_by_phone(self, phone: str) -> Account | None: ...

    def account_charges(self, account_number: str) -> list[Charge]:
        """Charges of one account, newest first (ties: latest id first)."""
        ...

    def charge(self, charge_id: str) -> Charge | None: ...

    def refund_of_charge(self, charge_id: str) -> Refund | None: ...

    def refund_by_key(self, idempotency_key: str) -> Refund | None: ...

    def add_refund(
        self,
        account_number: str,
        charge_id: str,
        amount: Decimal,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        """Store a refund issued now and take it off the account's balance;
        `StoreConflict` when the key or the charge was refunded concurrently."""
        ...

    def ticket(self, ticket_id: str) -> Ticket | None: ...

    def add_ticket(
        self,
        summary: str,
        priority: Priority,
        category: str,
        phone: str | None,
        account_number: str | None,
    ) -> Ticket:
        """Store a new open ticket created now under a new id."""
        ...

    def save_ticket(self, ticket: Ticket) -> None:
        """Write a ticket's status and notes."""
        ...

    def service_area(self, zip_code: str) -> str | None: ...

    def all_outages(self) -> list[Outage]: ...

    def router(self, account_number: str) -> Router | None: ...

    def save_router(self, router: Router) -> None:
        """Write a router's online flag and last-seen time."""
        ...


class BusinessStore(Protocol):
    """A store the built-in tools can run on."""

    def now(self) -> datetime: ...

    def today(self) -> date: ...

    def transaction(self) -> AbstractContextManager[BusinessData]:
        """One unit of work: all of it is kept, or (on an exception) none of
        it where the store can roll back; no other writer interleaves a
        check-then-change made inside it."""
        ...


def run_in_transaction(
    store: BusinessStore,
    work: Callable[[BusinessData], T],
    *,
    conflict_message: str = "Someone else changed that just now; please try again.",
) -> T:
    """`work` inside a transaction, re-run on fresh data when it loses a race
    to a concurrent writer (`StoreConflict`); after `CONFLICT_ATTEMPTS` lost
    races, `ToolError(conflict_message)`."""
    for _ in range(CONFLICT_ATTEMPTS):
        try:
            with store.transaction() as tx:
                return work(tx)
        except StoreConflict:
            continue
    raise ToolError(conflict_message)


def iter_sorted_charges(charges: list[Charge]) -> Iterator[Charge]:
    """Charges newest first (ties: latest id first), the order every store returns."""
    yield from sorted(charges, key=lambda c: (c.day, c.charge_id), reverse=True)
