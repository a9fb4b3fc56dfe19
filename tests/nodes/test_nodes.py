"""Node kinds as a caller meets them: say, collect, route, tool, branch,
handoff, escalate, end, and the global intents every waiting node arbitrates.

Routing is exact-match (`ExactIntents`) except where the classifier's
judgement is the subject (the yes/no answer that must not be stolen)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from runtime.convtest import compile_for_tests
from runtime.intents import IntentMatch
from tests.runtime.fixtures.calls import (
    ExactIntents,
    compile_graphs,
    fixed_clock,
    graph,
    of_type,
    said,
    session,
    waiting_at,
)
from tools.builtin import default_registry
from tools.registry import Tool, ToolRegistry
from tools.store import DemoStore

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"

INTAKE = """
schema: switchboard/v1
id: intake
name: Intake
start: hello
fallback_line: Sorry, we could not continue. Goodbye.
variables: {place: the clinic}
global_intents:
  repeat: {examples: [say that again], action: repeat}
  human: {examples: [operator please], goto: person}
nodes:
  hello: {type: say, text: "Welcome to {place}.", next: ask_age}
  ask_age:
    type: collect
    slot: age
    kind: number
    prompt: How old are you?
    reprompt: Please say a number.
    max_attempts: 2
    next: ask_ok
    on_fail: person
  ask_ok:
    type: collect
    slot: ok
    kind: yes_no
    prompt: "You are {age}. Is that right?"
    max_attempts: 2
    next: done
  person: {type: escalate, reason: "caller needs help at {place}", queue: desk}
  done: {type: end, text: "Thanks, noted {age}."}
"""


@pytest.fixture
def intake() -> Any:
    return compile_graphs(graph(INTAKE))


# --- say / collect -------------------------------------------------------------------------


async def test_start_says_and_stops_at_the_first_question(intake: Any) -> None:
    call = session(intake)
    events = await call.start()
    assert said(events) == ["Welcome to the clinic.", "How old are you?"]
    assert waiting_at(events) == "ask_age"
    state = await call.state()
    assert state["node"] == "ask_age"
    assert state["awaiting"] == "ask_age"
    assert state["visited"] == ["intake/hello", "intake/ask_age"]
    assert state["outcome"] is None


async def test_collect_fills_a_typed_slot_and_moves_on(intake: Any) -> None:
    call = session(intake)
    await call.start()
    events = await call.send("I'm forty two")
    assert {"name": "age", "value": 42} in of_type(events, "slot")
    assert said(events) == ["You are 42. Is that right?"]
    assert waiting_at(events) == "ask_ok"
    state = await call.state()
    assert state["vars"]["age"] == 42
    assert state["vars"]["last_utterance"] == "I'm forty two"


async def test_collect_reprompts_then_leaves_through_on_fail(intake: Any) -> None:
    call = session(intake)
    await call.start()
    first = await call.send("banana")
    assert said(first) == ["Please say a number."]
    assert waiting_at(first) == "ask_age"
    assert (await call.state())["attempts"]["ask_age"] == 1
    second = await call.send("still banana")
    assert "Please say a number." not in said(second)
    assert of_type(second, "outcome") == [
        {"outcome": "escalated", "reason": "caller needs help at the clinic (queue desk)"}
    ]
    state = await call.state()
    assert state["node"] == "person"
    assert "age" not in state["vars"]


async def test_collect_without_on_fail_ends_failed_with_the_fallback_line(intake: Any) -> None:
    call = session(intake)
    await call.start()
    await call.send("30")
    reprompt = await call.send("purple")
    assert said(reprompt) == ["Sorry, I didn't catch that. You are 30. Is that right?"]
    events = await call.send("orange")
    assert said(events) == ["Sorry, we could not continue. Goodbye."]
    [outcome] = of_type(events, "outcome")
    assert outcome["outcome"] == "failed"
    assert "'ok'" in outcome["reason"]
    assert await call.ended()


async def test_a_successful_answer_resets_the_attempt_count(intake: Any) -> None:
    call = session(intake)
    await call.start()
    await call.send("banana")
    await call.send("25")
    state = await call.state()
    assert state["attempts"]["ask_age"] == 0
    assert state["node"] == "ask_ok"


async def test_end_completes_with_a_rendered_goodbye(intake: Any) -> None:
    call = session(intake)
    await call.start()
    await call.send("25")
    events = await call.send("yes")
    assert said(events) == ["Thanks, noted 25."]
    assert of_type(events, "outcome") == [{"outcome": "completed", "reason": None}]
    state = await call.state()
    assert state["vars"]["ok"] is True
    assert state["outcome"] == "completed"
    assert state["awaiting"] is None


# --- global intents ---------------------------------------------------------------------------


async def test_global_repeat_says_the_last_line_again_and_keeps_waiting(intake: Any) -> None:
    call = session(intake)
    await call.start()
    events = await call.send("say that again")
    assert said(events) == ["How old are you?"]
    assert waiting_at(events) == "ask_age"
    state = await call.state()
    assert state["intent"] == {"name": "repeat", "confidence": 1.0, "node": "ask_age"}


async def test_repeat_is_not_a_failed_attempt(intake: Any) -> None:
    call = session(intake)
    await call.start()
    await call.send("say that again")
    await call.send("say that again")
    events = await call.send("banana")  # max_attempts is 2: this is only the first failure
    assert said(events) == ["Please say a number."]
    assert not of_type(events, "outcome")


async def test_global_goto_leaves_from_a_question(intake: Any) -> None:
    call = session(intake)
    await call.start()
    events = await call.send("operator please")
    assert [o["outcome"] for o in of_type(events, "outcome")] == ["escalated"]
    assert (await call.state())["vars"]["intent"] == "human"


YES_NO = """
schema: switchboard/v1
id: confirm
name: Confirm
start: ask
global_intents:
  repeat:
    examples: [can you repeat that, say that again please, sorry what did you say]
    action: repeat
nodes:
  ask: {type: collect, slot: agree, kind: yes_no, prompt: Shall I book it?, next: done}
  done: {type: end, text: "Answer {agree}."}
"""


@pytest.mark.parametrize("answer", ["yes please", "yes", "yeah please do"])
async def test_a_global_intent_does_not_steal_a_yes_no_answer(answer: str) -> None:
    call = session(compile_graphs(graph(YES_NO), intent_sets=None))  # real classifier
    await call.start()
    events = await call.send(answer)
    assert said(events) == ["Answer yes."]
    assert (await call.state())["vars"]["agree"] is True


async def test_a_real_repeat_request_repeats_the_yes_no_question() -> None:
    call = session(compile_graphs(graph(YES_NO), intent_sets=None))
    await call.start()
    events = await call.send("sorry, what did you say?")
    assert said(events) == ["Shall I book it?"]
    assert waiting_at(events) == "ask"


# --- route ------------------------------------------------------------------------------------

ROUTER = """
schema: switchboard/v1
id: router
name: Router
start: route
global_intents:
  repeat: {examples: [say that again], action: repeat}
nodes:
  route:
    type: route
    prompt: Sales or support?
    intents:
      sales: {examples: [buy something], next: sales}
      support: {examples: [fix something], next: support}
    fallback: clarify
  clarify: {type: say, text: "Sorry, sales or support?", next: route}
  sales: {type: end, text: Sales.}
  support: {type: end, text: Support.}
"""


async def test_route_records_the_intent_with_confidence_and_follows_it() -> None:
    call = session(compile_graphs(graph(ROUTER)))
    assert said(await call.start()) == ["Sales or support?"]
    events = await call.send("fix something")
    assert of_type(events, "intent") == [{"name": "support", "confidence": 1.0, "node": "route"}]
    assert said(events) == ["Support."]
    state = await call.state()
    assert state["intent"] == {"name": "support", "confidence": 1.0, "node": "route"}
    assert state["vars"]["intent"] == "support"


async def test_route_fallback_then_a_second_try() -> None:
    call = session(compile_graphs(graph(ROUTER)))
    await call.start()
    events = await call.send("what's the weather")
    assert of_type(events, "intent") == [{"name": None, "confidence": 0.0, "node": "route"}]
    assert said(events) == ["Sorry, sales or support?", "Sales or support?"]
    assert waiting_at(events) == "route"
    assert said(await call.send("buy something")) == ["Sales."]


async def test_route_repeat_is_a_global_intent_not_a_fallback() -> None:
    call = session(compile_graphs(graph(ROUTER)))
    await call.start()
    events = await call.send("say that again")
    assert said(events) == ["Sales or support?"]
    state = await call.state()
    assert "router/clarify" not in state["visited"]
    assert state["intent"] == {"name": "repeat", "confidence": 1.0, "node": "route"}


# --- tool -------------------------------------------------------------------------------------

TOOLS = """
schema: switchboard/v1
id: tools
name: Tools
start: lookup
fallback_line: Our system is down, sorry.
variables: {account: A-7, count: 3}
nodes:
  lookup:
    type: tool
    tool: TOOL_NAME
    args: {id: "{account}", n: "{count}", note: "acct {account}"}
    result: acct
    say: "Found {acct.name}."
    timeout_s: 0.05
    next: done
    ON_ERROR
  sorry: {type: say, text: "That failed.", next: done}
  done: {type: end, text: "Bye."}
"""


def tools_graph(tool: str, *, on_error: bool = True) -> Any:
    text = TOOLS.replace("TOOL_NAME", tool).replace(
        "ON_ERROR", "on_error: sorry" if on_error else ""
    )
    return compile_graphs(graph(text))


ACCOUNT_PARAMS = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "n": {"type": "integer"},
        "note": {"type": "string"},
    },
    "required": ["id", "n"],
}


def registry() -> ToolRegistry:
    async def lookup(id: str, n: int, note: str = "") -> dict[str, Any]:
        return {"name": f"Ann ({id} x{n})", "note": note}

    def broken(**_: Any) -> None:
        raise RuntimeError("database unreachable")

    async def slow(**_: Any) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {"name": "too late"}

    return ToolRegistry(
        [
            Tool("acct.lookup", "Look up", ACCOUNT_PARAMS, lookup),
            Tool("acct.broken", "Fails", ACCOUNT_PARAMS, broken),
            Tool("acct.slow", "Hangs", ACCOUNT_PARAMS, slow),
            Tool(
                "acct.strict",
                "Wants a number id",
                {"type": "object", "properties": {"id": {"type": "integer"}}},
                lookup,
            ),
        ]
    )


async def test_tool_result_is_kept_said_and_recorded_with_typed_args() -> None:
    call = session(tools_graph("acct.lookup"), tools=registry())
    events = await call.start()
    assert said(events) == ["Found Ann (A-7 x3).", "Bye."]
    [record] = of_type(events, "tool")
    assert record["args"] == {"id": "A-7", "n": 3, "note": "acct A-7"}
    assert record["error"] is None
    assert record["node"] == "lookup"
    state = await call.state()
    assert state["vars"]["acct"] == {"name": "Ann (A-7 x3)", "note": "acct A-7"}
    assert state["tool_calls"][0]["result"] == state["vars"]["acct"]
    assert state["outcome"] == "completed"


@pytest.mark.parametrize(
    ("tool", "error"),
    [
        ("acct.broken", "acct.broken failed: RuntimeError: database unreachable"),
        ("acct.slow", "acct.slow timed out after 0.05 s"),
        ("acct.strict", "invalid arguments for acct.strict: id: 'A-7' is not of type 'integer'"),
        ("acct.missing", "unknown tool 'acct.missing'"),
    ],
)
async def test_tool_failure_follows_on_error_and_is_recorded(tool: str, error: str) -> None:
    call = session(tools_graph(tool), tools=registry())
    events = await call.start()
    assert said(events) == ["That failed.", "Bye."]
    [record] = of_type(events, "tool")
    assert record["name"] == tool
    assert record["error"] == error
    assert record["result"] is None
    state = await call.state()
    assert state["vars"]["error"] == error
    assert "acct" not in state["vars"]
    assert state["visited"] == ["tools/lookup", "tools/sorry", "tools/done"]


async def test_tool_timeout_does_not_wait_for_the_tool() -> None:
    call = session(tools_graph("acct.slow"), tools=registry())
    events = await asyncio.wait_for(call.start(), timeout=3)
    assert of_type(events, "tool")[0]["duration_ms"] < 3000


async def test_tool_failure_without_on_error_says_fallback_and_fails() -> None:
    call = session(tools_graph("acct.broken", on_error=False), tools=registry())
    events = await call.start()
    assert said(events) == ["Our system is down, sorry."]
    assert of_type(events, "outcome") == [
        {"outcome": "failed", "reason": "acct.broken failed: RuntimeError: database unreachable"}
    ]
    assert await call.ended()


# --- branch -----------------------------------------------------------------------------------

BRANCH = """
schema: switchboard/v1
id: branchy
name: Branchy
start: check
variables: {tier: silver, balance: 0}
nodes:
  check:
    type: branch
    cases:
      - when: [{var: tier, op: eq, value: gold}, {var: balance, op: gt, value: 100}]
        next: vip
      - when: [{var: tier, op: eq, value: gold}, {var: flags.overdue, op: exists}]
        match: any
        next: watch
    default: normal
  vip: {type: end, text: VIP}
  watch: {type: end, text: WATCH}
  normal: {type: end, text: NORMAL}
"""


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        ({"tier": "Gold", "balance": 250}, "VIP"),
        ({"tier": "gold", "balance": "150"}, "VIP"),
        ({"tier": "gold", "balance": 50}, "WATCH"),
        ({"flags": {"overdue": True}}, "WATCH"),
        ({"flags": {"overdue": ""}}, "NORMAL"),
        ({"balance": "lots"}, "NORMAL"),
        ({}, "NORMAL"),
    ],
)
async def test_branch_takes_the_first_case_that_holds(variables: dict[str, Any], line: str) -> None:
    call = session(compile_graphs(graph(BRANCH)), variables=variables)
    events = await call.start()
    assert said(events) == [line]
    assert (await call.state())["visited"] == ["branchy/check", f"branchy/{line.lower()}"]


# --- handoff ----------------------------------------------------------------------------------

FRONT = """
schema: switchboard/v1
id: front
name: Front
start: route
variables: {secret: s3cret, account: A-1}
nodes:
  route:
    type: route
    prompt: How can I help?
    intents:
      billing: {examples: [money question], next: to_billing}
    fallback: route
  to_billing: {type: handoff, graph: billing, say: Transferring you., carry: [account]}
"""

BILLING = """
schema: switchboard/v1
id: billing
name: Billing
start: hello
variables: {desk: Billing}
nodes:
  hello: {type: say, text: "{desk} here.", next: route}
  route:
    type: route
    prompt: What do you need?
    intents:
      refund: {examples: [money question], next: refund}
    fallback: unsure
  refund: {type: end, text: "{desk} refunds {account}{secret}."}
  unsure: {type: end, text: Unsure.}
"""


async def test_handoff_carries_the_turn_and_declared_vars_on_one_thread() -> None:
    compiled = compile_graphs(graph(FRONT), graph(BILLING))
    call = session(compiled)
    await call.start()
    events = await call.send("money question")
    assert said(events) == ["Transferring you.", "Billing here.", "Billing refunds A-1."]
    assert [(i["name"], i["node"]) for i in of_type(events, "intent")] == [
        ("billing", "route"),
        ("refund", "route"),
    ]
    state = await call.state()
    assert state["agents"] == ["front", "billing"]
    assert state["agent"] == "billing"
    assert state["handoff_to"] == "billing"
    assert state["visited"] == [
        "front/route",
        "front/to_billing",
        "billing/hello",
        "billing/route",
        "billing/refund",
    ]
    assert state["vars"]["account"] == "A-1"
    assert "secret" not in state["vars"]
    assert state["vars"]["desk"] == "Billing"
    assert state["vars"]["caller"] == "+15551230001"
    assert state["vars"]["agent"] == "billing"
    assert state["saved_vars"]["front"]["secret"] == "s3cret"
    assert state["outcome"] == "completed"
    humans = [m for m in state["messages"] if isinstance(m, HumanMessage)]
    assert [m.content for m in humans] == ["money question"]
    names = [m.name for m in state["messages"] if isinstance(m, AIMessage)]
    assert names == ["front", "front", "billing", "billing"]


async def test_the_carried_turn_is_classified_by_the_targets_own_route() -> None:
    seen: dict[str, ExactIntents] = {}

    def factory(spec: Any) -> Any:
        def make(intents: dict[str, list[str]], threshold: float | None) -> ExactIntents:
            matcher = ExactIntents(intents, threshold)
            seen[spec.id + ":" + ",".join(sorted(intents))] = matcher
            return matcher

        return make

    compiled = compile_graphs(graph(FRONT), graph(BILLING), intent_sets=factory)
    call = session(compiled)
    await call.start()
    await call.send("money question")
    assert seen["front:billing"].seen == ["money question"]
    assert seen["billing:refund"].seen == ["money question"]


async def test_handoff_with_the_real_classifier_reaches_the_specialists_question() -> None:
    compiled = compile_for_tests(GRAPHS / "front-desk.yaml")
    call = session(compiled, tools=default_registry(DemoStore(clock=fixed_clock)))
    await call.start()
    events = await call.send("Hi, I need a cleaning next Tuesday please")
    state = await call.state()
    assert state["agents"] == ["front-desk", "dental-booking"]
    assert state["vars"]["day"] == "2026-12-01"
    assert waiting_at(events) == "ask_time"
    assert [i["name"] for i in of_type(events, "intent")] == ["dental", "book"]


# --- escalate ---------------------------------------------------------------------------------


async def test_escalate_without_a_queue_records_the_rendered_reason() -> None:
    text = """
schema: switchboard/v1
id: esc
name: Esc
start: out
variables: {who: Dana}
nodes:
  out: {type: escalate, reason: "{who} asked for a person"}
"""
    call = session(compile_graphs(graph(text)))
    events = await call.start()
    assert said(events) == ["Let me transfer you to a member of our team."]
    assert of_type(events, "outcome") == [
        {"outcome": "escalated", "reason": "Dana asked for a person"}
    ]


def test_exact_intents_is_an_intent_matcher() -> None:
    matcher = ExactIntents({"a": ["Hello there"]}, None)
    assert asyncio.run(matcher.classify("hello, there!")) == IntentMatch("a", 1.0)
    assert asyncio.run(matcher.classify("hello")) == IntentMatch(None, 0.0)
