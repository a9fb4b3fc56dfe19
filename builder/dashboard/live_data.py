"""Calls in progress, read from the call database.

The database is the Live page's source of truth: every service worker records
each step of its calls as the step completes (`runtime.db.recorder` queues the
rows at once and its writer task writes them straight away; a service step
waits up to 2 s for that write while the database is up), so a call started on
any worker, in any process, shows here within one refresh. A call is in
progress while it has no end time. A call whose worker died never gets one, so
calls with no activity for `STALE_AFTER_S` are counted apart as stale rather
than shown as live forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import queries
from runtime.db.models import Call, NodeVisit, Turn
from runtime.db.queries import CallDetail, TurnOut

#: A call with no recorded activity for this long is taken as abandoned by a
#: worker that died, not as live.
STALE_AFTER_S = 30 * 60.0
#: Most calls the Live page shows at once (newest first).
MAX_LIVE = 50


@dataclass(frozen=True)
class LiveCall:
    """One call in progress: its record so far and where it is now."""

    detail: CallDetail
    last_activity: datetime

    @property
    def current_agent(self) -> str:
        """The agent handling the call now (after handoffs), else the call's agent."""
        return self.detail.visits[-1].agent if self.detail.visits else self.detail.agent

    @property
    def current_node(self) -> str | None:
        """The node the call entered last, None before the first node."""
        return self.detail.visits[-1].node if self.detail.visits else None

    def duration_s(self, now: datetime) -> float:
        """Seconds since the call started (never negative)."""
        return max(0.0, (now - self.detail.started_at).total_seconds())

    @property
    def barge_ins(self) -> list[TurnOut]:
        """Agent turns the caller cut short."""
        return [t for t in self.detail.turns if t.role == "agent" and t.interrupted]


@dataclass(frozen=True)
class LiveSnapshot:
    """The calls in progress at `at` (newest first) and how many unfinished
    calls were left out as stale, or beyond `MAX_LIVE`."""

    at: datetime
    calls: list[LiveCall]
    stale: int
    more: int


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def live_calls(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    stale_after_s: float = STALE_AFTER_S,
    limit: int = MAX_LIVE,
) -> LiveSnapshot:
    """The calls with no end time whose last activity (start, turn or node
    visit) is within `stale_after_s` of `now`, newest first, at most `limit`,
    each with its transcript, path, tool calls and intents so far."""
    if limit < 1 or stale_after_s <= 0:
        raise ValueError("limit must be >= 1 and stale_after_s > 0")
    at = now or datetime.now(UTC)
    last_turn = (
        select(func.max(func.coalesce(Turn.ended_at, Turn.started_at)))
        .where(Turn.call_id == Call.id)
        .scalar_subquery()
    )
    last_visit = (
        select(func.max(NodeVisit.at)).where(NodeVisit.call_id == Call.id).scalar_subquery()
    )
    stmt = (
        select(Call.id, Call.started_at, last_turn.label("turn_at"), last_visit.label("visit_at"))
        .where(Call.ended_at.is_(None))
        .order_by(Call.started_at.desc(), Call.id.desc())
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    fresh: list[tuple[str, datetime]] = []
    stale = 0
    for row in rows:
        times = [_aware(row.started_at), _aware(row.turn_at), _aware(row.visit_at)]
        last = max(t for t in times if t is not None)
        if (at - last).total_seconds() > stale_after_s:
            stale += 1
        else:
            fresh.append((str(row.id), last))
    calls = []
    for call_id, last in fresh[:limit]:
        detail = await queries.get_call(engine, call_id)
        if detail is not None and detail.ended_at is None:  # not ended in between
            calls.append(LiveCall(detail, last))
    return LiveSnapshot(at=at, calls=calls, stale=stale, more=max(0, len(fresh) - limit))
