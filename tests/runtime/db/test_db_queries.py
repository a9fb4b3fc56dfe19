"""Call list, call detail, transcript search and analytics on a small seeded
data set whose answers were worked out by hand (see SEED), on SQLite and on
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import analytics as an
from runtime.db.agent_version import AgentVersion
from runtime.db.migrations import init_db
from runtime.db.models import Turn
from runtime.db.queries import (
    CallFilter,
    get_call,
    list_agents,
    list_calls,
    search_calls,
    text_match,
    transports,
)
from runtime.db.recorder import CallRecorder, Sentiment
from runtime.session import CallEvent
from tests.runtime.db.dbhelpers import DIALECTS, provision

H1, H2, H3 = "a1" * 32, "b2" * 32, "c3" * 32
DENTAL_V1 = AgentVersion("dental", H1, "/g/dental.yaml", "1" * 40, "Dental")
DENTAL_V2 = AgentVersion("dental", H2, "/g/dental.yaml", "2" * 40, "Dental")
BILLING = AgentVersion("billing", H3, "/g/billing.yaml", None, "Billing")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Step:
    caller: str | None = None
    agent: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    intent: tuple[str | None, float] | None = None
    tools: list[tuple[str, float, str | None]] = field(default_factory=list)
    metrics: dict[str, float] | None = None
    heard: tuple[str, str] | None = None


@dataclass
class SeedCall:
    id: str
    version: AgentVersion
    start: str
    duration_s: float | None
    outcome: str | None
    steps: list[Step]
    direction: str = "inbound"
    transport: str = "text"


# Worked answers (UTC unless noted; New York is UTC-5 in November):
# by day UTC 11-20: c1 c2 | 11-21: c3 | 11-22: c4 c5 | 11-23: c6
# by day New York 11-20: c1 c2 | 11-21: c3 c4 | 11-22: c5 | 11-23: c6
# by hour UTC 9: c1 c3 c6, 14: c2, 3: c4, 10: c5; New York 4: c1 c3 c6, 9: c2, 22: c4, 5: c5
# durations 45 130 20 400 700 (c5 unfinished): buckets 1 1 0 1 1 1, mean 259
# e2e_ms 1000 1200 1400 1600 -> p50 1300, p90 1540, p99 1594; stt_ms 100 200 300 -> 200 280 298
SEED = [
    SeedCall("c1", DENTAL_V1, "2026-11-20T09:15:00", 45, "completed", [
        Step(agent=["Thanks for calling. How can I help?"], nodes=["greeting", "route"]),
        Step("I need a cleaning", ["Which day suits you? We have plenty of openings."], ["ask_day"],
             ("book", 0.9), metrics={"e2e_ms": 1000, "stt_ms": 100}),
        Step("Tuesday", ["You're booked. Goodbye!"], ["book", "confirm"],
             tools=[("calendar.book", 10.0, None)], heard=("c1-1-0", "Which day suits you?")),
    ]),
    SeedCall("c2", DENTAL_V1, "2026-11-20T14:30:00", 130, "escalated", [
        Step(agent=["Thanks for calling."], nodes=["greeting", "route"]),
        Step("can I talk to a real person", ["Transferring you now."], ["escalate"],
             ("human", 0.8), metrics={"e2e_ms": 1200, "stt_ms": 200}),
    ]),
    SeedCall("c3", DENTAL_V2, "2026-11-21T09:45:00", 20, "abandoned", [
        Step(agent=["Thanks for calling."], nodes=["greeting", "route"]),
        Step("hmm what", ["Sorry, could you rephrase?"], ["clarify"], (None, 0.2),
             tools=[("calendar.find_slots", 30.0, "timeout")],
             metrics={"e2e_ms": 1400, "stt_ms": 300}),
    ]),
    SeedCall("c4", BILLING, "2026-11-22T03:00:00", 400, "completed", [
        Step("my bill is wrong", ["Let me look up your account."], ["lookup", "refund", "goodbye"],
             tools=[("billing.lookup", 20.0, None), ("billing.refund", 40.0, None)],
             metrics={"e2e_ms": 1600}),
    ], direction="outbound", transport="twilio"),
    SeedCall("c5", BILLING, "2026-11-22T10:00:00", None, None, [
        Step("refund please", [], ["lookup"]),
    ], direction="outbound", transport="twilio"),
    SeedCall("c6", DENTAL_V1, "2026-11-23T09:05:00", 700, "failed", [
        Step(agent=["Thanks for calling."], nodes=["greeting", "route"]),
        Step("book an appointment", ["Which day?"], ["ask_day"], ("book", 1.0),
             tools=[("calendar.book", 30.0, None)]),
    ]),
]  # fmt: skip


def events_of(call: SeedCall, index: int, step: Step) -> list[CallEvent]:
    agent = call.version.graph_id
    events = []
    if step.intent is not None:
        events.append(CallEvent("intent", {"name": step.intent[0], "confidence": step.intent[1]}))
    for node in step.nodes:
        events.append(CallEvent("node", {"agent": agent, "node": node}))
    for name, ms, error in step.tools:
        result = None if error else {"ok": 1}
        data = {"name": name, "args": {"n": 1}, "result": result, "error": error}
        events.append(CallEvent("tool", {**data, "duration_ms": ms, "node": step.nodes[-1]}))
    for i, line in enumerate(step.agent):
        data = {"message_id": f"{call.id}-{index}-{i}", "text": line, "agent": agent}
        events.append(CallEvent("agent", data))
    if step.heard:
        events.append(CallEvent("heard", {"message_id": step.heard[0], "text": step.heard[1]}))
    return events


async def seed(engine: AsyncEngine) -> None:
    rec = CallRecorder(engine)
    for call in SEED:
        start = utc(call.start)
        await rec.call_started(
            call.id,
            agent=call.version,
            direction=call.direction,
            transport=call.transport,
            caller="+15551230001",
            started_at=start,
        )
        for i, step in enumerate(call.steps):
            at = start + timedelta(seconds=i)
            await rec.record(
                call.id, events_of(call, i, step), step=i, caller_text=step.caller,
                metrics=step.metrics, at=at, ended_at=at,
            )  # fmt: skip
        if call.outcome is not None:
            assert call.duration_s is not None
            await rec.call_ended(
                call.id,
                call.outcome,
                ended_at=start + timedelta(seconds=call.duration_s),
                sentiment=Sentiment(0.5, "positive", "lexicon"),
            )
    assert await rec.close(timeout=60) == 0
    assert rec.stats.written == 6 + sum(len(c.steps) for c in SEED) + 5


# The seeded database is only read: one per dialect for the whole module.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=DIALECTS)
async def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    pg_url = request.getfixturevalue("database_url") if request.param == "postgresql" else None
    async with provision(request.param, tmp_path_factory.mktemp("queries"), pg_url) as db:
        engine = await init_db(db.url, schema=db.schema)
        try:
            await seed(engine)
            yield engine
        finally:
            await engine.dispose()


def ids(page: Any) -> list[str]:
    return [c.id for c in page.items]


async def test_the_call_list_filters_by_every_criterion(seeded: AsyncEngine) -> None:
    async def ids_for(**criteria: Any) -> list[str]:
        page = await list_calls(
            seeded, CallFilter(**criteria), order_by="started_at", descending=False
        )
        assert page.total == len(page.items)
        return ids(page)

    assert await ids_for() == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert await ids_for(agent="dental") == ["c1", "c2", "c3", "c6"]
    assert await ids_for(version=H1) == ["c1", "c2", "c6"]
    assert await ids_for(version=H2[:8]) == ["c3"]  # a hash prefix
    assert await ids_for(version="2" * 40) == ["c3"]  # a git commit
    assert await ids_for(version="a1") == []  # too short to be a prefix
    assert await ids_for(since=utc("2026-11-21T00:00:00"), until=utc("2026-11-22T10:00:00")) == [
        "c3",
        "c4",
    ]
    assert await ids_for(since=datetime(2026, 11, 23)) == ["c6"]  # naive = UTC
    assert await ids_for(outcome="completed") == ["c1", "c4"]
    assert await ids_for(transport="twilio") == ["c4", "c5"]
    assert await ids_for(direction="outbound", agent="dental") == []
    assert await ids_for(text="cleaning") == ["c1"]
    assert await ids_for(text="REFUND", agent="billing") == ["c5"]
    assert await ids_for(text="  ?! ") == ["c1", "c2", "c3", "c4", "c5", "c6"]  # no words


async def test_transports_are_those_recorded(seeded: AsyncEngine) -> None:
    assert await transports(seeded) == ["text", "twilio"]


async def test_pages_and_orders(seeded: AsyncEngine) -> None:
    first = await list_calls(seeded, limit=2)
    second = await list_calls(seeded, limit=2, offset=2)
    last = await list_calls(seeded, limit=2, offset=4)
    assert (ids(first), ids(second), ids(last)) == (["c6", "c5"], ["c4", "c3"], ["c2", "c1"])
    assert first.total == 6 and (first.limit, second.offset) == (2, 2)
    by_duration = await list_calls(seeded, order_by="duration", descending=False)
    assert ids(by_duration) == ["c3", "c1", "c2", "c4", "c6", "c5"]  # unfinished last
    by_outcome = await list_calls(seeded, order_by="outcome", descending=False)
    assert ids(by_outcome) == ["c3", "c1", "c4", "c2", "c6", "c5"]
    summary = first.items[1]
    assert (summary.id, summary.turn_count, summary.outcome, summary.ended_at) == (
        "c5",
        1,
        None,
        None,
    )
    assert first.items[0].sentiment_label == "positive"
    with pytest.raises(ValueError, match="limit"):
        await list_calls(seeded, limit=0)
    with pytest.raises(ValueError, match="order_by"):
        await list_calls(seeded, order_by="caller")  # type: ignore[arg-type]


async def test_one_call_with_transcript_path_tools_and_version(seeded: AsyncEngine) -> None:
    call = await get_call(seeded, "c1")
    assert call is not None
    assert [(t.index, t.step, t.role, t.text) for t in call.turns] == [
        (0, 0, "agent", "Thanks for calling. How can I help?"),
        (1, 1, "caller", "I need a cleaning"),
        (2, 1, "agent", "Which day suits you? We have plenty of openings."),
        (3, 2, "caller", "Tuesday"),
        (4, 2, "agent", "You're booked. Goodbye!"),
    ]
    cut = call.turns[2]
    assert (cut.interrupted, cut.heard_text) == (True, "Which day suits you?")
    assert cut.latencies == {"e2e_ms": 1000.0, "stt_ms": 100.0}
    assert [v.node for v in call.visits] == ["greeting", "route", "ask_day", "book", "confirm"]
    assert [(t.name, t.arguments, t.result, t.duration_ms) for t in call.tool_calls] == [
        ("calendar.book", {"n": 1}, {"ok": 1}, 10.0)
    ]
    assert [(i.name, i.confidence) for i in call.intents] == [("book", 0.9)]
    assert (call.duration_s, call.outcome, call.graph_hash) == (45.0, "completed", H1)
    assert call.started_at == utc("2026-11-20T09:15:00")
    assert call.agent_version is not None
    assert (call.agent_version.git_commit, call.agent_version.name) == ("1" * 40, "Dental")
    assert await get_call(seeded, "nope") is None


async def test_agent_versions_with_their_calls(seeded: AsyncEngine) -> None:
    versions = await list_agents(seeded)
    # Newest version first within a graph.
    assert [(v.graph_id, v.content_hash, v.calls) for v in versions] == [
        ("billing", H3, 2),
        ("dental", H2, 1),
        ("dental", H1, 3),
    ]
    dental = await list_agents(seeded, "dental")
    assert {v.content_hash: v.last_call_at for v in dental} == {
        H1: utc("2026-11-23T09:05:00"),
        H2: utc("2026-11-21T09:45:00"),
    }


async def test_transcript_search(seeded: AsyncEngine) -> None:
    assert ids(await search_calls(seeded, "real person")) == ["c2"]
    assert ids(await search_calls(seeded, "cleaning", CallFilter(agent="billing"))) == []
    if seeded.dialect.name == "postgresql":
        # English stemming: "cleanings" finds "cleaning", "booking" finds
        # "booked" (c1) and "book" (c6).
        assert ids(await search_calls(seeded, "cleanings")) == ["c1"]
        assert ids(await search_calls(seeded, "booking")) == ["c6", "c1"]
        assert ids(await search_calls(seeded, '"real person" -cleaning')) == ["c2"]
    else:
        # Substring match of every word, any case, within one turn.
        assert ids(await search_calls(seeded, "CLEAN")) == ["c1"]
        assert ids(await search_calls(seeded, "real cleaning")) == []
        # '_' is a literal character, not a LIKE wildcard.
        assert ids(await search_calls(seeded, "re_l")) == []


@pytest.mark.postgres
async def test_postgresql_search_uses_the_full_text_index(seeded: AsyncEngine) -> None:
    if seeded.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    stmt = select(Turn.call_id).where(text_match("postgresql", "cleaning"))
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    async with seeded.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join((await conn.execute(text("EXPLAIN " + sql))).scalars())
    assert "ix_turns_text_search" in plan, plan


async def test_volumes_by_day_and_hour_in_any_time_zone(seeded: AsyncEngine) -> None:
    by_day = await an.volumes_by_day(seeded)
    assert [(d.day.isoformat(), d.calls) for d in by_day] == [
        ("2026-11-20", 2),
        ("2026-11-21", 1),
        ("2026-11-22", 2),
        ("2026-11-23", 1),
    ]
    ny = await an.volumes_by_day(seeded, tz="America/New_York")
    assert [d.calls for d in ny] == [2, 2, 1, 1]
    dental = await an.volumes_by_day(seeded, CallFilter(agent="dental", version=H1))
    assert [(d.day, d.calls) for d in dental] == [(date(2026, 11, 20), 2), (date(2026, 11, 23), 1)]

    hours = {h.hour: h.calls for h in await an.volumes_by_hour(seeded)}
    assert len(hours) == 24
    assert {h: n for h, n in hours.items() if n} == {3: 1, 9: 3, 10: 1, 14: 1}
    ny_hours = await an.volumes_by_hour(seeded, tz="America/New_York")
    assert {h.hour: h.calls for h in ny_hours if h.calls} == {4: 3, 5: 1, 9: 1, 22: 1}
    with pytest.raises(ValueError, match="time zone"):
        await an.volumes_by_day(seeded, tz="Mars/Olympus")


async def test_durations_and_outcome_rates(seeded: AsyncEngine) -> None:
    dist = await an.duration_distribution(seeded)
    assert [(b.lower_s, b.upper_s, b.calls) for b in dist.buckets] == [
        (0, 30, 1),
        (30, 60, 1),
        (60, 120, 0),
        (120, 300, 1),
        (300, 600, 1),
        (600, None, 1),
    ]
    assert (dist.calls, dist.mean_s, dist.unfinished) == (5, 259.0, 1)
    short = await an.duration_distribution(seeded, CallFilter(agent="dental"), edges_s=[60])
    assert [b.calls for b in short.buckets] == [2, 2]
    with pytest.raises(ValueError, match="increasing"):
        await an.duration_distribution(seeded, edges_s=[60, 30])

    rates = {r.agent: r for r in await an.outcome_rates(seeded)}
    dental, billing = rates["dental"], rates["billing"]
    assert (dental.calls, dental.finished, dental.unfinished) == (4, 4, 0)
    assert dental.counts == {
        "completed": 1,
        "escalated": 1,
        "handed_off": 0,
        "abandoned": 1,
        "failed": 1,
    }
    assert dental.rates["escalated"] == 0.25 and dental.rates["handed_off"] == 0.0
    assert (billing.calls, billing.finished, billing.unfinished) == (2, 1, 1)
    assert billing.rates["completed"] == 1.0
    v2 = await an.outcome_rates(seeded, CallFilter(version=H2))
    assert [(r.agent, r.counts["abandoned"]) for r in v2] == [("dental", 1)]


async def test_intents_and_fallback_rate(seeded: AsyncEngine) -> None:
    dist = await an.intent_distribution(seeded)
    assert [(i.name, i.count, i.share) for i in dist.intents] == [
        ("book", 2, 0.5),
        (None, 1, 0.25),
        ("human", 1, 0.25),
    ]
    assert dist.intents[0].mean_confidence == pytest.approx(0.95)
    assert (dist.total, dist.fallback_rate) == (4, 0.25)
    v1 = await an.intent_distribution(seeded, CallFilter(version=H1))
    assert (v1.total, v1.fallback_rate) == (3, 0.0)
    none = await an.intent_distribution(seeded, CallFilter(agent="billing"))
    assert (none.total, none.fallback_rate, none.intents) == (0, 0.0, [])


async def test_node_funnel(seeded: AsyncEngine) -> None:
    funnel = await an.node_funnel(seeded)
    assert funnel.calls == 6
    nodes = {(n.agent, n.node): n for n in funnel.nodes}
    assert [(n.node, n.reached) for n in funnel.nodes[:4]] == [
        ("greeting", 4),
        ("route", 4),
        ("lookup", 2),
        ("ask_day", 2),
    ]
    assert nodes[("dental", "greeting")].share == pytest.approx(4 / 6)
    assert nodes[("dental", "route")].ended_here == 0
    assert nodes[("dental", "confirm")].ended_by_outcome == {"completed": 1}
    assert nodes[("dental", "ask_day")].ended_by_outcome == {"failed": 1}
    assert nodes[("dental", "clarify")].ended_by_outcome == {"abandoned": 1}
    assert nodes[("dental", "escalate")].ended_by_outcome == {"escalated": 1}
    assert nodes[("billing", "lookup")].ended_by_outcome == {"unfinished": 1}
    assert nodes[("billing", "goodbye")].ended_by_outcome == {"completed": 1}
    assert sum(n.ended_here for n in funnel.nodes) == 6
    only_v2 = await an.node_funnel(seeded, CallFilter(version=H2))
    assert {n.node: n.share for n in only_v2.nodes} == {"greeting": 1, "route": 1, "clarify": 1}


async def test_tool_usage(seeded: AsyncEngine) -> None:
    usage = {t.name: t for t in await an.tool_usage(seeded)}
    assert list(usage) == [
        "billing.lookup",
        "billing.refund",
        "calendar.book",
        "calendar.find_slots",
    ]
    book = usage["calendar.book"]
    assert (book.calls, book.errors, book.error_rate, book.p50_ms, book.p90_ms) == (
        2,
        0,
        0.0,
        20.0,
        28.0,
    )
    slots = usage["calendar.find_slots"]
    assert (slots.calls, slots.errors, slots.error_rate, slots.p50_ms) == (1, 1, 1.0, 30.0)
    march = await an.tool_usage(seeded, CallFilter(since=utc("2026-11-23T00:00:00")))
    assert [(t.name, t.calls, t.p90_ms) for t in march] == [("calendar.book", 1, 30.0)]


async def test_latency_percentiles_per_stage_and_day(seeded: AsyncEngine) -> None:
    stages = {s.stage: s for s in await an.latency_percentiles(seeded)}
    assert set(stages) == {"e2e_ms", "stt_ms"}
    e2e, stt = stages["e2e_ms"], stages["stt_ms"]
    assert (e2e.count, e2e.p50, e2e.p90, e2e.p99) == (
        4,
        1300,
        pytest.approx(1540),
        pytest.approx(1594),
    )
    assert (stt.count, stt.p50, stt.p90, stt.p99) == (
        3,
        200,
        pytest.approx(280),
        pytest.approx(298),
    )
    by_day = await an.latency_percentiles(seeded, CallFilter(agent="dental"), by_day=True)
    assert [(s.day, s.stage, s.count, s.p50) for s in by_day] == [
        (date(2026, 11, 20), "e2e_ms", 2, 1100),
        (date(2026, 11, 20), "stt_ms", 2, 150),
        (date(2026, 11, 21), "e2e_ms", 1, 1400),
        (date(2026, 11, 21), "stt_ms", 1, 300),
    ]
    assert await an.latency_percentiles(seeded, CallFilter(agent="nobody")) == []
