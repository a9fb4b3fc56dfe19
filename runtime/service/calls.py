"""Starting and continuing calls in a service worker.

`CallService` compiles each agent graph once per process on the shared
checkpointer, so a call started by one worker continues on any other: the call
id is the checkpoint thread, and the call's root agent is read back from its
checkpoint. Every step of every call (text turns here, voice turns through the
WebSocket pipeline) runs through an `ObservedSession`, which publishes its
events on the live feed as they happen and records the step through the
`CallRecorder` under the checkpoint's turn number, so each turn is stored once
whichever worker ran it. A voice call's pipeline events (transcripts,
barge-ins, per-turn metrics) go to the live feed and its turns' speech
latencies to the record through `runtime.service.voice_live`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from runtime.compiler import CompiledCall, compile_call
from runtime.context import CallContext
from runtime.db.agent_version import AgentVersion, describe_graph_file_async
from runtime.db.recorder import CallRecorder
from runtime.llm import default_llm_factory
from runtime.service.live import LiveBus, live_message
from runtime.service.live_tokens import TokenCoalescer
from runtime.session import CallEnded, CallEvent, CallSession
from schemas.catalog import GraphCatalog
from schemas.diagnostics import Diagnostic, GraphError
from schemas.spec import GraphSpec
from tools.registry import ToolRegistry

log = logging.getLogger("switchboard.service.calls")

#: How long a hang-up waits for the call's records to reach the database, so a
#: client reading the call right after sees it; the write is never lost later.
HANGUP_FLUSH_S = 5.0
#: Longest a step waits for its records to be written while the database is up.
STEP_RECORD_WAIT_S = 2.0
STATE_LOST_REASON = "call state lost by the checkpoint store"


class UnknownAgent(LookupError):
    """No valid agent graph with that id in the graphs directory."""


class UnknownCall(LookupError):
    """No call with that id in the checkpointer."""


@dataclass
class CallObserver:
    """Publishes and records the steps of one call."""

    recorder: CallRecorder
    live: LiveBus
    agent: str

    async def publish(self, call_id: str, event: CallEvent | dict[str, Any]) -> None:
        data = event.as_dict() if isinstance(event, CallEvent) else event
        await self.live.publish(live_message(call_id, self.agent, data))

    async def recorded(
        self,
        session: CallSession,
        events: list[CallEvent],
        *,
        caller_text: str | None,
        hangup: bool,
        started_at: Any,
        graph_ms: float,
    ) -> int:
        """Record one step (its number from the checkpoint's turn counter)
        and return that number."""
        state, _ = await session.checkpointed()
        turn = int(state.get("turn", 0))
        step = turn + 1 if hangup else turn
        await self.recorder.record(
            session.call_id,
            events,
            step=step,
            caller_text=caller_text,
            metrics={"graph_ms": round(graph_ms, 3)},
            at=started_at,
            ended_at=self.recorder.clock(),
        )
        # A step answered while the database is reachable is written before
        # the answer leaves, so killing the worker right after loses nothing;
        # during an outage the step is buffered and the call is not held up.
        if not self.recorder.failing:
            await self.recorder.flush(STEP_RECORD_WAIT_S)
        return step


@dataclass
class ObservedSession(CallSession):
    """A `CallSession` whose every step is published live and recorded.
    `steps` holds, for each step run through `stream_start`/`stream_send` in
    order, the number it was recorded under (None until then, or if never)."""

    observer: CallObserver | None = field(default=None, kw_only=True)
    steps: list[int | None] = field(default_factory=list, kw_only=True)

    async def stream_start(self) -> AsyncIterator[CallEvent]:
        async for event in self._observe(super().stream_start(), None):
            yield event

    async def stream_send(
        self, text: str, *, interrupted: list[dict[str, str]] | None = None
    ) -> AsyncIterator[CallEvent]:
        async for event in self._observe(super().stream_send(text, interrupted=interrupted), text):
            yield event

    async def hangup(self, *, interrupted: list[dict[str, str]] | None = None) -> list[CallEvent]:
        observer = self.observer
        if observer is None:
            return await super().hangup(interrupted=interrupted)
        at = observer.recorder.clock()
        began = time.perf_counter()
        events = await super().hangup(interrupted=interrupted)
        for event in events:
            await observer.publish(self.call_id, event)
        if events:
            await observer.recorded(
                self,
                events,
                caller_text=None,
                hangup=True,
                started_at=at,
                graph_ms=(time.perf_counter() - began) * 1000.0,
            )
        return events

    async def _observe(
        self, stream: AsyncIterator[CallEvent], caller_text: str | None
    ) -> AsyncIterator[CallEvent]:
        observer = self.observer
        if observer is None:
            async for event in stream:
                yield event
            return
        at = observer.recorder.clock()
        began = time.perf_counter()
        position = len(self.steps)
        self.steps.append(None)
        if caller_text is not None:
            await observer.live.publish(
                live_message(self.call_id, observer.agent, {"type": "caller", "text": caller_text})
            )
        events: list[CallEvent] = []
        # LLM tokens reach the live feed joined (`live_tokens`); the caller of
        # this stream still gets every event as it happens.
        tokens = TokenCoalescer()
        async for event in stream:
            events.append(event)
            for message in tokens.add(event.as_dict()):
                await observer.publish(self.call_id, message)
            yield event
        for message in tokens.flush():
            await observer.publish(self.call_id, message)
        self.steps[position] = await observer.recorded(
            self,
            events,
            caller_text=caller_text,
            hangup=False,
            started_at=at,
            graph_ms=(time.perf_counter() - began) * 1000.0,
        )


@dataclass(frozen=True)
class AgentInfo:
    """An agent graph of the graphs directory, as it is on disk now."""

    graph_id: str
    name: str | None
    file: str
    content_hash: str
    git_commit: str | None


@dataclass
class _Agent:
    compiled: CompiledCall
    version: AgentVersion


class CallService:
    """Calls of one worker process on the shared checkpointer and database."""

    def __init__(
        self,
        *,
        graphs_dir: Path,
        checkpointer: BaseCheckpointSaver[Any],
        recorder: CallRecorder,
        live: LiveBus,
        tools: ToolRegistry,
    ) -> None:
        self.catalog = GraphCatalog(graphs_dir)
        self.checkpointer = checkpointer
        self.recorder = recorder
        self.live = live
        self.tools = tools
        self.llm_factory = default_llm_factory()
        self._agents: dict[str, _Agent] = {}
        self._compile_lock = asyncio.Lock()
        # Turns of one call run one at a time in this process.
        self._call_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def agents(self) -> list[AgentInfo]:
        """Every valid agent graph in the graphs directory, by id."""
        index = await asyncio.to_thread(self.catalog.index)
        out = []
        for graph_id, path in sorted(index.items()):
            loaded = await asyncio.to_thread(self.catalog.load, path)
            name = loaded.spec.name if loaded.spec is not None else None
            version = await describe_graph_file_async(path, graph_id=graph_id, name=name)
            out.append(
                AgentInfo(
                    graph_id=graph_id,
                    name=name,
                    file=str(path),
                    content_hash=version.content_hash,
                    git_commit=version.git_commit,
                )
            )
        return out

    async def agent(self, graph_id: str) -> _Agent:
        """The compiled agent `graph_id` (compiled on first use); UnknownAgent
        when there is no such graph. GraphError when its file is invalid."""
        from schemas.validate import load_valid_graph

        async with self._compile_lock:
            found = self._agents.get(graph_id)
            if found is not None:
                return found
            index = await asyncio.to_thread(self.catalog.index)
            path = index.get(graph_id)
            if path is None:
                raise UnknownAgent(f"no agent {graph_id!r} (known: {', '.join(sorted(index))})")
            # The file is read twice (to compile, to hash): describe it on both
            # sides of the load and retry if a save landed in between, so the
            # recorded hash is always that of the content compiled.
            for _attempt in range(3):
                before = await describe_graph_file_async(path, graph_id=graph_id)
                spec = await asyncio.to_thread(load_valid_graph, path, catalog=self.catalog)
                version = await describe_graph_file_async(path, graph_id=graph_id, name=spec.name)
                if version.content_hash == before.content_hash:
                    break
            else:
                raise GraphError(
                    [
                        Diagnostic(
                            code="E100",
                            severity="error",
                            file=str(path),
                            message="the file kept changing while it was loaded; try again",
                        )
                    ]
                )
            compiled = await asyncio.to_thread(
                compile_call, spec, resolve=self.catalog.resolve, checkpointer=self.checkpointer
            )
            found = _Agent(compiled=compiled, version=version)
            self._agents[graph_id] = found
            return found

    def session(self, agent: _Agent, call_id: str, *, caller: str | None = None) -> ObservedSession:
        """A session of call `call_id` on `agent` that publishes and records."""
        return ObservedSession(
            compiled=agent.compiled,
            call_id=call_id,
            caller=caller,
            context=CallContext(tools=self.tools, llm_factory=self.llm_factory),
            observer=CallObserver(self.recorder, self.live, agent.version.graph_id),
        )

    def lock(self, call_id: str) -> asyncio.Lock:
        lock = self._call_locks.get(call_id)
        if lock is None:
            lock = asyncio.Lock()
            self._call_locks[call_id] = lock
        return lock

    async def open_call(
        self,
        graph_id: str,
        *,
        caller: str | None,
        direction: str,
        transport: str,
    ) -> tuple[str, list[CallEvent]]:
        """Record a new call; a text call also runs to its first wait and
        returns those events (a WebSocket call starts when it connects)."""
        agent = await self.agent(graph_id)
        call_id = uuid.uuid4().hex
        await self.recorder.call_started(
            call_id,
            agent=agent.version,
            direction=direction,
            transport=transport,
            caller=caller,
        )
        await self.live.publish(
            live_message(
                call_id, graph_id, {"type": "call", "transport": transport, "caller": caller}
            )
        )
        events: list[CallEvent] = []
        if transport == "text":
            async with self.lock(call_id):
                events = await self.session(agent, call_id, caller=caller).start()
        return call_id, events

    async def root_agent(self, call_id: str) -> str:
        """The agent a call started on, from its checkpoint; UnknownCall if none."""
        found = await self.checkpointer.aget_tuple({"configurable": {"thread_id": call_id}})
        agents = (found.checkpoint.get("channel_values", {}) if found else {}).get("agents")
        if not agents:
            raise UnknownCall(f"no call {call_id!r} in progress")
        return str(agents[0])

    async def existing(self, call_id: str) -> ObservedSession:
        """A session on the call `call_id` as its checkpoint left it."""
        agent = await self.agent(await self.root_agent(call_id))
        return self.session(agent, call_id)

    async def turn(self, call_id: str, text: str) -> list[CallEvent]:
        """One caller turn of a started call; CallEnded when it is over. A call
        that ran but whose checkpoint is gone (e.g. a Redis restart without
        persistence) gets its graph's fallback line and ends `failed`."""
        async with self.lock(call_id):
            try:
                session = await self.existing(call_id)
            except UnknownCall:
                lost = await self._state_lost(call_id, text)
                if lost is None:
                    raise
                return lost
            return await session.send(text)

    async def _state_lost(self, call_id: str, text: str) -> list[CallEvent] | None:
        """End a recorded, unfinished call whose checkpoint is gone: the apology
        and a `failed` outcome, published and recorded as its next step. None
        when the database has no such call or it never ran a step."""
        from runtime.db import queries

        detail = await queries.get_call(self.recorder.engine, call_id)
        if detail is None or not detail.turns:
            return None
        if detail.outcome:
            raise CallEnded(f"call {call_id!r} is over ({detail.outcome})")
        try:
            line = (await self.agent(detail.agent)).compiled.root.fallback_line
        except (UnknownAgent, GraphError):
            line = GraphSpec.model_fields["fallback_line"].default
        step = max(t.step for t in detail.turns) + 1
        events = [
            CallEvent(
                "agent",
                {"message_id": f"state-lost:{step}", "text": line, "agent": detail.agent},
            ),
            CallEvent("outcome", {"outcome": "failed", "reason": STATE_LOST_REASON}),
        ]
        log.error("call %s: checkpoint lost; ending it as failed", call_id)
        for event in events:
            await self.live.publish(live_message(call_id, detail.agent, event.as_dict()))
        await self.recorder.record(call_id, events, step=step, caller_text=text)
        await self.recorder.flush(HANGUP_FLUSH_S)
        return events

    async def hangup(self, call_id: str) -> list[CallEvent]:
        """End the call as abandoned unless it is already over, and wait (a
        bounded time) for its records to be written."""
        async with self.lock(call_id):
            session = await self.existing(call_id)
            events = await session.hangup()
        await self.recorder.flush(HANGUP_FLUSH_S)
        return events

    async def status(self, call_id: str) -> dict[str, Any]:
        """Where the call stands: agent, node, waiting node, turn, outcome, slots."""
        session = await self.existing(call_id)
        state = await session.state()
        return {
            "agent": state.get("agent"),
            "node": state.get("node"),
            "awaiting": state.get("awaiting"),
            "turn": state.get("turn", 0),
            "outcome": state.get("outcome"),
            "vars": state.get("vars", {}),
        }

    def voice_setup(self) -> Any:
        """A `CallSetup` for `runtime.voice.websocket.voice_router` whose calls
        run on this service's checkpointer and tools and are published and
        recorded like text calls."""
        from runtime.service.voice_live import VoiceCallObserver
        from runtime.voice.websocket import CatalogCallSetup, VoiceCall

        async def compiled(graph_id: str) -> Any:
            return (await self.agent(graph_id)).compiled

        base = CatalogCallSetup(
            self.catalog.directory,
            checkpointer=self.checkpointer,
            tools=lambda: self.tools,
            compiler=compiled,
        )

        async def setup(session_id: str, graph: str | None, caller: str | None) -> VoiceCall:
            call = await base(session_id, graph, caller)
            plain = call.session
            # The worker's model factory: one chat model (and connection pool)
            # per settings for every call, not a new HTTPS client per call.
            plain.context.llm_factory = self.llm_factory
            observed = ObservedSession(
                compiled=plain.compiled,
                call_id=plain.call_id,
                caller=plain.caller,
                context=plain.context,
                observer=CallObserver(self.recorder, self.live, plain.compiled.root.id),
            )
            call.session = observed
            # The pipeline's own events (transcripts, barge-ins, metrics) go
            # to the live feed too, and each turn's latencies to its record.
            call.observe = lambda pipeline: VoiceCallObserver.for_pipeline(observed, pipeline)
            return call

        return setup
