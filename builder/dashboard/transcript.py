"""A call's transcript as the dashboard shows it: one line per turn with the
time, the speaker, the text, barge-ins (what the caller heard of an agent line
versus what was planned) and the turn's latencies."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import streamlit as st

from runtime.db.models import LATENCY_STAGES
from runtime.db.queries import TurnOut

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$])")
SPEAKERS = {"caller": "🧑 Caller", "agent": "🤖 Agent"}


def escape(text: str) -> str:
    """`text` with Markdown (and HTML) characters escaped, so it shows as written."""
    return _MARKDOWN.sub(r"\\\1", text).replace("\n", " ")


def speaker(turn: TurnOut) -> str:
    """The speaker label of a turn (the agent's id after a handoff)."""
    label = SPEAKERS.get(turn.role, turn.role)
    if turn.role == "agent" and turn.agent:
        label += f" · {turn.agent}"
    return label


def latency_text(latencies: dict[str, float] | None) -> str:
    """'graph 12 ms · e2e 840 ms', stages in pipeline order, '' for none."""
    if not latencies:
        return ""
    order = [s for s in LATENCY_STAGES if s in latencies]
    order += sorted(k for k in latencies if k not in LATENCY_STAGES)
    return " · ".join(f"{k.removesuffix('_ms')} {latencies[k]:,.0f} ms" for k in order)


def turn_markdown(turn: TurnOut, *, timestamps: bool = True, date: bool = False) -> str:
    """One turn as Markdown. An interrupted agent turn shows what the caller
    heard and, struck through, the rest of what was planned."""
    when = ""
    if timestamps:
        stamp = "%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S"
        when = f"`{turn.started_at.strftime(stamp)}` "
    head = f"{when}**{speaker(turn)}**"
    if turn.node:
        head += f" _({escape(turn.node)})_"
    if turn.role == "agent" and turn.interrupted:
        heard = turn.heard_text or ""
        body = (
            f"⚡ **barge-in** — heard: “{escape(heard)}” · planned: ~~{escape(turn.text)}~~"
            if heard
            else f"⚡ **barge-in** before any of it was heard · planned: ~~{escape(turn.text)}~~"
        )
    else:
        body = escape(turn.text)
    line = f"{head}: {body}"
    latency = latency_text(turn.latencies)
    if latency:
        line += f"  \n<small>⏱ {latency}</small>"
    return line


def render(turns: Sequence[TurnOut], *, timestamps: bool = True, date: bool = False) -> None:
    """Draw the transcript (or say there is none yet)."""
    if not turns:
        st.caption("No turns recorded yet.")
        return
    for turn in turns:
        st.markdown(turn_markdown(turn, timestamps=timestamps, date=date), unsafe_allow_html=True)


def latency_rows(turns: Iterable[TurnOut]) -> list[dict[str, Any]]:
    """One row per turn with latencies: the turn number, speaker, node and one
    column per stage (ms)."""
    rows: list[dict[str, Any]] = []
    for turn in turns:
        if not turn.latencies:
            continue
        rows.append(
            {
                "turn": turn.index,
                "step": turn.step,
                "speaker": turn.role,
                "node": turn.node,
                **{k: round(v, 1) for k, v in turn.latencies.items()},
            }
        )
    return rows


def duration_text(seconds: float) -> str:
    """'1:05' (m:ss) below an hour, else '1:02:03' (h:mm:ss)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
