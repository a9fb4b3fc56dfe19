"""How long the compiled graph takes to handle one caller turn, against a
minimal hand-written LangGraph graph doing the same work, per checkpointer.

The flow is route -> say -> collect -> route: a caller turn "book a visit" is
classified by the route node, answered by the say node and stops at the
collect node's question; the next turn ("Maria Garcia") fills the slot and
stops at the route node's question. Both graphs use the same trivial
stand-ins for the parts that are not orchestration: an exact-match intent
classifier (dictionary lookup) and the product's free-text slot extractor
(whitespace and punctuation trimming). So the ratio compares orchestration
only: Switchboard's node protocol, state, events and checkpoint size against
LangGraph's bare interrupt/resume with the same checkpointer, in the same
process, turns interleaved one for one so machine noise hits both alike.

Measured per turn: `graph` (the compiled Switchboard graph resumed with
`ainvoke`, like the baseline), `session` (`CallSession.send`, the product's
turn: graph run streamed as events and the final state kept, so the next turn
knows without a read whether the call has ended) and `baseline`. Calls are 10
turns long, then a new call starts. Beside wall time, `cpu_ms_p50` gives this
process's CPU time per turn: on a shared, busy machine wall-clock percentiles
mostly measure waiting for a core, and the CPU figure shows what the turn
itself costs (the Redis server's share is not in it).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from benchmarks.harness import Settings, Skipped, distribution, ratio
from runtime.checkpoint import CheckpointerUnavailable, open_checkpointer
from runtime.compiler import CompiledCall, compile_call, initial_state
from runtime.context import CallContext
from runtime.intents import IntentMatch, normalise
from runtime.session import CallSession
from runtime.slots.text import extract_text
from runtime.templates import render
from schemas.loader import load_graph_text
from schemas.spec import GraphSpec

DESCRIPTION = (
    "One caller turn (route + say + collect) through the compiled graph and CallSession vs "
    "a minimal hand-written LangGraph graph, same checkpointer, same stand-ins"
)
GOALS = {"ratio_session_vs_baseline_max": 1.5, "redis_session_p99_ms_max": 5.0}

FLOW = """
schema: switchboard/v1
id: bench-turn
name: Turn overhead benchmark
start: route
variables: {clinic: Bright Smiles}
nodes:
  route:
    type: route
    prompt: What would you like to do at {clinic}?
    intents:
      book: {examples: [book a visit, I want to book], next: confirm}
      done: {examples: [that is all, goodbye], next: bye}
    fallback: route
  confirm: {type: say, text: "Sure, let's book that visit at {clinic}.", next: ask_name}
  ask_name:
    type: collect
    slot: name
    kind: text
    prompt: What name should I book it under?
    next: route
  bye: {type: end, text: Goodbye.}
"""
SCRIPT = ("book a visit", "Maria Garcia")
TURNS_PER_CALL = 10
FIXED_NOW = datetime.fromisoformat("2026-11-25T10:00:00-05:00")


class LookupIntents:
    """Stand-in classifier: a turn equal (normalised) to an example matches
    with confidence 1.0, anything else is out of scope."""

    def __init__(self, intents: dict[str, list[str]], threshold: float | None = None) -> None:
        self._by_text = {normalise(e): n for n, exs in intents.items() for e in exs}

    async def classify(self, text: str) -> IntentMatch:
        name = self._by_text.get(normalise(text))
        return IntentMatch(name, 1.0 if name else 0.0)


def _lookup_factory(graph: GraphSpec) -> type[LookupIntents]:
    return LookupIntents


def flow_spec() -> GraphSpec:
    """The benchmark flow, loaded through the real schema."""
    loaded = load_graph_text(FLOW, file="turn_overhead.yaml")
    if loaded.spec is None:
        raise RuntimeError("; ".join(d.format() for d in loaded.diagnostics))
    return loaded.spec


# --- the hand-written baseline ------------------------------------------------------


class BaselineState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    vars: dict[str, Any]
    awaiting: str | None
    pending: str | None


def build_baseline(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any]:
    """The same flow written directly against LangGraph: four nodes, one
    interrupt, the same stand-in classifier and extractor, templates rendered
    with the product's renderer."""
    intents = LookupIntents({"book": ["book a visit", "I want to book"], "done": ["that is all"]})

    def speak(text: str, state: BaselineState) -> list[AnyMessage]:
        return [AIMessage(content=render(text, state.get("vars", {})))]

    async def route(state: BaselineState) -> Command[Any]:
        text = state.get("pending") if state.get("awaiting") == "route" else None
        if text is None:
            prompt = speak("What would you like to do at {clinic}?", state)
            return Command(goto="listen", update={"messages": prompt, "awaiting": "route"})
        match = await intents.classify(text)
        target = {"book": "confirm", "done": END}.get(match.name or "", "route")
        return Command(goto=target, update={"awaiting": None, "pending": None})

    async def confirm(state: BaselineState) -> Command[Any]:
        line = speak("Sure, let's book that visit at {clinic}.", state)
        return Command(goto="ask_name", update={"messages": line})

    async def ask_name(state: BaselineState) -> Command[Any]:
        text = state.get("pending") if state.get("awaiting") == "ask_name" else None
        if text is None:
            prompt = speak("What name should I book it under?", state)
            return Command(goto="listen", update={"messages": prompt, "awaiting": "ask_name"})
        found = extract_text(text)
        variables = {**state.get("vars", {}), "name": found.value if found else ""}
        return Command(goto="route", update={"vars": variables, "awaiting": None, "pending": None})

    async def listen(state: BaselineState) -> Command[Any]:
        text = str(interrupt({"node": state.get("awaiting")}))
        return Command(
            goto=str(state.get("awaiting")),
            update={"pending": text, "messages": [HumanMessage(content=text)]},
        )

    builder: StateGraph[Any, Any, Any, Any] = StateGraph(BaselineState)
    for name, fn in (("route", route), ("confirm", confirm), ("ask_name", ask_name)):
        builder.add_node(name, fn)
    builder.add_node("listen", listen)
    builder.add_edge(START, "route")
    return builder.compile(checkpointer=checkpointer)


# --- the runs -----------------------------------------------------------------------


class _Call:
    """One benchmark call of one variant: started lazily, `turn()` times one
    caller turn in ms."""

    def __init__(self, kind: str, compiled: Any, prefix: str) -> None:
        self.kind = kind
        self.compiled = compiled
        self.thread = f"{prefix}-{kind}-{uuid.uuid4().hex[:12]}"
        self.turns = 0
        self.session: CallSession | None = None
        self.threads: list[str] = []

    def _config(self) -> RunnableConfig:
        return {"configurable": {"thread_id": self.thread}, "recursion_limit": 100}

    async def start(self) -> None:
        self.threads.append(self.thread)
        if self.kind == "session":
            context = CallContext(clock=lambda: FIXED_NOW)
            self.session = CallSession(self.compiled, context=context, call_id=self.thread)
            await self.session.start()
        elif self.kind == "graph":
            context = CallContext(clock=lambda: FIXED_NOW)
            state = initial_state(
                self.compiled.root, call_id=self.thread, caller=None, context=context
            )
            await self.compiled.graph.ainvoke(state, self._config(), context=context)
        else:
            state = {"messages": [], "vars": {"clinic": "Bright Smiles"}, "awaiting": None}
            await self.compiled.ainvoke(state, self._config())

    async def turn(self) -> tuple[float, float]:
        """(wall ms, process CPU ms) of one caller turn."""
        if self.turns % TURNS_PER_CALL == 0:
            if self.turns:
                self.thread = f"{self.thread.rsplit('-', 1)[0]}-{uuid.uuid4().hex[:12]}"
            await self.start()
        text = SCRIPT[self.turns % len(SCRIPT)]
        self.turns += 1
        c0, t0 = time.process_time(), time.perf_counter()
        if self.kind == "session":
            assert self.session is not None
            events = await self.session.send(text)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            if not any(e.type == "waiting" for e in events):
                raise RuntimeError(f"session turn {text!r} did not wait again: {events}")
            return elapsed * 1000.0, cpu * 1000.0
        if self.kind == "graph":
            await self.compiled.graph.ainvoke(
                Command(resume=text),
                self._config(),
                context=CallContext(clock=lambda: FIXED_NOW),
            )
        else:
            await self.compiled.ainvoke(Command(resume=text), self._config())
        return (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0


async def _measure(
    saver: BaseCheckpointSaver[Any], spec: GraphSpec, turns: int, warmup: int
) -> dict[str, Any]:
    compiled: CompiledCall = compile_call(
        spec,
        checkpointer=saver,
        intent_sets=_lookup_factory,
    )
    baseline = build_baseline(saver)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    calls = {
        "baseline": _Call("baseline", baseline, prefix),
        "graph": _Call("graph", compiled, prefix),
        "session": _Call("session", compiled, prefix),
    }
    times: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for i in range(warmup + turns):
        for kind, call in calls.items():  # interleaved: noise hits every variant alike
            ms, cpu_ms = await call.turn()
            if i >= warmup:
                times[kind].append(ms)
                cpu[kind].append(cpu_ms)
    for call in calls.values():
        for thread in call.threads:
            with contextlib.suppress(NotImplementedError):
                await saver.adelete_thread(thread)
    out: dict[str, Any] = {k: distribution(v) for k, v in times.items()}
    # This process's CPU per turn: what the turn costs here, less sensitive than
    # wall time to other processes on a shared machine (Redis's own CPU excluded).
    out["cpu_ms_p50"] = {k: distribution(v)["p50"] for k, v in cpu.items()}
    base = out["baseline"]
    out["ratio_graph_vs_baseline"] = {
        q: ratio(out["graph"][q], base[q]) for q in ("p50", "p90", "p99")
    }
    out["ratio_session_vs_baseline"] = {
        q: ratio(out["session"][q], base[q]) for q in ("p50", "p90", "p99")
    }
    return out


@contextlib.asynccontextmanager
async def _savers(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """Open every checkpointer; a Redis that cannot be reached is recorded as
    skipped (an error under CI)."""
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            out: dict[str, Any] = {
                "memory": await stack.enter_async_context(open_checkpointer("memory://")),
                "sqlite": await stack.enter_async_context(
                    open_checkpointer(f"sqlite:///{Path(tmp) / 'bench.db'}")
                ),
            }
            try:
                out["redis"] = await stack.enter_async_context(
                    open_checkpointer(settings.redis_url)
                )
            except (CheckpointerUnavailable, ValueError) as exc:
                if settings.ci:
                    raise
                out["redis"] = Skipped(f"Redis at REDIS_URL={settings.redis_url}: {exc}")
            yield out


async def run(settings: Settings) -> dict[str, Any]:
    """Per checkpointer: turn-time distributions (ms) of the three variants and
    their ratios (Switchboard / baseline at p50, p90, p99)."""
    turns = 60 if settings.quick else 1000
    warmup = 10 if settings.quick else 40
    spec = flow_spec()
    results: dict[str, Any] = {}
    async with _savers(settings) as savers:
        for name, saver in savers.items():
            if isinstance(saver, Skipped):
                results[name] = {"status": "skipped", "reason": str(saver)}
                continue
            results[name] = await _measure(saver, spec, turns, warmup)
    redis = results.get("redis", {})
    goals: dict[str, Any] = dict(GOALS)
    if "session" in redis:
        goals["redis_session_p99_ms"] = redis["session"]["p99"]
        goals["redis_ratio_session_vs_baseline_p50"] = redis["ratio_session_vs_baseline"]["p50"]
    return {
        "unit": "ms per caller turn",
        "turns_per_variant": turns,
        "warmup_turns": warmup,
        "turns_per_call": TURNS_PER_CALL,
        "baseline": "hand-written LangGraph graph (route, say, collect, listen with "
        "interrupt/resume), same checkpointer, same stand-in classifier and extractor",
        "stand_ins": "intent classifier: exact-match lookup; extractor: the product's "
        "free-text extractor (Switchboard runs it in a worker thread, the baseline inline)",
        "checkpointers": results,
        "goals": goals,
    }
