"""Dashboard page: analytics of recorded calls.

Calls by day and hour, durations, outcomes per agent, intents and their
fallback rate, possibly misrouted intents, where callers leave the flow, tool
calls, latency percentiles per stage over time, and sentiment per call
(labelled with the method that scored it). Everything follows the filters
(agent, version, dates); "Compare versions" shows two versions of one agent
side by side, each with its own version filter. Every chart offers its data
as CSV.
"""

from __future__ import annotations

import streamlit as st

from builder.dashboard import charts
from builder.dashboard.analytics_data import (
    AnalyticsData,
    KeyNumbers,
    key_numbers,
    load,
    total_calls,
)
from builder.dashboard.data import run
from builder.dashboard.export import file_name, to_csv
from builder.dashboard.filters import agent_versions, call_filter
from runtime.db.queries import CallFilter
from runtime.sentiment import describe_method

KEY = "analytics"
EMPTY_MESSAGE = (
    "No calls yet — run `switchboard seed-demo` to record a few hundred simulated calls, "
    "or make a call from the builder's test panel."
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


def _slug(f: CallFilter) -> list[str | None]:
    since = f.since.date().isoformat() if f.since else None
    return [f.agent, (f.version or "")[:10] or None, since]


def _figure(fig: charts.Figure, key: str, f: CallFilter, *, table: bool = False) -> None:
    st.subheader(fig.title)
    if fig.data.empty:
        st.caption("Nothing recorded for these calls.")
    else:
        st.altair_chart(fig.chart, width="stretch")
        if table:
            st.dataframe(fig.data, hide_index=True, width="stretch")
    slug = fig.title.lower().replace(" ", "-")
    st.download_button(
        "Download CSV",
        data=to_csv(fig.data),
        file_name=file_name(slug, *_slug(f)),
        mime="text/csv",
        key=f"{key}.{slug}.csv",
        help=f"The data of “{fig.title}” as CSV",
        on_click="ignore",
    )


def _key_numbers(numbers: KeyNumbers) -> None:
    cols = st.columns(3)
    cols[0].metric("Total calls", f"{numbers.calls}")
    cols[1].metric("Completion rate", _pct(numbers.completion_rate))
    cols[2].metric("Mean duration", _seconds(numbers.mean_duration_s))
    cols = st.columns(3)
    stage = numbers.latency_stage.removesuffix("_ms") if numbers.latency_stage else "latency"
    cols[0].metric(f"p50 latency ({stage})", _ms(numbers.p50_latency_ms))
    cols[1].metric("Intent fallback rate", _pct(numbers.fallback_rate))
    mean = "–" if numbers.mean_sentiment is None else f"{numbers.mean_sentiment:+.2f}"
    cols[2].metric("Mean sentiment", mean)
    if numbers.sentiment_methods:
        scored = ", ".join(describe_method(m) for m in numbers.sentiment_methods)
        st.caption(f"Sentiment scored by: {scored}.")
    st.caption(
        f"{numbers.finished} of {numbers.calls} calls finished; rates are over finished calls."
    )


def _sentiment(data: AnalyticsData, key: str, f: CallFilter) -> None:
    per_call = charts.call_sentiment(data.call_sentiments)
    _figure(per_call, key, f)
    if not per_call.data.empty:
        methods = per_call.data["scored_by"].value_counts()
        st.caption(
            "Scored by "
            + "; ".join(f"{name}: {n} calls" for name, n in methods.items())
            + ". The LLM scores a call when one is configured, else the offline lexicon."
        )
        st.dataframe(
            per_call.data[["call", "agent", "outcome", "score", "label", "scored_by"]],
            hide_index=True,
            width="stretch",
            height=240,
        )
    _figure(charts.sentiment_by_agent(data.sentiment_by_agent), key, f)


def show(f: CallFilter, key: str) -> None:
    """Every chart of the page for the calls matching `f` (widget keys under `key`)."""
    data = run(lambda engine: load(engine, f))
    if not data.calls:
        st.info("No calls match these filters.")
        return
    _key_numbers(key_numbers(data))
    _figure(charts.calls_by_day(data.by_day), key, f)
    _figure(charts.calls_by_hour(data.by_hour), key, f)
    _figure(charts.durations(data.durations), key, f)
    _figure(charts.outcomes(data.outcomes), key, f)
    _figure(charts.intents(data.intents), key, f)
    st.caption(f"Fallback rate: {_pct(data.intents.fallback_rate)} of {data.intents.total} turns.")
    _figure(charts.reroutes(data.reroutes), key, f)
    st.caption(
        "Share of classifications after which the caller was asked again at the same "
        "router (a likely misroute, unless the flow loops back by design)."
    )
    _figure(charts.funnel(data.funnel), key, f, table=True)
    _figure(charts.tools(data.tools), key, f, table=True)
    _figure(charts.latency_over_time(data.latency_by_day), key, f)
    _sentiment(data, key, f)


def _compare() -> None:
    versions = agent_versions()
    agents = sorted({v.graph_id for v in versions})
    agent = st.selectbox("Agent", agents, key=f"{KEY}.compare.agent")
    if agent is None:
        return
    mine = [v for v in versions if v.graph_id == agent]
    mine.sort(key=lambda v: v.first_seen_at)
    if len(mine) < 2:
        st.info(f"Only one version of {agent} has calls; pick versions of another agent.")
    # Preselect the previous version on the left and the newest on the right.
    for side, version in (("a", mine[-2] if len(mine) > 1 else mine[-1]), ("b", mine[-1])):
        st.session_state.setdefault(f"{KEY}.{side}.{agent}.version", version.content_hash)
    left, right = st.columns(2)
    for column, side in ((left, "a"), (right, "b")):
        with column:
            st.markdown(f"#### Version {side.upper()}")
            f = call_filter(f"{KEY}.{side}.{agent}", agent=agent)
            show(f, f"{KEY}.{side}")


def main() -> None:
    st.title("Analytics")
    if not run(total_calls):
        st.info(EMPTY_MESSAGE)
        return
    if st.toggle("Compare versions", key=f"{KEY}.compare"):
        _compare()
        return
    with st.sidebar:
        st.markdown("**Analytics filters**")
        f = call_filter(KEY)
    show(f, KEY)


main()
