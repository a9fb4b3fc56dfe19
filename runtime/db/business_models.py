"""The demo business data behind the built-in tools, in the call database:
appointments, customer accounts, charges, refunds, tickets, routers, service
areas, outages, and the counters that number new rows.

These share `runtime.db.models.Base` (one metadata, one migration history:
revision 0003 creates them). Business times are the clinic's and the ISP's
wall-clock times, kept naive like the in-process store's; money is whole cents.
Two unique keys make concurrent writers safe across processes: a refund's
idempotency key and its charge (a charge is refunded at most once), and one
live (not cancelled) appointment per calendar slot.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from runtime.db.models import Base, JSONType

APPOINTMENT_STATUSES = ("booked", "confirmed", "cancelled")
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high")
#: Partial index condition: one live appointment per slot.
LIVE_APPOINTMENT = "status <> 'cancelled'"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _account_fk() -> Any:
    return ForeignKey("accounts.account_number", ondelete="CASCADE")


class BusinessAppointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        Index(
            "uq_appointments_live_slot",
            "day",
            "time",
            unique=True,
            sqlite_where=text(LIVE_APPOINTMENT),
            postgresql_where=text(LIVE_APPOINTMENT),
        ),
    )

    appointment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    time: Mapped[dt.time] = mapped_column(Time)
    service: Mapped[str] = mapped_column(String(128))
    patient: Mapped[str | None] = mapped_column(String(256))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))


class BusinessAccount(Base):
    __tablename__ = "accounts"

    account_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(256))
    plan: Mapped[str] = mapped_column(String(64))
    zip_code: Mapped[str] = mapped_column(String(10))
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)


class BusinessCharge(Base):
    __tablename__ = "charges"

    charge_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_number: Mapped[str] = mapped_column(_account_fk(), index=True)
    day: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(256))


class BusinessRefund(Base):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    refund_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_number: Mapped[str] = mapped_column(_account_fk(), index=True)
    charge_id: Mapped[str] = mapped_column(
        ForeignKey("charges.charge_id", ondelete="CASCADE"), unique=True
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(256), unique=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime())


class BusinessTicket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
    )

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    account_number: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.account_number", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime())
    notes: Mapped[list[str]] = mapped_column(JSONType)


class BusinessRouter(Base):
    __tablename__ = "routers"

    account_number: Mapped[str] = mapped_column(_account_fk(), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    online: Mapped[bool] = mapped_column(Boolean)
    last_seen: Mapped[datetime] = mapped_column(DateTime())


class BusinessServiceArea(Base):
    __tablename__ = "service_areas"

    zip_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    area: Mapped[str] = mapped_column(String(128))


class BusinessOutage(Base):
    """A network outage; one per area (the seed's natural key)."""

    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    area: Mapped[str] = mapped_column(String(128), unique=True)
    zip_codes: Mapped[list[str]] = mapped_column(JSONType)
    started: Mapped[datetime] = mapped_column(DateTime())
    eta: Mapped[datetime] = mapped_column(DateTime())
    cause: Mapped[str] = mapped_column(Text)


class BusinessCounter(Base):
    """The next number of each id prefix (APT, T, RF, CH): new ids are
    `PREFIX-N`, taken with one atomic UPDATE .. RETURNING."""

    __tablename__ = "business_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger)
