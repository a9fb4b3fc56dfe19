"""The SQL of each recorder write, as idempotent statements.

Every row has a natural key and goes in with INSERT .. ON CONFLICT (PostgreSQL
and SQLite dialect inserts), so running a write again (a retry after an
outage, the same step recorded twice, or by another worker) changes nothing
that is already there. Each write runs in one transaction the recorder opens.

The recorder queues `Op`s, plain-data descriptions of a write (JSON values
and datetimes only), so a pending write can be kept in its write-ahead spool
(`runtime.db.spool`) and run by another process after a crash; `Op.write()`
builds the SQL from the description.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, distinct, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.db.agent_version import AgentVersion
from runtime.db.models import (
    Agent,
    Call,
    CallAgent,
    IntentRecord,
    NodeVisit,
    Recording,
    ToolCall,
    Turn,
)
from runtime.db.rows import StepRows, clean_name

Write = Callable[[AsyncConnection], Awaitable[None]]

#: SQLSTATE classes worth retrying: connection exception, transaction rollback
#: (serialization, deadlock), insufficient resources, operator intervention
#: (server shutting down or starting), system error.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")


def _sqlstate(exc: BaseException) -> str | None:
    for err in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        while err is not None:
            code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
            if isinstance(code, str) and len(code) == 5:
                return code
            err = err.__cause__
    return None


def is_transient(exc: Exception) -> bool:
    """Whether retrying may succeed: connection and availability errors, not
    constraint, data or bind errors (those would fail forever). PostgreSQL's
    SQLSTATE decides when the server sent one."""
    if getattr(exc, "connection_invalidated", False):
        return True
    code = _sqlstate(exc)
    if code is not None:
        return code[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(exc, IntegrityError | DataError | ProgrammingError):
        return False
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return False
    return not isinstance(exc, ValueError | TypeError | KeyError)


def _insert(conn: AsyncConnection, table: Any) -> Any:
    """The dialect's INSERT, which has on_conflict_do_nothing/do_update."""
    if conn.dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


async def _insert_ignore(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = _insert(conn, table).on_conflict_do_nothing(
            index_elements=["call_id", "step", "seq"]
        )
        await conn.execute(stmt, rows)


async def _agent_version_id(conn: AsyncConnection, version: AgentVersion, at: datetime) -> int:
    table = Agent.__table__
    stmt = _insert(conn, table).values(
        graph_id=clean_name(version.graph_id),
        name=None if version.name is None else clean_name(version.name, 256),
        file_path=version.file_path,
        git_commit=version.git_commit,
        content_hash=version.content_hash,
        first_seen_at=at,
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["graph_id", "content_hash"]))
    found = await conn.execute(
        select(Agent.id).where(
            Agent.graph_id == clean_name(version.graph_id),
            Agent.content_hash == version.content_hash,
        )
    )
    return int(found.scalar_one())


async def _ensure_call(
    conn: AsyncConnection, call_id: str, agent: str | None, at: datetime
) -> None:
    """A minimal call row when `call_started` was never written, so a step's
    rows are kept; a later `call_started` fills it in."""
    stmt = _insert(conn, Call.__table__).values(
        id=call_id, agent=agent or "unknown", direction="inbound", transport="text", started_at=at
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def _end_call(
    conn: AsyncConnection,
    call_id: str,
    outcome: str,
    reason: str | None,
    ended_at: datetime,
    extra: dict[str, Any],
    *,
    overwrite: bool,
) -> None:
    found = await conn.execute(
        select(Call.started_at, Call.ended_at).where(Call.id == call_id).with_for_update()
    )
    started, ended = found.one()
    if ended is not None and not overwrite:
        ended_at = ended
    duration = max(0.0, (ended_at - started).total_seconds())
    await conn.execute(
        update(Call)
        .where(Call.id == call_id)
        .values(
            outcome=outcome,
            outcome_reason=reason,
            ended_at=ended_at,
            duration_s=duration,
            **extra,
        )
    )


def step(rows: StepRows) -> Write:
    """Write one step: its turns, visits, tool calls, intents, barge-in cuts
    and, when the call ended in it, the outcome (an earlier end time is kept)."""

    async def write(conn: AsyncConnection) -> None:
        await _ensure_call(conn, rows.call_id, rows.agent, rows.at)
        await _insert_ignore(conn, Turn.__table__, rows.turns)
        await _insert_ignore(conn, NodeVisit.__table__, rows.visits)
        await _insert_ignore(conn, ToolCall.__table__, rows.tools)
        await _insert_ignore(conn, IntentRecord.__table__, rows.intents)
        for message_id, heard in rows.heard:
            await conn.execute(
                update(Turn)
                .where(Turn.call_id == rows.call_id, Turn.message_id == message_id)
                .values(interrupted=True, heard_text=heard)
            )
        await _record_agents(conn, rows)
        if rows.outcome is not None:
            outcome, reason = rows.outcome
            at = rows.ended_at or rows.at
            await _end_call(conn, rows.call_id, outcome, reason, at, {}, overwrite=False)

    return write


def _later_outcome(step: Any) -> Any:
    """An agent's outcome is replaced only by one set in the same or a later step."""
    return or_(CallAgent.outcome_step.is_(None), CallAgent.outcome_step <= step)


def _latest_agent(call_id: str) -> Any:
    """The id of the call's agent on the line most recently (a subquery)."""
    return (
        select(CallAgent.id)
        .where(CallAgent.call_id == call_id)
        .order_by(CallAgent.last_step.desc(), CallAgent.last_seq.desc())
        .limit(1)
        .scalar_subquery()
    )


async def _record_agents(conn: AsyncConnection, rows: StepRows) -> None:
    """Upsert the step's `call_agents` rows: earliest first step, latest
    (last_step, last_seq), an outcome unless a later step set one already; a
    call ended by no active agent (a hang-up) ends its latest agent; `turns`
    is recounted from the agent lines written. Running it again changes nothing."""
    table = CallAgent.__table__
    if rows.agents:
        stmt = _insert(conn, table).values(rows.agents)
        new = stmt.excluded
        later = or_(
            new.last_step > CallAgent.last_step,
            and_(new.last_step == CallAgent.last_step, new.last_seq > CallAgent.last_seq),
        )
        takes_outcome = and_(new.outcome_step.is_not(None), _later_outcome(new.outcome_step))
        updates = {
            "first_step": case(
                (new.first_step < CallAgent.first_step, new.first_step),
                else_=CallAgent.first_step,
            ),
            "last_step": case((later, new.last_step), else_=CallAgent.last_step),
            "last_seq": case((later, new.last_seq), else_=CallAgent.last_seq),
            "outcome": case((takes_outcome, new.outcome), else_=CallAgent.outcome),
            "outcome_step": case((takes_outcome, new.outcome_step), else_=CallAgent.outcome_step),
        }
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["call_id", "agent"], set_=updates)
        )
    if rows.outcome is not None and rows.outcome_agent is None:
        await conn.execute(
            update(CallAgent)
            .where(CallAgent.id == _latest_agent(rows.call_id), _later_outcome(rows.step))
            .values(outcome=rows.outcome[0], outcome_step=rows.step)
        )
    names = [r["agent"] for r in rows.agents]
    if names:
        answered = (
            select(func.count(distinct(Turn.step)))
            .where(
                Turn.call_id == CallAgent.call_id,
                Turn.agent == CallAgent.agent,
                Turn.role == "agent",
                Turn.step >= 1,
            )
            .scalar_subquery()
        )
        await conn.execute(
            update(CallAgent)
            .where(CallAgent.call_id == rows.call_id, CallAgent.agent.in_(names))
            .values(turns=answered)
        )


def call_started(row: dict[str, Any], version: AgentVersion | None) -> Write:
    """Upsert the call row (descriptive fields updated, earliest start kept)
    and its agent version."""

    async def write(conn: AsyncConnection) -> None:
        values = dict(row)
        if version is not None:
            values["agent_version_id"] = await _agent_version_id(conn, version, row["started_at"])
        stmt = _insert(conn, Call.__table__).values(values)
        updates: dict[str, Any] = {k: v for k, v in values.items() if k not in ("id", "started_at")}
        # A call started twice (or first seen through one of its steps) keeps
        # its earliest start.
        updates["started_at"] = case(
            (Call.started_at <= stmt.excluded.started_at, Call.started_at),
            else_=stmt.excluded.started_at,
        )
        await conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=updates))

    return write


def call_ended(
    call_id: str, outcome: str, reason: str | None, ended_at: datetime, extra: dict[str, Any]
) -> Write:
    """Set the call's outcome, end time, duration (and `extra` columns). The
    agent on the line last, if its part has no outcome of its own, ends with
    the call's; a step that later records that agent's own outcome replaces it
    (its `outcome_step` stays unset)."""

    async def write(conn: AsyncConnection) -> None:
        await _ensure_call(conn, call_id, None, ended_at)
        await _end_call(conn, call_id, outcome, reason, ended_at, extra, overwrite=True)
        await conn.execute(
            update(CallAgent)
            .where(CallAgent.id == _latest_agent(call_id), CallAgent.outcome.is_(None))
            .values(outcome=outcome)
        )

    return write


def caller_texts(call_id: str, deliver: Callable[[list[str]], None]) -> Write:
    """Read the call's caller turns (in order) and hand them to `deliver`."""

    async def write(conn: AsyncConnection) -> None:
        found = await conn.execute(
            select(Turn.text)
            .where(Turn.call_id == call_id, Turn.role == "caller")
            .order_by(Turn.step, Turn.seq)
        )
        deliver([str(row[0]) for row in found])

    return write


def sentiment(call_id: str, values: dict[str, Any]) -> Write:
    """Set the call's computed sentiment unless one is recorded already."""

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(
            update(Call).where(Call.id == call_id, Call.sentiment_method.is_(None)).values(**values)
        )

    return write


def turn_latencies(call_id: str, step: int, latencies: dict[str, float]) -> Write:
    """Merge `latencies` (ms by stage) into the turn step `step` of the call
    keeps its latencies on: its first agent line, else its first line (as
    `StepRows.attach_metrics`). Stages given replace the same stages, others
    are kept, so running it again changes nothing; a step with no turns
    written is left alone."""

    async def write(conn: AsyncConnection) -> None:
        found = await conn.execute(
            select(Turn.id, Turn.latencies)
            .where(Turn.call_id == call_id, Turn.step == step)
            .order_by(case((Turn.role == "agent", 0), else_=1), Turn.seq)
            .limit(1)
            .with_for_update()
        )
        row = found.first()
        if row is None:
            return
        before = row.latencies if isinstance(row.latencies, dict) else {}
        merged = {**before, **latencies}
        if merged != before:
            await conn.execute(update(Turn).where(Turn.id == row.id).values(latencies=merged))

    return write


def recording(row: dict[str, Any]) -> Write:
    """Add the call's recording once per path."""

    async def write(conn: AsyncConnection) -> None:
        await _ensure_call(conn, row["call_id"], None, row["created_at"])
        stmt = _insert(conn, Recording.__table__).values(row)
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=["call_id", "path"]))

    return write


@dataclass(frozen=True)
class Op:
    """A recorder write as plain data: `kind` names the write, `args` its
    arguments (JSON values and datetimes, see `as_dict`). `durable` ops may
    be spooled and run again by another process; a read that hands its result
    to a callback (`deliver`) is not durable."""

    kind: str
    args: dict[str, Any]
    deliver: Callable[[list[str]], None] | None = field(default=None, compare=False)

    @property
    def durable(self) -> bool:
        return self.deliver is None

    @classmethod
    def step(cls, rows: StepRows) -> Op:
        return cls("step", {"rows": asdict(rows)})

    @classmethod
    def call_started(cls, row: dict[str, Any], version: AgentVersion | None) -> Op:
        return cls(
            "call_started", {"row": row, "version": None if version is None else asdict(version)}
        )

    @classmethod
    def call_ended(
        cls,
        call_id: str,
        outcome: str,
        reason: str | None,
        ended_at: datetime,
        extra: dict[str, Any],
    ) -> Op:
        args = {"call_id": call_id, "outcome": outcome, "reason": reason, "ended_at": ended_at}
        return cls("call_ended", {**args, "extra": extra})

    @classmethod
    def caller_texts(cls, call_id: str, deliver: Callable[[list[str]], None]) -> Op:
        return cls("caller_texts", {"call_id": call_id}, deliver)

    @classmethod
    def sentiment(cls, call_id: str, values: dict[str, Any]) -> Op:
        return cls("sentiment", {"call_id": call_id, "values": values})

    @classmethod
    def recording(cls, row: dict[str, Any]) -> Op:
        return cls("recording", {"row": row})

    @classmethod
    def turn_latencies(cls, call_id: str, step: int, latencies: dict[str, float]) -> Op:
        return cls("turn_latencies", {"call_id": call_id, "step": step, "latencies": latencies})

    def as_dict(self) -> dict[str, Any]:
        """The durable description {"kind", "args"}; ValueError for a read."""
        if not self.durable:
            raise ValueError(f"a {self.kind} op hands its result to a callback: not durable")
        return {"kind": self.kind, "args": self.args}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Op:
        """The op `as_dict` described; ValueError for anything else."""
        kind, args = data.get("kind"), data.get("args")
        if kind not in _DURABLE_KINDS or not isinstance(args, dict):
            raise ValueError(f"not a durable recorder write: {str(data)[:200]}")
        op = cls(str(kind), args)
        try:
            op.write()  # checks that the arguments fit the write
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a {kind} write with bad arguments: {exc!r}") from None
        return op

    def write(self) -> Write:
        """The SQL of this write. ValueError/TypeError when `args` do not fit."""
        a = self.args
        if self.kind == "step":
            found = dict(a["rows"])
            found["heard"] = [(str(m), str(t)) for m, t in found.get("heard", [])]
            if found.get("outcome") is not None:
                outcome, reason = found["outcome"]
                found["outcome"] = (str(outcome), reason)
            return step(StepRows(**found))
        if self.kind == "call_started":
            version = a["version"]
            return call_started(a["row"], None if version is None else AgentVersion(**version))
        if self.kind == "call_ended":
            return call_ended(a["call_id"], a["outcome"], a["reason"], a["ended_at"], a["extra"])
        if self.kind == "caller_texts":
            if self.deliver is None:
                raise ValueError("a caller_texts op needs `deliver`")
            return caller_texts(a["call_id"], self.deliver)
        if self.kind == "sentiment":
            return sentiment(a["call_id"], a["values"])
        if self.kind == "recording":
            return recording(a["row"])
        if self.kind == "turn_latencies":
            found = {str(k): float(v) for k, v in dict(a["latencies"]).items()}
            return turn_latencies(str(a["call_id"]), int(a["step"]), found)
        raise ValueError(f"unknown recorder write {self.kind!r}")


_DURABLE_KINDS = (
    "step",
    "call_started",
    "call_ended",
    "sentiment",
    "recording",
    "turn_latencies",
)
