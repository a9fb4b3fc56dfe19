"""Everything the Analytics page shows for one call filter, fetched at once,
and the key numbers derived from it.

`load(engine, f)` runs the aggregates of `runtime.db.analytics` and
`runtime.db.analytics_quality` for the filter `f` (days and hours in UTC, as
the filter's dates are). `key_numbers()` derives the headline figures from the
same aggregates, so the numbers and the charts never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import analytics, analytics_quality
from runtime.db.models import Call
from runtime.db.queries import CallFilter

#: Stages preferred for the headline latency, most telling first: a voice call
#: has end-to-end latency; a text call only the graph's own time.
HEADLINE_STAGES = ("e2e_ms", "graph_ms")
TZ = "UTC"


@dataclass(frozen=True)
class AnalyticsData:
    by_day: list[analytics.DayCount]
    by_hour: list[analytics.HourCount]
    durations: analytics.DurationDistribution
    outcomes: list[analytics.AgentOutcomes]
    intents: analytics.IntentDistribution
    reroutes: list[analytics_quality.IntentReroute]
    funnel: analytics.NodeFunnel
    tools: list[analytics.ToolUsage]
    latency: list[analytics.StageLatency]
    latency_by_day: list[analytics.StageLatency]
    sentiment_by_agent: list[analytics_quality.AgentSentiment]
    call_sentiments: list[analytics_quality.CallSentiment]
    #: Finished calls by the call's outcome (`outcomes` counts agents' parts).
    call_outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Calls matching the filter (finished or not)."""
        return sum(d.calls for d in self.by_day)


@dataclass(frozen=True)
class KeyNumbers:
    calls: int
    finished: int
    completion_rate: float | None
    mean_duration_s: float | None
    latency_stage: str | None
    p50_latency_ms: float | None
    fallback_rate: float | None
    mean_sentiment: float | None
    sentiment_methods: list[str]


async def load(engine: AsyncEngine, f: CallFilter) -> AnalyticsData:
    """Every aggregate of the Analytics page for the calls matching `f`."""
    return AnalyticsData(
        by_day=await analytics.volumes_by_day(engine, f, tz=TZ),
        by_hour=await analytics.volumes_by_hour(engine, f, tz=TZ),
        durations=await analytics.duration_distribution(engine, f),
        outcomes=await analytics.outcome_rates(engine, f),
        intents=await analytics.intent_distribution(engine, f),
        reroutes=await analytics_quality.intent_reroutes(engine, f),
        funnel=await analytics.node_funnel(engine, f),
        tools=await analytics.tool_usage(engine, f),
        latency=await analytics.latency_percentiles(engine, f, tz=TZ),
        latency_by_day=await analytics.latency_percentiles(engine, f, by_day=True, tz=TZ),
        sentiment_by_agent=await analytics_quality.sentiment_by_agent(engine, f),
        call_sentiments=await analytics_quality.call_sentiments(engine, f),
        call_outcomes=await analytics.call_outcomes(engine, f),
    )


async def total_calls(engine: AsyncEngine) -> int:
    """How many calls are recorded at all."""
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(Call))).scalar_one())


def key_numbers(data: AnalyticsData) -> KeyNumbers:
    """Total calls, completion rate (completed / finished), mean duration of
    finished calls, p50 of the headline latency stage, intent fallback rate
    and mean sentiment; None where there is nothing to compute from."""
    finished = sum(data.call_outcomes.values())
    completed = data.call_outcomes.get("completed", 0)
    stages = {s.stage: s for s in data.latency}
    stage = next((s for s in HEADLINE_STAGES if s in stages), None)
    scored = sum(a.scored for a in data.sentiment_by_agent)
    total = sum((a.mean_score or 0.0) * a.scored for a in data.sentiment_by_agent)
    methods = sorted({m for a in data.sentiment_by_agent for m in a.methods})
    return KeyNumbers(
        calls=data.calls,
        finished=finished,
        completion_rate=completed / finished if finished else None,
        mean_duration_s=data.durations.mean_s,
        latency_stage=stage,
        p50_latency_ms=stages[stage].p50 if stage else None,
        fallback_rate=data.intents.fallback_rate if data.intents.total else None,
        mean_sentiment=total / scored if scored else None,
        sentiment_methods=methods,
    )
