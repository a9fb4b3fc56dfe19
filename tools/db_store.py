"""The built-in tools' business data in the call database (SQLAlchemy).

`DbStore` implements `tools.builtin.data.BusinessStore` on the tables of
`runtime.db.business_models` (created by migration 0003). Tools are
synchronous and the registry runs them in a worker thread, so the store uses a
synchronous engine (pysqlite / psycopg) there: the event loop never waits on
the database, and the tool logic is the same code for both stores.

Each tool call is one transaction. On SQLite it starts with BEGIN IMMEDIATE,
so writers queue instead of failing on a stale snapshot; on PostgreSQL the
unique keys decide races between processes: a second refund with the same
idempotency key (or of the same charge), or a second live booking of a slot,
fails its INSERT, which becomes `StoreConflict` and the tool re-runs on fresh
data (a refund then replays the winner's). New ids come from
`business_counters` with one atomic UPDATE .. RETURNING.

`seed_business_data` fills the tables with exactly the in-process store's seed
data (it builds a `DemoStore` and copies it), inserting only rows that are not
there yet, so seeding twice changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from runtime.db.business_models import (
    BusinessAccount,
    BusinessAppointment,
    BusinessCharge,
    BusinessCounter,
    BusinessOutage,
    BusinessRefund,
    BusinessRouter,
    BusinessServiceArea,
    BusinessTicket,
)
from runtime.db.engine import async_url, database_url, is_memory_sqlite
from tools.builtin.data import BusinessStore, StoreConflict
from tools.store import (
    CENT,
    Account,
    Appointment,
    AppointmentStatus,
    Charge,
    Clock,
    DemoStore,
    Outage,
    Priority,
    Refund,
    Router,
    Ticket,
    TicketStatus,
)

STORE_ENV = "SWITCHBOARD_TOOLS_STORE"
StoreKind = Literal["memory", "db"]
_SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}


class StoreConfigError(ValueError):
    """The tools store setting names no known store."""


def _cents(amount: Decimal) -> int:
    return int((amount.quantize(CENT) * 100).to_integral_value())


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def _system_clock() -> datetime:
    return datetime.now().astimezone()


def make_sync_engine(url: str | None = None, *, schema: str | None = None) -> Engine:
    """A synchronous engine on the database of `url` (default: see
    `runtime.db.engine.database_url`): pysqlite for SQLite (30 s busy timeout,
    foreign keys on, BEGIN IMMEDIATE transactions), psycopg for PostgreSQL
    (`schema` sets the search_path). `DatabaseURLError` for a bad URL."""
    target: URL = async_url(database_url(url))
    backend = target.get_backend_name()
    target = target.set(drivername=_SYNC_DRIVERS[backend])
    options: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args: dict[str, Any] = {"timeout": 30, "check_same_thread": False}
        if is_memory_sqlite(target):
            options["poolclass"] = StaticPool
        engine = create_engine(target, connect_args=connect_args, **options)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    return create_engine(target, connect_args=connect_args, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is turned off; `_sqlite_begin` issues one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class DbStore:
    """Business data in the database behind a synchronous `engine`; `clock`
    gives the current time (the business works in its wall-clock time)."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or _system_clock

    @classmethod
    def from_url(
        cls, url: str | None = None, *, schema: str | None = None, clock: Clock | None = None
    ) -> DbStore:
        """A store on its own engine (`dispose()` closes it); the database must
        be migrated (`runtime.db.init_db`)."""
        return cls(make_sync_engine(url, schema=schema), clock)

    def with_clock(self, clock: Clock) -> DbStore:
        """The same database seen through another clock (e.g. one call's)."""
        return DbStore(self.engine, clock)

    def dispose(self) -> None:
        self.engine.dispose()

    def now(self) -> datetime:
        return self.clock().replace(tzinfo=None)

    def today(self) -> date:
        return self.now().date()

    @contextmanager
    def transaction(self) -> Iterator[DbData]:
        """One database transaction: committed when the block ends, rolled back
        on an exception; a unique key that fired becomes `StoreConflict`."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield DbData(session, self.clock)
        except IntegrityError as exc:
            raise StoreConflict(str(exc.orig)) from exc


class DbData:
    """The `BusinessData` operations inside one session's transaction."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def now(self) -> datetime:
        return self.clock().replace(tzinfo=None)

    def today(self) -> date:
        return self.now().date()

    def _next_id(self, prefix: str) -> str:
        stmt = (
            update(BusinessCounter)
            .where(BusinessCounter.prefix == prefix)
            .values(next_value=BusinessCounter.next_value + 1)
            .returning(BusinessCounter.next_value)
        )
        taken = self.session.execute(stmt).scalar_one_or_none()
        if taken is None:
            raise RuntimeError(
                f"no id counter {prefix!r}: the business data was never seeded "
                "(run `switchboard seed-demo`)"
            )
        return f"{prefix}-{taken - 1}"

    def _flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise StoreConflict(str(exc.orig)) from exc

    # --- calendar -------------------------------------------------------------

    @staticmethod
    def _appointment(row: BusinessAppointment) -> Appointment:
        status: AppointmentStatus = row.status  # type: ignore[assignment]
        return Appointment(
            row.appointment_id, row.day, row.time, row.service, row.patient, row.phone, status
        )

    def appointment(self, appointment_id: str) -> Appointment | None:
        row = self.session.get(BusinessAppointment, appointment_id)
        return None if row is None else self._appointment(row)

    def appointments_on(self, day: date) -> list[Appointment]:
        rows = self.session.scalars(
            select(BusinessAppointment).where(BusinessAppointment.day == day)
        )
        return [self._appointment(r) for r in rows]

    def appointments_of_phone(self, phone: str) -> list[Appointment]:
        rows = self.session.scalars(
            select(BusinessAppointment).where(BusinessAppointment.phone == phone)
        )
        return [self._appointment(r) for r in rows]

    def add_appointment(
        self, day: date, at: time, service: str, patient: str | None, phone: str | None
    ) -> Appointment:
        apt = Appointment(self._next_id("APT"), day, at, service, patient, phone)
        self.session.add(
            BusinessAppointment(
                appointment_id=apt.appointment_id,
                day=day,
                time=at,
                service=service,
                patient=patient,
                phone=phone,
                status=apt.status,
            )
        )
        self._flush()
        return apt

    def save_appointment(self, apt: Appointment) -> None:
        row = self.session.get(BusinessAppointment, apt.appointment_id)
        if row is None:
            raise StoreConflict(f"appointment {apt.appointment_id} was deleted")
        row.day, row.time, row.status = apt.day, apt.time, apt.status
        self._flush()

    # --- accounts and billing -------------------------------------------------

    @staticmethod
    def _account(row: BusinessAccount) -> Account:
        return Account(
            row.account_number,
            row.name,
            row.phone,
            row.email,
            row.plan,
            row.zip_code,
            _money(row.balance_cents),
            row.due_date,
        )

    def account(self, account_number: str) -> Account | None:
        row = self.session.get(BusinessAccount, account_number)
        return None if row is None else self._account(row)

    def account_by_phone(self, phone: str) -> Account | None:
        row = self.session.scalars(
            select(BusinessAccount).where(BusinessAccount.phone == phone)
        ).first()
        return None if row is None else self._account(row)

    @staticmethod
    def _charge(row: BusinessCharge) -> Charge:
        return Charge(
            row.charge_id, row.account_number, row.day, _money(row.amount_cents), row.description
        )

    def account_charges(self, account_number: str) -> list[Charge]:
        rows = self.session.scalars(
            select(BusinessCharge).where(BusinessCharge.account_number == account_number)
        )
        charges = [self._charge(r) for r in rows]
        return sorted(charges, key=lambda c: (c.day, c.charge_id), reverse=True)

    def charge(self, charge_id: str) -> Charge | None:
        row = self.session.get(BusinessCharge, charge_id)
        return None if row is None else self._charge(row)

    @staticmethod
    def _refund(row: BusinessRefund) -> Refund:
        return Refund(
            row.refund_id,
            row.account_number,
            row.charge_id,
            _money(row.amount_cents),
            row.reason,
            row.idempotency_key,
            row.issued_at,
        )

    def refund_of_charge(self, charge_id: str) -> Refund | None:
        row = self.session.scalars(
            select(BusinessRefund).where(BusinessRefund.charge_id == charge_id)
        ).first()
        return None if row is None else self._refund(row)

    def refund_by_key(self, idempotency_key: str) -> Refund | None:
        row = self.session.scalars(
            select(BusinessRefund).where(BusinessRefund.idempotency_key == idempotency_key)
        ).first()
        return None if row is None else self._refund(row)

    def add_refund(
        self,
        account_number: str,
        charge_id: str,
        amount: Decimal,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        refund = Refund(
            self._next_id("RF"),
            account_number,
            charge_id,
            amount,
            reason,
            idempotency_key,
            self.now(),
        )
        # The INSERT comes first: when a concurrent refund holds the key or the
        # charge, it fails here and the balance is never touched.
        self.session.add(
            BusinessRefund(
                refund_id=refund.refund_id,
                account_number=account_number,
                charge_id=charge_id,
                amount_cents=_cents(amount),
                reason=reason,
                idempotency_key=idempotency_key,
                issued_at=refund.issued_at,
            )
        )
        self._flush()
        self.session.execute(
            update(BusinessAccount)
            .where(BusinessAccount.account_number == account_number)
            .values(balance_cents=BusinessAccount.balance_cents - _cents(amount))
        )
        self.session.expire_all()
        return refund

    # --- tickets --------------------------------------------------------------

    @staticmethod
    def _ticket(row: BusinessTicket) -> Ticket:
        status: TicketStatus = row.status  # type: ignore[assignment]
        priority: Priority = row.priority  # type: ignore[assignment]
        return Ticket(
            row.ticket_id,
            row.summary,
            status,
            priority,
            row.category,
            row.phone,
            row.account_number,
            row.created_at,
            list(row.notes),
        )

    def ticket(self, ticket_id: str) -> Ticket | None:
        row = self.session.get(BusinessTicket, ticket_id)
        return None if row is None else self._ticket(row)

    def add_ticket(
        self,
        summary: str,
        priority: Priority,
        category: str,
        phone: str | None,
        account_number: str | None,
    ) -> Ticket:
        ticket = Ticket(
            self._next_id("T"),
            summary,
            "open",
            priority,
            category,
            phone,
            account_number,
            self.now(),
        )
        self.session.add(_ticket_row(ticket))
        self._flush()
        return ticket

    def save_ticket(self, ticket: Ticket) -> None:
        row = self.session.get(BusinessTicket, ticket.ticket_id)
        if row is None:
            raise StoreConflict(f"ticket {ticket.ticket_id} was deleted")
        row.status, row.notes = ticket.status, list(ticket.notes)
        self._flush()

    # --- technical support ----------------------------------------------------

    def service_area(self, zip_code: str) -> str | None:
        row = self.session.get(BusinessServiceArea, zip_code)
        return None if row is None else row.area

    def all_outages(self) -> list[Outage]:
        rows = self.session.scalars(select(BusinessOutage).order_by(BusinessOutage.id))
        return [Outage(r.area, tuple(r.zip_codes), r.started, r.eta, r.cause) for r in rows]

    def router(self, account_number: str) -> Router | None:
        row = self.session.get(BusinessRouter, account_number)
        if row is None:
            return None
        return Router(row.account_number, row.model, row.online, row.last_seen)

    def save_router(self, router: Router) -> None:
        row = self.session.get(BusinessRouter, router.account_number)
        if row is None:
            raise StoreConflict(f"router of {router.account_number} was deleted")
        row.online, row.last_seen = router.online, router.last_seen
        self._flush()


def _ticket_row(ticket: Ticket) -> BusinessTicket:
    return BusinessTicket(
        ticket_id=ticket.ticket_id,
        summary=ticket.summary,
        status=ticket.status,
        priority=ticket.priority,
        category=ticket.category,
        phone=ticket.phone,
        account_number=ticket.account_number,
        created_at=ticket.created_at,
        notes=list(ticket.notes),
    )


# --- seeding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedReport:
    """Rows inserted per table by one seeding (0 everywhere when already seeded)."""

    inserted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.inserted.values())


def _seed_rows(demo: DemoStore) -> list[tuple[type[Any], list[dict[str, Any]]]]:
    """The in-process store's seed data as rows, parents before children."""
    return [
        (
            BusinessAccount,
            [
                {
                    "account_number": a.account_number,
                    "name": a.name,
                    "phone": a.phone,
                    "email": a.email,
                    "plan": a.plan,
                    "zip_code": a.zip_code,
                    "balance_cents": _cents(a.balance),
                    "due_date": a.due_date,
                }
                for a in demo.accounts.values()
            ],
        ),
        (
            BusinessCharge,
            [
                {
                    "charge_id": c.charge_id,
                    "account_number": c.account_number,
                    "day": c.day,
                    "amount_cents": _cents(c.amount),
                    "description": c.description,
                }
                for c in demo.charges.values()
            ],
        ),
        (
            BusinessRefund,
            [
                {
                    "refund_id": r.refund_id,
                    "account_number": r.account_number,
                    "charge_id": r.charge_id,
                    "amount_cents": _cents(r.amount),
                    "reason": r.reason,
                    "idempotency_key": r.idempotency_key,
                    "issued_at": r.issued_at,
                }
                for r in demo.refunds.values()
            ],
        ),
        (
            BusinessAppointment,
            [
                {
                    "appointment_id": a.appointment_id,
                    "day": a.day,
                    "time": a.time,
                    "service": a.service,
                    "patient": a.patient,
                    "phone": a.phone,
                    "status": a.status,
                }
                for a in demo.appointments.values()
            ],
        ),
        (
            BusinessTicket,
            [
                {
                    "ticket_id": t.ticket_id,
                    "summary": t.summary,
                    "status": t.status,
                    "priority": t.priority,
                    "category": t.category,
                    "phone": t.phone,
                    "account_number": t.account_number,
                    "created_at": t.created_at,
                    "notes": list(t.notes),
                }
                for t in demo.tickets.values()
            ],
        ),
        (
            BusinessRouter,
            [
                {
                    "account_number": r.account_number,
                    "model": r.model,
                    "online": r.online,
                    "last_seen": r.last_seen,
                }
                for r in demo.routers.values()
            ],
        ),
        (
            BusinessServiceArea,
            [{"zip_code": z, "area": a} for z, a in demo.service_areas.items()],
        ),
        (
            BusinessOutage,
            [
                {
                    "area": o.area,
                    "zip_codes": list(o.zip_codes),
                    "started": o.started,
                    "eta": o.eta,
                    "cause": o.cause,
                }
                for o in demo.outages
            ],
        ),
        (
            BusinessCounter,
            [{"prefix": p, "next_value": n} for p, n in sorted(demo._counters.items())],
        ),
    ]


def seed_business_data(engine: Engine, clock: Clock | None = None) -> SeedReport:
    """Insert the demo seed data (the in-process store's, seeded on `clock`'s
    today) in one transaction, skipping every row whose key is already there;
    returns how many rows each table gained. Blocking: run it in a thread."""
    demo = DemoStore(clock=clock)
    dialect = engine.dialect.name
    inserted: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        for model, rows in _seed_rows(demo):
            if not rows:
                continue
            stmt: Any
            if dialect == "postgresql":
                stmt = postgresql.insert(model).values(rows).on_conflict_do_nothing()
            elif dialect == "sqlite":
                stmt = sqlite.insert(model).values(rows).on_conflict_do_nothing()
            else:  # pragma: no cover - make_sync_engine only opens the two
                stmt = insert(model).values(rows)
            result = session.execute(stmt)
            inserted[model.__tablename__] = max(int(getattr(result, "rowcount", 0) or 0), 0)
    return SeedReport(inserted)


# --- choosing a store ---------------------------------------------------------------------


def store_kind(default: StoreKind = "memory", env: dict[str, str] | None = None) -> StoreKind:
    """$SWITCHBOARD_TOOLS_STORE (memory or db), else `default`;
    `StoreConfigError` naming the bad value otherwise."""
    raw = (os.environ if env is None else env).get(STORE_ENV, "").strip().lower()
    if not raw:
        return default
    if raw == "memory":
        return "memory"
    if raw == "db":
        return "db"
    raise StoreConfigError(f"{STORE_ENV}={raw!r}: expected 'memory' or 'db'")


def open_store(
    default: StoreKind = "memory",
    *,
    database_url: str | None = None,
    schema: str | None = None,
    seed: bool = True,
    clock: Clock | None = None,
) -> BusinessStore:
    """The business store the environment asks for (see `store_kind`): a new
    in-process `DemoStore`, or a `DbStore` on `database_url` (default: the
    configured database, which must be migrated) whose demo data is seeded
    first when `seed`. Blocking: async callers use a thread."""
    if store_kind(default) == "memory":
        return DemoStore(clock=clock)
    store = DbStore.from_url(database_url, schema=schema, clock=clock)
    if seed:
        seed_business_data(store.engine, clock)
    return store


__all__ = [
    "STORE_ENV",
    "DbData",
    "DbStore",
    "SeedReport",
    "StoreConfigError",
    "make_sync_engine",
    "open_store",
    "seed_business_data",
    "store_kind",
]
