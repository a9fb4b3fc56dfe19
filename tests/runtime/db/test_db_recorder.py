"""The call recorder on SQLite and PostgreSQL: a real call's rows, idempotent
writes, buffering through a database outage, and bad input that never raises."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.context import CallContext
from runtime.convtest import compile_for_tests, default_tools_factory
from runtime.db.agent_version import AgentVersion, describe_graph_file
from runtime.db.migrations import init_db
from runtime.db.models import Agent, Call, IntentRecord, NodeVisit, Recording, ToolCall, Turn
from runtime.db.recorder import CallRecorder, Sentiment, record_session_turn
from runtime.session import CallEvent, CallSession
from tests.runtime.db.dbhelpers import Database, FakeSleep, TcpGate, provision
from tests.runtime.fixtures.calls import fixed_clock

REPO = Path(__file__).resolve().parents[3]
DENTAL = REPO / "graphs" / "dental-booking.yaml"
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SCRIPT = ["I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"]
TABLES = (Call, Turn, NodeVisit, ToolCall, IntentRecord, Agent, Recording)


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            m.__tablename__: int(
                (await conn.execute(select(func.count()).select_from(m))).scalar_one()
            )
            for m in TABLES
        }


async def rows(engine: AsyncEngine, model: Any, call_id: str) -> list[Any]:
    async with engine.connect() as conn:
        stmt = select(model).where(model.call_id == call_id).order_by(model.step, model.seq)
        return list((await conn.execute(stmt)).all())


async def call_row(engine: AsyncEngine, call_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(Call).where(Call.id == call_id))).one()


def dental_session(call_id: str) -> CallSession:
    compiled = compile_for_tests(DENTAL)
    context = CallContext(tools=default_tools_factory(fixed_clock), clock=fixed_clock)
    return CallSession(compiled, context=context, call_id=call_id, caller="+15551230001")


class StepClock:
    """A fake clock: each reading is one second after the previous one."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def recorder(engine: AsyncEngine) -> AsyncIterator[CallRecorder]:
    rec = CallRecorder(engine, clock=StepClock())
    try:
        yield rec
    finally:
        await rec.close()


async def test_a_real_call_is_recorded_as_it_happened(
    engine: AsyncEngine, recorder: CallRecorder
) -> None:
    session = dental_session("dental-1")
    version = describe_graph_file(DENTAL, graph_id="dental-booking", name="Bright Smiles")
    await recorder.call_started(
        "dental-1", agent=version, transport="websocket", caller="+15551230001"
    )
    steps: list[tuple[str | None, list[CallEvent]]] = [
        (None, await record_session_turn(recorder, session))
    ]
    for text in SCRIPT[:2]:
        steps.append((text, await record_session_turn(recorder, session, text)))
    # The caller barges in on the list of times: only its start was heard.
    times_line = next(e for e in steps[-1][1] if e.type == "agent")
    cut = [{"message_id": times_line.data["message_id"], "heard": "On that day I have"}]
    steps.append(
        (
            SCRIPT[2],
            await record_session_turn(
                recorder, session, SCRIPT[2], interrupted=cut, metrics={"e2e_ms": 1234.5}
            ),
        )
    )
    steps.append((SCRIPT[3], await record_session_turn(recorder, session, SCRIPT[3])))
    await recorder.call_ended(
        "dental-1", "completed", sentiment=Sentiment(0.6, "positive", "lexicon")
    )
    assert await recorder.flush(timeout=60)
    assert recorder.stats.dropped == recorder.stats.rejected == 0

    expected_turns = []
    for text, events in steps:
        if text is not None:
            expected_turns.append(("caller", text))
        expected_turns += [("agent", e.data["text"]) for e in events if e.type == "agent"]
    turns = await rows(engine, Turn, "dental-1")
    assert [(t.role, t.text) for t in turns] == expected_turns
    assert [t.step for t in turns if t.role == "caller"] == [1, 2, 3, 4]
    interrupted = [t for t in turns if t.interrupted]
    assert len(interrupted) == 1
    assert interrupted[0].message_id == times_line.data["message_id"]
    assert interrupted[0].heard_text == "On that day I have"
    assert interrupted[0].text.startswith("On that day I have 9 AM")  # what was planned
    assert all(t.latencies and t.latencies["graph_ms"] >= 0 for t in turns if t.role == "agent")
    assert next(t.latencies for t in turns if t.step == 3 and t.role == "agent")["e2e_ms"] == 1234.5

    all_events = [e for _, events in steps for e in events]
    visits = await rows(engine, NodeVisit, "dental-1")
    assert [(v.agent, v.node) for v in visits] == [
        (e.data["agent"], e.data["node"]) for e in all_events if e.type == "node"
    ]
    assert [v.node for v in visits][-2:] == ["book", "confirm"]
    tools = await rows(engine, ToolCall, "dental-1")
    tool_events = [e.data for e in all_events if e.type == "tool"]
    assert [(t.name, t.arguments, t.result) for t in tools] == [
        (d["name"], d["args"], d["result"]) for d in tool_events
    ]
    assert [t.name for t in tools] == ["calendar.find_slots", "calendar.book"]
    intents = await rows(engine, IntentRecord, "dental-1")
    assert [(i.name, i.node) for i in intents] == [("book", "route")]

    call = await call_row(engine, "dental-1")
    assert (call.agent, call.transport, call.caller) == (
        "dental-booking",
        "websocket",
        "+15551230001",
    )
    assert call.outcome == "completed"
    assert call.graph_hash == hashlib.sha256(DENTAL.read_bytes()).hexdigest()
    assert call.started_at < call.ended_at
    assert call.duration_s == (call.ended_at - call.started_at).total_seconds() > 0
    assert (call.sentiment_score, call.sentiment_label, call.sentiment_method) == (
        0.6,
        "positive",
        "lexicon",
    )
    async with engine.connect() as conn:
        agent = (await conn.execute(select(Agent))).one()
    assert (agent.id, agent.graph_id, agent.name) == (
        call.agent_version_id,
        "dental-booking",
        "Bright Smiles",
    )
    assert agent.file_path == str(DENTAL)


async def test_a_hangup_is_recorded_as_abandoned_after_the_last_turn(
    engine: AsyncEngine, recorder: CallRecorder
) -> None:
    session = dental_session("dental-2")
    await recorder.call_started("dental-2", agent="dental-booking")
    await record_session_turn(recorder, session)
    await record_session_turn(recorder, session, "I need a cleaning")
    await record_session_turn(recorder, session, hangup=True)
    await record_session_turn(recorder, session, hangup=True)  # already over: nothing
    assert await recorder.flush(timeout=60)
    call = await call_row(engine, "dental-2")
    assert call.outcome == "abandoned" and call.duration_s is not None
    assert call.agent_version_id is None and call.graph_hash is None
    assert [t.role for t in await rows(engine, Turn, "dental-2")] == ["agent", "caller", "agent"]


def _step(message_id: str) -> list[CallEvent]:
    return [
        CallEvent("intent", {"name": "book", "confidence": 0.9, "node": "route"}),
        CallEvent("node", {"agent": "a", "node": "ask_day"}),
        CallEvent(
            "tool",
            {
                "name": "t.x",
                "args": {"d": 1},
                "result": {"ok": True},
                "error": None,
                "duration_ms": 2.0,
                "node": "n",
            },
        ),
        CallEvent(
            "agent",
            {"message_id": message_id, "text": "Which day?", "agent": "a", "node": "ask_day"},
        ),
        CallEvent("waiting", {"agent": "a", "node": "ask_day"}),
    ]


async def test_writing_the_same_step_twice_adds_nothing(
    database: Database, engine: AsyncEngine, recorder: CallRecorder
) -> None:
    version = AgentVersion(graph_id="a", content_hash="h" * 64, git_commit="c" * 40)
    for _ in range(2):
        await recorder.call_started("c1", agent=version, started_at=T0)
    opening = [
        CallEvent("node", {"agent": "a", "node": "greeting"}),
        CallEvent("agent", {"message_id": "m0", "text": "Hi", "agent": "a", "node": "greeting"}),
    ]
    await recorder.record("c1", opening)
    await recorder.record("c1", opening)  # the same batch again, no step given
    await recorder.record("c1", _step("m1"), caller_text="book please", step=1)
    await recorder.record("c1", _step("m1"), caller_text="book please", step=1)
    assert await recorder.flush(timeout=60)
    once = await counts(engine)
    assert once == {
        "calls": 1,
        "turns": 3,
        "node_visits": 2,
        "tool_calls": 1,
        "intents": 1,
        "agents": 1,
        "recordings": 0,
    }
    # A second worker (its own recorder and engine) retries the same writes.
    other_engine = database.engine()
    other = CallRecorder(other_engine)
    try:
        await other.call_started("c1", agent=version, started_at=T0)
        await other.record("c1", _step("m1"), caller_text="book please", step=1)
        await other.add_recording("c1", "/rec/c1.wav", duration_s=12.5, sample_rate=16000)
        await other.add_recording("c1", "/rec/c1.wav", duration_s=12.5, sample_rate=16000)
        assert await other.flush(timeout=60)
    finally:
        await other.close()
        await other_engine.dispose()
    assert await counts(engine) == {**once, "recordings": 1}
    # A new step (same content, the next turn number) is a new row set.
    await recorder.record("c1", _step("m2"), caller_text="book please")
    assert await recorder.flush(timeout=60)
    assert (await counts(engine))["turns"] == 5
    assert [t.step for t in await rows(engine, Turn, "c1")] == [0, 1, 1, 2, 2]


async def test_steps_of_a_call_never_started_are_kept(
    engine: AsyncEngine, recorder: CallRecorder
) -> None:
    await recorder.record("orphan", _step("m1"), caller_text="hello", step=1, at=T0)
    await recorder.call_ended(
        "orphan", "failed", "tool crashed", ended_at=T0 + timedelta(seconds=30)
    )
    assert await recorder.flush(timeout=60)
    call = await call_row(engine, "orphan")
    assert (call.agent, call.outcome, call.outcome_reason, call.duration_s) == (
        "a",
        "failed",
        "tool crashed",
        30.0,
    )
    # call_started arriving late fills in what the steps did not know, and an
    # earlier start time wins over the step's.
    await recorder.call_started(
        "orphan",
        agent="a",
        transport="twilio",
        caller="+15550001111",
        started_at=T0 - timedelta(seconds=5),
    )
    await recorder.call_started(
        "orphan",
        agent="a",
        transport="twilio",
        caller="+15550001111",
        started_at=T0 + timedelta(hours=1),
    )
    assert await recorder.flush(timeout=60)
    call = await call_row(engine, "orphan")
    assert (call.transport, call.caller, call.outcome) == ("twilio", "+15550001111", "failed")
    assert call.started_at == T0 - timedelta(seconds=5)


async def test_bad_input_is_logged_and_counted_never_raised(
    engine: AsyncEngine, recorder: CallRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    await recorder.call_started("", agent="a")
    await recorder.call_started("x" * 200, agent="a")
    await recorder.call_started("ok", agent="a", direction="sideways")
    await recorder.call_ended("ok", "exploded")
    await recorder.record("ok", [], at=datetime(2026, 1, 1))  # naive time
    await recorder.record("ok", [], step=-1)
    assert recorder.stats.rejected == 6
    assert "time zone" in caplog.text and "exploded" in caplog.text

    # A malformed event is skipped; the rest of its step is stored, cleaned.
    await recorder.record(
        "ok",
        [
            CallEvent("agent", {"message_id": "m"}),  # no text
            CallEvent("outcome", {"outcome": "exploded"}),
            CallEvent(
                "agent", {"message_id": "m2", "text": "nul\x00byte", "agent": "a", "node": "n"}
            ),
            CallEvent(
                "tool",
                {
                    "name": "t",
                    "args": "not a mapping",
                    "result": {"x": float("nan"), "when": T0},
                    "error": "boom",
                },
            ),
        ],
        metrics={"e2e_ms": 900, "stt_ms": "fast", "tts_ttfa_ms": float("inf")},
    )
    assert await recorder.flush(timeout=60)
    assert recorder.stats.rejected == 8 and recorder.stats.dropped == 0
    turns = await rows(engine, Turn, "ok")
    assert [(t.text, t.latencies) for t in turns] == [("nulbyte", {"e2e_ms": 900.0})]
    (tool,) = await rows(engine, ToolCall, "ok")
    assert tool.arguments == {"value": "not a mapping"}
    assert tool.result == {"x": None, "when": T0.isoformat()}
    assert tool.error == "boom"


async def test_writes_wait_out_an_sqlite_outage_and_flush_once_in_order(
    tmp_path: Path,
) -> None:
    # The database file is ready in a staging directory; the recorder is pointed
    # at a directory that does not exist yet, so every connection fails.
    staging, live = tmp_path / "staging", tmp_path / "live"
    staging.mkdir()
    migrated = await init_db(f"sqlite:///{staging / 'calls.db'}")
    await migrated.dispose()
    live_url = f"sqlite:///{live / 'calls.db'}"
    sleep = FakeSleep()
    rec = CallRecorder.from_url(
        live_url, sleep=sleep, retry_initial_s=0.5, retry_max_s=4.0, max_pending=4
    )
    await rec.call_started("c1", agent="a", started_at=T0)
    await rec.record("c1", _step("m1"), caller_text="book please", step=1, at=T0)
    await rec.record("c1", _step("m2"), caller_text="again", step=2, at=T0)
    await rec.call_ended("c1", "completed", ended_at=T0 + timedelta(seconds=42))
    await rec.record("c1", _step("m3"), step=3)  # the buffer holds 4: this one is dropped
    await sleep.reached(6)
    assert rec.stats.pending == 4 and rec.stats.written == 0 and rec.stats.dropped == 1
    assert "OperationalError" in (rec.stats.last_error or "")
    assert sleep.delays[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]

    os.rename(staging, live)  # the database is back, all at once
    assert await rec.flush(timeout=60)
    assert rec.stats.pending == 0 and rec.stats.written == 4
    check = await init_db(live_url)
    try:
        assert await counts(check) == {
            "calls": 1,
            "turns": 4,
            "node_visits": 2,
            "tool_calls": 2,
            "intents": 2,
            "agents": 0,
            "recordings": 0,
        }
        call = await call_row(check, "c1")
        assert (call.outcome, call.duration_s) == ("completed", 42.0)
    finally:
        await check.dispose()
        assert await rec.close() == 0


@pytest.mark.postgres
async def test_writes_wait_out_a_postgresql_outage_and_flush_once(
    database_url: str, tmp_path: Path
) -> None:
    async with provision("postgresql", tmp_path, database_url) as db:
        await _outage_via_gate(db)


async def _outage_via_gate(db: Database) -> None:
    gate = TcpGate(*_host_port(db.url))
    port = await gate.start()
    sleep = FakeSleep()
    migrated = await init_db(db.url, schema=db.schema)
    through_gate = db.engine(db.url_via(port))
    rec = CallRecorder(through_gate, sleep=sleep)
    try:
        gate.open()
        await rec.call_started("pg-1", agent="a", started_at=T0)
        await rec.record("pg-1", _step("m1"), caller_text="one", step=1, at=T0)
        assert await rec.flush(timeout=60)

        gate.shut()  # the server goes away mid-call
        await rec.record("pg-1", _step("m2"), caller_text="two", step=2, at=T0)
        await rec.record("pg-1", _step("m3"), caller_text="three", step=3, at=T0)
        await rec.call_ended(
            "pg-1", "escalated", "asked for a person", ended_at=T0 + timedelta(minutes=2)
        )
        await sleep.reached(3)
        assert rec.stats.pending == 3
        assert (await counts(migrated))["turns"] == 2

        gate.open()
        assert await rec.flush(timeout=60)
        assert rec.stats.written == 5 and rec.stats.dropped == 0
        assert await counts(migrated) == {
            "calls": 1,
            "turns": 6,
            "node_visits": 3,
            "tool_calls": 3,
            "intents": 3,
            "agents": 0,
            "recordings": 0,
        }
        assert [t.text for t in await rows(migrated, Turn, "pg-1") if t.role == "caller"] == [
            "one",
            "two",
            "three",
        ]
        assert (await call_row(migrated, "pg-1")).duration_s == 120.0
    finally:
        await rec.close(timeout=1)
        await through_gate.dispose()
        await gate.stop()
        await migrated.dispose()


def _host_port(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


async def test_a_write_that_can_never_succeed_is_dropped_not_retried(
    database: Database, engine: AsyncEngine, recorder: CallRecorder
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite does not enforce column lengths")
    # The hash is longer than the column allows: a data error, forever.
    await recorder.call_started("c1", agent=AgentVersion(graph_id="a", content_hash="h" * 100))
    await recorder.record("c1", _step("m1"), caller_text="hi", step=1)
    assert await recorder.flush(timeout=60)
    assert recorder.stats.dropped == 1 and recorder.stats.retries == 0
    assert "DataError" in (recorder.stats.last_error or "") or "too long" in (
        recorder.stats.last_error or ""
    )
    assert (await counts(engine))["turns"] == 2


async def test_close_reports_writes_it_could_not_make() -> None:
    sleep = FakeSleep()
    # Nothing listens on port 1: every connection is refused at once.
    rec = CallRecorder.from_url("postgresql://u@127.0.0.1:1/db", sleep=sleep)
    await rec.call_started("c1", agent="a")
    await sleep.reached(2)
    # The database never comes back: close gives up after its timeout.
    assert await rec.close(timeout=0.2) == 1
    assert rec.stats.dropped == 1
    await rec.call_started("c2", agent="a")  # after close: rejected, not raised
    assert rec.stats.rejected == 1
