"""Handoff context contracts and hand-back: what travels to a specialist (carried
variables, the conversation summary, the caller's turn), how a `return` node hands
the call back (restored variables, returned ones, the path of agents), and the
front desk calling billing end to end, with the refund step retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.types import Command

from runtime.context import CallContext
from runtime.convtest import compile_for_tests
from runtime.handoff_summary import caller_turns, deterministic_summary, since
from runtime.session import CallSession
from schemas.diagnostics import GraphError
from schemas.spec import LLMSettings
from tests.runtime.fixtures.calls import (
    compile_graphs,
    fixed_clock,
    graph,
    of_type,
    said,
    session,
    waiting_at,
)
from tools.builtin import default_registry
from tools.store import DemoStore

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"

DESK = """
schema: switchboard/v1
id: desk
name: Desk
start: ask_name
variables: {secret: s3cret, account: A-1}
nodes:
  ask_name: {type: collect, slot: name, prompt: Your name?, next: route, on_fail: route}
  route:
    type: route
    prompt: How can I help?
    intents:
      billing: {examples: [money question, billing please], next: to_billing}
      plain: {examples: [plain transfer], next: to_plain}
    fallback: route
  to_billing:
    type: handoff
    graph: billing
    say: Transferring you.
    carry: [account, name, refund]
    summary: true
    return_to: anything_else
  to_plain: {type: handoff, graph: billing, carry: [name]}
  anything_else:
    type: route
    prompt: "Anything else, {name}?"
    intents:
      done: {examples: [no thanks, that is all], next: bye}
      billing: {examples: [money question, billing please], next: to_billing}
    fallback: bye
  bye: {type: end, text: Bye.}
"""

BILLING = """
schema: switchboard/v1
id: billing
name: Billing
start: hello
voice: {tts: espeak, voice: en-us+f3}
variables: {desk: Billing, account: none}
nodes:
  hello: {type: say, text: "{desk} here for {account}.", next: route}
  route:
    type: route
    prompt: What do you need?
    intents:
      refund: {examples: [money question, refund please, plain transfer], next: refund}
    fallback: unsure
  refund: {type: say, text: Refunded., next: set_refund}
  set_refund: {type: collect, slot: refund, prompt: Reference?, next: back}
  back:
    type: return
    say: Back to the desk.
    carry: [refund]
    summary: true
    otherwise: alone
  alone: {type: end, text: Billing alone.}
  unsure: {type: end, text: Unsure.}
"""


def compiled_pair(desk: str = DESK, billing: str = BILLING) -> Any:
    return compile_graphs(graph(desk), graph(billing))


async def handed_to_billing(call: CallSession) -> list[Any]:
    await call.start()
    await call.send("Dana")
    return await call.send("money question")


# --- what travels with a handoff ----------------------------------------------------------


async def test_the_specialist_gets_carried_vars_and_a_deterministic_summary() -> None:
    call = session(compiled_pair())
    events = await handed_to_billing(call)
    assert said(events) == ["Transferring you.", "Billing here for A-1.", "Refunded.", "Reference?"]
    variables = (await call.state())["vars"]
    assert variables["account"] == "A-1" and variables["name"] == "Dana"
    assert "secret" not in variables and "refund" not in variables  # not carried / not set
    assert variables["desk"] == "Billing" and variables["agent"] == "billing"
    assert variables["handoff_summary"] == (
        'Caller said: "Dana" / "money question". '
        "Known: intent=billing, name=Dana, account=A-1, caller=+15551230001."
    )


async def test_without_summary_the_specialist_sees_an_empty_one() -> None:
    call = session(compiled_pair())
    await call.start()
    await call.send("Dana")
    await call.send("plain transfer")
    variables = (await call.state())["vars"]
    assert variables["handoff_summary"] == ""
    assert variables["name"] == "Dana" and variables["account"] == "none"  # its own default


async def test_a_configured_llm_writes_the_summary() -> None:
    desk = DESK.replace("start: ask_name", "start: ask_name\nllm: {model: fake}")
    seen: list[LLMSettings] = []

    def factory(settings: LLMSettings) -> FakeListChatModel:
        seen.append(settings)
        return FakeListChatModel(responses=["Dana has a billing question about account A-1."])

    call = CallSession(
        compiled_pair(desk), context=CallContext(clock=fixed_clock, llm_factory=factory)
    )
    await handed_to_billing(call)
    variables = (await call.state())["vars"]
    assert variables["handoff_summary"] == "Dana has a billing question about account A-1."
    assert [s.model for s in seen] == ["fake"]


class _Broken(FakeListChatModel):
    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("provider down")


class _Silent(FakeListChatModel):
    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()  # never answers


@pytest.mark.parametrize("model", [_Broken, _Silent])
async def test_a_failing_or_silent_llm_falls_back_to_the_offline_summary(model: type) -> None:
    # The silent model is cut off by the graph's own timeout (50 ms here).
    desk = DESK.replace("start: ask_name", "start: ask_name\nllm: {model: fake, timeout_s: 0.05}")
    context = CallContext(clock=fixed_clock, llm_factory=lambda s: model(responses=["unused"]))
    call = CallSession(compiled_pair(desk), context=context)
    await handed_to_billing(call)
    assert (await call.state())["vars"]["handoff_summary"].startswith('Caller said: "Dana"')


def test_summary_helpers_quote_recent_turns_and_cut_at_the_other_agent() -> None:
    messages: Sequence[BaseMessage] = [
        HumanMessage("hello"),
        AIMessage("Front here.", name="front"),
        HumanMessage("my bill"),
        AIMessage("Transferring.", name="front"),
        AIMessage("Billing here.", name="billing"),
        AIMessage("", name="billing", additional_kwargs={"internal": True}),
        HumanMessage("refund it"),
    ]
    assert caller_turns(messages) == ["hello", "my bill", "refund it"]
    assert caller_turns(since(messages, "billing")) == ["refund it"]
    assert deterministic_summary([], {}) == ""
    many = [f"turn {i}" for i in range(10)]
    assert deterministic_summary(many, {"a": "1"}) == (
        'Caller said: "turn 4" / "turn 5" / "turn 6" / "turn 7" / "turn 8" / "turn 9". Known: a=1.'
    )


# --- handing back ----------------------------------------------------------------------


async def test_a_return_node_hands_the_call_back_with_the_callers_own_vars() -> None:
    call = session(compiled_pair())
    await handed_to_billing(call)
    events = await call.send("RF-9")
    assert said(events) == ["Back to the desk.", "Anything else, Dana?"]
    assert waiting_at(events) == "anything_else"
    handoffs = of_type(events, "handoff")
    assert [(h["from"], h["to"], h["kind"]) for h in handoffs] == [("billing", "desk", "return")]
    state = await call.state()
    assert state["agents"] == ["desk", "billing", "desk"]
    assert state["agent"] == "desk" and state["returns"] == []
    assert state["agent_outcomes"] == {"desk": "handed_off", "billing": "handed_off"}
    variables = state["vars"]
    assert variables["secret"] == "s3cret"  # the desk's own variables are back
    assert variables["refund"] == "RF-9"  # returned through `carry`
    assert "desk" not in variables  # billing's own variables stay with billing
    assert variables["agent"] == "desk"
    assert variables["handoff_summary"] == (
        'Caller said: "RF-9". Known: intent=refund, refund=RF-9, caller=+15551230001.'
    )
    assert state["saved_vars"]["billing"]["desk"] == "Billing"
    # The specialist's last answer is not reused as an answer to the desk's question.
    assert [i["node"] for i in of_type(events, "intent")] == []
    events = await call.send("no thanks")
    assert said(events) == ["Bye."]
    state = await call.state()
    assert state["outcome"] == "completed"
    assert state["agent_outcomes"] == {"desk": "completed", "billing": "handed_off"}
    names = [m.name for m in state["messages"] if isinstance(m, AIMessage)]
    assert names[-3:] == ["billing", "desk", "desk"]  # one transcript, each line by its agent


async def test_the_refund_returned_earlier_travels_to_the_specialist_again() -> None:
    call = session(compiled_pair())
    await handed_to_billing(call)
    await call.send("RF-9")
    await call.send("money question")
    state = await call.state()
    assert state["agents"] == ["desk", "billing", "desk", "billing"]
    assert state["vars"]["refund"] == "RF-9"
    assert [f["agent"] for f in state["returns"]] == ["desk"]


async def test_without_return_to_the_return_node_follows_otherwise_silently() -> None:
    call = session(compiled_pair())
    await call.start()
    await call.send("Dana")
    await call.send("plain transfer")
    events = await call.send("RF-1")
    assert said(events) == ["Billing alone."]
    assert of_type(events, "handoff") == []
    state = await call.state()
    assert state["agents"] == ["desk", "billing"]
    assert state["outcome"] == "completed"


async def test_a_graph_called_directly_follows_otherwise() -> None:
    call = session(compile_graphs(graph(BILLING)))
    await call.start()
    await call.send("refund please")
    events = await call.send("RF-2")
    assert said(events) == ["Billing alone."]
    assert (await call.state())["visited"][-2:] == ["billing/back", "billing/alone"]


async def test_handoffs_nest_and_each_return_goes_one_agent_back() -> None:
    middle = """
schema: switchboard/v1
id: middle
name: Middle
start: ask
nodes:
  ask:
    type: route
    prompt: Middle here.
    intents:
      deeper: {examples: [go deeper], next: to_inner}
      back: {examples: [go back], next: back}
    fallback: ask
  to_inner: {type: handoff, graph: inner, return_to: ask}
  back: {type: return, say: Middle returning., otherwise: ask}
"""
    inner = """
schema: switchboard/v1
id: inner
name: Inner
start: back
nodes:
  back: {type: return, say: Inner returning., otherwise: done}
  done: {type: end}
"""
    outer = """
schema: switchboard/v1
id: outer
name: Outer
start: menu
nodes:
  menu:
    type: route
    prompt: Outer menu.
    intents:
      go: {examples: [go], next: to_middle}
    fallback: menu
  to_middle: {type: handoff, graph: middle, return_to: menu}
"""
    call = session(compile_graphs(graph(outer), graph(middle), graph(inner)))
    await call.start()
    await call.send("go")
    events = await call.send("go deeper")
    assert said(events) == ["Inner returning.", "Middle here."]
    events = await call.send("go back")
    assert said(events) == ["Middle returning.", "Outer menu."]
    state = await call.state()
    assert state["agents"] == ["outer", "middle", "inner", "middle", "outer"]
    assert state["returns"] == []


async def test_the_voice_runtime_can_follow_the_agent_handling_the_call() -> None:
    compiled = compiled_pair()
    call = session(compiled)
    events = await handed_to_billing(call)
    [handoff] = of_type(events, "handoff")
    assert handoff["from"] == "desk" and handoff["to"] == "billing"
    assert handoff["kind"] == "handoff" and handoff["node"] == "to_billing"
    assert handoff["voice"]["voice"] == "en-us+f3" and "commit" not in handoff
    lines = [(e["agent"], e["text"]) for e in of_type(events, "agent")]
    assert lines[0] == ("desk", "Transferring you.")
    assert lines[1] == ("billing", "Billing here for A-1.")
    state = await call.state()
    assert compiled.agents[state["agent"]].voice.voice == "en-us+f3"


def test_an_entry_that_is_not_a_node_of_the_target_fails_to_compile() -> None:
    desk = DESK.replace("graph: billing, carry: [name]", "graph: billing, entry: nowhere")
    with pytest.raises(GraphError) as info:
        compiled_pair(desk)
    [d] = info.value.diagnostics
    assert (d.code, d.node, d.pointer) == ("E201", "to_plain", "/nodes/to_plain/entry")
    assert "'nowhere' is not a node of graph 'billing'" in d.message


# --- the front desk calls billing, which refunds once and hands back -------------------


def _front_desk_call(store: DemoStore) -> CallSession:
    compiled = compile_for_tests(GRAPHS / "front-desk.yaml")
    context = CallContext(tools=default_registry(store), clock=fixed_clock)
    return CallSession(compiled, context=context, caller="+15551230002", call_id="done-means")


async def test_a_double_charge_is_refunded_once_even_when_the_step_is_retried() -> None:
    store = DemoStore(clock=fixed_clock)
    call = _front_desk_call(store)
    await call.start()
    events = await call.send("I was charged twice last month")
    assert waiting_at(events) == "offer_refund"
    lookup = [t for t in of_type(events, "tool") if t["name"] == "accounts.lookup"]
    assert lookup[0]["args"] == {"phone": "+15551230002"}  # found by the calling number
    assert "billed twice" in " ".join(said(events))
    before = await call.compiled.graph.aget_state(call.config)  # waiting at offer_refund

    events = await call.send("yes please")
    [refund] = [t for t in of_type(events, "tool") if t["name"] == "billing.refund"]
    assert refund["result"]["replayed"] is False
    assert waiting_at(events) == "anything_else"
    assert (await call.state())["agents"] == ["front-desk", "billing-support", "front-desk"]

    # Retry the step: resume the same checkpoint again, as a worker that lost the
    # first attempt's result would. The idempotency key makes it a replay.
    retried = await call.compiled.graph.ainvoke(
        Command(resume="yes please"), before.config, context=call.context
    )
    again = [t for t in retried["tool_calls"] if t["name"] == "billing.refund"]
    assert again[-1]["result"]["replayed"] is True
    assert again[-1]["result"]["refund_id"] == refund["result"]["refund_id"]
    duplicates = [r for r in store.refunds.values() if r.charge_id == "CH-2006"]
    assert len(duplicates) == 1

    events = await call.send("no that's all, thanks")
    state = await call.state()
    assert state["outcome"] == "completed"
    assert state["agent_outcomes"] == {"front-desk": "completed", "billing-support": "handed_off"}
