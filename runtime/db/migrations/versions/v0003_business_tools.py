"""Demo business data of the built-in tools: appointments, accounts, charges,
refunds (unique idempotency key and charge), tickets, routers, service areas,
outages and id counters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-02

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: One live appointment per slot (written out so this revision never changes).
LIVE_APPOINTMENT = "status <> 'cancelled'"
TABLES = (
    "business_counters",
    "outages",
    "service_areas",
    "routers",
    "tickets",
    "refunds",
    "charges",
    "accounts",
    "appointments",
)


def _account_fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_number"],
        ["accounts.account_number"],
        name=f"fk_{table}_account_number_accounts",
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("appointment_id", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("time", sa.Time(), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("patient", sa.String(256), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("appointment_id", name="pk_appointments"),
        sa.CheckConstraint(
            "status IN ('booked', 'confirmed', 'cancelled')", name="ck_appointments_status"
        ),
    )
    op.create_index("ix_appointments_phone", "appointments", ["phone"])
    op.create_index(
        "uq_appointments_live_slot",
        "appointments",
        ["day", "time"],
        unique=True,
        sqlite_where=sa.text(LIVE_APPOINTMENT),
        postgresql_where=sa.text(LIVE_APPOINTMENT),
    )

    op.create_table(
        "accounts",
        sa.Column("account_number", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("email", sa.String(256), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("zip_code", sa.String(10), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("account_number", name="pk_accounts"),
        sa.UniqueConstraint("phone", name="uq_accounts_phone"),
    )

    op.create_table(
        "charges",
        sa.Column("charge_id", sa.String(32), nullable=False),
        sa.Column("account_number", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("charge_id", name="pk_charges"),
        _account_fk("charges"),
    )
    op.create_index("ix_charges_account_number", "charges", ["account_number"])

    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.String(32), nullable=False),
        sa.Column("account_number", sa.String(32), nullable=False),
        sa.Column("charge_id", sa.String(32), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(256), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("refund_id", name="pk_refunds"),
        sa.CheckConstraint("amount_cents > 0", name="ck_refunds_amount_positive"),
        _account_fk("refunds"),
        sa.ForeignKeyConstraint(
            ["charge_id"],
            ["charges.charge_id"],
            name="fk_refunds_charge_id_charges",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("charge_id", name="uq_refunds_charge_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_refunds_idempotency_key"),
    )
    op.create_index("ix_refunds_account_number", "refunds", ["account_number"])

    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("account_number", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("notes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_tickets"),
        sa.CheckConstraint(
            "status IN ('open', 'pending', 'resolved', 'closed')", name="ck_tickets_status"
        ),
        sa.CheckConstraint("priority IN ('low', 'normal', 'high')", name="ck_tickets_priority"),
        _account_fk("tickets", "SET NULL"),
    )

    op.create_table(
        "routers",
        sa.Column("account_number", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_number", name="pk_routers"),
        _account_fk("routers"),
    )

    op.create_table(
        "service_areas",
        sa.Column("zip_code", sa.String(10), nullable=False),
        sa.Column("area", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("zip_code", name="pk_service_areas"),
    )

    op.create_table(
        "outages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("area", sa.String(128), nullable=False),
        sa.Column("zip_codes", JSON, nullable=False),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("eta", sa.DateTime(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outages"),
        sa.UniqueConstraint("area", name="uq_outages_area"),
    )

    op.create_table(
        "business_counters",
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", name="pk_business_counters"),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
