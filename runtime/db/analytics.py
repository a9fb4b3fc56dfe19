"""Aggregates over recorded calls for the dashboard and the analytics API.

Every function takes a `CallFilter` (agent, version, date range, ...), so two
graph versions compare by calling it twice. Day and hour buckets are in the
time zone `tz` (IANA name) of each call's start. Percentiles interpolate
linearly between ranks: `percentile_cont` on PostgreSQL, the same rule
computed in Python on SQLite (where bucketing by local time is done in Python
too). Rates are fractions in [0, 1].
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from sqlalchemy import (
    Date,
    Float,
    case,
    cast,
    distinct,
    extract,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.models import OUTCOMES, Call, CallAgent, IntentRecord, NodeVisit, ToolCall, Turn
from runtime.db.queries import CallFilter, call_conditions

PERCENTILES = (0.5, 0.9, 0.99)
_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")
DURATION_EDGES_S = (30.0, 60.0, 120.0, 300.0, 600.0)


class DayCount(BaseModel):
    day: date
    calls: int


class HourCount(BaseModel):
    hour: int
    calls: int


class DurationBucket(BaseModel):
    """Calls whose duration is in [lower_s, upper_s); upper_s None = no bound."""

    lower_s: float
    upper_s: float | None
    calls: int


class DurationDistribution(BaseModel):
    buckets: list[DurationBucket]
    calls: int
    mean_s: float | None
    unfinished: int


class AgentOutcomes(BaseModel):
    """Per agent: finished calls by outcome, their rates, and calls still open."""

    agent: str
    calls: int
    finished: int
    counts: dict[str, int]
    rates: dict[str, float]
    unfinished: int


class IntentCount(BaseModel):
    name: str | None
    count: int
    share: float
    mean_confidence: float


class IntentDistribution(BaseModel):
    """`name` None is a turn below the threshold: the route's fallback."""

    intents: list[IntentCount]
    total: int
    fallback_rate: float


class FunnelNode(BaseModel):
    """Calls that reached a node, their share of all calls, and calls whose
    last node it was (by outcome; `abandoned` = the caller hung up there)."""

    agent: str
    node: str
    reached: int
    share: float
    ended_here: int
    ended_by_outcome: dict[str, int]


class NodeFunnel(BaseModel):
    calls: int
    nodes: list[FunnelNode]


class ToolUsage(BaseModel):
    name: str
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p90_ms: float | None


class StageLatency(BaseModel):
    """Percentiles of one latency stage (ms) over turns; `day` when by day."""

    stage: str
    day: date | None = None
    count: int
    p50: float
    p90: float
    p99: float


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone `tz`; ValueError naming it when unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (expected an IANA name like UTC)") from None


def _local(tz: str, column: Any) -> Any:
    """PostgreSQL: `column` as local time in `tz`. The zone is a literal (checked
    against the zone database) so SELECT and GROUP BY render the same SQL."""
    zone(tz)
    if not _TZ_NAME.match(tz):
        raise ValueError(f"unknown time zone {tz!r}")
    return func.timezone(literal_column(f"'{tz}'"), column)


def percentiles(values: Sequence[float], qs: Sequence[float] = PERCENTILES) -> list[float]:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentiles of no values")
    out = []
    for q in qs:
        pos = q * (len(ordered) - 1)
        low = math.floor(pos)
        high = min(low + 1, len(ordered) - 1)
        out.append(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))
    return out


def _is_pg(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


async def _all(engine: AsyncEngine, stmt: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


async def _local_starts(engine: AsyncEngine, f: CallFilter | None, tz: str) -> list[datetime]:
    where = call_conditions(f, engine.dialect.name)
    rows = await _all(engine, select(Call.started_at).where(*where))
    z = zone(tz)
    return [row.started_at.astimezone(z) for row in rows]


async def volumes_by_day(
    engine: AsyncEngine, f: CallFilter | None = None, *, tz: str = "UTC"
) -> list[DayCount]:
    """Calls started per local day, days without calls left out, oldest first."""
    if not _is_pg(engine):
        counts = Counter(t.date() for t in await _local_starts(engine, f, tz))
        return [DayCount(day=d, calls=n) for d, n in sorted(counts.items())]
    day = cast(_local(tz, Call.started_at), Date).label("day")
    stmt = (
        select(day, func.count())
        .where(*call_conditions(f, "postgresql"))
        .group_by(day)
        .order_by(day)
    )
    return [DayCount(day=d, calls=n) for d, n in await _all(engine, stmt)]


async def volumes_by_hour(
    engine: AsyncEngine, f: CallFilter | None = None, *, tz: str = "UTC"
) -> list[HourCount]:
    """Calls started per local hour of day: all 24 hours, 0 to 23."""
    if not _is_pg(engine):
        counts = Counter(t.hour for t in await _local_starts(engine, f, tz))
    else:
        hour = extract("hour", _local(tz, Call.started_at)).label("hour")
        stmt = select(hour, func.count()).where(*call_conditions(f, "postgresql")).group_by(hour)
        counts = Counter({int(h): int(n) for h, n in await _all(engine, stmt)})
    return [HourCount(hour=h, calls=counts.get(h, 0)) for h in range(24)]


async def duration_distribution(
    engine: AsyncEngine,
    f: CallFilter | None = None,
    *,
    edges_s: Sequence[float] = DURATION_EDGES_S,
) -> DurationDistribution:
    """Finished calls by duration bucket (edges in seconds, increasing), with
    their mean duration; calls without an end are counted as unfinished."""
    edges = [float(e) for e in edges_s]
    if any(b <= a for a, b in pairwise(edges)) or any(e <= 0 for e in edges):
        raise ValueError(f"duration edges must be positive and increasing, got {list(edges_s)}")
    bucket = case(
        *((Call.duration_s < edge, i) for i, edge in enumerate(edges)), else_=len(edges)
    ).label("bucket")
    where = call_conditions(f, engine.dialect.name)
    rows = await _all(
        engine,
        select(bucket, func.count(), func.sum(Call.duration_s))
        .where(*where, Call.duration_s.is_not(None))
        .group_by(bucket),
    )
    unfinished = (
        await _all(
            engine, select(func.count()).select_from(Call).where(*where, Call.duration_s.is_(None))
        )
    )[0][0]
    counts = {int(b): int(n) for b, n, _ in rows}
    total = sum(counts.values())
    seconds = sum(float(s or 0.0) for _, _, s in rows)
    lowers = [0.0, *edges]
    uppers: list[float | None] = [*edges, None]
    return DurationDistribution(
        buckets=[
            DurationBucket(lower_s=lo, upper_s=up, calls=counts.get(i, 0))
            for i, (lo, up) in enumerate(zip(lowers, uppers, strict=True))
        ],
        calls=total,
        mean_s=seconds / total if total else None,
        unfinished=int(unfinished),
    )


async def outcome_rates(engine: AsyncEngine, f: CallFilter | None = None) -> list[AgentOutcomes]:
    """Per agent (by name): counts and rates of each outcome over its finished
    parts in calls. An agent's own ending counts (`call_agents`: the front
    desk that passed a call on is `handed_off` though the call went on to
    complete, or is still going); an agent with none shares its call's
    outcome, and is unfinished while the call is. Calls
    recorded without per-agent rows (before revision 0004) count once, for
    their root agent, with the call's outcome. A filter's `agent` selects
    the agent's part in a call, wherever in the call it was."""
    by_agent: dict[str, dict[str | None, int]] = defaultdict(dict)
    for agent, outcome, n in await _agent_outcome_counts(engine, f):
        by_agent[agent][outcome] = by_agent[agent].get(outcome, 0) + int(n)
    out = []
    for agent in sorted(by_agent):
        counts = {o: by_agent[agent].get(o, 0) for o in OUTCOMES}
        finished = sum(counts.values())
        rates = {o: (n / finished if finished else 0.0) for o, n in counts.items()}
        unfinished = by_agent[agent].get(None, 0)
        out.append(
            AgentOutcomes(
                agent=agent,
                calls=finished + unfinished,
                finished=finished,
                counts=counts,
                rates=rates,
                unfinished=unfinished,
            )
        )
    return out


async def call_outcomes(engine: AsyncEngine, f: CallFilter | None = None) -> dict[str, int]:
    """Finished calls by the call's own outcome (every outcome present, 0 when
    none), each call counted once whichever agents it went through."""
    stmt = (
        select(Call.outcome, func.count())
        .where(*call_conditions(f, engine.dialect.name), Call.outcome.is_not(None))
        .group_by(Call.outcome)
    )
    found = {str(o): int(n) for o, n in await _all(engine, stmt)}
    return {o: found.get(o, 0) for o in OUTCOMES}


async def _agent_outcome_counts(
    engine: AsyncEngine, f: CallFilter | None
) -> list[tuple[str, str | None, int]]:
    """(agent, outcome or None while unfinished, calls): per-agent rows where
    the call has them, the call's root agent and outcome where it has none."""
    agent = f.agent if f is not None else None
    conds = call_conditions(
        f.model_copy(update={"agent": None}) if f else None, engine.dialect.name
    )
    own = func.coalesce(CallAgent.outcome, Call.outcome)
    per_agent = (
        select(CallAgent.agent, own, func.count())
        .join(Call, Call.id == CallAgent.call_id)
        .where(*conds, *([CallAgent.agent == agent] if agent else []))
        .group_by(CallAgent.agent, own)
    )
    has_rows = select(CallAgent.id).where(CallAgent.call_id == Call.id).exists()
    legacy = (
        select(Call.agent, Call.outcome, func.count())
        .where(*conds, ~has_rows, *([Call.agent == agent] if agent else []))
        .group_by(Call.agent, Call.outcome)
    )
    found = [*await _all(engine, per_agent), *await _all(engine, legacy)]
    return [(str(a), None if o is None else str(o), int(n)) for a, o, n in found]


async def intent_distribution(
    engine: AsyncEngine, f: CallFilter | None = None
) -> IntentDistribution:
    """Intent classifications by intent, most frequent first, and the share
    that fell back (no intent above the threshold)."""
    stmt = (
        select(IntentRecord.name, func.count(), func.avg(IntentRecord.confidence))
        .join(Call, Call.id == IntentRecord.call_id)
        .where(*call_conditions(f, engine.dialect.name))
        .group_by(IntentRecord.name)
    )
    rows = await _all(engine, stmt)
    total = sum(int(n) for _, n, _ in rows)
    intents = sorted(
        (
            IntentCount(name=name, count=int(n), share=int(n) / total, mean_confidence=float(c))
            for name, n, c in rows
        ),
        key=lambda i: (-i.count, i.name or ""),
    )
    fallbacks = sum(i.count for i in intents if i.name is None)
    return IntentDistribution(
        intents=intents, total=total, fallback_rate=fallbacks / total if total else 0.0
    )


async def node_funnel(engine: AsyncEngine, f: CallFilter | None = None) -> NodeFunnel:
    """For each node: how many of the filtered calls reached it, and how many
    ended there (their last node visit), by outcome; most reached first."""
    where = call_conditions(f, engine.dialect.name)
    calls = (await _all(engine, select(func.count()).select_from(Call).where(*where)))[0][0]
    reached_stmt = (
        select(NodeVisit.agent, NodeVisit.node, func.count(distinct(NodeVisit.call_id)))
        .join(Call, Call.id == NodeVisit.call_id)
        .where(*where)
        .group_by(NodeVisit.agent, NodeVisit.node)
    )
    rank = (
        func.row_number()
        .over(
            partition_by=NodeVisit.call_id,
            order_by=(NodeVisit.step.desc(), NodeVisit.seq.desc()),
        )
        .label("rank")
    )
    last = (
        select(NodeVisit.agent, NodeVisit.node, Call.outcome, rank)
        .join(Call, Call.id == NodeVisit.call_id)
        .where(*where)
        .subquery()
    )
    ended_stmt = (
        select(last.c.agent, last.c.node, last.c.outcome, func.count())
        .where(last.c.rank == 1)
        .group_by(last.c.agent, last.c.node, last.c.outcome)
    )
    ended: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for agent, node, outcome, n in await _all(engine, ended_stmt):
        ended[(agent, node)][outcome or "unfinished"] = int(n)
    nodes = [
        FunnelNode(
            agent=agent,
            node=node,
            reached=int(n),
            share=int(n) / calls if calls else 0.0,
            ended_here=sum(ended[(agent, node)].values()),
            ended_by_outcome=dict(ended[(agent, node)]),
        )
        for agent, node, n in await _all(engine, reached_stmt)
    ]
    nodes.sort(key=lambda x: (-x.reached, x.agent, x.node))
    return NodeFunnel(calls=int(calls), nodes=nodes)


async def tool_usage(engine: AsyncEngine, f: CallFilter | None = None) -> list[ToolUsage]:
    """Per tool: calls, errors, error rate, p50/p90 duration (ms); by name."""
    where = call_conditions(f, engine.dialect.name)
    errors = func.sum(case((ToolCall.error.is_not(None), 1), else_=0))
    base = select(ToolCall.name).join(Call, Call.id == ToolCall.call_id).where(*where)
    stats: dict[str, tuple[int, int]] = {}
    pcts: dict[str, list[float]] = {}
    if _is_pg(engine):
        pct = func.percentile_cont(array([0.5, 0.9])).within_group(ToolCall.duration_ms)
        stmt = base.add_columns(func.count(), errors, pct).group_by(ToolCall.name)
        for name, n, e, p in await _all(engine, stmt):
            stats[name] = (int(n), int(e or 0))
            if p is not None and p[0] is not None:
                pcts[name] = [float(x) for x in p]
    else:
        durations: dict[str, list[float]] = defaultdict(list)
        for name, error, ms in await _all(
            engine, base.add_columns(ToolCall.error, ToolCall.duration_ms)
        ):
            n, e = stats.get(name, (0, 0))
            stats[name] = (n + 1, e + (error is not None))
            if ms is not None:
                durations[name].append(float(ms))
        pcts = {name: percentiles(v, (0.5, 0.9)) for name, v in durations.items() if v}
    return [
        ToolUsage(
            name=name,
            calls=n,
            errors=e,
            error_rate=e / n if n else 0.0,
            p50_ms=pcts[name][0] if name in pcts else None,
            p90_ms=pcts[name][1] if name in pcts else None,
        )
        for name, (n, e) in sorted(stats.items())
    ]


async def latency_percentiles(
    engine: AsyncEngine,
    f: CallFilter | None = None,
    *,
    by_day: bool = False,
    tz: str = "UTC",
) -> list[StageLatency]:
    """p50/p90/p99 of each latency stage recorded on turns (stt_ms, graph_ms,
    llm_ttft_ms, tts_ttfa_ms, e2e_ms, bargein_ms, ...), overall or per local
    day of the call's start; ordered by day, then stage."""
    z = zone(tz)
    where = call_conditions(f, engine.dialect.name)
    if _is_pg(engine):
        kv = func.jsonb_each_text(Turn.latencies).table_valued("key", "value")
        value = cast(kv.c.value, Float)
        pct = func.percentile_cont(array(list(PERCENTILES))).within_group(value)
        day = cast(_local(tz, Call.started_at), Date) if by_day else None
        cols: list[Any] = [kv.c.key, func.count(), pct]
        stmt = (
            select(*cols, *([day] if day is not None else []))
            .select_from(Turn)
            .join(kv, true())
            .join(Call, Call.id == Turn.call_id)
            .where(*where, Turn.latencies.is_not(None))
            .group_by(kv.c.key, *([day] if day is not None else []))
        )
        out = [
            StageLatency(
                stage=row[0],
                day=row[3] if by_day else None,
                count=int(row[1]),
                p50=float(row[2][0]),
                p90=float(row[2][1]),
                p99=float(row[2][2]),
            )
            for row in await _all(engine, stmt)
        ]
    else:
        stmt = (
            select(Turn.latencies, Call.started_at)
            .join(Call, Call.id == Turn.call_id)
            .where(*where, Turn.latencies.is_not(None))
        )
        groups: dict[tuple[date | None, str], list[float]] = defaultdict(list)
        for latencies, started in await _all(engine, stmt):
            day_key = started.astimezone(z).date() if by_day else None
            for stage, ms in _numbers(latencies):
                groups[(day_key, stage)].append(ms)
        out = []
        for (day_key, stage), values in groups.items():
            p50, p90, p99 = percentiles(values)
            out.append(
                StageLatency(stage=stage, day=day_key, count=len(values), p50=p50, p90=p90, p99=p99)
            )
    out.sort(key=lambda s: (s.day or date.min, s.stage))
    return out


def _numbers(latencies: Any) -> Iterable[tuple[str, float]]:
    if not isinstance(latencies, dict):
        return
    for stage, ms in latencies.items():
        if isinstance(ms, int | float) and not isinstance(ms, bool) and math.isfinite(ms):
            yield str(stage), float(ms)
