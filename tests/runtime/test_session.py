"""A call driven turn by turn: events, waiting and resuming, hang-up, the end
of a call, and a call resumed by a new process from its SQLite or Redis
checkpoint through `switchboard chat --call-id`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from runtime.checkpoint import open_checkpointer
from runtime.compiler import CompiledCall, compile_call
from runtime.session import CallEnded, CallEvent, CallSession
from schemas.validate import load_valid_graph
from tests.runtime.fixtures.calls import (
    compile_graphs,
    graph,
    of_type,
    said,
    session,
    waiting_at,
)

REPO = Path(__file__).resolve().parents[2]
INTAKE = Path(__file__).parent / "fixtures" / "graphs" / "intake.yaml"


@pytest.fixture
def intake() -> CompiledCall:
    return compile_graphs(load_valid_graph(INTAKE))


async def test_nothing_is_checkpointed_before_start(intake: CompiledCall) -> None:
    call = session(intake)
    assert await call.state() == {}
    assert not await call.started()
    assert not await call.ended()


async def test_start_runs_until_the_call_waits(intake: CompiledCall) -> None:
    call = session(intake)
    events = await call.start()
    assert [e.type for e in events] == ["node", "agent", "node", "agent", "waiting"]
    assert of_type(events, "node") == [
        {"agent": "intake", "node": "hello"},
        {"agent": "intake", "node": "ask_name"},
    ]
    first = dict(of_type(events, "agent")[0])
    assert first.pop("message_id")  # every agent line has an id (for barge-in cuts)
    assert first == {
        "text": "Welcome to the intake desk.",
        "agent": "intake",
        "node": "hello",
    }
    assert of_type(events, "waiting") == [{"agent": "intake", "node": "ask_name"}]
    assert await call.started()
    assert not await call.ended()


async def test_send_resumes_the_waiting_node_and_reports_the_slot(intake: CompiledCall) -> None:
    call = session(intake)
    await call.start()
    events = await call.send("Ada Lovelace")
    # last_utterance changes every turn and is not reported as a slot.
    assert of_type(events, "slot") == [{"name": "name", "value": "Ada Lovelace"}]
    assert said(events) == ["Thanks Ada Lovelace. What is your phone number?"]
    assert waiting_at(events) == "ask_phone"
    events = await call.send("415 555 0134")
    assert {"name": "phone", "value": "+14155550134"} in of_type(events, "slot")
    assert {"name": "name", "value": "Ada Lovelace"} not in of_type(events, "slot")


async def test_a_whole_call_to_completion(intake: CompiledCall) -> None:
    call = session(intake)
    await call.start()
    for line in ["Ada", "415 555 0134", "ada at example dot com"]:
        await call.send(line)
    events = await call.send("yes that's right")
    assert said(events) == ["Thank you Ada, goodbye."]
    assert of_type(events, "outcome") == [{"outcome": "completed", "reason": None}]
    assert await call.ended()
    state = await call.state()
    assert {k: state["vars"][k] for k in ("name", "phone", "email", "ok")} == {
        "name": "Ada",
        "phone": "+14155550134",
        "email": "ada@example.com",
        "ok": True,
    }
    assert [m.content for m in state["messages"] if isinstance(m, HumanMessage)] == [
        "Ada",
        "415 555 0134",
        "ada at example dot com",
        "yes that's right",
    ]


async def test_caller_text_is_normalised_and_bounded(intake: CompiledCall) -> None:
    call = session(intake)
    await call.start()
    await call.send("  Ada \n\t Lovelace  ")
    assert (await call.state())["vars"]["name"] == "Ada Lovelace"
    call2 = session(intake, call_id="long")
    await call2.start()
    await call2.send("x" * 5000)
    assert len((await call2.state())["vars"]["last_utterance"]) == 2000


async def test_hangup_abandons_the_call_and_later_turns_are_refused(
    intake: CompiledCall,
) -> None:
    call = session(intake)
    await call.start()
    await call.send("Ada")
    events = await call.hangup()
    assert of_type(events, "outcome") == [{"outcome": "abandoned", "reason": "caller hung up"}]
    state = await call.state()
    assert state["outcome"] == "abandoned"
    assert state["vars"]["name"] == "Ada"
    assert await call.ended()
    assert await call.hangup() == []
    with pytest.raises(CallEnded):
        await call.send("hello?")


async def test_sending_after_the_end_raises_call_ended(intake: CompiledCall) -> None:
    call = session(intake)
    await call.start()
    for line in ["Ada", "415 555 0134", "ada@example.com", "yes"]:
        await call.send(line)
    assert (await call.state())["outcome"] == "completed"
    with pytest.raises(CallEnded, match="has ended"):
        await call.send("one more thing")
    assert await call.hangup() == []
    assert (await call.state())["outcome"] == "completed"


async def test_a_call_that_ends_without_waiting() -> None:
    spec = graph(
        "schema: switchboard/v1\nid: short\nname: S\nstart: a\n"
        "nodes:\n  a: {type: end, text: Closed today.}\n"
    )
    call = session(compile_graphs(spec))
    events = await call.start()
    assert said(events) == ["Closed today."]
    assert waiting_at(events) is None
    assert await call.ended()
    with pytest.raises(CallEnded):
        await call.send("hello")


async def test_streamed_events_equal_collected_ones(intake: CompiledCall) -> None:
    streamed, collected = session(intake, call_id="a"), session(intake, call_id="b")

    def without_ids(events: list[CallEvent]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.as_dict().items() if k != "message_id"} for e in events]

    assert without_ids([e async for e in streamed.stream_start()]) == without_ids(
        await collected.start()
    )
    assert without_ids([e async for e in streamed.stream_send("Ada")]) == without_ids(
        await collected.send("Ada")
    )


# --- a call resumed by another process -----------------------------------------------------


def chat_in_new_process(url: str, call_id: str, line: str) -> list[dict[str, Any]]:
    """Send one caller line through `switchboard chat` in a child process and
    return its JSON events."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "chat",
            str(INTAKE),
            "--checkpoint",
            url,
            "--call-id",
            call_id,
            "--keep-open",
            "--json",
        ],
        input=line + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]


async def first_two_turns(url: str, call_id: str) -> None:
    async with open_checkpointer(url) as saver:
        compiled = compile_call(load_valid_graph(INTAKE), checkpointer=saver)
        call = CallSession(compiled, call_id=call_id)
        await call.start()
        await call.send("Ada Lovelace")
        events = await call.send("415 555 0134")
        assert waiting_at(events) == "ask_email"


async def state_after(url: str, call_id: str) -> dict[str, Any]:
    async with open_checkpointer(url) as saver:
        compiled = compile_call(load_valid_graph(INTAKE), checkpointer=saver)
        return await CallSession(compiled, call_id=call_id).state()


def assert_continued(events: list[dict[str, Any]], state: dict[str, Any]) -> None:
    types = [e["type"] for e in events]
    # The child resumed: no greeting, the turn went to the node that was waiting.
    assert "Welcome" not in json.dumps(events)
    assert {"type": "slot", "name": "email", "value": "ada@example.com"} in events
    agent_lines = [e["text"] for e in events if e["type"] == "agent"]
    assert agent_lines == ["So that's Ada Lovelace, +14155550134, ada@example.com. Is that right?"]
    assert types[-1] == "waiting"
    assert events[-1]["node"] == "ask_ok"
    assert "outcome" not in types
    assert state["node"] == "ask_ok"
    assert state["awaiting"] == "ask_ok"
    assert state["outcome"] is None
    assert {k: state["vars"][k] for k in ("name", "phone", "email")} == {
        "name": "Ada Lovelace",
        "phone": "+14155550134",
        "email": "ada@example.com",
    }
    assert state["visited"] == [
        "intake/hello",
        "intake/ask_name",
        "intake/ask_phone",
        "intake/ask_email",
        "intake/ask_ok",
    ]
    assert state["turn"] == 3


async def test_a_call_resumes_in_a_new_process_from_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    call_id = "resume-sqlite"
    await first_two_turns(url, call_id)
    events = chat_in_new_process(url, call_id, "ada at example dot com")
    assert_continued(events, await state_after(url, call_id))


@pytest.mark.redis
async def test_a_call_resumes_in_a_new_process_from_redis(redis_url: str) -> None:
    call_id = f"resume-redis-{uuid.uuid4().hex}"
    try:
        await first_two_turns(redis_url, call_id)
        events = chat_in_new_process(redis_url, call_id, "ada at example dot com")
        assert_continued(events, await state_after(redis_url, call_id))
    finally:
        async with open_checkpointer(redis_url) as saver:
            await saver.adelete_thread(call_id)


async def _checkpointed(call: CallSession) -> tuple[dict[str, Any], bool]:
    snap = await call.compiled.graph.aget_state(call.config)
    values = dict(snap.values or {})
    return values, bool(values) and not snap.next


async def test_the_state_a_run_leaves_is_the_checkpointed_state(intake: CompiledCall) -> None:
    """A turn trusts the state its previous run ended with instead of reading
    the checkpoint back: at every step it must equal a fresh read."""
    call = session(intake)
    await call.start()
    assert call._known == await _checkpointed(call)
    for line in ["Ada", "415 555 0134", "ada at example dot com", "yes that's right"]:
        await call.send(line)
        assert call._known == await _checkpointed(call)
    assert call._known is not None and call._known[1] is True


async def test_a_run_under_way_has_no_known_state(intake: CompiledCall) -> None:
    call = session(intake)
    await call.start()
    stream = call.stream_send("Ada")
    events = [await anext(stream)]
    assert call._known is None  # a run that stops here leaves nothing to trust
    events += [event async for event in stream]
    assert waiting_at(events) is not None
    assert call._known == await _checkpointed(call)
