"""Chart builders: each plots exactly the rows of its frame, renders to a
valid Vega-Lite spec (Altair validates it), and copes with no data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from builder.dashboard import charts
from runtime.db.analytics import (
    AgentOutcomes,
    DayCount,
    DurationBucket,
    DurationDistribution,
    FunnelNode,
    HourCount,
    IntentCount,
    IntentDistribution,
    NodeFunnel,
    StageLatency,
    ToolUsage,
)
from runtime.db.analytics_quality import AgentSentiment, CallSentiment, IntentReroute


def spec(fig: charts.Figure) -> dict[str, Any]:
    out = fig.chart.to_dict()  # validates against the Vega-Lite schema
    assert out["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    return out


def inline_rows(fig: charts.Figure) -> list[dict[str, Any]]:
    """The rows the chart carries (Altair moves them into `datasets`)."""
    datasets = spec(fig)["datasets"]
    assert len(datasets) == 1
    return next(iter(datasets.values()))


def test_volumes_by_day_and_hour() -> None:
    days = [DayCount(day=date(2026, 11, 1), calls=3), DayCount(day=date(2026, 11, 3), calls=1)]
    fig = charts.calls_by_day(days)
    assert fig.data.to_dict("records") == [
        {"day": "2026-11-01", "calls": 3},
        {"day": "2026-11-03", "calls": 1},
    ]
    assert inline_rows(fig) == fig.data.to_dict("records")
    hours = charts.calls_by_hour([HourCount(hour=h, calls=h % 3) for h in range(24)])
    assert list(hours.data["hour"]) == list(range(24))
    assert hours.data["calls"].sum() == sum(h % 3 for h in range(24))
    spec(hours)


def test_durations_are_labelled_in_bucket_order() -> None:
    dist = DurationDistribution(
        buckets=[
            DurationBucket(lower_s=0, upper_s=30, calls=4),
            DurationBucket(lower_s=30, upper_s=60, calls=2),
            DurationBucket(lower_s=60, upper_s=None, calls=1),
        ],
        calls=7,
        mean_s=31.0,
        unfinished=0,
    )
    fig = charts.durations(dist)
    assert list(fig.data["bucket"]) == ["0–30 s", "30–60 s", "60 s+"]
    assert list(fig.data["calls"]) == [4, 2, 1]
    assert spec(fig)["encoding"]["x"]["sort"] == ["0–30 s", "30–60 s", "60 s+"]


def test_outcomes_have_one_row_per_agent_and_outcome() -> None:
    counts = {"completed": 3, "escalated": 1, "handed_off": 0, "abandoned": 0, "failed": 0}
    rates = {k: v / 4 for k, v in counts.items()}
    fig = charts.outcomes(
        [AgentOutcomes(agent="a", calls=5, finished=4, counts=counts, rates=rates, unfinished=1)]
    )
    assert len(fig.data) == 5
    row = fig.data.set_index("outcome").loc["completed"]
    assert (row["calls"], row["rate"]) == (3, 0.75)
    spec(fig)


def test_intents_mark_the_fallback_and_reroutes_name_the_agent() -> None:
    dist = IntentDistribution(
        intents=[
            IntentCount(name="book", count=6, share=0.6, mean_confidence=0.8),
            IntentCount(name=None, count=4, share=0.4, mean_confidence=0.2),
        ],
        total=10,
        fallback_rate=0.4,
    )
    fig = charts.intents(dist)
    assert list(fig.data["intent"]) == ["book", charts.FALLBACK]
    assert list(fig.data["fallback"]) == [False, True]
    spec(fig)
    rr = charts.reroutes(
        [
            IntentReroute(
                agent="front",
                node="route",
                intent="hello",
                classifications=2,
                rerouted=1,
                reroute_rate=0.5,
            )
        ]
    )
    assert rr.data.loc[0, "route"] == "front · route → hello"
    spec(rr)


def test_the_funnel_shows_where_calls_ended_by_outcome() -> None:
    funnel = NodeFunnel(
        calls=10,
        nodes=[
            FunnelNode(
                agent="a", node="greet", reached=10, share=1.0, ended_here=0, ended_by_outcome={}
            ),
            FunnelNode(
                agent="a",
                node="ask",
                reached=7,
                share=0.7,
                ended_here=3,
                ended_by_outcome={"abandoned": 2, "unfinished": 1},
            ),
        ],
    )
    fig = charts.funnel(funnel)
    ask = fig.data.set_index("node").loc["ask"]
    assert (ask["reached"], ask["ended_here"], ask["left_abandoned"], ask["left_unfinished"]) == (
        7,
        3,
        2,
        1,
    )
    assert ask["left_completed"] == 0
    layers = spec(fig)["layer"]
    assert layers[0]["encoding"]["y"]["sort"] == ["a · greet", "a · ask"]


def test_tools_latency_and_sentiment_frames() -> None:
    tools = charts.tools(
        [ToolUsage(name="calendar.book", calls=4, errors=1, error_rate=0.25, p50_ms=10, p90_ms=30)]
    )
    assert tools.data.to_dict("records")[0] == {
        "tool": "calendar.book",
        "calls": 4,
        "ok": 3,
        "errors": 1,
        "error_rate": 0.25,
        "p50_ms": 10.0,
        "p90_ms": 30.0,
    }
    spec(tools)
    latency = charts.latency_over_time(
        [StageLatency(stage="e2e_ms", day=date(2026, 11, 2), count=9, p50=100, p90=200, p99=300)]
    )
    assert list(latency.data["percentile"]) == ["p50", "p90", "p99"]
    assert list(latency.data["ms"]) == [100, 200, 300]
    spec(latency)
    calls = charts.call_sentiment(
        [
            CallSentiment(
                id="c1",
                agent="a",
                started_at=datetime(2026, 11, 2, tzinfo=UTC),
                outcome="completed",
                score=0.5,
                label="positive",
                method="lexicon:vader",
            ),
            CallSentiment(
                id="c2",
                agent="a",
                started_at=datetime(2026, 11, 2, tzinfo=UTC),
                outcome="failed",
                score=-0.4,
                label="negative",
                method="llm:gpt-4o-mini",
            ),
        ]
    )
    assert list(calls.data["scored_by"]) == ["offline lexicon (VADER)", "LLM (gpt-4o-mini)"]
    spec(calls)
    per_agent = charts.sentiment_by_agent(
        [
            AgentSentiment(
                agent="a",
                calls=3,
                scored=2,
                mean_score=0.05,
                labels={"positive": 1, "neutral": 0, "negative": 1},
                methods={"lexicon:vader": 2},
            )
        ]
    )
    assert per_agent.data["calls"].sum() == 2
    assert set(per_agent.data["scored_by"]) == {"offline lexicon (VADER)"}
    spec(per_agent)


@pytest.mark.parametrize(
    "fig",
    [
        charts.calls_by_day([]),
        charts.calls_by_hour([]),
        charts.durations(DurationDistribution(buckets=[], calls=0, mean_s=None, unfinished=0)),
        charts.outcomes([]),
        charts.intents(IntentDistribution(intents=[], total=0, fallback_rate=0.0)),
        charts.reroutes([]),
        charts.funnel(NodeFunnel(calls=0, nodes=[])),
        charts.tools([]),
        charts.latency_over_time([]),
        charts.call_sentiment([]),
        charts.sentiment_by_agent([]),
    ],
    ids=lambda f: f.title,
)
def test_no_data_gives_an_empty_frame_with_its_columns(fig: charts.Figure) -> None:
    assert fig.data.empty and len(fig.data.columns) >= 2
    spec(fig)
