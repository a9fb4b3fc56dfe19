"""Dashboard page: calls in progress across every service worker.

Each call shows its agent, caller, duration, current node, live transcript
(speaker labels, barge-ins as heard versus planned, per-turn latencies) and,
when a Redis live feed is configured, the interim text and newest events from
the feed. The list refreshes itself every `SWITCHBOARD_LIVE_REFRESH_S` seconds
(default 2) without reloading the page. Calls come from the database (see
`builder.dashboard.live_data`), so every worker's calls show, with or without
Redis.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder.dashboard import transcript
from builder.dashboard.data import run
from builder.dashboard.live_data import LiveCall, LiveSnapshot, live_calls
from builder.dashboard.live_feed import CallFeed, LiveFeed, feed_settings

DEFAULT_REFRESH_S = 2.0
#: Feed events shown per call.
FEED_EVENTS_SHOWN = 8


def refresh_s() -> float:
    """The refresh interval: SWITCHBOARD_LIVE_REFRESH_S (0.5 to 60), default 2."""
    raw = os.environ.get("SWITCHBOARD_LIVE_REFRESH_S") or ""
    try:
        value = float(raw) if raw else DEFAULT_REFRESH_S
    except ValueError:
        return DEFAULT_REFRESH_S
    return min(60.0, max(0.5, value))


@st.cache_resource(show_spinner=False)
def _feed(url: str, channel: str) -> LiveFeed:
    return LiveFeed(url, channel).start()


def live_feed() -> LiveFeed | None:
    """The process's subscription to the Redis live feed, if one is configured."""
    settings = feed_settings()
    return _feed(*settings) if settings else None


def _feed_events(feed: CallFeed) -> None:
    if feed.interim_caller:
        st.markdown(f"🧑 _Caller (interim):_ {transcript.escape(feed.interim_caller)} …")
    if feed.interim_agent:
        st.markdown(f"🤖 _Agent (speaking):_ {transcript.escape(feed.interim_agent)} …")
    recent = list(feed.events)[-FEED_EVENTS_SHOWN:]
    if recent:
        lines = []
        for event in recent:
            kind = event.get("type", "?")
            text = event.get("text") or event.get("node") or event.get("name") or ""
            when = datetime.fromtimestamp(float(event.get("at") or 0), UTC)
            lines.append(f"`{when:%H:%M:%S}` {kind} {transcript.escape(str(text))}")
        st.caption("Live feed: " + " · ".join(lines))


def render_call(call: LiveCall, now: datetime, feed: LiveFeed | None) -> None:
    """One call in progress."""
    d = call.detail
    with st.container(border=True):
        st.markdown(f"**{transcript.escape(d.agent)}** · call `{d.id}`")
        cols = st.columns(5)
        cols[0].metric("Caller", d.caller or "unknown")
        cols[1].metric("Duration", transcript.duration_text(call.duration_s(now)))
        node = call.current_node or "starting"
        if call.current_agent != d.agent:
            node = f"{call.current_agent}: {node}"
        cols[2].metric("Current node", node)
        cols[3].metric("Turns", len(d.turns))
        cols[4].metric("Barge-ins", len(call.barge_ins))
        st.caption(f"{d.transport} · {d.direction} · started {d.started_at:%H:%M:%S} UTC")
        transcript.render(d.turns)
        snapshot = feed.snapshot(d.id) if feed is not None else None
        if snapshot is not None:
            _feed_events(snapshot)
        st.markdown(f"[Open in Calls](./calls?call={d.id})")


def render_snapshot(snapshot: LiveSnapshot, feed: LiveFeed | None) -> None:
    """The header figures and every call in progress."""
    n = len(snapshot.calls)
    plural = "s" if n != 1 else ""
    st.markdown(f"**{n} call{plural} in progress** · as of {snapshot.at:%H:%M:%S} UTC")
    if feed is not None:
        status = feed.status()
        if status.connected:
            st.caption(
                f"Redis live feed on `{feed.channel}`: connected ({status.messages} events)."
            )
        else:
            st.warning(
                "Redis live feed not connected"
                + (f" ({status.error})" if status.error else "")
                + "; showing what the database has."
            )
    if snapshot.stale:
        st.caption(
            f"{snapshot.stale} unfinished call(s) with no activity for 30 minutes are not shown "
            "(their worker probably stopped)."
        )
    if snapshot.more:
        st.caption(f"{snapshot.more} more calls in progress are not shown.")
    if not snapshot.calls:
        st.info(
            "No calls in progress. Calls show here as soon as a worker records their first step."
        )
    for call in snapshot.calls:
        render_call(call, snapshot.at, feed)


@st.fragment(run_every=refresh_s())
def live_calls_fragment() -> None:
    """The part of the page that refreshes itself."""
    try:
        snapshot = run(lambda engine: live_calls(engine))
    except (OSError, SQLAlchemyError, TimeoutError) as exc:  # shown; the page keeps refreshing
        st.error(f"Cannot read calls in progress: {type(exc).__name__}: {exc}")
        return
    render_snapshot(snapshot, live_feed())


st.title("Live calls")
st.caption(f"Refreshes every {refresh_s():g} s.")
live_calls_fragment()
