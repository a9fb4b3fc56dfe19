"""Databases for the dashboard page tests: a temporary SQLite file seeded with
real simulated calls (`runtime.seed`), and a call kept in progress by driving
a real `CallSession` with the `CallRecorder`, as a service worker does."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from langgraph.checkpoint.memory import InMemorySaver

from builder.dashboard.data import LoopThread
from runtime.compiler import compile_call
from runtime.context import CallContext
from runtime.db import init_db
from runtime.db.agent_version import describe_graph_file
from runtime.db.recorder import CallRecorder, record_session_turn
from runtime.seed import SeedSummary, seed_demo
from runtime.session import CallEvent, CallSession
from schemas.catalog import GraphCatalog

ROOT = Path(__file__).resolve().parents[3]
GRAPHS = ROOT / "graphs"
#: A fixed end of the simulated period, so seeded data never depends on today.
SEED_NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
T = TypeVar("T")
TIMEOUT_S = 120.0  # a hang guard only


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def seed(url: str, calls: int, *, seed: int = 11) -> SeedSummary:
    """Record `calls` simulated calls (real runtime, example graphs) at `url`."""
    return asyncio.run(seed_demo(url, calls=calls, seed=seed, graphs_dir=GRAPHS, now=SEED_NOW))


class LiveCallDriver:
    """One real call on an example graph, recorded step by step into `url` on
    a loop thread, kept open until `hang_up()`."""

    def __init__(self, url: str, graph_id: str = "dental-booking", caller: str = "+15550001111"):
        self.url = url
        self.graph_id = graph_id
        self.call_id = f"live-test-{graph_id}"
        self._loop = LoopThread()
        self._run(init_db(url))
        self.recorder: CallRecorder = self._run(self._recorder())
        catalog = GraphCatalog(GRAPHS)
        spec = catalog.resolve(graph_id)
        compiled = compile_call(spec, resolve=catalog.resolve, checkpointer=InMemorySaver())
        self.session = CallSession(
            compiled, context=CallContext(), call_id=self.call_id, caller=caller
        )
        self.version = describe_graph_file(catalog.index()[graph_id], graph_id=graph_id)
        self.caller = caller

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.submit(coro).result(TIMEOUT_S)

    async def _recorder(self) -> CallRecorder:
        return CallRecorder.from_url(self.url)

    def start(self) -> list[CallEvent]:
        """Record the call's start and its opening step."""

        async def go() -> list[CallEvent]:
            await self.recorder.call_started(
                self.call_id, agent=self.version, transport="websocket", caller=self.caller
            )
            events = await record_session_turn(self.recorder, self.session)
            await self.recorder.flush(TIMEOUT_S)
            return events

        return self._run(go())

    def say(self, text: str, *, interrupted: list[dict[str, str]] | None = None) -> list[CallEvent]:
        """One caller turn, recorded (with voice-like latencies) before returning."""

        async def go() -> list[CallEvent]:
            events = await record_session_turn(
                self.recorder,
                self.session,
                text,
                interrupted=interrupted,
                metrics={"stt_ms": 210.0, "tts_ttfa_ms": 35.0, "e2e_ms": 780.0},
            )
            await self.recorder.flush(TIMEOUT_S)
            return events

        return self._run(go())

    def hang_up(self) -> None:
        """The caller hangs up: the last step and the call's end are recorded."""

        async def go() -> None:
            await record_session_turn(self.recorder, self.session, hangup=True)
            state = await self.session.state()
            await self.recorder.call_ended(self.call_id, str(state.get("outcome") or "abandoned"))
            await self.recorder.flush(TIMEOUT_S)

        self._run(go())

    def close(self) -> None:
        self._run(self.recorder.close())
        self._loop.loop.call_soon_threadsafe(self._loop.loop.stop)
