"""Running one builder test call: the graph in the editor behind a
`CallSession`, steps by text or by voice, each recorded (`testcall_record`).

The call's objects live on one asyncio loop in a daemon thread per process
(`loop()`), off Streamlit's script thread; each step is submitted there and
waited for. A call left without hanging up (the browser session goes away and
its state is dropped) is hung up as abandoned in the background.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections.abc import Coroutine
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
from langgraph.checkpoint.memory import InMemorySaver

from builder.views.testcall_record import CallLog, graph_version
from builder.views.testcall_voice import Heard, ProviderError, Spoken, speak, tts_for
from runtime.compiler import compile_call
from runtime.context import CallContext
from runtime.session import CallEvent, CallSession
from schemas.catalog import GraphCatalog
from schemas.spec import GraphSpec, VoiceSettings

T = TypeVar("T")
#: Background hang-ups of dropped calls not yet recorded.
_abandoning: set[Future[None]] = set()
_abandoning_lock = threading.Lock()
#: Hang guard for one step (graph, STT and TTS included).
STEP_TIMEOUT_S = 120.0


class _Loop:
    """One asyncio loop in a daemon thread, so calls run off Streamlit's script
    thread and a call's objects stay on the loop that created them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="testcall").start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = STEP_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@st.cache_resource
def loop() -> _Loop:
    """The process's test-call loop (created once)."""
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
    #: Voice turns: the STT's confidence in the caller's words.
    heard_confidence: float | None = None
    #: The agent's lines as a WAV file, when spoken.
    audio: bytes | None = None


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
    """A test call in progress in one browser session."""

    session: CallSession
    text: str
    voice: VoiceSettings
    log: CallLog
    turns: list[Turn] = field(default_factory=list)
    ended: bool = False
    #: Bumped for every recording handled, so the microphone widget starts afresh.
    mic: int = 0
    #: The newest turn's audio has not been played yet.
    fresh_audio: bool = False
    notice: str | None = None

    @property
    def path(self) -> list[str]:
        """Every node the call entered, in order."""
        return [n for t in self.turns for n in t.nodes]


def start(
    spec: GraphSpec, text: str, graphs_dir: Path, file: Path | None, *, voice: bool = False
) -> TestCall:
    """Compile `spec` (the editor's text `text`, file `file`), start the call
    and record it; with `voice` the opening lines are spoken too. Raises
    `GraphError` when the graph cannot be compiled."""
    from tools.config import build_registry
    from tools.store import DemoStore

    catalog = GraphCatalog(graphs_dir)
    compiled = compile_call(spec, resolve=catalog.resolve, checkpointer=InMemorySaver())
    tools = build_registry(graphs_dir, store=DemoStore(clock=datetime.now))
    session = CallSession(
        compiled=compiled,
        context=CallContext(tools=tools),
        call_id=f"builder-{uuid.uuid4().hex[:20]}",
    )
    version = graph_version(spec.id, spec.name, text, file)
    call_log = CallLog.open(session.call_id, version, started_at=datetime.now(UTC))
    call = TestCall(session, text, spec.voice, call_log)
    weakref.finalize(call, _abandon_later, loop().loop, session, call_log).atexit = False
    step(call, None, voice=voice)
    return call


def step(
    call: TestCall,
    caller_text: str | None,
    *,
    voice: bool = False,
    heard: Heard | None = None,
    hangup: bool = False,
) -> Turn | None:
    """Run one step: the opening (`caller_text` None), a caller turn, or the
    caller hanging up; speak the agent's lines when `voice`; record it all.
    Returns the turn shown (None when hanging up changed nothing)."""
    began = time.perf_counter()
    at = datetime.now(UTC)
    events, turn_no = loop().run(_advance(call.session, caller_text, hangup))
    graph_ms = (time.perf_counter() - began) * 1000.0
    if hangup and not events:
        call.ended = True
        call.log.finish()
        return None
    turn = summarise(caller_text, events)
    metrics: dict[str, float] = {"graph_ms": round(graph_ms, 3)}
    if heard is not None:
        call.log.audio.add(heard.pcm)
        turn.heard_confidence = heard.confidence
        metrics["stt_ms"] = heard.stt_ms
    if voice and turn.agent:
        try:
            spoken = loop().run(speak(tts_for(call.voice), turn.agent))
        except ProviderError as exc:  # the call goes on in text
            call.notice = f"The agent's reply could not be spoken: {exc}"
            spoken = Spoken(b"", b"", None)
        if spoken.pcm:
            call.log.audio.add(spoken.pcm)
            turn.audio = spoken.wav
            call.fresh_audio = True
        if spoken.ttfa_ms is not None:
            metrics["tts_ttfa_ms"] = spoken.ttfa_ms
    metrics["e2e_ms"] = round(sum(metrics.values()), 3)
    call.log.step(
        events,
        step=turn_no + 1 if hangup else turn_no,
        caller_text=caller_text,
        at=at,
        ended_at=datetime.now(UTC),
        metrics=metrics,
    )
    call.turns.append(turn)
    if hangup or turn.outcome is not None:
        call.ended = True
        call.log.finish()
    return turn


def hang_up(call: TestCall) -> None:
    """The caller hangs up (the call ends abandoned unless already over)."""
    if not call.ended:
        step(call, None, hangup=True)
    call.ended = True
    call.log.finish()


async def _advance(
    session: CallSession, caller_text: str | None, hangup: bool
) -> tuple[list[CallEvent], int]:
    if hangup:
        events = await session.hangup()
    elif caller_text is None:
        events = await session.start()
    else:
        events = await session.send(caller_text)
    return events, int((await session.state()).get("turn", 0))


def _abandon_later(on: asyncio.AbstractEventLoop, session: CallSession, call_log: CallLog) -> None:
    """Finalizer of a dropped `TestCall`: hang up in the background, never
    blocking the thread that collected it."""
    if call_log.finished:
        return
    try:
        job = asyncio.run_coroutine_threadsafe(_abandon(session, call_log), on)
    except RuntimeError:  # the loop or the runtime is gone (shutting down)
        return
    with _abandoning_lock:
        _abandoning.add(job)
    job.add_done_callback(_forget)


def _forget(job: Future[None]) -> None:
    with _abandoning_lock:
        _abandoning.discard(job)


def wait_abandoned(timeout: float) -> bool:
    """Wait up to `timeout` s for calls being hung up in the background (after
    their browser session went away) to be recorded; True when none is left."""
    with _abandoning_lock:
        jobs = set(_abandoning)
    _done, left = wait(jobs, timeout=timeout)
    return not left


async def _abandon(session: CallSession, call_log: CallLog) -> None:
    at = datetime.now(UTC)
    events, turn_no = await _advance(session, None, True)
    if events:
        await asyncio.to_thread(
            call_log.step,
            events,
            step=turn_no + 1,
            caller_text=None,
            at=at,
            ended_at=datetime.now(UTC),
            metrics={},
        )
    await asyncio.to_thread(call_log.finish)
