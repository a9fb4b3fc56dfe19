"""A call checkpointed by one process is resumed by another (Redis and SQLite file)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis.asyncio as aioredis
from langgraph.types import Command

from runtime.checkpoint import RedisCheckpointSaver, open_checkpointer

REPO = Path(__file__).resolve().parents[3]

# The call flow both processes compile: greet, wait for the caller's day, book.
FLOW = textwrap.dedent(
    """
    import os
    from typing import TypedDict
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    class Call(TypedDict, total=False):
        greeted_by: int
        day: str
        booked_by: int

    def greet(state):
        return {"greeted_by": os.getpid()}

    def ask(state):
        return {"day": interrupt("Which day suits you?")}

    def book(state):
        return {"booked_by": os.getpid()}

    def build(saver):
        return (
            StateGraph(Call)
            .add_node("greet", greet).add_node("ask", ask).add_node("book", book)
            .add_edge(START, "greet").add_edge("greet", "ask")
            .add_edge("ask", "book").add_edge("book", END)
            .compile(checkpointer=saver)
        )
    """
)

# Runs in the child: start the call and stop where it waits for the caller.
START_CALL = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import flow
    from runtime.checkpoint import RedisCheckpointSaver, open_checkpointer

    async def main(kind, url, prefix, thread):
        config = {"configurable": {"thread_id": thread}}
        if kind == "redis":
            saver = RedisCheckpointSaver.from_url(url, prefix=prefix)
            try:
                out = await flow.build(saver).ainvoke({}, config)
            finally:
                await saver.aclose()
        else:
            async with open_checkpointer(url) as saver:
                out = await flow.build(saver).ainvoke({}, config)
        print(json.dumps({"prompt": out["__interrupt__"][0].value, "pid": os.getpid()}))

    asyncio.run(main(*sys.argv[1:]))
    """
)


@pytest.fixture
def flow(tmp_path: Path) -> ModuleType:
    (tmp_path / "flow.py").write_text(FLOW)
    spec = importlib.util.spec_from_file_location(f"flow_{uuid.uuid4().hex}", tmp_path / "flow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _start_call_in_child(tmp_path: Path, *args: str) -> int:
    """Run START_CALL in a new interpreter; returns the child's pid."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        START_CALL,
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    reported = json.loads(out.decode().strip().splitlines()[-1])
    assert reported["prompt"] == "Which day suits you?"
    return int(reported["pid"])


async def _resume_here(flow: ModuleType, saver: Any, thread: str, child_pid: int) -> None:
    graph = flow.build(saver)
    config: Any = {"configurable": {"thread_id": thread}}
    waiting = await graph.aget_state(config)
    assert waiting.next == ("ask",)
    assert waiting.values == {"greeted_by": child_pid}
    assert waiting.tasks[0].interrupts[0].value == "Which day suits you?"

    final = await graph.ainvoke(Command(resume="tuesday"), config)
    assert final == {"greeted_by": child_pid, "day": "tuesday", "booked_by": os.getpid()}
    assert child_pid != os.getpid()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"switchboard-test:{uuid.uuid4().hex}"
    yield prefix
    client = aioredis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.mark.redis
async def test_redis_call_started_in_one_process_resumes_in_another(
    tmp_path: Path, flow: ModuleType, redis_url: str, redis_prefix: str
) -> None:
    child = await _start_call_in_child(tmp_path, "redis", redis_url, redis_prefix, "call-1")
    saver = RedisCheckpointSaver.from_url(redis_url, prefix=redis_prefix)
    try:
        await _resume_here(flow, saver, "call-1", child)
    finally:
        await saver.aclose()


async def test_sqlite_call_started_in_one_process_resumes_in_another(
    tmp_path: Path, flow: ModuleType
) -> None:
    url = f"sqlite:///{tmp_path}/calls.db"
    child = await _start_call_in_child(tmp_path, "sqlite", url, "-", "call-1")
    async with open_checkpointer(url) as saver:
        await _resume_here(flow, saver, "call-1", child)
