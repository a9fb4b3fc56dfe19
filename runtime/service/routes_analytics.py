"""`/api/analytics/*`: the aggregates of `runtime.db.analytics` for the dashboard.

Every endpoint takes the call filters of `GET /api/calls` (agent, version,
since, until, outcome, transport, direction, q); day and hour buckets take an
IANA time zone `tz`. Operators only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from runtime.db import analytics, analytics_quality, queries
from runtime.service.auth import Principal, operator
from runtime.service.routes_calls import call_filter

Filters = Annotated[queries.CallFilter, Depends(call_filter)]
Operator = Annotated[Principal, Depends(operator)]
TimeZone = Annotated[str, Query(min_length=1, max_length=64, description="IANA time zone")]


def checked_zone(tz: TimeZone = "UTC") -> str:
    """Dependency: a known IANA time zone name, else 422."""
    try:
        analytics.zone(tz)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return tz


Zone = Annotated[str, Depends(checked_zone)]


def analytics_router() -> APIRouter:
    router = APIRouter(prefix="/analytics", tags=["analytics"])

    @router.get("/volume/day", response_model=list[analytics.DayCount])
    async def volume_by_day(
        request: Request, _who: Operator, f: Filters, tz: Zone
    ) -> list[analytics.DayCount]:
        """Calls started per local day."""
        return await analytics.volumes_by_day(request.app.state.engine, f, tz=tz)

    @router.get("/volume/hour", response_model=list[analytics.HourCount])
    async def volume_by_hour(
        request: Request, _who: Operator, f: Filters, tz: Zone
    ) -> list[analytics.HourCount]:
        """Calls started per local hour of day (all 24 hours)."""
        return await analytics.volumes_by_hour(request.app.state.engine, f, tz=tz)

    @router.get("/durations", response_model=analytics.DurationDistribution)
    async def durations(
        request: Request, _who: Operator, f: Filters
    ) -> analytics.DurationDistribution:
        """Finished calls by duration bucket, and their mean duration."""
        return await analytics.duration_distribution(request.app.state.engine, f)

    @router.get("/outcomes", response_model=list[analytics.AgentOutcomes])
    async def outcomes(
        request: Request, _who: Operator, f: Filters
    ) -> list[analytics.AgentOutcomes]:
        """Per agent: counts and rates of each outcome."""
        return await analytics.outcome_rates(request.app.state.engine, f)

    @router.get("/intents", response_model=analytics.IntentDistribution)
    async def intents(request: Request, _who: Operator, f: Filters) -> analytics.IntentDistribution:
        """Intent classifications and the fallback rate."""
        return await analytics.intent_distribution(request.app.state.engine, f)

    @router.get("/funnel", response_model=analytics.NodeFunnel)
    async def funnel(request: Request, _who: Operator, f: Filters) -> analytics.NodeFunnel:
        """Per node: calls that reached it and calls that ended there."""
        return await analytics.node_funnel(request.app.state.engine, f)

    @router.get("/tools", response_model=list[analytics.ToolUsage])
    async def tools(request: Request, _who: Operator, f: Filters) -> list[analytics.ToolUsage]:
        """Per tool: calls, errors and duration percentiles."""
        return await analytics.tool_usage(request.app.state.engine, f)

    @router.get("/latency", response_model=list[analytics.StageLatency])
    async def latency(
        request: Request, _who: Operator, f: Filters, tz: Zone, by_day: bool = False
    ) -> list[analytics.StageLatency]:
        """p50/p90/p99 of each latency stage, overall or per day."""
        return await analytics.latency_percentiles(
            request.app.state.engine, f, by_day=by_day, tz=tz
        )

    @router.get("/sentiment", response_model=list[analytics_quality.AgentSentiment])
    async def sentiment(
        request: Request, _who: Operator, f: Filters
    ) -> list[analytics_quality.AgentSentiment]:
        """Per agent: sentiment labels, the methods that scored them, and the mean score."""
        return await analytics_quality.sentiment_by_agent(request.app.state.engine, f)

    @router.get("/sentiment/calls", response_model=list[analytics_quality.CallSentiment])
    async def call_sentiments(
        request: Request,
        _who: Operator,
        f: Filters,
        limit: Annotated[int, Query(ge=1, le=analytics_quality.MAX_CALL_ROWS)] = 500,
    ) -> list[analytics_quality.CallSentiment]:
        """Calls with a sentiment, newest first."""
        return await analytics_quality.call_sentiments(request.app.state.engine, f, limit=limit)

    @router.get("/intents/reroutes", response_model=list[analytics_quality.IntentReroute])
    async def intent_reroutes(
        request: Request, _who: Operator, f: Filters
    ) -> list[analytics_quality.IntentReroute]:
        """Per routing node and intent: how often the caller was routed again at
        the same node later in the call (a sign the first route was wrong)."""
        return await analytics_quality.intent_reroutes(request.app.state.engine, f)

    return router
