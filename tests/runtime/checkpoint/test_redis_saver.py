"""RedisCheckpointSaver against the real Redis: TTL, isolation, ordering, graphs."""

from __future__ import annotations

import asyncio
import operator
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

import pytest
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.types import INTERRUPT
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from runtime.checkpoint.redis_saver import REGISTRY_GRACE_MS, RedisCheckpointSaver

pytestmark = pytest.mark.redis

TTL_S = 120


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.from_url(redis_url)
    yield c
    await c.aclose()


@pytest.fixture
async def prefix(client: aioredis.Redis) -> AsyncIterator[str]:
    p = f"switchboard-test:{uuid.uuid4().hex}"
    yield p
    keys = [k async for k in client.scan_iter(match=f"{p}:*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def saver(client: aioredis.Redis, prefix: str, clock: FakeClock) -> RedisCheckpointSaver:
    return RedisCheckpointSaver(client, ttl_s=TTL_S, prefix=prefix, clock=clock)


def cfg(thread: str, ns: str = "", checkpoint_id: str | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def checkpoint(values: dict[str, Any], versions: dict[str, Any]) -> Checkpoint:
    cp = empty_checkpoint()
    cp["id"] = str(uuid6(clock_seq=-1))
    cp["channel_values"] = values
    cp["channel_versions"] = versions
    return cp


async def put(
    saver: RedisCheckpointSaver,
    thread: str,
    values: dict[str, Any],
    versions: dict[str, Any],
    new: dict[str, Any],
    parent: RunnableConfig | None = None,
    ns: str = "",
    **metadata: Any,
) -> RunnableConfig:
    config = cfg(thread, ns, parent["configurable"]["checkpoint_id"] if parent else None)
    meta: Any = {"source": "loop", "step": 0, **metadata}
    return await saver.aput(config, checkpoint(values, versions), meta, new)


async def pttls(client: aioredis.Redis, keys: tuple[str, ...]) -> dict[str, int]:
    return {k: await client.pttl(k) for k in keys}


# ----------------------------------------------------------------- TTL


async def test_every_key_of_a_thread_carries_the_ttl(
    saver: RedisCheckpointSaver, client: aioredis.Redis, prefix: str
) -> None:
    first = await put(saver, "call-1", {"a": 1, "b": 2}, {"a": 1, "b": 1}, {"a": 1, "b": 1})
    await saver.aput_writes(first, [("a", 5)], "task-1")

    ttls = await pttls(client, saver.keys_for("call-1"))
    assert all(TTL_S * 1000 - 2000 < t <= TTL_S * 1000 for t in ttls.values()), ttls
    stored = {k.decode() async for k in client.scan_iter(match=f"{prefix}:*")}
    # Nothing of the thread lives outside its TTL'd keys; only the registry is shared.
    assert stored == {*saver.keys_for("call-1"), saver.registry_key}
    assert await client.zrange(saver.registry_key, 0, -1) == [b"call-1"]


async def test_a_call_that_keeps_talking_never_expires_mid_call(
    saver: RedisCheckpointSaver, client: aioredis.Redis
) -> None:
    keys = saver.keys_for("call-1")
    first = await put(saver, "call-1", {"a": 1, "b": "slot"}, {"a": 1, "b": 1}, {"a": 1, "b": 1})
    await saver.aput_writes(first, [("a", 2)], "task-1")
    for key in keys:  # the caller was quiet for all but 1.5 s of the TTL
        await client.pexpire(key, 1500)

    # Only channel "a" changes; the value of "b" was written by the first put.
    second = await put(saver, "call-1", {"a": 2, "b": "slot"}, {"a": 2, "b": 1}, {"a": 2}, first)
    assert min((await pttls(client, keys)).values()) > TTL_S * 1000 - 2000

    for key in keys:
        await client.pexpire(key, 1500)
    await saver.aput_writes(second, [("a", 3)], "task-2")
    assert min((await pttls(client, keys)).values()) > TTL_S * 1000 - 2000

    latest = await saver.aget_tuple(cfg("call-1"))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"a": 2, "b": "slot"}
    assert latest.pending_writes == [("task-2", "a", 3)]


async def test_an_abandoned_thread_is_gone_after_its_ttl(
    saver: RedisCheckpointSaver, client: aioredis.Redis
) -> None:
    first = await put(saver, "gone", {"a": 1}, {"a": 1}, {"a": 1})
    await saver.aput_writes(first, [("a", 2)], "task-1")
    await put(saver, "kept", {"a": 1}, {"a": 1}, {"a": 1})
    keys = saver.keys_for("gone")
    assert await client.exists(*keys) == len(keys)

    # Fast-forward the thread's remaining TTL: Redis itself expires the keys.
    for key in keys:
        assert await client.pexpire(key, 1)
    for _ in range(200):
        if not await client.exists(*keys):
            break
        await asyncio.sleep(0.005)

    assert await client.exists(*keys) == 0
    assert await saver.aget_tuple(cfg("gone")) is None
    assert [t async for t in saver.alist(cfg("gone"))] == []
    listed = {t.config["configurable"]["thread_id"] async for t in saver.alist(None)}
    assert listed == {"kept"}


async def test_registry_forgets_threads_after_ttl_and_grace(
    saver: RedisCheckpointSaver, client: aioredis.Redis, clock: FakeClock
) -> None:
    await put(saver, "old", {"a": 1}, {"a": 1}, {"a": 1})
    clock.now += TTL_S + REGISTRY_GRACE_MS / 1000 - 1
    await put(saver, "new", {"a": 1}, {"a": 1}, {"a": 1})
    assert set(await client.zrange(saver.registry_key, 0, -1)) == {b"old", b"new"}

    clock.now += 2
    await put(saver, "newer", {"a": 1}, {"a": 1}, {"a": 1})
    assert set(await client.zrange(saver.registry_key, 0, -1)) == {b"new", b"newer"}


async def test_ttl_none_keeps_threads(client: aioredis.Redis, prefix: str) -> None:
    saver = RedisCheckpointSaver(client, ttl_s=None, prefix=prefix)
    await put(saver, "t", {"a": 1}, {"a": 1}, {"a": 1})
    assert set((await pttls(client, saver.keys_for("t")[:2])).values()) == {-1}


@pytest.mark.parametrize("ttl", [0, -5, True])
def test_bad_ttl_or_prefix_is_rejected(client: aioredis.Redis, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        RedisCheckpointSaver(client, ttl_s=ttl)
    with pytest.raises(ValueError, match="prefix"):
        RedisCheckpointSaver(client, prefix="a{b}")


# ----------------------------------------------------- storage semantics


async def test_thread_ids_with_separators_do_not_collide(saver: RedisCheckpointSaver) -> None:
    threads = ["a", "a:b", "a}", "{a}", "a}:cp", "a:{b}:idx", "*"]
    for n, thread in enumerate(threads):
        await put(saver, thread, {"v": n}, {"v": 1}, {"v": 1})
    await saver.adelete_thread("a")
    assert await saver.aget_tuple(cfg("a")) is None
    for n, thread in enumerate(threads[1:], start=1):
        tup = await saver.aget_tuple(cfg(thread))
        assert tup is not None and tup.checkpoint["channel_values"] == {"v": n}, thread


async def test_nul_in_namespace_is_a_clear_error(saver: RedisCheckpointSaver) -> None:
    with pytest.raises(ValueError, match="checkpoint_ns must not contain NUL"):
        await put(saver, "t", {}, {}, {}, ns="a\x00b")


async def test_pending_writes_follow_writes_sort_key_and_special_channels_overwrite(
    saver: RedisCheckpointSaver,
) -> None:
    stored = await put(saver, "t", {}, {}, {})
    # Task ids sort opposite to task paths: the path decides (writes_sort_key).
    await saver.aput_writes(stored, [("x", "from-b")], "task-1", task_path="b")
    await saver.aput_writes(stored, [("x", "from-a"), ("y", 1)], "task-2", task_path="a")
    await saver.aput_writes(stored, [("x", "again")], "task-2", task_path="a")  # ignored
    await saver.aput_writes(stored, [(INTERRUPT, "first")], "task-0", task_path="c")
    await saver.aput_writes(stored, [(INTERRUPT, "second")], "task-0", task_path="c")

    tup = await saver.aget_tuple(stored)
    assert tup is not None
    assert tup.pending_writes == [
        ("task-2", "x", "from-a"),
        ("task-2", "y", 1),
        ("task-1", "x", "from-b"),
        ("task-0", INTERRUPT, "second"),
    ]


async def test_concurrent_writes_of_parallel_tasks_are_all_kept(
    saver: RedisCheckpointSaver,
) -> None:
    stored = await put(saver, "t", {}, {}, {})
    await asyncio.gather(
        *(saver.aput_writes(stored, [("ch", n)], f"task-{n:02}") for n in range(30))
    )
    tup = await saver.aget_tuple(stored)
    assert tup is not None and tup.pending_writes is not None
    assert sorted(w[2] for w in tup.pending_writes) == list(range(30))


async def test_alist_pages_filters_and_bounds(saver: RedisCheckpointSaver) -> None:
    configs: list[RunnableConfig] = []
    parent = None
    for step in range(130):  # more than two pages of 50
        parent = await put(saver, "t", {}, {}, {}, parent, step=step, odd=step % 2)
        configs.append(parent)
    await put(saver, "t", {}, {}, {}, ns="child", step=999)
    ids = [c["configurable"]["checkpoint_id"] for c in configs]

    root = [t.checkpoint["id"] async for t in saver.alist(cfg("t"))]
    assert root == list(reversed(ids))
    everything = [t async for t in saver.alist({"configurable": {"thread_id": "t"}})]
    assert len(everything) == 131
    assert [t.checkpoint["id"] for t in everything] == sorted(
        (t.checkpoint["id"] for t in everything), reverse=True
    )

    odd = [t.metadata["step"] async for t in saver.alist(cfg("t"), filter={"odd": 1})]
    assert odd == list(range(129, 0, -2))
    page = [
        t.metadata["step"]
        async for t in saver.alist(cfg("t"), before=configs[100], limit=3, filter={"odd": 0})
    ]
    assert page == [98, 96, 94]
    one = [t.checkpoint["id"] async for t in saver.alist(cfg("t", checkpoint_id=ids[7]))]
    assert one == [ids[7]]


async def test_prune_keep_latest_keeps_the_values_the_latest_reads(
    saver: RedisCheckpointSaver, client: aioredis.Redis
) -> None:
    first = await put(saver, "t", {"a": 1, "b": "kept"}, {"a": 1, "b": 1}, {"a": 1, "b": 1})
    await saver.aput_writes(first, [("a", 9)], "old-task")
    second = await put(saver, "t", {"a": 2, "b": "kept"}, {"a": 2, "b": 1}, {"a": 2}, first)
    await saver.aput_writes(second, [("a", 10)], "new-task")

    await saver.aprune(["t"])

    assert [t.checkpoint["id"] async for t in saver.alist(cfg("t"))] == [
        second["configurable"]["checkpoint_id"]
    ]
    latest = await saver.aget_tuple(cfg("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"a": 2, "b": "kept"}
    assert latest.pending_writes == [("new-task", "a", 10)]
    blobs_key, writes_key = saver.keys_for("t")[1:3]
    assert await client.hlen(blobs_key) == 2  # a@2 and b@1; a@1 is gone
    assert await client.hlen(writes_key) == 1
    with pytest.raises(ValueError, match="unknown prune strategy"):
        await saver.aprune(["t"], strategy="keep_some")


async def test_sync_api_is_refused_with_a_pointer_to_the_async_one(
    saver: RedisCheckpointSaver,
) -> None:
    with pytest.raises(NotImplementedError, match=r"async-only.*ainvoke"):
        saver.get_tuple(cfg("t"))


# ----------------------------------------------------------- with graphs


class Booking(TypedDict, total=False):
    day: str
    log: Annotated[list[str], operator.add]


def _booking_graph(saver: RedisCheckpointSaver) -> Any:
    def ask(state: Booking) -> Booking:
        return {"day": interrupt("Which day suits you?"), "log": ["asked"]}

    def book(state: Booking) -> Booking:
        return {"log": [f"booked {state['day']}"]}

    return (
        StateGraph(Booking)
        .add_node("ask", ask)
        .add_node("book", book)
        .add_edge(START, "ask")
        .add_edge("ask", "book")
        .add_edge("book", END)
        .compile(checkpointer=saver)
    )


async def test_interrupted_graph_resumes_through_a_new_saver(
    saver: RedisCheckpointSaver, redis_url: str, prefix: str
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "call-7"}}
    first = await _booking_graph(saver).ainvoke({"log": ["start"]}, config)
    assert first["__interrupt__"][0].value == "Which day suits you?"

    other = RedisCheckpointSaver.from_url(redis_url, prefix=prefix)
    try:
        graph = _booking_graph(other)
        assert (await graph.aget_state(config)).next == ("ask",)
        final = await graph.ainvoke(Command(resume="tuesday"), config)
    finally:
        await other.aclose()
    assert final == {"day": "tuesday", "log": ["start", "asked", "booked tuesday"]}


async def test_forking_a_thread_leaves_the_original_branch_intact(
    saver: RedisCheckpointSaver,
) -> None:
    graph = _booking_graph(saver)
    config: RunnableConfig = {"configurable": {"thread_id": "fork"}}
    await graph.ainvoke({"log": ["start"]}, config)
    await graph.ainvoke(Command(resume="monday"), config)
    history = [s async for s in graph.aget_state_history(config)]
    before = {s.config["configurable"]["checkpoint_id"]: s.values for s in history}
    asked = next(s for s in history if s.next == ("ask",))

    await graph.aupdate_state(asked.config, {"log": ["edited"]})

    after = {
        s.config["configurable"]["checkpoint_id"]: s.values
        async for s in graph.aget_state_history(config)
    }
    assert {cid: after[cid] for cid in before} == before
    assert len(after) == len(before) + 1


async def test_more_concurrent_writes_than_pooled_connections_all_succeed(
    redis_url: str, prefix: str
) -> None:
    # Each write holds a connection for its round trip; past the pool's size
    # the rest wait their turn instead of failing with MaxConnectionsError.
    small = RedisCheckpointSaver.from_url(
        redis_url, prefix=prefix, max_connections=2, pool_timeout_s=10.0
    )
    try:
        threads = [f"busy-{i}" for i in range(40)]
        await asyncio.gather(
            *(put(small, t, {"n": i}, {"n": "1"}, {"n": "1"}) for i, t in enumerate(threads))
        )
        pool = small.client.connection_pool
        assert isinstance(pool, aioredis.BlockingConnectionPool)
        assert pool.max_connections == 2
        found = await asyncio.gather(*(small.aget_tuple(cfg(t)) for t in threads))
    finally:
        await small.aclose()
    assert [f.checkpoint["channel_values"]["n"] if f else None for f in found] == list(range(40))


async def test_a_pool_wait_past_its_timeout_fails_the_command(redis_url: str, prefix: str) -> None:
    tight = RedisCheckpointSaver.from_url(
        redis_url, prefix=prefix, max_connections=1, pool_timeout_s=0.05
    )
    pool = tight.client.connection_pool
    held = await pool.get_connection()
    try:
        with pytest.raises(aioredis.ConnectionError):
            await tight.ping()
    finally:
        await pool.release(held)
        await tight.aclose()
