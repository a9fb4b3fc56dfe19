"""Per-agent outcomes: `call_agents`, one row per call and agent graph it went
through, with that agent's own ending (e.g. `handed_off`), its first and last
step and the caller turns it answered.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Written out so this revision never changes with the models.
OUTCOME_CHECK = (
    "outcome IS NULL OR outcome IN ('completed', 'escalated', 'handed_off', 'abandoned', 'failed')"
)


def upgrade() -> None:
    op.create_table(
        "call_agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("outcome_step", sa.Integer(), nullable=True),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_agents"),
        sa.UniqueConstraint("call_id", "agent", name="uq_call_agents_call_id_agent"),
        sa.CheckConstraint(OUTCOME_CHECK, name="ck_call_agents_outcome"),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name="fk_call_agents_call_id_calls", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_call_agents_agent_outcome", "call_agents", ["agent", "outcome"])


def downgrade() -> None:
    op.drop_index("ix_call_agents_agent_outcome", table_name="call_agents")
    op.drop_table("call_agents")
