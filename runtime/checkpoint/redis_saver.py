"""LangGraph checkpointer on plain Redis (no RedisJSON/RediSearch) with a per-thread TTL.

Why our own saver rather than a wrapper of `langgraph-checkpoint-plainredis`
0.1.0 (which does pass the conformance suite's 58 base checks): its layout
cannot give a call a TTL that is safe mid-call. It stores each channel value once
per (channel, version) in a key of its own, shared by later checkpoints, and its
`ttl` refreshes only the keys the current put writes, so a channel that does not
change for `ttl` seconds (the agent id, saved slots) expires while the call is
still talking and the checkpoint silently loses it; refreshing every key of a
thread from outside would cost O(keys) per write. It also keeps LangGraph's
integer channel versions, so forking a thread (update_state on an older
checkpoint) overwrites values another branch still reads; it drops `task_path`,
so pending writes do not come back in `writes_sort_key` order; its thread
registry never expires and grows with every abandoned call; `alist` reads a
thread's whole timeline and makes three round trips per tuple; and it is a
v0.1.0 single-author release. What it gets right (MULTI/EXEC puts, non-blocking
`redis.asyncio` I/O) is kept here; wrapping would mean replacing its layout, so
this module is a saver of its own with the layout of `redis_layout`.

TTL: every write is atomic and also PEXPIREs all five keys of the thread (`aput`
and `aput_writes` are one Lua script each, `redis_scripts`; `acopy_thread` one
MULTI/EXEC), so they share one deadline: a call
that keeps talking never loses part of its state and an abandoned one disappears
whole `ttl` after its last write. The registry entry of an expired thread is
dropped by the next write of any thread (after a grace period that absorbs clock
skew between app servers) and skipped by listings meanwhile.

Costs: a write is one EVALSHA round trip; the newest checkpoint (what a turn
reads) is two round trips, a script (newest ref, its record and pending writes,
O(log n)) and one HMGET of its channel values; loading a page of tuples takes
two pipelined round trips whatever the page size; `alist` on one
namespace pages through the timeline by key set (O(log n + page)); `alist` with
only a thread reads that thread's timeline once; `alist(None)` walks the
registry (O(live threads)). Channel versions carry a random suffix, as in
LangGraph's in-memory and SQLite savers. All I/O is on `redis.asyncio`. Reads
are not snapshot-isolated against a concurrent delete of the same thread.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runtime.checkpoint import redis_scripts
from runtime.checkpoint.redis_layout import (
    EMPTY_TAG,
    ThreadKeys,
    WriteRecord,
    blob_field,
    checkpoint_ref,
    decode_write,
    encode_write,
    namespace_bounds,
    pack_typed,
    registry_key,
    split_ref,
    unpack_typed,
    write_bounds,
    write_field,
)
from runtime.checkpoint.redis_scripts import flat
from runtime.checkpoint.redis_threads import ThreadMaintenance
from runtime.checkpoint.redis_threads import aw as _aw

DEFAULT_PREFIX = "switchboard:cp"
DEFAULT_TTL_S = 3600
#: Reconnect-and-retry attempts of one command after a connection error.
RECONNECT_RETRIES = 3
#: Connections of a saver's own pool: enough for hundreds of calls' commands
#: in flight on one event loop (each takes well under a millisecond in Redis).
POOL_MAX_CONNECTIONS = 64
#: Longest a command waits for a free pooled connection before failing.
POOL_TIMEOUT_S = 30.0
# Registry entries outlive their thread's TTL by this much before being pruned,
# so an app-server clock ahead of Redis's never hides a live thread.
REGISTRY_GRACE_MS = 60_000
_PAGE = 50


class RedisCheckpointSaver(ThreadMaintenance, BaseCheckpointSaver[str]):
    """Async LangGraph checkpointer on plain Redis 5+ with a per-thread TTL.

    `ttl_s=None` keeps threads until deleted. `clock` (unix seconds) only dates
    registry entries; key expiry is Redis's own. `aclose()` closes `client` only
    when the saver created it (`from_url`).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_s: int | None = DEFAULT_TTL_S,
        prefix: str = DEFAULT_PREFIX,
        serde: SerializerProtocol | None = None,
        clock: Callable[[], float] = time.time,
        owns_client: bool = False,
    ) -> None:
        super().__init__(serde=serde)
        if ttl_s is not None and (isinstance(ttl_s, bool) or ttl_s <= 0):
            raise ValueError(f"ttl_s must be a positive number of seconds or None, got {ttl_s!r}")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be non-empty and free of braces, got {prefix!r}")
        self.client = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.registry_key = registry_key(prefix)
        self._clock = clock
        self._owns_client = owns_client
        self._put = client.register_script(redis_scripts.PUT)
        self._put_writes = client.register_script(redis_scripts.PUT_WRITES)
        self._latest = client.register_script(redis_scripts.LATEST)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl_s: int | None = DEFAULT_TTL_S,
        prefix: str = DEFAULT_PREFIX,
        serde: SerializerProtocol | None = None,
        socket_timeout_s: float = 5.0,
        max_connections: int = POOL_MAX_CONNECTIONS,
        pool_timeout_s: float = POOL_TIMEOUT_S,
    ) -> RedisCheckpointSaver:
        """A saver owning a new client for `url` (redis://, rediss://, unix://)
        on a pool of at most `max_connections` connections; a command finding
        them all busy waits up to `pool_timeout_s` for one.

        No I/O happens here; raises ValueError when redis-py rejects the URL.
        """
        # A blocking pool: past `max_connections` commands in flight, a command
        # waits for a free connection (up to `pool_timeout_s`) instead of
        # failing with MaxConnectionsError, so load costs latency, not calls.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout_s,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            # Pooled connections go stale when Redis restarts: each command
            # reconnects and retries a bounded number of times (< 1 s of backoff).
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), RECONNECT_RETRIES),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            decode_responses=False,
        )
        client = aioredis.Redis.from_pool(pool)
        return cls(client, ttl_s=ttl_s, prefix=prefix, serde=serde, owns_client=True)

    async def aclose(self) -> None:
        """Release the connection pool if this saver created it."""
        if self._owns_client:
            await self.client.aclose()

    async def ping(self) -> None:
        """Raise redis-py's connection/auth error when the server cannot be used."""
        await _aw(self.client.ping())

    def keys_for(self, thread_id: str) -> tuple[str, ...]:
        """Every key that holds data of `thread_id` (they share one TTL)."""
        return ThreadKeys.of(self.prefix, thread_id).all

    def _script_keys(self, thread_id: str) -> list[str]:
        return [*self.keys_for(thread_id), self.registry_key]

    def _touch_args(self, thread_id: str) -> list[Any]:
        """The TTL arguments every write script starts with (see `redis_scripts`)."""
        now_ms = int(self._clock() * 1000)
        if self.ttl_s is None:
            return ["", now_ms, 0, thread_id]
        ttl_ms = self.ttl_s * 1000
        return [ttl_ms, now_ms, now_ms - ttl_ms - REGISTRY_GRACE_MS, thread_id]

    def _touch(self, pipe: Pipeline, thread_id: str) -> None:
        """Queue the TTL refresh of all of a thread's keys and of its registry entry."""
        now_ms = int(self._clock() * 1000)
        if self.ttl_s is not None:
            ttl_ms = self.ttl_s * 1000
            for key in self.keys_for(thread_id):
                pipe.pexpire(key, ttl_ms)
            cutoff = now_ms - ttl_ms - REGISTRY_GRACE_MS
            pipe.zremrangebyscore(self.registry_key, "-inf", f"({cutoff}")
        pipe.zadd(self.registry_key, {thread_id: now_ms})

    # -------------------------------------------------------------- writes

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the values of the channels in `new_versions`
        atomically, refreshing the thread's TTL."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        cid = str(checkpoint["id"])
        ref = checkpoint_ref(ns, cid)
        payload = {
            "checkpoint": {k: v for k, v in checkpoint.items() if k != "channel_values"},
            "metadata": get_checkpoint_metadata(config, metadata),
            "parent": conf.get("checkpoint_id"),
        }
        values = checkpoint.get("channel_values") or {}
        blobs = {
            blob_field(ns, channel, version): (
                pack_typed(*self.serde.dumps_typed(values[channel]))
                if channel in values
                else pack_typed(EMPTY_TAG, b"")
            )
            for channel, version in new_versions.items()
        }
        record = pack_typed(*self.serde.dumps_typed(payload))
        await self._put(
            keys=self._script_keys(thread_id),
            args=[*self._touch_args(thread_id), ref, record, *flat(blobs)],
        )
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}}

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes atomically, refreshing the thread's TTL.

        A regular write is kept once per (task_id, index); special channels
        (error, interrupt, resume, scheduled) are overwritten, as in LangGraph's
        reference savers.
        """
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ref = checkpoint_ref(str(conf.get("checkpoint_ns", "")), str(conf["checkpoint_id"]))
        args: list[Any] = self._touch_args(thread_id)
        for position, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, position)
            tag, data = self.serde.dumps_typed(value)
            record = encode_write(WriteRecord(task_id, channel, task_path, idx, tag, data))
            args += ["1" if idx >= 0 else "0", write_field(ref, task_id, idx), record]
        await self._put_writes(keys=self._script_keys(thread_id), args=args)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Monotonic version with a random suffix, so that forked branches of a
        thread never write the same (channel, version) value."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # --------------------------------------------------------------- reads

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names, or the newest of its thread and
        namespace when it names none; None when there is none."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        cid = get_checkpoint_id(config)
        if cid is not None:
            return (await self._load(thread_id, [(ns, str(cid))]))[0]
        keys = ThreadKeys.of(self.prefix, thread_id)
        found = await self._latest(
            keys=[keys.cp, keys.writes, keys.wix, keys.idx], args=list(namespace_bounds(ns))
        )
        if not found:
            return None
        ref, raw_cp, fields, raw_writes = found
        return (
            await self._complete(
                thread_id,
                [split_ref(ref)],
                [raw_cp],
                [list(fields)],
                dict(zip(fields, raw_writes, strict=True)),
            )
        )[0]

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first (descending checkpoint id) of one namespace,
        one thread, or (config None) every live thread, most recently written
        thread first; `before` is exclusive; `filter` matches metadata exactly."""
        if limit is not None and limit <= 0:
            return
        remaining = limit
        if config is None:
            registered = await _aw(self.client.zrevrange(self.registry_key, 0, -1))
            threads = [t.decode() for t in registered]
        else:
            threads = [str(config["configurable"]["thread_id"])]
        ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        page = remaining if remaining is not None and not filter else _PAGE
        for thread_id in threads:
            async for refs in self._candidates(thread_id, ns, wanted, before_id, page):
                for tup in await self._load(thread_id, refs):
                    if tup is None:
                        continue
                    if filter and any(tup.metadata.get(k) != v for k, v in filter.items()):
                        continue
                    yield tup
                    if remaining is not None:
                        remaining -= 1
                        if remaining == 0:
                            return

    async def _candidates(
        self,
        thread_id: str,
        ns: str | None,
        wanted: str | None,
        before_id: str | None,
        page: int,
    ) -> AsyncIterator[list[tuple[str, str]]]:
        """Pages of (ns, checkpoint id), newest first, before the metadata filter."""
        idx = ThreadKeys.of(self.prefix, thread_id).idx
        if ns is None:
            pairs = [split_ref(ref) for ref in await _aw(self.client.zrange(idx, 0, -1))]
            pairs = [
                (n, c)
                for n, c in pairs
                if (wanted is None or c == wanted) and (before_id is None or c < before_id)
            ]
            pairs.sort(key=lambda pair: pair[1], reverse=True)
            for start in range(0, len(pairs), page):
                yield pairs[start : start + page]
            return
        if wanted is not None:
            if before_id is None or wanted < before_id:
                yield [(ns, wanted)]
            return
        high, low = namespace_bounds(ns, before_id)
        while True:
            refs = await _aw(self.client.zrevrangebylex(idx, high, low, 0, page))
            if refs:
                yield [split_ref(ref) for ref in refs]
            if len(refs) < page:
                return
            high = b"(" + refs[-1]

    async def _load(
        self, thread_id: str, refs: Sequence[tuple[str, str]]
    ) -> list[CheckpointTuple | None]:
        """Tuples for (ns, checkpoint id) pairs of one thread, in two round trips."""
        if not refs:
            return []
        keys = ThreadKeys.of(self.prefix, thread_id)
        encoded = [checkpoint_ref(ns, cid) for ns, cid in refs]
        first = self.client.pipeline(transaction=True)
        first.hmget(keys.cp, encoded)
        for ref in encoded:
            first.zrangebylex(keys.wix, *write_bounds(ref))
        raw_cps, *write_fields = await first.execute()
        return await self._complete(thread_id, refs, raw_cps, write_fields, None)

    async def _complete(
        self,
        thread_id: str,
        refs: Sequence[tuple[str, str]],
        raw_cps: Sequence[bytes | None],
        write_fields: Sequence[list[bytes]],
        writes: dict[bytes, bytes | None] | None,
    ) -> list[CheckpointTuple | None]:
        """Tuples from the checkpoint records and write fields already read, in
        one more round trip for the channel values (and the writes, unless
        `writes` already holds them)."""
        keys = ThreadKeys.of(self.prefix, thread_id)
        payloads = [self._payload(raw) if raw is not None else None for raw in raw_cps]
        blob_fields = sorted(
            {
                blob_field(ns, channel, version)
                for (ns, _), payload in zip(refs, payloads, strict=True)
                if payload is not None
                for channel, version in payload["checkpoint"]["channel_versions"].items()
            }
        )
        fields = [] if writes is not None else [f for own in write_fields for f in own]
        blobs: dict[bytes, bytes | None] = {}
        writes = dict(writes or {})
        if blob_fields and not fields:
            values = await _aw(self.client.hmget(keys.blobs, blob_fields))
            blobs = dict(zip(blob_fields, values, strict=True))
        elif blob_fields or fields:
            second = self.client.pipeline(transaction=True)
            if blob_fields:
                second.hmget(keys.blobs, blob_fields)
            if fields:
                second.hmget(keys.writes, fields)
            results = iter(await second.execute())
            if blob_fields:
                blobs = dict(zip(blob_fields, next(results), strict=True))
            if fields:
                writes = dict(zip(fields, next(results), strict=True))
        return [
            None
            if payload is None
            else self._tuple(thread_id, ns, cid, payload, blobs, [writes[f] for f in own])
            for (ns, cid), payload, own in zip(refs, payloads, write_fields, strict=True)
        ]

    def _payload(self, raw: bytes) -> dict[str, Any]:
        return cast(dict[str, Any], self.serde.loads_typed(unpack_typed(raw)))

    def _tuple(
        self,
        thread_id: str,
        ns: str,
        cid: str,
        payload: dict[str, Any],
        blobs: dict[bytes, bytes | None],
        raw_writes: list[bytes | None],
    ) -> CheckpointTuple:
        stored = payload["checkpoint"]
        values: dict[str, Any] = {}
        for channel, version in stored["channel_versions"].items():
            raw = blobs.get(blob_field(ns, channel, version))
            if raw is not None:
                tag, data = unpack_typed(raw)
                if tag != EMPTY_TAG:
                    values[channel] = self.serde.loads_typed((tag, data))
        records = sorted(
            (decode_write(raw) for raw in raw_writes if raw is not None),
            key=lambda r: writes_sort_key(r.task_path, r.task_id, r.idx),
        )
        pending: list[PendingWrite] = [
            (r.task_id, r.channel, self.serde.loads_typed((r.tag, r.data))) for r in records
        ]
        parent = payload.get("parent")
        ids = {"thread_id": thread_id, "checkpoint_ns": ns}
        return CheckpointTuple(
            config={"configurable": {**ids, "checkpoint_id": cid}},
            checkpoint=cast(Checkpoint, {**stored, "channel_values": values}),
            metadata=cast(CheckpointMetadata, payload["metadata"]),
            parent_config={"configurable": {**ids, "checkpoint_id": parent}} if parent else None,
            pending_writes=pending,
        )

    # ------------------------------------------------------ sync API: none

    @staticmethod
    def _async_only() -> NotImplementedError:
        return NotImplementedError(
            "RedisCheckpointSaver is async-only: run the graph with ainvoke/astream "
            "and aget_state, not invoke/stream/get_state."
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        raise self._async_only()

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        raise self._async_only()

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        raise self._async_only()

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        raise self._async_only()

    def delete_thread(self, thread_id: str) -> None:
        raise self._async_only()
