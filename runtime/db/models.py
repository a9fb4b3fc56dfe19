"""The call database: agents, calls, the agents each call went through, turns,
node visits, tool calls, intents, recordings (SQLAlchemy 2 declarative models).

The migrations in `runtime/db/migrations/versions/` create exactly this schema
(a test compares them). Rows written by the recorder have natural keys: a call's
rows are numbered by `step` (0 = the opening, n = the step started by the n-th
caller turn, the hang-up after it) and `seq` (position within the step), unique
per call, so writing the same step twice inserts nothing new. Timestamps are
timezone-aware and stored in UTC (SQLite keeps them naive, UTC by contract).
JSON columns are JSONB on PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

OUTCOMES = ("completed", "escalated", "handed_off", "abandoned", "failed")
DIRECTIONS = ("inbound", "outbound")
ROLES = ("caller", "agent")
#: Per-turn latency stages the voice runtime reports, in milliseconds.
LATENCY_STAGES = ("stt_ms", "graph_ms", "llm_ttft_ms", "tts_ttfa_ms", "e2e_ms", "bargein_ms")
#: PostgreSQL text search configuration of the transcript index.
TEXT_SEARCH_CONFIG = "english"

#: SQL of `turn_text_vector()`; the full-text index is built on it.
TEXT_VECTOR_SQL = f"to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, coalesce(text, ''::text))"

JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored in UTC. Naive values are rejected."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Agent(Base):
    """One version of an agent graph: its id, where it was loaded from, and the
    git commit and SHA-256 of the file content in use."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("graph_id", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    graph_id: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str | None] = mapped_column(String(256))
    file_path: Mapped[str | None] = mapped_column(String(1024))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', OUTCOMES)}", name="outcome"),
        Index(None, "agent", "started_at"),
        Index(None, "graph_hash", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128))
    agent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    graph_commit: Mapped[str | None] = mapped_column(String(64))
    graph_hash: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    transport: Mapped[str] = mapped_column(String(32), index=True, default="text")
    caller: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16), index=True)
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    sentiment_method: Mapped[str | None] = mapped_column(String(32))


def _call_fk() -> Mapped[str]:
    return mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))


class CallAgent(Base):
    """One agent's part in a call (one row per call and agent graph id): its
    own ending (`outcome`, set in step `outcome_step`; None while it still
    handles the call or when the call ended without one, e.g. recorded before
    revision 0004's writer) - an agent that passed the call on is `handed_off`
    even when the call went on to complete - the first and last step it was
    active in (`last_seq`: its last event's position in `last_step`, so the
    latest agent of a call is the greatest (last_step, last_seq)), and `turns`,
    the caller turns it answered."""

    __tablename__ = "call_agents"
    __table_args__ = (
        UniqueConstraint("call_id", "agent"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', OUTCOMES)}", name="outcome"),
        Index(None, "agent", "outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = _call_fk()
    agent: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_step: Mapped[int | None] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    turns: Mapped[int] = mapped_column(Integer, default=0)


class Turn(Base):
    """A caller or agent line. An agent line cut short by a barge-in keeps the
    planned `text` and records `heard_text`, what the caller actually heard."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("call_id", "step", "seq"),
        CheckConstraint(_in("role", ROLES), name="role"),
        Index(None, "call_id", "message_id"),
        Index(
            "ix_turns_text_search",
            sql_text(TEXT_VECTOR_SQL),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = _call_fk()
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))
    agent: Mapped[str | None] = mapped_column(String(128))
    node: Mapped[str | None] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    heard_text: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    latencies: Mapped[dict[str, Any] | None]


def turn_text_vector() -> ColumnElement[Any]:
    """PostgreSQL: the tsvector of a turn's text, the very expression the
    full-text index `ix_turns_text_search` is built on, so searches use it."""
    return func.to_tsvector(
        literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig"),
        func.coalesce(Turn.text, literal_column("''::text")),
    )


class NodeVisit(Base):
    __tablename__ = "node_visits"
    __table_args__ = (UniqueConstraint("call_id", "step", "seq"), Index(None, "agent", "node"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = _call_fk()
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str] = mapped_column(String(128))
    node: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


class ToolCall(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (UniqueConstraint("call_id", "step", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = _call_fk()
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128), index=True)
    node: Mapped[str | None] = mapped_column(String(128))
    arguments: Mapped[dict[str, Any]]
    result: Mapped[Any | None] = mapped_column(JSONType)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class IntentRecord(Base):
    """One intent classification; `name` is None when it fell below the
    threshold (the route's fallback was taken)."""

    __tablename__ = "intents"
    __table_args__ = (UniqueConstraint("call_id", "step", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = _call_fk()
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    node: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(128), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("call_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = _call_fk()
    path: Mapped[str] = mapped_column(String(1024))
    duration_s: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
