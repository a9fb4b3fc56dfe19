"""Per-agent outcomes on SQLite and PostgreSQL: a real front-desk call handed
to the dental desk records each agent's own ending (`call_agents`), a write
retried adds nothing twice, and `outcome_rates` counts agents' parts, falling
back to the call's outcome for calls recorded without per-agent rows."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.context import CallContext
from runtime.convtest import compile_for_tests, default_tools_factory
from runtime.db import analytics as an
from runtime.db import spool
from runtime.db.models import Call, CallAgent
from runtime.db.queries import CallFilter
from runtime.db.recorder import CallRecorder, record_session_turn
from runtime.db.rows import build_step
from runtime.db.writes import Op
from runtime.session import CallEvent, CallSession
from tests.runtime.fixtures.calls import fixed_clock

REPO = Path(__file__).resolve().parents[3]
FRONT_DESK = REPO / "graphs" / "front-desk.yaml"
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
BOOKING = ["hi, I'd like to book a cleaning please", "next tuesday", "ten in the morning"]
BOOKING += ["Maria Garcia"]
HOURS = ["what time do you close today", "no thanks, that's all"]


class StepClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def run_call(
    recorder: CallRecorder, call_id: str, script: list[str], *, hangup: bool = False
) -> dict[str, Any]:
    """Run and record a front-desk call; its final state."""
    context = CallContext(tools=default_tools_factory(fixed_clock), clock=fixed_clock)
    session = CallSession(
        compile_for_tests(FRONT_DESK), context=context, call_id=call_id, caller="+15551230001"
    )
    await recorder.call_started(call_id, agent="front-desk", started_at=recorder.clock())
    await record_session_turn(recorder, session)
    for text in script:
        await record_session_turn(recorder, session, text)
    if hangup:
        await record_session_turn(recorder, session, hangup=True)
    assert await recorder.flush(60)
    return await session.state()


async def agent_rows(engine: AsyncEngine, call_id: str | None = None) -> dict[Any, Any]:
    async with engine.connect() as conn:
        stmt = select(CallAgent).order_by(CallAgent.call_id, CallAgent.first_step)
        if call_id is not None:
            stmt = stmt.where(CallAgent.call_id == call_id)
        found = (await conn.execute(stmt)).all()
    return {(r.call_id, r.agent): (r.outcome, r.first_step, r.last_step, r.turns) for r in found}


async def test_a_booked_handoff_records_each_agents_own_outcome(engine: AsyncEngine) -> None:
    recorder = CallRecorder(engine, clock=StepClock())
    try:
        state = await run_call(recorder, "fd-book", BOOKING)
    finally:
        await recorder.close()
    assert state["agent_outcomes"] == {"front-desk": "handed_off", "dental-booking": "completed"}
    rows = await agent_rows(engine, "fd-book")
    # front desk: the opening (step 0) and the handoff in step 1; the dental
    # desk answers steps 1-4 and books in step 4.
    assert rows == {
        ("fd-book", "front-desk"): ("handed_off", 0, 1, 1),
        ("fd-book", "dental-booking"): ("completed", 1, 4, 4),
    }


async def test_a_return_and_a_hang_up_end_the_right_agent(engine: AsyncEngine) -> None:
    recorder = CallRecorder(engine, clock=StepClock())
    try:
        back = await run_call(recorder, "fd-hours", HOURS)
        gone = await run_call(recorder, "fd-gone", BOOKING[:2], hangup=True)
        await run_call(recorder, "fd-back", HOURS[:1])
    finally:
        await recorder.close()
    outcomes = {k: v[0] for k, v in (await agent_rows(engine)).items()}
    # Handed on in step 1 and given the call back in the same step: the front
    # desk is on the line again, its part not over.
    assert (outcomes[("fd-back", "front-desk")], outcomes[("fd-back", "dental-booking")]) == (
        None,
        "handed_off",
    )
    assert {a: outcomes[("fd-hours", a)] for a in back["agent_outcomes"]} == back["agent_outcomes"]
    assert back["agent_outcomes"] == {"front-desk": "completed", "dental-booking": "handed_off"}
    # The hang-up step has no agent in it: the call's latest agent gets it.
    assert gone["agent_outcomes"] == {"front-desk": "handed_off", "dental-booking": "abandoned"}
    assert {a: outcomes[("fd-gone", a)] for a in gone["agent_outcomes"]} == gone["agent_outcomes"]


async def test_steps_recorded_again_add_and_change_nothing(engine: AsyncEngine) -> None:
    first = CallRecorder(engine, clock=StepClock())
    try:
        await run_call(first, "fd-twice", BOOKING)
    finally:
        await first.close()
    before = await agent_rows(engine)
    # A second worker records the very same call again, step by step (as a
    # retry after an outage or a spool replay would), ending with old steps.
    again = CallRecorder(engine, clock=StepClock())
    try:
        await run_call(again, "fd-twice", BOOKING)
        await run_call(again, "fd-twice", BOOKING[:1])
    finally:
        await again.close()
    assert await agent_rows(engine) == before
    async with engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(CallAgent))).scalar_one()
    assert n == 2


async def test_outcome_rates_count_agents_parts_and_legacy_calls(engine: AsyncEngine) -> None:
    recorder = CallRecorder(engine, clock=StepClock())
    try:
        states = {
            "r-book": await run_call(recorder, "r-book", BOOKING),
            "r-hours": await run_call(recorder, "r-hours", HOURS),
            "r-gone": await run_call(recorder, "r-gone", BOOKING[:2], hangup=True),
            "r-open": await run_call(recorder, "r-open", BOOKING[:2]),
            "r-old": await run_call(recorder, "r-old", BOOKING),
        }
        for call_id, state in states.items():
            if state.get("outcome"):
                await recorder.call_ended(call_id, state["outcome"])
        assert await recorder.flush(60)
    finally:
        await recorder.close()
    async with engine.begin() as conn:  # as if recorded before revision 0004
        await conn.execute(delete(CallAgent).where(CallAgent.call_id == "r-old"))

    # Independently: each agent's ending from the runtime's own state; an
    # agent still on the line is unfinished; the legacy call counts once for
    # its root agent with the call's outcome.
    expected: Counter[tuple[str, str | None]] = Counter()
    for call_id, state in states.items():
        if call_id == "r-old":
            expected[("front-desk", state["outcome"])] += 1
            continue
        for agent in dict.fromkeys(state["agents"]):
            expected[(agent, state.get("agent_outcomes", {}).get(agent))] += 1
    rates = {r.agent: r for r in await an.outcome_rates(engine)}
    got: Counter[tuple[str, str | None]] = Counter()
    for agent, r in rates.items():
        got.update({(agent, o): n for o, n in r.counts.items() if n})
        got[(agent, None)] += r.unfinished
    assert +got == +expected
    fd, dental = rates["front-desk"], rates["dental-booking"]
    # The front desk's part is over once it hands on, even in a call still open.
    assert fd.counts["handed_off"] == 3 and dental.counts["completed"] == 1
    assert fd.counts["completed"] == 2  # r-hours, and the legacy r-old at its root
    assert (dental.unfinished, dental.counts["abandoned"], dental.counts["handed_off"]) == (1, 1, 1)
    assert fd.rates["handed_off"] == 3 / fd.finished == 3 / 5

    only = await an.outcome_rates(engine, CallFilter(agent="dental-booking"))
    assert [(r.agent, r.counts, r.unfinished) for r in only] == [
        ("dental-booking", dental.counts, dental.unfinished)
    ]
    done = await an.outcome_rates(engine, CallFilter(outcome="completed"))
    assert {r.agent: r.counts["handed_off"] for r in done} == {
        "front-desk": 1,
        "dental-booking": 1,
    }
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Call))).scalar_one() == 5


async def test_a_spooled_step_replays_its_agents(engine: AsyncEngine) -> None:
    events = [
        CallEvent("node", {"agent": "front-desk", "node": "to_dental"}),
        CallEvent("handoff", {"from": "front-desk", "to": "dental-booking", "node": "to_dental"}),
        CallEvent("agent", {"text": "Sure.", "agent": "front-desk", "message_id": "m1"}),
        CallEvent("node", {"agent": "dental-booking", "node": "route"}),
        CallEvent("waiting", {"agent": "dental-booking", "node": "ask_day"}),
    ]
    rows = build_step("spooled", 1, events, at=T0, caller_text="book a cleaning")
    assert [(r["agent"], r["outcome"]) for r in rows.agents] == [
        ("front-desk", "handed_off"),
        ("dental-booking", None),
    ]
    # As a dead worker's spool hands it to the next one: JSON and back.
    line = spool.dumps(Op.step(rows).as_dict())
    op = Op.from_dict(spool.decode(json.loads(line)))
    hangup = build_step("spooled", 2, [CallEvent("outcome", {"outcome": "abandoned"})], at=T0)
    assert hangup.outcome_agent is None
    for write in (op.write(), Op.step(hangup).write(), op.write()):
        async with engine.begin() as conn:
            await write(conn)
    assert await agent_rows(engine, "spooled") == {
        ("spooled", "front-desk"): ("handed_off", 1, 1, 1),
        ("spooled", "dental-booking"): ("abandoned", 1, 1, 0),
    }


async def test_a_call_ended_outside_a_step_ends_the_agent_on_the_line(
    engine: AsyncEngine,
) -> None:
    """A voice failure ends the call through `call_ended`, not a graph step: the
    agent on the line then ends with the call's outcome; an agent whose part
    already ended keeps its own."""
    recorder = CallRecorder(engine, clock=StepClock())
    try:
        await run_call(recorder, "fd-fail", BOOKING[:2])  # now with the dental desk
        await recorder.call_ended("fd-fail", "failed", "text-to-speech failed")
        assert await recorder.flush(60)
        rows = await agent_rows(engine, "fd-fail")
        assert {a: v[0] for (_, a), v in rows.items()} == {
            "front-desk": "handed_off",
            "dental-booking": "failed",
        }
    finally:
        await recorder.close()
