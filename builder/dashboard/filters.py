"""The dashboard's call filter widgets: agent, graph version, date range, and
(where a page asks for them) outcome, transport and transcript search.

`call_filter()` draws the widgets and returns the `CallFilter` they describe,
the same filter the analytics queries and the REST API take, so a page's
figures are exactly those the API would return for the same choices.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st

from builder.dashboard.data import run
from runtime.db import queries
from runtime.db.models import OUTCOMES
from runtime.db.queries import AgentVersionOut, CallFilter

ANY = "(any)"


def agent_versions() -> list[AgentVersionOut]:
    """Every recorded agent version (newest first per graph)."""
    return run(queries.list_agents)


def version_label(v: AgentVersionOut) -> str:
    """A short human label for an agent version: hash prefix, commit, first seen."""
    commit = f" @ {v.git_commit[:8]}" if v.git_commit else ""
    return f"{v.content_hash[:10]}{commit} · {v.first_seen_at:%Y-%m-%d %H:%M} · {v.calls} calls"


def day_range(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """UTC bounds for an inclusive range of days: [since 00:00, the day after until 00:00)."""
    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC) if until else None
    return start, end


def _pick(label: str, options: list[str], key: str, fmt: Any = None) -> str | None:
    choice = st.selectbox(label, [ANY, *options], key=key, format_func=fmt or str)
    return None if choice == ANY else choice


def call_filter(
    key: str,
    *,
    outcome: bool = False,
    transport: bool = False,
    text: bool = False,
    agent: str | None = None,
) -> CallFilter:
    """Draw the filter widgets (keys prefixed with `key`) and return the filter.

    `agent` fixes the agent instead of offering a choice (used to compare two
    versions of one agent)."""
    versions = agent_versions()
    if agent is None:
        agents = sorted({v.graph_id for v in versions})
        agent = _pick("Agent", agents, f"{key}.agent")
    version = None
    if agent:
        labels = {v.content_hash: version_label(v) for v in versions if v.graph_id == agent}
        version = _pick("Version", list(labels), f"{key}.version", lambda h: labels.get(h, h))
    dates = st.date_input("Dates (UTC)", value=[], key=f"{key}.dates", format="YYYY-MM-DD")
    picked = list(dates) if isinstance(dates, tuple | list) else [dates]
    since, until = day_range(picked[0] if picked else None, picked[-1] if picked else None)
    fields: dict[str, Any] = {"agent": agent, "version": version, "since": since, "until": until}
    if outcome:
        fields["outcome"] = _pick("Outcome", list(OUTCOMES), f"{key}.outcome")
    if transport:
        fields["transport"] = _pick("Transport", run(queries.transports), f"{key}.transport")
    if text:
        fields["text"] = st.text_input("Search transcripts", key=f"{key}.text").strip() or None
    return CallFilter(**fields)
