"""Compiling graph specs into one LangGraph: node naming, handoff targets,
compile-time errors with codes, intent sets prepared once, the initial state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from runtime.compiler import RECURSION_LIMIT, compile_call, gather_agents, initial_state
from runtime.context import CallContext
from schemas.diagnostics import GraphError
from schemas.spec import GraphSpec
from tests.runtime.fixtures.calls import (
    FIXED_NOW,
    ExactIntents,
    compile_graphs,
    exact_intents,
    graph,
    session,
)

SIMPLE = """
schema: switchboard/v1
id: simple
name: Simple
start: hi
variables: {shop: Corner Shop, caller: not-a-builtin}
global_intents:
  bye: {examples: [goodbye], goto: done}
nodes:
  hi: {type: say, text: "Hi from {shop}.", next: route}
  route:
    type: route
    intents:
      order: {examples: [place an order], next: ask_qty}
    fallback: route
  ask_qty: {type: collect, slot: qty, kind: number, prompt: How many?, next: done}
  done: {type: end, text: "Done, {qty}."}
"""


def spec_with(nodes: str, *, extra: str = "", gid: str = "g") -> GraphSpec:
    return graph(f"schema: switchboard/v1\nid: {gid}\nname: G\nstart: a\n{extra}nodes:\n{nodes}")


def codes(exc: GraphError) -> list[str]:
    return [d.code for d in exc.diagnostics]


def test_unknown_target_is_a_graph_error_with_E201() -> None:
    spec = spec_with(
        "  a: {type: say, text: hi, next: nowhere}\n"
        "  b: {type: collect, slot: x, prompt: x?, next: b, on_fail: gone}\n"
    )
    with pytest.raises(GraphError) as info:
        compile_graphs(spec)
    assert codes(info.value) == ["E201", "E201"]
    first, second = info.value.diagnostics
    assert (first.node, first.severity, first.pointer) == ("a", "error", "/nodes/a")
    assert "'nowhere'" in first.message
    assert second.node == "b" and "'gone'" in second.message
    assert "E201" in str(info.value) and "(+1 more)" in str(info.value)


def test_unknown_start_and_global_goto_are_reported() -> None:
    spec = graph(
        "schema: switchboard/v1\nid: g\nname: G\nstart: missing\n"
        "global_intents:\n  human: {examples: [person], goto: nobody}\n"
        "nodes:\n  a: {type: end}\n"
    )
    with pytest.raises(GraphError) as info:
        compile_graphs(spec)
    by_code = {d.code: d for d in info.value.diagnostics}
    assert by_code["E210"].pointer == "/start"
    assert by_code["E201"].pointer == "/global_intents/human"


def test_handoff_to_a_graph_that_cannot_be_loaded_is_E209() -> None:
    spec = spec_with("  a: {type: handoff, graph: elsewhere}\n")
    with pytest.raises(GraphError) as info:
        compile_call(spec, intent_sets=exact_intents)
    [diag] = info.value.diagnostics
    assert (diag.code, diag.node, diag.pointer) == ("E209", "a", "/nodes/a/graph")
    assert "'elsewhere'" in diag.message


def test_a_broken_handoff_target_is_E209_naming_its_own_error() -> None:
    spec = spec_with("  a: {type: handoff, graph: broken}\n")

    def resolve(ref: str) -> GraphSpec:
        raise GraphError([])

    with pytest.raises(GraphError) as info:
        compile_call(spec, resolve=resolve, intent_sets=exact_intents)
    assert codes(info.value) == ["E209"]
    assert "could not be loaded: invalid graph" in info.value.diagnostics[0].message


def test_gather_agents_follows_handoffs_transitively_and_through_cycles() -> None:
    a = spec_with("  a: {type: handoff, graph: b}\n", gid="a")
    b = spec_with("  a: {type: handoff, graph: c}\n", gid="b")
    c = spec_with("  a: {type: handoff, graph: a@v2}\n", gid="c")
    asked: list[str] = []

    def resolve(ref: str) -> GraphSpec:
        asked.append(ref)
        return {"b": b, "c": c, "a@v2": a}[ref]

    agents = gather_agents(a, resolve)
    # "a@v2" is a pinned version: its own agent beside the root, named by its key;
    # its handoff to "b" finds the agent already gathered.
    assert list(agents) == ["a", "b", "c", "a@v2"]
    assert asked == ["b", "c", "a@v2"]
    assert agents["a@v2"].id == "a@v2" and agents["a"].id == "a"


def test_every_agents_nodes_are_compiled_under_their_graph_id() -> None:
    a = spec_with("  a: {type: handoff, graph: b}\n", gid="a")
    b = spec_with("  a: {type: end}\n  z: {type: end}\n", gid="b")
    compiled = compile_call(a, resolve={"b": b}.__getitem__, intent_sets=exact_intents)
    assert set(compiled.agents) == {"a", "b"}
    names = set(compiled.graph.get_graph().nodes) - {"__start__", "__end__"}
    assert names == {"a/a", "b/a", "b/z", "listen"}


def test_intent_sets_are_prepared_once_at_compile_time() -> None:
    made: list[dict[str, list[str]]] = []

    def factory(spec: GraphSpec) -> Any:
        def make(intents: dict[str, list[str]], threshold: float | None) -> ExactIntents:
            made.append(intents)
            return ExactIntents(intents, threshold)

        return make

    compile_graphs(graph(SIMPLE), intent_sets=factory)
    # The global intents alone (for questions), and the route's own intents
    # together with the global ones (so the closest wins).
    assert made == [
        {"bye": ["goodbye"]},
        {"order": ["place an order"], "global:bye": ["goodbye"]},
    ]


async def test_turns_do_not_prepare_intents_again() -> None:
    made: list[str] = []

    def factory(spec: GraphSpec) -> Any:
        def make(intents: dict[str, list[str]], threshold: float | None) -> ExactIntents:
            made.append(spec.id)
            return ExactIntents(intents, threshold)

        return make

    call = session(compile_graphs(graph(SIMPLE), intent_sets=factory))
    before = len(made)
    await call.start()
    await call.send("place an order")
    await call.send("two")
    assert len(made) == before


def test_initial_state_has_variables_then_builtins() -> None:
    spec = graph(SIMPLE)
    state = initial_state(
        spec,
        call_id="c-9",
        caller="+15550000000",
        context=CallContext(clock=lambda: FIXED_NOW),
        variables={"shop": "Other Shop", "extra": 1},
    )
    assert state["vars"] == {
        "shop": "Other Shop",
        "extra": 1,
        "call_id": "c-9",
        "caller": "+15550000000",  # a builtin wins over a graph variable
        "agent": "simple",
        "now": "2026-11-25T10:00:00-05:00",
        "today": "2026-11-25",
        "last_utterance": "",
        "intent": "",
        "handoff_summary": "",
    }
    assert state["node"] == "hi"
    assert state["agents"] == ["simple"]
    assert state["outcome"] is None and state["visited"] == []


def test_today_follows_the_clocks_zone() -> None:
    late = datetime.fromisoformat("2026-11-25T23:30:00-08:00")
    state = initial_state(
        graph(SIMPLE), call_id="c", caller=None, context=CallContext(clock=lambda: late)
    )
    assert state["vars"]["today"] == "2026-11-25"
    assert state["vars"]["caller"] == ""


def test_config_names_the_thread_and_bounds_recursion() -> None:
    compiled = compile_graphs(graph(SIMPLE))
    assert compiled.config("abc") == {
        "configurable": {"thread_id": "abc"},
        "recursion_limit": RECURSION_LIMIT,
    }


async def test_state_carries_the_whole_call() -> None:
    call = session(compile_graphs(graph(SIMPLE)), call_id="whole")
    await call.start()
    await call.send("place an order")
    await call.send("three")
    state = await call.state()
    assert state["vars"]["qty"] == 3
    assert state["vars"]["intent"] == "order"
    assert state["vars"]["call_id"] == "whole"
    assert state["intent"] == {"name": "order", "confidence": 1.0, "node": "route"}
    assert state["visited"] == ["simple/hi", "simple/route", "simple/ask_qty", "simple/done"]
    assert state["node"] == "done"
    assert state["outcome"] == "completed"
    assert state["turn"] == 2
    transcript = [(type(m).__name__, m.content) for m in state["messages"]]
    assert transcript == [
        ("AIMessage", "Hi from Corner Shop."),
        ("HumanMessage", "place an order"),
        ("AIMessage", "How many?"),
        ("HumanMessage", "three"),
        ("AIMessage", "Done, 3."),
    ]
    tagged = [
        m.additional_kwargs.get("node") for m in state["messages"] if isinstance(m, AIMessage)
    ]
    assert tagged == ["hi", "ask_qty", "done"]
    assert all(isinstance(m, AIMessage | HumanMessage) for m in state["messages"])


async def test_one_compiled_graph_serves_independent_calls() -> None:
    compiled = compile_graphs(graph(SIMPLE))
    first, second = session(compiled, call_id="one"), session(compiled, call_id="two")
    await first.start()
    await second.start()
    await first.send("place an order")
    await first.send("4")
    await second.send("place an order")
    assert (await first.state())["outcome"] == "completed"
    second_state = await second.state()
    assert second_state["node"] == "ask_qty"
    assert "qty" not in second_state["vars"]
