"""Test-call panel: a text conversation with the graph being edited, showing
agent lines, the nodes entered, slots and intents per turn; and the graph's
conversation tests with pass/fail per case."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
from langgraph.checkpoint.memory import InMemorySaver

from builder.views.session import Editor, rebuild_canvas
from runtime.compiler import compile_call
from runtime.context import CallContext
from runtime.session import CallEvent, CallSession
from schemas.catalog import GraphCatalog
from schemas.diagnostics import GraphError

T = TypeVar("T")
KEY = "switchboard_testcall"


class _Loop:
    """One asyncio loop in a daemon thread, so calls run off Streamlit's script
    thread and a call's objects stay on the loop that created them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="testcall").start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@st.cache_resource
def _loop() -> _Loop:
    return _Loop()


@dataclass
class Turn:
    """One step of the test call as shown: who spoke and what happened."""

    caller: str | None
    agent: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    intents: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    outcome: str | None = None


def summarise(caller: str | None, events: list[CallEvent]) -> Turn:
    """Group one step's events for display."""
    turn = Turn(caller)
    for e in events:
        d = e.data
        if e.type == "agent":
            turn.agent.append(str(d.get("text", "")))
        elif e.type == "node":
            turn.nodes.append(str(d.get("node")))
        elif e.type == "slot" and d.get("name") != "intent":
            turn.slots[str(d.get("name"))] = d.get("value")
        elif e.type == "intent":
            turn.intents.append(f"{d.get('name')} ({float(d.get('confidence', 0)):.2f})")
        elif e.type == "tool":
            status = f"error: {d['error']}" if d.get("error") else "ok"
            turn.tools.append(f"{d.get('name')} {status}")
        elif e.type == "outcome":
            turn.outcome = str(d.get("outcome"))
    return turn


@dataclass
class TestCall:
    session: CallSession
    text: str
    turns: list[Turn] = field(default_factory=list)
    ended: bool = False


def _start(ed: Editor) -> TestCall:
    from tools.config import build_registry
    from tools.store import DemoStore

    assert ed.loaded is not None and ed.loaded.spec is not None
    catalog = GraphCatalog(ed.graphs_dir)
    compiled = compile_call(ed.loaded.spec, resolve=catalog.resolve, checkpointer=InMemorySaver())
    tools = build_registry(ed.graphs_dir, store=DemoStore(clock=datetime.now))
    session = CallSession(compiled=compiled, context=CallContext(tools=tools))
    call = TestCall(session, ed.text)
    events = _loop().run(session.start())
    _record(call, None, events)
    return call


def _record(call: TestCall, caller: str | None, events: list[CallEvent]) -> None:
    turn = summarise(caller, events)
    call.turns.append(turn)
    call.ended = call.ended or turn.outcome is not None


def _path(call: TestCall) -> list[str]:
    return [n for t in call.turns for n in t.nodes]


def render(ed: Editor) -> None:
    """Draw the panel for the editor's graph."""
    if ed.loaded is None or ed.loaded.spec is None or ed.errors:
        st.warning("Fix the validation errors first: only a valid graph can take a test call.")
        return
    call: TestCall | None = st.session_state.get(KEY)
    cols = st.columns(2)
    if cols[0].button("Start test call", key="tc.start", type="primary"):
        try:
            call = _start(ed)
        except GraphError as exc:
            st.error(f"cannot compile this graph: {exc}")
            return
        st.session_state[KEY] = call
        ed.call_path = _path(call)
        rebuild_canvas(ed, keep_positions=True)
    if call is not None and cols[1].button("Hang up", key="tc.hangup"):
        _record(call, None, _loop().run(call.session.hangup()))
        call.ended = True
    if call is None:
        st.caption("Start a call to talk to the graph as it is in the editor (saved or not).")
    else:
        if call.text != ed.text:
            st.info("The graph changed since this call started; start a new call to test it.")
        for i, turn in enumerate(call.turns):
            _show_turn(i, turn)
        if call.ended:
            st.success("Call ended.")
        else:
            said = st.chat_input("Say something as the caller", key="tc.input")
            if said:
                _record(call, said, _loop().run(call.session.send(said)))
                ed.call_path = _path(call)
                rebuild_canvas(ed, keep_positions=True)
                st.rerun()
    _conversation_tests(ed)


def _show_turn(i: int, turn: Turn) -> None:
    if turn.caller is not None:
        with st.chat_message("user"):
            st.write(turn.caller)
    with st.chat_message("assistant"):
        for line in turn.agent:
            st.write(line)
        facts = []
        if turn.intents:
            facts.append("intent " + ", ".join(turn.intents))
        if turn.nodes:
            facts.append("nodes " + " → ".join(turn.nodes))
        if turn.slots:
            facts.append("slots " + ", ".join(f"{k} = {v!r}" for k, v in turn.slots.items()))
        if turn.tools:
            facts.append("tools " + ", ".join(turn.tools))
        if turn.outcome:
            facts.append(f"outcome **{turn.outcome}**")
        for fact in facts:
            st.caption(fact)


def _conversation_tests(ed: Editor) -> None:
    from runtime.convtest import ConversationFileError, discover, load_conversation_file, run_file

    st.divider()
    st.subheader("Conversation tests")
    assert ed.path is not None
    mine: list[Path] = []
    for f in discover([ed.graphs_dir]):
        try:
            if load_conversation_file(f).graph_path.resolve() == ed.path.resolve():
                mine.append(f)
        except ConversationFileError:
            continue
    if not mine:
        st.caption("No conversation tests for this graph (tests/*.yaml beside the graphs).")
        return
    st.caption(f"{', '.join(f.name for f in mine)} — run against the saved file.")
    if not st.button("Run conversation tests", key="tc.tests"):
        return
    for f in mine:
        try:
            results = _loop().run(run_file(f))
        except (ConversationFileError, GraphError) as exc:
            st.error(f"{f.name}: {exc}")
            continue
        for r in results:
            (st.success if r.passed else st.error)(f"{'PASS' if r.passed else 'FAIL'} {r.name}")
            for failure in r.failures:
                st.caption(failure)
