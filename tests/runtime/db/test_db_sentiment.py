"""Sentiment at the end of every recorded call (the recorder's scorer hook),
and the quality aggregates (sentiment per agent and per call, rerouted
intents), on SQLite and PostgreSQL, checked against values computed here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.analytics_quality import call_sentiments, intent_reroutes, sentiment_by_agent
from runtime.db.models import Call
from runtime.db.queries import CallFilter
from runtime.db.recorder import CallRecorder, Sentiment
from runtime.sentiment import LexiconScorer, lexicon_score
from runtime.session import CallEvent

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HAPPY = ["great, thanks so much", "perfect"]
ANGRY = ["this is useless", "I hate waiting, terrible service"]


def agent_line(text: str, agent: str = "a") -> CallEvent:
    return CallEvent("agent", {"text": text, "agent": agent, "node": "n", "message_id": text})


def ended(outcome: str = "completed") -> CallEvent:
    return CallEvent("outcome", {"outcome": outcome})


async def record_call(
    rec: CallRecorder, call_id: str, agent: str, said: Sequence[str], *, end_in_step: bool = True
) -> None:
    await rec.call_started(call_id, agent=agent, started_at=T0)
    await rec.record(call_id, [agent_line("Hello")], step=0, at=T0)
    for i, text in enumerate(said, start=1):
        last = i == len(said)
        events = [agent_line(f"ok {i}"), *([ended()] if last and end_in_step else [])]
        await rec.record(call_id, events, step=i, caller_text=text, at=T0 + timedelta(seconds=i))


async def sentiments(engine: AsyncEngine) -> dict[str, tuple[Any, Any, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Call.id, Call.sentiment_score, Call.sentiment_label, Call.sentiment_method)
        )
        return {r.id: (r.sentiment_score, r.sentiment_label, r.sentiment_method) for r in rows}


class Broken:
    method = "broken"

    async def score(self, texts: Sequence[str]) -> Sentiment:
        raise RuntimeError("scorer down")


async def test_every_call_gets_the_sentiment_of_its_caller_turns(engine: AsyncEngine) -> None:
    rec = CallRecorder(engine, sentiment=LexiconScorer())
    await record_call(rec, "happy", "a", HAPPY)  # ends with an outcome event
    await record_call(rec, "angry", "a", ANGRY, end_in_step=False)
    await rec.call_ended("angry", "abandoned", ended_at=T0 + timedelta(minutes=1))
    await record_call(rec, "given", "b", ANGRY)
    # a sentiment given at the end wins over the computed one
    await rec.call_ended("given", "completed", sentiment=Sentiment(0.9, "positive", "manual"))
    await record_call(rec, "open", "b", HAPPY, end_in_step=False)  # still in progress
    assert await rec.close(timeout=60) == 0
    assert rec.stats.dropped == rec.stats.rejected == 0

    got = await sentiments(engine)
    happy, angry = round(lexicon_score(HAPPY), 4), round(lexicon_score(ANGRY), 4)
    assert got["happy"] == (happy, "positive", "lexicon:vader") and happy > 0.3
    assert got["angry"] == (angry, "negative", "lexicon:vader") and angry < -0.3
    assert got["given"] == (0.9, "positive", "manual")
    assert got["open"] == (None, None, None)


async def test_a_failing_scorer_leaves_calls_recorded_without_sentiment(
    engine: AsyncEngine,
) -> None:
    rec = CallRecorder(engine, sentiment=Broken())
    await record_call(rec, "c1", "a", HAPPY)
    assert await rec.close(timeout=60) == 0
    assert rec.stats.dropped == 0 and "scorer down" in (rec.stats.last_error or "")
    async with engine.connect() as conn:
        outcome = (await conn.execute(select(Call.outcome).where(Call.id == "c1"))).scalar_one()
    assert outcome == "completed"
    assert (await sentiments(engine))["c1"] == (None, None, None)


async def test_sentiment_aggregates_per_agent_and_per_call(engine: AsyncEngine) -> None:
    rec = CallRecorder(engine, sentiment=LexiconScorer())
    plan = {"a1": ("a", HAPPY), "a2": ("a", ANGRY), "a3": ("a", HAPPY), "b1": ("b", ["hm"])}
    for call_id, (agent, said) in plan.items():
        await record_call(rec, call_id, agent, said)
    await record_call(rec, "b2", "b", HAPPY, end_in_step=False)  # not ended: no sentiment
    assert await rec.close(timeout=60) == 0

    per_agent = {s.agent: s for s in await sentiment_by_agent(engine)}
    expected_a = [lexicon_score(HAPPY), lexicon_score(ANGRY), lexicon_score(HAPPY)]
    a = per_agent["a"]
    assert (a.calls, a.scored, a.labels) == (
        3,
        3,
        {"positive": 2, "neutral": 0, "negative": 1},
    )
    assert a.mean_score is not None
    assert abs(a.mean_score - sum(expected_a) / 3) < 1e-3
    assert a.methods == {"lexicon:vader": 3}
    b = per_agent["b"]
    assert (b.calls, b.scored, b.labels["neutral"]) == (2, 1, 1)

    only_a = await call_sentiments(engine, CallFilter(agent="a"))
    assert sorted(c.id for c in only_a) == ["a1", "a2", "a3"]
    assert {c.id: c.label for c in only_a}["a2"] == "negative"
    assert {c.id for c in await call_sentiments(engine)} == {"a1", "a2", "a3", "b1"}


def intent(name: str | None, node: str) -> CallEvent:
    return CallEvent("intent", {"name": name, "node": node, "confidence": 0.8})


def visit(agent: str, node: str) -> CallEvent:
    return CallEvent("node", {"agent": agent, "node": node})


async def test_rerouted_intents_are_told_apart_by_agent(engine: AsyncEngine) -> None:
    """Two agents with a node called `route`: the front desk hands over to the
    dental desk, whose `route` classifies the same words in the same step."""
    rec = CallRecorder(engine)
    steps = {
        # call 1: routed to dental, the dental desk books; never asked again
        "c1": [
            [visit("front", "greeting"), visit("front", "route")],
            [intent("dental", "route"), visit("front", "to_dental"),
             visit("dental", "route"), intent("book", "route"), visit("dental", "ask_day")],
            [intent("human", "ask_day"), visit("dental", "escalate")],
        ],
        # call 2: a fallback, then "hello" loops back to the same router, then billing
        "c2": [
            [visit("front", "route")],
            [intent(None, "route"), visit("front", "clarify"), visit("front", "route")],
            [intent("hello", "route"), visit("front", "offer_help"), visit("front", "route")],
            [intent("billing", "route"), visit("front", "to_billing")],
        ],
    }  # fmt: skip
    for call_id, call_steps in steps.items():
        await rec.call_started(call_id, agent="front", started_at=T0)
        for i, events in enumerate(call_steps):
            await rec.record(call_id, events, step=i, caller_text=None if i == 0 else f"t{i}")
    assert await rec.close(timeout=60) == 0

    got = {(r.agent, r.node, r.intent): (r.classifications, r.rerouted) for r in
           await intent_reroutes(engine)}  # fmt: skip
    assert got == {
        ("front", "route", "dental"): (1, 0),
        ("dental", "route", "book"): (1, 0),
        ("dental", "ask_day", "human"): (1, 0),
        ("front", "route", "hello"): (1, 1),
        ("front", "route", "billing"): (1, 0),
    }
    assert (await intent_reroutes(engine))[0].intent == "hello"
    assert await intent_reroutes(engine, CallFilter(agent="nobody")) == []


async def test_a_dropped_read_of_the_caller_turns_ends_the_scoring(engine: AsyncEngine) -> None:
    # The buffer holds two writes: the call and its last step; reading the
    # caller turns back does not fit and is dropped, so nothing is scored and
    # closing the recorder does not wait for a scoring that cannot happen.
    rec = CallRecorder(engine, sentiment=LexiconScorer(), max_pending=2)
    await rec.call_started("full", agent="a", started_at=T0)
    await rec.record("full", [agent_line("bye"), ended()], step=1, caller_text="thanks a lot")
    assert rec.stats.dropped == 1
    assert await rec.close(timeout=60) == 0
    assert rec.stats.written == 2
    assert (await sentiments(engine))["full"] == (None, None, None)
