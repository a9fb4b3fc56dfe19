"""Altair charts of the analytics aggregates, each with the table it plots.

Every builder is a pure function of the models returned by
`runtime.db.analytics` / `runtime.db.analytics_quality`: it returns a
`Figure` holding the chart and the DataFrame the chart is drawn from (the same
rows the page offers as CSV), so charts are testable without Streamlit. Empty
input gives an empty frame with the usual columns and a chart that draws
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import altair as alt
import pandas as pd

from runtime.db.analytics import (
    AgentOutcomes,
    DayCount,
    DurationDistribution,
    HourCount,
    IntentDistribution,
    NodeFunnel,
    StageLatency,
    ToolUsage,
)
from runtime.db.analytics_quality import AgentSentiment, CallSentiment, IntentReroute
from runtime.db.models import OUTCOMES
from runtime.sentiment import describe_method

AnyChart: TypeAlias = alt.Chart | alt.LayerChart | alt.VConcatChart
FALLBACK = "(fallback)"
COUNT_AXIS = alt.Axis(format="d", tickMinStep=1)
#: Pixels per bar in charts with one bar per row (funnel, intents, tools).
ROW_PX = 22
LABEL_LIMIT_PX = 260
ROW_AXIS = alt.Axis(labelLimit=LABEL_LIMIT_PX, labelOverlap=False)
PERCENTILE_NAMES = ("p50", "p90", "p99")
SENTIMENT_COLORS = {"positive": "#2e7d32", "neutral": "#9e9e9e", "negative": "#c62828"}
OUTCOME_COLORS = {
    "completed": "#2e7d32",
    "handed_off": "#1565c0",
    "escalated": "#f9a825",
    "abandoned": "#8d6e63",
    "failed": "#c62828",
    "unfinished": "#bdbdbd",
}


@dataclass(frozen=True)
class Figure:
    """A chart and the rows it plots."""

    title: str
    chart: AnyChart
    data: pd.DataFrame


def _scale(colors: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(colors), range=list(colors.values()))


def _frame(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(columns))


def calls_by_day(days: Sequence[DayCount]) -> Figure:
    """Bars: calls started per day."""
    data = _frame([{"day": d.day.isoformat(), "calls": d.calls} for d in days], ["day", "calls"])
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="Day"),
            y=alt.Y("calls:Q", title="Calls", axis=COUNT_AXIS),
            tooltip=["day:T", "calls:Q"],
        )
    )
    return Figure("Calls by day", chart, data)


def calls_by_hour(hours: Sequence[HourCount]) -> Figure:
    """Bars: calls started per hour of day (0-23)."""
    data = _frame([{"hour": h.hour, "calls": h.calls} for h in hours], ["hour", "calls"])
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("hour:O", title="Hour of day"),
            y=alt.Y("calls:Q", title="Calls", axis=COUNT_AXIS),
            tooltip=["hour:O", "calls:Q"],
        )
    )
    return Figure("Calls by hour of day", chart, data)


def bucket_label(lower_s: float, upper_s: float | None) -> str:
    """`0–30 s`, ..., `600 s+`."""
    if upper_s is None:
        return f"{lower_s:g} s+"
    return f"{lower_s:g}–{upper_s:g} s"


def durations(dist: DurationDistribution) -> Figure:
    """Bars: finished calls per duration bucket, in bucket order."""
    rows = [
        {
            "bucket": bucket_label(b.lower_s, b.upper_s),
            "lower_s": b.lower_s,
            "upper_s": b.upper_s,
            "calls": b.calls,
        }
        for b in dist.buckets
    ]
    data = _frame(rows, ["bucket", "lower_s", "upper_s", "calls"])
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                "bucket:N",
                sort=list(data["bucket"]),
                title="Duration",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("calls:Q", title="Calls", axis=COUNT_AXIS),
            tooltip=["bucket:N", "calls:Q"],
        )
    )
    return Figure("Call duration", chart, data)


def outcomes(per_agent: Sequence[AgentOutcomes]) -> Figure:
    """Stacked bars per agent: its finished parts in calls by its own outcome
    (`handed_off`: it passed the call on to another agent)."""
    rows = [
        {"agent": a.agent, "outcome": o, "calls": a.counts.get(o, 0), "rate": a.rates.get(o, 0.0)}
        for a in per_agent
        for o in OUTCOMES
    ]
    data = _frame(rows, ["agent", "outcome", "calls", "rate"])
    colors = {o: OUTCOME_COLORS[o] for o in OUTCOMES}
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("agent:N", title="Agent"),
            x=alt.X(
                "rate:Q", title="Share of the agent's finished calls", axis=alt.Axis(format="%")
            ),
            color=alt.Color("outcome:N", scale=_scale(colors), title="Outcome"),
            order=alt.Order("outcome:N"),
            tooltip=["agent:N", "outcome:N", "calls:Q", alt.Tooltip("rate:Q", format=".1%")],
        )
    )
    return Figure("Outcomes per agent", chart, data)


def intents(dist: IntentDistribution) -> Figure:
    """Bars: classifications per intent, the fallback highlighted."""
    rows = [
        {
            "intent": i.name if i.name is not None else FALLBACK,
            "count": i.count,
            "share": i.share,
            "mean_confidence": i.mean_confidence,
            "fallback": i.name is None,
        }
        for i in dist.intents
    ]
    data = _frame(rows, ["intent", "count", "share", "mean_confidence", "fallback"])
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("intent:N", sort="-x", title="Intent"),
            x=alt.X("count:Q", title="Classifications", axis=COUNT_AXIS),
            color=alt.Color(
                "fallback:N",
                scale=alt.Scale(domain=[False, True], range=["#1565c0", "#c62828"]),
                legend=None,
            ),
            tooltip=[
                "intent:N",
                "count:Q",
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("mean_confidence:Q", format=".2f"),
            ],
        )
    )
    return Figure("Intents", chart, data)


def reroutes(rows_in: Sequence[IntentReroute]) -> Figure:
    """Bars: per routing node and intent, the share of classifications after
    which the caller was asked again at the same node."""
    rows = [
        {
            "agent": r.agent,
            "node": r.node,
            "intent": r.intent,
            "route": f"{r.agent} · {r.node or '?'} → {r.intent}",
            "classifications": r.classifications,
            "rerouted": r.rerouted,
            "reroute_rate": r.reroute_rate,
        }
        for r in rows_in
    ]
    columns = ["agent", "node", "intent", "route", "classifications", "rerouted", "reroute_rate"]
    data = _frame(rows, columns)
    chart = (
        alt.Chart(data)
        .properties(height=max(60, ROW_PX * len(data)))
        .mark_bar(color="#f9a825")
        .encode(
            y=alt.Y(
                "route:N",
                sort="-x",
                title="Router → intent",
                axis=ROW_AXIS,
            ),
            x=alt.X("reroute_rate:Q", title="Asked again after", axis=alt.Axis(format="%")),
            tooltip=["route:N", "classifications:Q", "rerouted:Q"],
        )
    )
    return Figure("Possibly misrouted intents", chart, data)


def funnel(nodes: NodeFunnel) -> Figure:
    """Horizontal bars per node (most reached first): calls that reached it,
    and stacked in front, the calls whose last node it was, by outcome."""
    states = [*OUTCOMES, "unfinished"]
    rows = []
    for n in nodes.nodes:
        row: dict[str, Any] = {
            "agent": n.agent,
            "node": n.node,
            "step": f"{n.agent} · {n.node}",
            "reached": n.reached,
            "share": n.share,
            "ended_here": n.ended_here,
        }
        row.update({f"left_{o}": n.ended_by_outcome.get(o, 0) for o in states})
        rows.append(row)
    columns = ["agent", "node", "step", "reached", "share", "ended_here"]
    data = _frame(rows, [*columns, *(f"left_{o}" for o in states)])
    # Grouped by agent, each agent's nodes most reached first: a funnel per agent.
    ranked = data.sort_values(["agent", "reached"], ascending=[True, False], kind="stable")
    order = list(ranked["step"])
    height = max(60, ROW_PX * len(order))
    reached = (
        alt.Chart(data, height=height)
        .mark_bar(color="#cfd8dc")
        .encode(
            y=alt.Y("step:N", sort=order, title="Node", axis=ROW_AXIS),
            x=alt.X("reached:Q", title="Calls"),
            tooltip=["step:N", "reached:Q", alt.Tooltip("share:Q", format=".1%"), "ended_here:Q"],
        )
    )
    left = (
        alt.Chart(data)
        .transform_fold([f"left_{o}" for o in states], as_=["left", "calls"])
        .transform_calculate(outcome="replace(datum.left, 'left_', '')")
        .mark_bar()
        .encode(
            y=alt.Y("step:N", sort=order),
            x=alt.X("sum(calls):Q"),
            color=alt.Color("outcome:N", scale=_scale(OUTCOME_COLORS), title="Left here"),
            tooltip=["step:N", "outcome:N", "sum(calls):Q"],
        )
    )
    return Figure("Where callers leave the flow", alt.LayerChart(layer=[reached, left]), data)


def tools(usage: Sequence[ToolUsage]) -> Figure:
    """Per tool: calls (errors stacked), error rate, p50/p90 duration."""
    rows = [
        {
            "tool": t.name,
            "calls": t.calls,
            "ok": t.calls - t.errors,
            "errors": t.errors,
            "error_rate": t.error_rate,
            "p50_ms": t.p50_ms,
            "p90_ms": t.p90_ms,
        }
        for t in usage
    ]
    data = _frame(rows, ["tool", "calls", "ok", "errors", "error_rate", "p50_ms", "p90_ms"])
    base = alt.Chart(data).encode(y=alt.Y("tool:N", title="Tool"))
    counts = (
        base.transform_fold(["ok", "errors"], as_=["result", "n"])
        .mark_bar()
        .encode(
            x=alt.X("n:Q", title="Calls", axis=COUNT_AXIS),
            color=alt.Color(
                "result:N", scale=alt.Scale(domain=["ok", "errors"], range=["#1565c0", "#c62828"])
            ),
            tooltip=["tool:N", "calls:Q", "errors:Q", alt.Tooltip("error_rate:Q", format=".1%")],
        )
    )
    latency = (
        base.transform_fold(["p50_ms", "p90_ms"], as_=["percentile", "ms"])
        .mark_point(filled=True, size=70)
        .encode(
            x=alt.X("ms:Q", title="Duration (ms)"),
            shape=alt.Shape("percentile:N"),
            tooltip=["tool:N", "percentile:N", alt.Tooltip("ms:Q", format=".1f")],
        )
    )
    width = 480  # concatenated charts do not stretch to the container
    both = alt.vconcat(counts.properties(width=width), latency.properties(width=width))
    return Figure("Tool calls", both.resolve_scale(color="independent"), data)


def latency_over_time(stages: Sequence[StageLatency]) -> Figure:
    """Lines per stage and percentile (p50/p90/p99, ms) by day."""
    rows = [
        {
            "day": s.day.isoformat() if s.day else None,
            "stage": s.stage,
            "percentile": name,
            "ms": getattr(s, name),
            "turns": s.count,
        }
        for s in stages
        for name in PERCENTILE_NAMES
    ]
    data = _frame(rows, ["day", "stage", "percentile", "ms", "turns"])
    chart = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="Day"),
            y=alt.Y("ms:Q", title="Latency (ms)"),
            color=alt.Color("stage:N", title="Stage"),
            strokeDash=alt.StrokeDash("percentile:N", sort=list(PERCENTILE_NAMES)),
            tooltip=[
                "day:T",
                "stage:N",
                "percentile:N",
                alt.Tooltip("ms:Q", format=".1f"),
                "turns:Q",
            ],
        )
    )
    return Figure("Latency percentiles per stage over time", chart, data)


def call_sentiment(calls: Sequence[CallSentiment]) -> Figure:
    """Histogram of per-call sentiment scores, coloured by label; the rows
    are the calls, each with its method described."""
    rows = [
        {
            "call": c.id,
            "agent": c.agent,
            "started_at": c.started_at,
            "outcome": c.outcome,
            "score": c.score,
            "label": c.label,
            "method": c.method,
            "scored_by": describe_method(c.method),
        }
        for c in calls
    ]
    columns = ["call", "agent", "started_at", "outcome", "score", "label", "method", "scored_by"]
    data = _frame(rows, columns)
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("score:Q", bin=alt.Bin(extent=[-1, 1], step=0.1), title="Sentiment score"),
            y=alt.Y("count():Q", title="Calls"),
            color=alt.Color("label:N", scale=_scale(SENTIMENT_COLORS), title="Label"),
            tooltip=["label:N", "count():Q"],
        )
    )
    return Figure("Sentiment per call", chart, data)


def sentiment_by_agent(per_agent: Sequence[AgentSentiment]) -> Figure:
    """Stacked bars per agent: scored calls by sentiment label."""
    rows = [
        {
            "agent": a.agent,
            "label": label,
            "calls": n,
            "mean_score": a.mean_score,
            "scored_by": ", ".join(describe_method(m) for m in a.methods),
        }
        for a in per_agent
        for label, n in a.labels.items()
    ]
    data = _frame(rows, ["agent", "label", "calls", "mean_score", "scored_by"])
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("agent:N", title="Agent"),
            x=alt.X("calls:Q", stack="normalize", title="Share", axis=alt.Axis(format="%")),
            color=alt.Color("label:N", scale=_scale(SENTIMENT_COLORS), title="Label"),
            tooltip=["agent:N", "label:N", "calls:Q", alt.Tooltip("mean_score:Q", format=".2f")],
        )
    )
    return Figure("Sentiment per agent", chart, data)
