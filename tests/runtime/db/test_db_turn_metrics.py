"""`CallRecorder.turn_metrics` (issue 7): latencies measured after a step was
recorded are merged into the turn that step keeps its latencies on, on SQLite
and PostgreSQL; a retry, or the same metrics twice, changes nothing; the write
is a durable op that survives the spool's round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.models import Turn
from runtime.db.recorder import CallRecorder
from runtime.db.writes import Op
from runtime.session import CallEvent

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def agent(message_id: str, text: str) -> CallEvent:
    return CallEvent("agent", {"message_id": message_id, "text": text, "agent": "a", "node": "n"})


@pytest.fixture
async def recorder(engine: AsyncEngine) -> AsyncIterator[CallRecorder]:
    rec = CallRecorder(engine, clock=lambda: T0)
    try:
        yield rec
    finally:
        await rec.close()


async def latencies(engine: AsyncEngine, call_id: str) -> list[tuple[int, str, Any]]:
    async with engine.connect() as conn:
        stmt = (
            select(Turn.step, Turn.role, Turn.latencies)
            .where(Turn.call_id == call_id)
            .order_by(Turn.step, Turn.seq)
        )
        return [tuple(row) for row in await conn.execute(stmt)]


async def test_latencies_merge_into_the_steps_agent_turn_once(
    recorder: CallRecorder, engine: AsyncEngine
) -> None:
    await recorder.call_started("c1", agent="a", transport="websocket")
    await recorder.record("c1", [agent("m0", "Hello")], step=0, metrics={"graph_ms": 5.0})
    events = [agent("m1", "Hi Ana."), agent("m2", "Bye.")]
    await recorder.record("c1", events, step=1, caller_text="Ana", metrics={"graph_ms": 7.0})
    voice = {"stt_ms": 120.0, "e2e_ms": 640.5, "graph_ms": 6.5, "tts_ttfa_ms": 30}
    for _ in range(2):  # the same metrics twice: no change the second time
        await recorder.turn_metrics("c1", 1, voice)
    await recorder.turn_metrics("c1", 1, {"bargein_ms": 80.0, "bad": "x"})
    await recorder.turn_metrics("c1", 0, {"tts_ttfa_ms": 25.0})
    assert await recorder.flush(10)
    assert await latencies(engine, "c1") == [
        (0, "agent", {"graph_ms": 5.0, "tts_ttfa_ms": 25.0}),
        (1, "caller", None),
        (
            1,
            "agent",
            {
                "graph_ms": 6.5,
                "stt_ms": 120.0,
                "e2e_ms": 640.5,
                "tts_ttfa_ms": 30.0,
                "bargein_ms": 80.0,
            },
        ),
        (1, "agent", None),
    ]
    assert recorder.stats.dropped == 0


async def test_a_step_without_an_agent_line_keeps_them_on_its_caller_line(
    recorder: CallRecorder, engine: AsyncEngine
) -> None:
    await recorder.record("c2", [], step=3, caller_text="hmm")
    await recorder.turn_metrics("c2", 3, {"stt_ms": 90.0})
    await recorder.turn_metrics("c2", 4, {"stt_ms": 91.0})  # no such step: nothing
    assert await recorder.flush(10)
    assert await latencies(engine, "c2") == [(3, "caller", {"stt_ms": 90.0})]


async def test_bad_input_is_refused_without_raising(recorder: CallRecorder) -> None:
    await recorder.turn_metrics("c3", -1, {"stt_ms": 1.0})
    await recorder.turn_metrics("", 0, {"stt_ms": 1.0})
    await recorder.turn_metrics("c3", 0, {"stt_ms": "slow"})  # nothing numeric: no write
    assert recorder.stats.rejected == 2 and recorder.stats.pending == 0


def test_the_op_is_durable_and_round_trips() -> None:
    op = Op.turn_latencies("c4", 2, {"e2e_ms": 700.0})
    again = Op.from_dict(op.as_dict())
    assert op.durable and again == op
    with pytest.raises(ValueError, match="bad arguments"):
        Op.from_dict({"kind": "turn_latencies", "args": {"call_id": "c4", "step": 2}})
