"""`seed-demo`: fill the database with demo business data and simulated calls.

`seed_demo` migrates the database, seeds the built-in tools' business data
(idempotent), then runs simulated text calls through the real runtime on the
example graphs, with the tools on the database store, and records each one
with `CallRecorder` exactly as the service would: the call with its agent
version, every step numbered, the end with its outcome.

Calls are spread over the last `days` days, each on its own fake clock that
moves a few seconds per turn, in time order. Caller scripts come from
templates per agent with variety: paraphrases, wrong answers (re-prompts),
hang-ups mid-flow, requests for a human, and barge-ins (the next turn tells the
runtime which agent line was cut short and what the caller heard), and a few
calls whose state is lost mid-call, recorded the way the service records
them: the agent's fallback line and a `failed` outcome as the next step.
Handoffs record each agent's own ending (the front desk `handed_off`, the
agent it passed the call to how it ended). Everything
is drawn from one `random.Random(seed)`, so a seed gives the same calls, and
call ids derive from it: calls already recorded are skipped, so running the
same seed twice adds nothing.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.compiler import CompiledCall, compile_call
from runtime.context import CallContext
from runtime.db.agent_version import AgentVersion, describe_graph_file_async
from runtime.db.migrations import init_db
from runtime.db.models import OUTCOMES, Call
from runtime.db.recorder import CallRecorder, record_session_turn
from runtime.seed_scripts import AGENT_WEIGHTS, CallPlan, plan_call
from runtime.sentiment import LexiconScorer
from runtime.session import CallEvent, CallSession
from schemas.catalog import GraphCatalog, default_graphs_dir
from tools.db_store import DbStore, SeedReport, seed_business_data

DEFAULT_CALLS = 300
DEFAULT_DAYS = 30
DEFAULT_SEED = 7


class SeedError(Exception):
    """The demo cannot be seeded (e.g. no example graphs to call)."""


class SimClock:
    """The simulation's clock: set to a call's start, moved turn by turn."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class SeedSummary:
    """What one `seed_demo` run did."""

    business: SeedReport
    recorded: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped: int = 0
    steps: int = 0
    barge_ins: int = 0
    unwritten: int = 0
    #: (agent, its own outcome) for every agent's part in a recorded call.
    agent_parts: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def calls(self) -> int:
        return sum(self.recorded.values())

    def per_agent(self) -> dict[str, dict[str, int]]:
        """agent -> outcome -> calls recorded."""
        out: dict[str, dict[str, int]] = {}
        for (agent, outcome), n in sorted(self.recorded.items()):
            out.setdefault(agent, {})[outcome] = n
        return out


@dataclass(frozen=True)
class _Agent:
    compiled: CompiledCall
    version: AgentVersion


async def _load_agents(graphs_dir: Path) -> dict[str, _Agent]:
    catalog = GraphCatalog(graphs_dir)
    index = await asyncio.to_thread(catalog.index)
    agents: dict[str, _Agent] = {}
    for graph_id in AGENT_WEIGHTS:
        path = index.get(graph_id)
        if path is None:
            continue
        spec = await asyncio.to_thread(catalog.resolve, graph_id)
        compiled = compile_call(spec, resolve=catalog.resolve, checkpointer=InMemorySaver())
        version = await describe_graph_file_async(path, graph_id=graph_id, name=spec.name)
        agents[graph_id] = _Agent(compiled, version)
    if not agents:
        raise SeedError(f"no example graphs ({', '.join(AGENT_WEIGHTS)}) in {graphs_dir}")
    return agents


def _example_graphs_dir() -> Path:
    """$SWITCHBOARD_GRAPHS_DIR or ./graphs when it exists, else the example
    graphs installed with the package."""
    configured = default_graphs_dir()
    if configured.is_dir():
        return configured
    import graphs

    return Path(graphs.__file__).resolve().parent


def plan_calls(
    n: int, *, seed: int, now: datetime, days: int, agents: Sequence[str]
) -> list[CallPlan]:
    """`n` call plans in time order over the `days` days before `now`; the
    same arguments give the same plans."""
    rng = random.Random(seed)
    weights = [AGENT_WEIGHTS[a] for a in agents]
    plans = []
    for i in range(n):
        day = now - timedelta(days=rng.uniform(0, days))
        hour = rng.choices(range(8, 20), weights=[3, 6, 8, 7, 5, 6, 7, 6, 5, 3, 2, 1])[0]
        start = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
        if start > now:
            start -= timedelta(days=1)
        agent = rng.choices(list(agents), weights=weights)[0]
        plans.append(plan_call(rng, f"demo-{seed}-{i:04d}", agent, start))
    return sorted(plans, key=lambda p: p.started_at)


async def _recorded_ids(engine: AsyncEngine, ids: list[str]) -> set[str]:
    found: set[str] = set()
    async with engine.connect() as conn:
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            rows = await conn.execute(select(Call.id).where(Call.id.in_(part)))
            found.update(str(r[0]) for r in rows)
    return found


def _last_agent_message(events: list[CallEvent]) -> tuple[str, str] | None:
    for event in reversed(events):
        if event.type == "agent" and event.data.get("message_id") and event.data.get("text"):
            return str(event.data["message_id"]), str(event.data["text"])
    return None


async def _state_lost(recorder: CallRecorder, session: CallSession, text: str) -> tuple[str, str]:
    """Record the step in which the call's state turns out lost, as the
    service does (the current agent's fallback line, a `failed` outcome);
    (the agent that was handling the call, the reason)."""
    from runtime.service.calls import STATE_LOST_REASON

    state = await session.state()
    agent = str(state.get("agent") or session.compiled.root.id)
    spec = session.compiled.agents.get(agent) or session.compiled.root
    step = int(state.get("turn", 0)) + 1
    events = [
        CallEvent(
            "agent",
            {"message_id": f"state-lost:{step}", "text": spec.fallback_line, "agent": agent},
        ),
        CallEvent("outcome", {"outcome": "failed", "reason": STATE_LOST_REASON}),
    ]
    await recorder.record(session.call_id, events, step=step, caller_text=text)
    return agent, STATE_LOST_REASON


async def _run_call(
    plan: CallPlan,
    agent: _Agent,
    recorder: CallRecorder,
    store: DbStore,
    clock: SimClock,
    graphs_dir: Path,
    summary: SeedSummary,
) -> None:
    from tools.config import build_registry

    clock.current = plan.started_at
    tools = await asyncio.to_thread(build_registry, graphs_dir, store=store.with_clock(clock))
    session = CallSession(
        agent.compiled,
        context=CallContext(tools=tools, clock=clock),
        call_id=plan.call_id,
        caller=plan.caller,
    )
    await recorder.call_started(
        plan.call_id,
        agent=agent.version,
        direction=plan.direction,
        caller=plan.caller,
        started_at=plan.started_at,
    )
    outcome, reason = "failed", None
    lost: tuple[str, str] | None = None
    parts: dict[str, str] = {}
    try:
        events = await record_session_turn(recorder, session)
        summary.steps += 1
        for index, turn in enumerate(plan.turns):
            if await session.ended():
                break
            clock.advance(turn.pause_s)
            if index == plan.fails_at:
                lost = await _state_lost(recorder, session, turn.text)
                summary.steps += 1
                break
            interrupted = None
            last = _last_agent_message(events)
            if turn.barge_in and last is not None:
                words = last[1].split()
                heard = " ".join(words[: max(1, len(words) // 3)])
                interrupted = [{"message_id": last[0], "heard": heard}]
                summary.barge_ins += 1
            events = await record_session_turn(
                recorder, session, turn.text, interrupted=interrupted
            )
            summary.steps += 1
        if lost is None and not await session.ended():
            clock.advance(2.0)
            await record_session_turn(recorder, session, hangup=True)
            summary.steps += 1
        state = await session.state()
        parts = dict(state.get("agent_outcomes") or {})
        if lost is not None:
            outcome, reason = "failed", lost[1]
            parts[lost[0]] = "failed"
        else:
            outcome = str(state.get("outcome") or "abandoned")
            reason = state.get("outcome_reason")
    except Exception as exc:  # a broken call is recorded as failed, the run goes on
        reason = f"{type(exc).__name__}: {exc}"
    if outcome not in OUTCOMES:
        outcome, reason = "failed", f"unknown outcome {outcome!r}"
    clock.advance(1.0)
    await recorder.call_ended(plan.call_id, outcome, reason, ended_at=clock())
    summary.recorded[(plan.agent, outcome)] += 1
    for agent_id in dict.fromkeys([plan.agent, *parts]):
        summary.agent_parts[(agent_id, parts.get(agent_id, outcome))] += 1


async def seed_demo(
    url: str | None = None,
    *,
    calls: int = DEFAULT_CALLS,
    seed: int = DEFAULT_SEED,
    days: int = DEFAULT_DAYS,
    schema: str | None = None,
    graphs_dir: Path | None = None,
    now: datetime | None = None,
) -> SeedSummary:
    """Migrate the database at `url` (default: the configured one), seed the
    business data, and record `calls` simulated calls (see module docstring).
    `now` (default: the current time) ends the simulated period."""
    if calls < 0 or days < 1:
        raise ValueError("calls must be >= 0 and days >= 1")
    end = (now or datetime.now(UTC)).astimezone()
    directory = graphs_dir or _example_graphs_dir()
    engine = await init_db(url, schema=schema)
    store = await asyncio.to_thread(DbStore.from_url, url, schema=schema)
    try:
        report = await asyncio.to_thread(seed_business_data, store.engine)
        summary = SeedSummary(report)
        agents = await _load_agents(directory)
        plans = plan_calls(calls, seed=seed, now=end, days=days, agents=list(agents))
        done = await _recorded_ids(engine, [p.call_id for p in plans])
        clock = SimClock(end)
        recorder = CallRecorder(engine, clock=clock, sentiment=LexiconScorer())
        try:
            for plan in plans:
                if plan.call_id in done:
                    summary.skipped += 1
                    continue
                agent = agents[plan.agent]
                await _run_call(plan, agent, recorder, store, clock, directory, summary)
        finally:
            summary.unwritten = await recorder.close(timeout=None)
        return summary
    finally:
        await asyncio.to_thread(store.dispose)
        await engine.dispose()


def summary_rows(summary: SeedSummary) -> list[dict[str, Any]]:
    """One row per agent: calls and each outcome's count (for printing)."""
    rows = []
    for agent, outcomes in summary.per_agent().items():
        rows.append({"agent": agent, "calls": sum(outcomes.values()), **outcomes})
    return rows
