"""A barge-in reported with the next caller turn truncates the agent line to
what the caller heard, in the same checkpointed step."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from tests.runtime.fixtures.calls import compile_graphs, graph, session

FLOW = """
schema: switchboard/v1
id: barge
name: Barge-in
start: hello
nodes:
  hello: {type: say, text: "Welcome to the clinic. We are open every weekday.", next: ask}
  ask: {type: collect, slot: name, kind: text, prompt: "What is your name?", next: bye}
  bye: {type: end, text: "Goodbye {name}."}
"""


async def test_interrupted_line_is_replaced_by_what_was_heard() -> None:
    call = session(compile_graphs(graph(FLOW)))
    events = await call.start()
    agent = [e for e in events if e.type == "agent"]
    first = agent[0].data
    assert first["message_id"]
    events = await call.send(
        "Ana",
        interrupted=[{"message_id": first["message_id"], "heard": "Welcome to the"}],
    )
    assert any(e.type == "heard" and e.data["text"] == "Welcome to the" for e in events)
    state = await call.state()
    ais = [m for m in state["messages"] if isinstance(m, AIMessage)]
    cut = next(m for m in ais if m.id == first["message_id"])
    assert cut.content == "Welcome to the"
    assert cut.additional_kwargs["interrupted"] is True
    assert cut.additional_kwargs["planned"].startswith("Welcome to the clinic")
    # Order is kept: the cut line stays before the caller's turn.
    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds.index("HumanMessage") > [m.id for m in state["messages"]].index(cut.id)
    assert state["vars"]["name"] == "Ana"
    assert state["outcome"] == "completed"


async def test_unknown_or_repeated_cut_is_ignored() -> None:
    call = session(compile_graphs(graph(FLOW)))
    await call.start()
    await call.send("Ana", interrupted=[{"message_id": "nope", "heard": "x"}])
    state = await call.state()
    assert not any(
        m.additional_kwargs.get("interrupted")
        for m in state["messages"]
        if isinstance(m, AIMessage)
    )
    assert isinstance(state["messages"][-2], HumanMessage) or state["outcome"] == "completed"
