"""One recorded call, in full: summary, recording, transcript, tool calls,
intents, the path through the graph on the canvas, and latencies per turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from streamlit_flow import streamlit_flow
from streamlit_flow.state import StreamlitFlowState

from builder.canvas import Overlay, to_flow_state
from builder.dashboard import transcript
from builder.dashboard.call_graph import CallGraph, call_graph, graph_index, paths_by_agent
from runtime.db.queries import CallDetail, RecordingOut

CANVAS_HEIGHT = 460
#: Longest JSON shown per tool argument/result cell.
MAX_JSON_CHARS = 2_000


def _duration(seconds: float | None) -> str:
    return "in progress" if seconds is None else transcript.duration_text(seconds)


def sentiment_text(detail: CallDetail) -> str:
    """'negative (-0.42, lexicon)', or 'not scored'."""
    if detail.sentiment_label is None and detail.sentiment_score is None:
        return "not scored"
    score = "" if detail.sentiment_score is None else f"{detail.sentiment_score:+.2f}"
    method = detail.sentiment_method or "method unknown"
    parts = ", ".join(p for p in (score, method) if p)
    return f"{detail.sentiment_label or 'unlabelled'} ({parts})"


def playable(recording: RecordingOut) -> Path | None:
    """The recording's file when it exists and can be read, else None."""
    path = Path(recording.path)
    try:
        with path.open("rb"):
            return path
    except OSError:
        return None


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_JSON_CHARS else text[:MAX_JSON_CHARS] + "…"


def tool_rows(detail: CallDetail) -> list[dict[str, Any]]:
    """One row per tool call: name, node, arguments, result, error, duration."""
    return [
        {
            "time": f"{t.at:%H:%M:%S}",
            "step": t.step,
            "tool": t.name,
            "node": t.node,
            "arguments": _json(t.arguments),
            "result": "" if t.error else _json(t.result),
            "error": t.error or "",
            "duration_ms": None if t.duration_ms is None else round(t.duration_ms, 1),
        }
        for t in detail.tool_calls
    ]


def intent_rows(detail: CallDetail) -> list[dict[str, Any]]:
    """One row per intent decision; a fallback (no intent matched) says so."""
    return [
        {
            "step": i.step,
            "node": i.node,
            "intent": i.name or "(none: fallback)",
            "confidence": round(i.confidence, 3),
        }
        for i in detail.intents
    ]


def _summary(detail: CallDetail) -> None:
    cols = st.columns(4)
    cols[0].metric("Agent", detail.agent)
    cols[1].metric("Outcome", detail.outcome or "in progress")
    cols[2].metric("Duration", _duration(detail.duration_s))
    cols[3].metric("Turns", detail.turn_count)
    version = detail.graph_hash[:10] if detail.graph_hash else "not recorded"
    if detail.graph_commit:
        version += f" @ {detail.graph_commit[:10]}"
    facts = [
        f"caller {detail.caller or 'unknown'}",
        f"{detail.direction} · {detail.transport}",
        f"started {detail.started_at:%Y-%m-%d %H:%M:%S} UTC",
        f"graph version {version}",
        f"sentiment: {sentiment_text(detail)}",
    ]
    if detail.outcome_reason:
        facts.append(f"reason: {detail.outcome_reason}")
    st.caption(" · ".join(transcript.escape(f) for f in facts))


def _recording(detail: CallDetail) -> None:
    st.subheader("Recording")
    shown = False
    for rec in detail.recordings:
        path = playable(rec)
        if path is None:
            st.caption(f"Recording {rec.path} is not readable here (moved or deleted).")
            continue
        st.audio(str(path), format="audio/wav")
        length = f"{rec.duration_s:.1f} s" if rec.duration_s is not None else "length unknown"
        st.caption(f"{path.name} · {length}")
        shown = True
    if not shown:
        st.caption("No recording.")


def _canvas(detail: CallDetail, graph: CallGraph) -> None:
    if graph.document is None:
        return
    key = f"dashboard.call.{detail.id}.{graph.agent}.flow"
    state = st.session_state.get(key)
    if not isinstance(state, StreamlitFlowState):
        # kept in the session: a state re-created each rerun re-renders forever
        state = to_flow_state(graph.document, Overlay(path=graph.path))
        st.session_state[key] = state
    streamlit_flow(
        f"call-canvas-{detail.id}-{graph.agent}",
        state,
        height=CANVAS_HEIGHT,
        fit_view=True,
        show_controls=True,
        show_minimap=False,
        allow_new_edges=False,
        pan_on_drag=True,
        allow_zoom=True,
        min_zoom=0.2,
        hide_watermark=True,
    )


def _path(detail: CallDetail, graphs_dir: Path) -> None:
    st.subheader("Path through the graph")
    paths = paths_by_agent(detail.visits)
    if not paths:
        st.caption("No nodes visited.")
        return
    steps = " → ".join(
        f"{v.node}" if v.agent == detail.agent else f"{v.agent}:{v.node}" for v in detail.visits
    )
    st.markdown(transcript.escape(steps))
    index = graph_index(graphs_dir)
    agents = list(paths)
    chosen = agents[0]
    if len(agents) > 1:
        chosen = st.radio("Agent", agents, horizontal=True, key=f"dashboard.call.{detail.id}.agent")
    root = chosen == detail.agent
    graph = call_graph(
        index,
        chosen,
        paths[chosen],
        content_hash=detail.graph_hash if root else None,
        git_commit=detail.graph_commit if root else None,
    )
    for note in graph.notes:
        st.warning(note)
    st.caption(f"Drawn from {graph.source}; visited nodes have a purple border.")
    _canvas(detail, graph)


def _latencies(detail: CallDetail) -> None:
    st.subheader("Latency per turn")
    rows = transcript.latency_rows(detail.turns)
    if not rows:
        st.caption("No latencies recorded.")
        return
    frame = pd.DataFrame(rows)
    st.dataframe(frame, hide_index=True, width="stretch")
    stages = [c for c in frame.columns if c.endswith("_ms")]
    chart = frame.set_index("turn")[stages]
    st.bar_chart(chart, height=220, stack=False, y_label="ms", x_label="turn")


def render(detail: CallDetail, graphs_dir: Path) -> None:
    """Draw the whole call."""
    st.header(f"Call {detail.id}")
    _summary(detail)
    _recording(detail)
    st.subheader("Transcript")
    transcript.render(detail.turns, date=False)
    st.subheader("Tool calls")
    tools = tool_rows(detail)
    if tools:
        st.dataframe(pd.DataFrame(tools), hide_index=True, width="stretch")
    else:
        st.caption("No tool calls.")
    st.subheader("Intents")
    intents = intent_rows(detail)
    if intents:
        st.dataframe(pd.DataFrame(intents), hide_index=True, width="stretch")
    else:
        st.caption("No intent decisions.")
    _path(detail, graphs_dir)
    _latencies(detail)
