"""Calls, their turns, node visits, tool calls, intents and recordings; agent versions.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def _call_id() -> sa.Column[str]:
    return sa.Column("call_id", sa.String(128), nullable=False)


def _call_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["call_id"], ["calls.id"], name=f"fk_{table}_call_id_calls", ondelete="CASCADE"
    )


def _keyed(table: str) -> list[SchemaItem]:
    """id, call_id, step, seq with their keys: the recorder's natural key."""
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _call_id(),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("call_id", "step", "seq", name=f"uq_{table}_call_id_step_seq"),
        _call_fk(table),
    ]


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("graph_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("file_path", sa.String(1024), nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("graph_id", "content_hash", name="uq_agents_graph_id_content_hash"),
    )
    op.create_index("ix_agents_graph_id", "agents", ["graph_id"])

    op.create_table(
        "calls",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("agent_version_id", sa.Integer(), nullable=True),
        sa.Column("graph_commit", sa.String(64), nullable=True),
        sa.Column("graph_hash", sa.String(64), nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("transport", sa.String(32), nullable=False),
        sa.Column("caller", sa.String(64), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("sentiment_score", sa.Float(), nullable=True),
        sa.Column("sentiment_label", sa.String(16), nullable=True),
        sa.Column("sentiment_method", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.ForeignKeyConstraint(
            ["agent_version_id"],
            ["agents.id"],
            name="fk_calls_agent_version_id_agents",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_calls_direction"),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN "
            "('completed', 'escalated', 'handed_off', 'abandoned', 'failed')",
            name="ck_calls_outcome",
        ),
    )
    op.create_index("ix_calls_agent_started_at", "calls", ["agent", "started_at"])
    op.create_index("ix_calls_graph_hash_started_at", "calls", ["graph_hash", "started_at"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_outcome", "calls", ["outcome"])
    op.create_index("ix_calls_transport", "calls", ["transport"])

    op.create_table(
        "turns",
        *_keyed("turns"),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("heard_text", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("latencies", JSON, nullable=True),
        sa.CheckConstraint("role IN ('caller', 'agent')", name="ck_turns_role"),
    )
    op.create_index("ix_turns_call_id_message_id", "turns", ["call_id", "message_id"])

    op.create_table(
        "node_visits",
        *_keyed("node_visits"),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_node_visits_agent_node", "node_visits", ["agent", "node"])

    op.create_table(
        "tool_calls",
        *_keyed("tool_calls"),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("arguments", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_tool_calls_name", "tool_calls", ["name"])

    op.create_table(
        "intents",
        *_keyed("intents"),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_intents_name", "intents", ["name"])

    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _call_id(),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
        sa.UniqueConstraint("call_id", "path", name="uq_recordings_call_id_path"),
        _call_fk("recordings"),
    )


def downgrade() -> None:
    for table in ("recordings", "intents", "tool_calls", "node_visits", "turns", "calls"):
        op.drop_table(table)
    op.drop_index("ix_agents_graph_id", table_name="agents")
    op.drop_table("agents")
