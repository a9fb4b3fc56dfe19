"""Faults of the backends a graph calls, inside a real service worker: a tool
that hangs or errors, and an LLM (an OpenAI-compatible server) that times out,
answers 500 or returns garbage.

Guarantee: a tool failure follows the node's `on_error` and the call goes on
to its end; an LLM failure makes the agent say the graph's fallback line and
follow `on_error` (here: escalate to a person) — never a hang or a 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reliability.report import record_fault
from tests.fakes.openai_server import FakeOpenAIServer, delayed, error, reply, tool_call
from tests.reliability.services import HTTP_TIMEOUT_S, Caller, said, service_env, worker

FALLBACK = "Sorry, I'm having trouble right now."
TOOLS = """
schema: switchboard/tools/v1
tools:
  faulty.hang: {python: "tests.reliability.faulty_tools:hang"}
  faulty.fail: {python: "tests.reliability.faulty_tools:fail"}
"""
TOOL_GRAPH = f"""
schema: switchboard/v1
id: tool-faults
name: Tool faults
start: ask
fallback_line: "{FALLBACK}"
nodes:
  ask: {{type: collect, slot: name, kind: text, prompt: "What is your name?", next: lookup}}
  lookup:
    type: tool
    tool: faulty.hang
    args: {{name: "{{name}}"}}
    timeout_s: 1
    next: bye
    on_error: slow
  slow: {{type: say, text: "Our records are slow today, let me note it by hand.", next: ticket}}
  ticket: {{type: tool, tool: faulty.fail, args: {{name: "{{name}}"}}, next: bye, on_error: topic}}
  topic: {{type: collect, slot: topic, kind: text, prompt: "What is it about?", next: bye}}
  bye: {{type: end, text: "Thanks, I noted it. Goodbye."}}
"""
LLM_GRAPH = f"""
schema: switchboard/v1
id: llm-faults
name: LLM faults
start: chat
fallback_line: "{FALLBACK}"
llm: {{model: fake-model, timeout_s: 1}}
nodes:
  chat:
    type: llm
    prompt: You are a help desk. Be brief.
    greeting: Hi, how can I help?
    exits:
      done: {{description: The question is answered, next: bye}}
    on_error: transfer
  bye: {{type: end, text: Goodbye!}}
  transfer: {{type: escalate, reason: the assistant failed, say: Let me get you a person.}}
"""
#: Bounds a turn's answer: the LLM's 1 s timeout times its retries, on a busy machine.
ANSWER_BOUND_S = 45.0


@pytest.fixture
def graphs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "graphs"
    d.mkdir()
    (d / "tools.yaml").write_text(TOOLS)
    (d / "tool-faults.yaml").write_text(TOOL_GRAPH)
    (d / "llm-faults.yaml").write_text(LLM_GRAPH)
    return d


@pytest.fixture
def llm_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


async def test_a_hanging_or_failing_tool_follows_on_error(graphs_dir: Path, tmp_path: Path) -> None:
    env = service_env(
        checkpoint_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'calls.db'}",
        graphs_dir=graphs_dir,
    )
    async with (
        worker(env, tmp_path / "worker.log") as w,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http,
    ):
        caller = await Caller.login(http, w.base)
        await caller.start(w.base, "tool-faults")
        began = time.monotonic()
        r = await caller.turn(w.base, "Ana Lopez")
        took_s = time.monotonic() - began
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        tools = {e["name"]: e for e in events if e["type"] == "tool"}
        last = await caller.turn(w.base, "my invoice")
        assert last.status_code == 200, last.text
    hang_err = str(tools["faulty.hang"]["error"])
    fail_err = str(tools["faulty.fail"]["error"])
    outcome = last.json()["outcome"]
    survived = (
        "timed out" in hang_err
        and "ConnectionError" in fail_err
        and said(events)[-1] == "What is it about?"
        and outcome == "completed"
    )
    record_fault(
        "tool-hang-and-error",
        injected="a tool that never answers (timeout_s 1), then a tool that raises",
        survived=survived,
        observed={
            "hang": hang_err,
            "error": fail_err,
            "turn_answered_in_s": round(took_s, 2),
            "path": said(events),
            "outcome": outcome,
        },
    )
    assert "timed out after 1 s" in hang_err
    assert "ConnectionError" in fail_err
    assert said(events) == [
        "Our records are slow today, let me note it by hand.",
        "What is it about?",
    ]
    assert outcome == "completed"
    assert took_s < ANSWER_BOUND_S


LLM_FAULTS = {
    "timeout": [delayed(10.0)] * 4,
    "http-500": [error(500, "upstream exploded")] * 4,
    "garbage": [reply("", tool_call("no_such_tool", "{not json"))] * 4,
}


async def test_llm_faults_make_the_agent_apologise_and_escalate(
    graphs_dir: Path, tmp_path: Path, llm_server: FakeOpenAIServer
) -> None:
    env = service_env(
        checkpoint_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'calls.db'}",
        graphs_dir=graphs_dir,
        SWITCHBOARD_LLM_BASE_URL=llm_server.base_url,
        OPENAI_API_KEY="sk-reliability-test",
    )
    results: dict[str, dict[str, Any]] = {}
    async with (
        worker(env, tmp_path / "worker.log") as w,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http,
    ):
        caller = await Caller.login(http, w.base)
        for kind, script in LLM_FAULTS.items():
            await caller.start(w.base, "llm-faults")
            llm_server.script(*script)
            began = time.monotonic()
            r = await caller.turn(w.base, "Where is my order?")
            took_s = time.monotonic() - began
            assert r.status_code == 200, f"{kind}: {r.text}"
            body = r.json()
            unused = llm_server.clear()  # each fault sees only its own replies
            results[kind] = {
                "said": said(body["events"]),
                "outcome": body["outcome"],
                "answered_in_s": round(took_s, 2),
                "llm_requests": len(script) - unused,
            }
    for kind, seen in results.items():
        ok = seen["said"][:1] == [FALLBACK] and seen["outcome"] == "escalated"
        record_fault(
            f"llm-{kind}",
            injected=f"the LLM server's answer: {kind}",
            survived=ok and seen["answered_in_s"] < ANSWER_BOUND_S,
            observed=seen,
        )
    for kind, seen in results.items():
        assert seen["said"] == [FALLBACK, "Let me get you a person."], kind
        assert seen["outcome"] == "escalated", kind
        assert seen["answered_in_s"] < ANSWER_BOUND_S, kind
