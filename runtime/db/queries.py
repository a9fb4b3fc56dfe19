"""Read recorded calls: filter and page the call list, search transcripts, fetch
one call with its transcript, path, tool calls and intents, list agent versions.

Every function takes the engine and a `CallFilter` (agent, version, date range,
outcome, transport, direction, transcript text). Transcript search uses the
PostgreSQL full-text index (`websearch_to_tsquery`, English stemming) and, on
SQLite, a case-insensitive substring match of every word in one turn.
Results are pydantic models, ready to serve as JSON.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Select, and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from runtime.db.models import (
    TEXT_SEARCH_CONFIG,
    Agent,
    Call,
    IntentRecord,
    NodeVisit,
    Recording,
    ToolCall,
    Turn,
    turn_text_vector,
)

Outcome = Literal["completed", "escalated", "handed_off", "abandoned", "failed"]
OrderBy = Literal["started_at", "duration", "agent", "outcome"]
MAX_PAGE = 500
MAX_SEARCH_WORDS = 12
_WORD = re.compile(r"\w+", re.UNICODE)


class CallFilter(BaseModel):
    """Which calls: all given criteria hold. `since` is inclusive, `until`
    exclusive (naive times are taken as UTC). `version` is a graph content
    hash or git commit, or a prefix of either of at least 7 characters."""

    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, max_length=128)
    version: str | None = Field(default=None, max_length=64)
    since: datetime | None = None
    until: datetime | None = None
    outcome: Outcome | None = None
    transport: str | None = Field(default=None, max_length=32)
    direction: Literal["inbound", "outbound"] | None = None
    text: str | None = Field(default=None, max_length=500)

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _range(self) -> CallFilter:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self


def search_words(text: str | None) -> list[str]:
    """The words of a search text (punctuation ignored), at most 12."""
    return _WORD.findall(text or "")[:MAX_SEARCH_WORDS]


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_match(dialect: str, text: str) -> ColumnElement[bool]:
    """Condition on `Turn`: the turn's text matches the search text."""
    if dialect == "postgresql":
        query = func.websearch_to_tsquery(
            literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig"), text
        )
        return turn_text_vector().op("@@")(query)
    return and_(*(Turn.text.ilike(f"%{_like_escape(w)}%", escape="\\") for w in search_words(text)))


def call_conditions(f: CallFilter | None, dialect: str) -> list[ColumnElement[bool]]:
    """WHERE conditions on `Call` for a filter (none for None)."""
    if f is None:
        return []
    out: list[ColumnElement[bool]] = []
    if f.agent:
        out.append(Call.agent == f.agent)
    if f.version:
        version = f.version.strip()
        matches = [Call.graph_hash == version, Call.graph_commit == version]
        if len(version) >= 7:
            matches += [Call.graph_hash.startswith(version), Call.graph_commit.startswith(version)]
        out.append(or_(*matches))
    if f.since is not None:
        out.append(Call.started_at >= f.since)
    if f.until is not None:
        out.append(Call.started_at < f.until)
    if f.outcome:
        out.append(Call.outcome == f.outcome)
    if f.transport:
        out.append(Call.transport == f.transport)
    if f.direction:
        out.append(Call.direction == f.direction)
    if search_words(f.text):
        assert f.text is not None
        out.append(Call.id.in_(select(Turn.call_id).where(text_match(dialect, f.text))))
    return out


# --- results ------------------------------------------------------------------


class CallSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent: str
    graph_hash: str | None
    graph_commit: str | None
    direction: str
    transport: str
    caller: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    outcome: str | None
    outcome_reason: str | None
    sentiment_score: float | None
    sentiment_label: str | None
    sentiment_method: str | None
    turn_count: int = 0


class CallPage(BaseModel):
    items: list[CallSummary]
    total: int
    limit: int
    offset: int


class TurnOut(BaseModel):
    """`index` orders the transcript; `text` is what the agent planned to say,
    `heard_text` what the caller heard when a barge-in cut it short."""

    model_config = ConfigDict(from_attributes=True)

    index: int
    step: int
    role: str
    agent: str | None
    node: str | None
    message_id: str | None
    text: str
    interrupted: bool
    heard_text: str | None
    started_at: datetime
    ended_at: datetime | None
    latencies: dict[str, float] | None


class VisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    agent: str
    node: str
    at: datetime


class ToolCallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    name: str
    node: str | None
    arguments: dict[str, Any]
    result: Any
    duration_ms: float | None
    error: str | None
    at: datetime


class IntentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    node: str | None
    name: str | None
    confidence: float
    at: datetime


class RecordingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    duration_s: float | None
    sample_rate: int | None
    created_at: datetime


class AgentVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    graph_id: str
    name: str | None
    file_path: str | None
    git_commit: str | None
    content_hash: str
    first_seen_at: datetime
    calls: int = 0
    last_call_at: datetime | None = None


class CallDetail(CallSummary):
    agent_version: AgentVersionOut | None
    turns: list[TurnOut]
    visits: list[VisitOut]
    tool_calls: list[ToolCallOut]
    intents: list[IntentOut]
    recordings: list[RecordingOut]


# --- queries ------------------------------------------------------------------

_ORDER_COLUMNS: dict[str, Any] = {
    "started_at": Call.started_at,
    "duration": Call.duration_s,
    "agent": Call.agent,
    "outcome": Call.outcome,
}


def _summary_select() -> Select[Any]:
    turns = select(func.count(Turn.id)).where(Turn.call_id == Call.id).scalar_subquery()
    return select(Call, turns.label("turn_count"))


def _summary(call: Call, turn_count: int) -> CallSummary:
    return CallSummary.model_validate(call).model_copy(update={"turn_count": int(turn_count)})


async def list_calls(
    engine: AsyncEngine,
    filters: CallFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
    order_by: OrderBy = "started_at",
    descending: bool = True,
) -> CallPage:
    """One page of the calls matching `filters`, with the total count. Ties
    (and missing durations/outcomes, which sort last) are ordered by call id.
    ValueError for a bad page size, offset or order."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if order_by not in _ORDER_COLUMNS:
        raise ValueError(f"order_by must be one of {sorted(_ORDER_COLUMNS)}, got {order_by!r}")
    column = _ORDER_COLUMNS[order_by]
    key = column.desc() if descending else column.asc()
    tie = Call.id.desc() if descending else Call.id.asc()
    conditions = call_conditions(filters, engine.dialect.name)
    async with engine.connect() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(Call).where(*conditions))
        ).scalar_one()
        stmt = (
            _summary_select()
            .where(*conditions)
            .order_by(key.nulls_last(), tie)
            .limit(limit)
            .offset(offset)
        )
        rows = (await conn.execute(stmt)).all()
    items = [_summary(_call_of(row), row.turn_count) for row in rows]
    return CallPage(items=items, total=int(total), limit=limit, offset=offset)


def _call_of(row: Any) -> Call:
    """A Core row of `select(Call, ...)` as a detached `Call` object."""
    values = {c.key: row._mapping[c] for c in Call.__table__.columns}
    return Call(**values)


async def search_calls(
    engine: AsyncEngine,
    text: str,
    filters: CallFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> CallPage:
    """Calls with a turn matching `text` (full-text on PostgreSQL, substring
    of every word on SQLite), newest first. A text without words matches all."""
    merged = (filters or CallFilter()).model_copy(update={"text": text})
    return await list_calls(engine, merged, limit=limit, offset=offset)


async def get_call(engine: AsyncEngine, call_id: str) -> CallDetail | None:
    """One call with its transcript, node path, tool calls, intents,
    recordings and agent version; None when there is no such call."""
    async with engine.connect() as conn:
        row = (await conn.execute(_summary_select().where(Call.id == call_id))).first()
        if row is None:
            return None
        call = _call_of(row)
        version = None
        if call.agent_version_id is not None:
            found = (
                await conn.execute(select(Agent).where(Agent.id == call.agent_version_id))
            ).first()
            version = AgentVersionOut.model_validate(found, from_attributes=True) if found else None

        async def rows_of(model: Any) -> list[Any]:
            stmt = select(model).where(model.call_id == call_id)
            if hasattr(model, "step"):
                stmt = stmt.order_by(model.step, model.seq)
            else:
                stmt = stmt.order_by(model.id)
            return list((await conn.execute(stmt)).all())

        turns = await rows_of(Turn)
        visits = await rows_of(NodeVisit)
        tools = await rows_of(ToolCall)
        intents = await rows_of(IntentRecord)
        recordings = await rows_of(Recording)
    summary = _summary(call, row.turn_count)
    return CallDetail(
        **summary.model_dump(),
        agent_version=version,
        turns=[TurnOut.model_validate({**t._mapping, "index": i}) for i, t in enumerate(turns)],
        visits=[VisitOut.model_validate(v, from_attributes=True) for v in visits],
        tool_calls=[ToolCallOut.model_validate(t, from_attributes=True) for t in tools],
        intents=[IntentOut.model_validate(x, from_attributes=True) for x in intents],
        recordings=[RecordingOut.model_validate(r, from_attributes=True) for r in recordings],
    )


async def list_agents(engine: AsyncEngine, graph_id: str | None = None) -> list[AgentVersionOut]:
    """Agent versions (newest first per graph) with their call counts."""
    counts = (
        select(
            Call.agent_version_id,
            func.count(Call.id).label("calls"),
            func.max(Call.started_at).label("last_call_at"),
        )
        .group_by(Call.agent_version_id)
        .subquery()
    )
    stmt = (
        select(Agent, counts.c.calls, counts.c.last_call_at)
        .outerjoin(counts, counts.c.agent_version_id == Agent.id)
        .order_by(Agent.graph_id, Agent.first_seen_at.desc(), Agent.id.desc())
    )
    if graph_id is not None:
        stmt = stmt.where(Agent.graph_id == graph_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    out = []
    for row in rows:
        data = {c.key: row._mapping[c] for c in Agent.__table__.columns}
        last = row.last_call_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        out.append(AgentVersionOut(**data, calls=int(row.calls or 0), last_call_at=last))
    return out


async def transports(engine: AsyncEngine) -> list[str]:
    """The transports calls were recorded with, sorted (for filter choices)."""
    stmt = select(Call.transport).distinct().order_by(Call.transport)
    async with engine.connect() as conn:
        return [str(t) for t in (await conn.scalars(stmt)).all() if t]
