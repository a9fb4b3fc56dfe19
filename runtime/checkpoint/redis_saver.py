"""LangGraph checkpointer on plain Redis (no RedisJSON/RediSearch) with a per-thread TTL.

Why our own saver and not a wrapper of `langgraph-checkpoint-plainredis` 0.1.0:
that package passes the conformance suite's base checks, but its layout cannot
give a call a TTL that is safe mid-call. It stores each channel value once per
(channel, version) in its own key, shared by later checkpoints, and its `ttl`
only refreshes the keys written by the current put. A channel that does not
change for `ttl` seconds (the agent id, saved slots) therefore expires while
the call is still talking, and the checkpoint silently loses that value;
refreshing every key of a thread on each write would be O(keys) per write. It
also leaves LangGraph's integer channel versions in place, so forking a thread
(update_state on an older checkpoint) rewrites blobs another branch still reads;
drops `task_path`, so pending writes are not returned in `writes_sort_key`
order; and keeps a global thread registry with no expiry that grows with every
abandoned call. It is a v0.1.0 single-author release.

Layout: every thread owns exactly five keys, hash-tagged so that they share a
cluster slot and can be written in one MULTI/EXEC:

    {prefix}:{<thread>}:cp      hash  ns NUL checkpoint_id            -> checkpoint + metadata
    {prefix}:{<thread>}:blobs   hash  ns NUL channel NUL version      -> channel value
    {prefix}:{<thread>}:writes  hash  ns NUL cid NUL task_id NUL idx  -> pending write
    {prefix}:{<thread>}:wix     zset  the writes fields, lex-ordered (per-checkpoint range reads)
    {prefix}:{<thread>}:idx     zset  ns NUL checkpoint_id, lex-ordered (the timeline)
    {prefix}:threads            zset  thread id -> last write (unix ms), for listing all threads

Every write (`aput`, `aput_writes`) is one transaction that also sets PEXPIRE
ttl on all five keys, so all keys of a thread share one deadline: a call that
keeps talking never loses part of its state, an abandoned one disappears whole
`ttl` after its last write. The registry entry of an expired thread is dropped
by the next write of any thread (ZREMRANGEBYSCORE, with a grace period for clock
skew between app servers) and skipped by listings meanwhile.

Costs: the latest checkpoint is ZREVRANGEBYLEX (O(log n)); loading tuples takes
two pipelined round trips per page of results whatever the page size; `alist`
for one namespace pages through the timeline by key set (O(log n + page));
`alist` without a namespace reads that thread's timeline once; `alist(None)`
walks the registry (O(live threads)). Channel versions carry a random suffix,
as in LangGraph's in-memory and SQLite savers, so forks never share a blob key.
Everything runs on `redis.asyncio`; nothing blocks the event loop. Reads are not
snapshot-isolated against a concurrent delete of the same thread.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
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

DEFAULT_PREFIX = "switchboard:cp"
DEFAULT_TTL_S = 3600
# Registry entries outlive their thread's TTL by this much before pruning, so a
# clock ahead of Redis's never drops a live thread from listings.
REGISTRY_GRACE_MS = 60_000
_PAGE = 50
_SEP = b"\x00"
_MAX = b"\xff"  # greater than any byte of a UTF-8 string
_EMPTY = "empty"


def _enc(name: str, value: str) -> bytes:
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters: {value!r}")
    return value.encode()


def _pack(tag: str, data: bytes) -> bytes:
    return tag.encode() + _SEP + data


def _unpack(raw: bytes) -> tuple[str, bytes]:
    tag, _, data = raw.partition(_SEP)
    return tag.decode(), data


def _aw(value: Any) -> Awaitable[Any]:
    """redis-py types commands as `T | Awaitable[T]`; on the asyncio client they await."""
    return cast(Awaitable[Any], value)


@dataclass(frozen=True, slots=True)
class _ThreadKeys:
    cp: str
    blobs: str
    writes: str
    wix: str
    idx: str

    @property
    def all(self) -> tuple[str, ...]:
        return (self.cp, self.blobs, self.writes, self.wix, self.idx)


class RedisCheckpointSaver(BaseCheckpointSaver[str]):
    """Async LangGraph checkpointer on plain Redis 5+ with a per-thread TTL.

    `ttl_s=None` keeps threads until deleted. `clock` (unix seconds) only dates
    registry entries; key expiry is Redis's own. The saver closes `client` in
    `aclose()` only when it created it (`from_url`).
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
        self._clock = clock
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl_s: int | None = DEFAULT_TTL_S,
        prefix: str = DEFAULT_PREFIX,
        serde: SerializerProtocol | None = None,
        socket_timeout_s: float = 5.0,
    ) -> RedisCheckpointSaver:
        """A saver owning a new client for `url` (redis://, rediss://, unix://).

        No I/O happens here; raises ValueError when redis-py rejects the URL.
        """
        client = aioredis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            decode_responses=False,
        )
        return cls(client, ttl_s=ttl_s, prefix=prefix, serde=serde, owns_client=True)

    async def aclose(self) -> None:
        """Release the connection pool if this saver created it."""
        if self._owns_client:
            await self.client.aclose()

    async def ping(self) -> None:
        """Raise redis-py's connection/auth error when the server cannot be used."""
        await _aw(self.client.ping())

    # ---------------------------------------------------------------- keys

    def keys_for(self, thread_id: str) -> tuple[str, ...]:
        """Every key that holds data of `thread_id` (all share one TTL)."""
        return self._keys(thread_id).all

    @property
    def registry_key(self) -> str:
        return f"{self.prefix}:threads"

    def _keys(self, thread_id: str) -> _ThreadKeys:
        base = f"{self.prefix}:{{{thread_id}}}"
        return _ThreadKeys(
            cp=f"{base}:cp",
            blobs=f"{base}:blobs",
            writes=f"{base}:writes",
            wix=f"{base}:wix",
            idx=f"{base}:idx",
        )

    @staticmethod
    def _ref(ns: str, cid: str) -> bytes:
        return _enc("checkpoint_ns", ns) + _SEP + _enc("checkpoint_id", cid)

    @staticmethod
    def _blob_field(ns: str, channel: str, version: Any) -> bytes:
        return _enc("checkpoint_ns", ns) + _SEP + channel.encode() + _SEP + str(version).encode()

    def _touch(self, pipe: Pipeline, thread_id: str) -> None:
        """Queue the TTL refresh of all of a thread's keys and its registry entry."""
        now_ms = int(self._clock() * 1000)
        if self.ttl_s is not None:
            ttl_ms = self.ttl_s * 1000
            for key in self._keys(thread_id).all:
                pipe.pexpire(key, ttl_ms)
            pipe.zremrangebyscore(
                self.registry_key, "-inf", f"({now_ms - ttl_ms - REGISTRY_GRACE_MS}"
            )
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
        ref = self._ref(ns, cid)
        stored = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        payload = {
            "checkpoint": stored,
            "metadata": get_checkpoint_metadata(config, metadata),
            "parent": conf.get("checkpoint_id"),
        }
        values = checkpoint.get("channel_values") or {}
        blobs = {
            self._blob_field(ns, channel, version): (
                _pack(*self.serde.dumps_typed(values[channel]))
                if channel in values
                else _pack(_EMPTY, b"")
            )
            for channel, version in new_versions.items()
        }
        keys = self._keys(thread_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(keys.cp, ref, _pack(*self.serde.dumps_typed(payload)))
        if blobs:
            pipe.hset(keys.blobs, mapping=cast(Any, blobs))
        pipe.zadd(keys.idx, {ref: 0})
        self._touch(pipe, thread_id)
        await pipe.execute()
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
        ref = self._ref(str(conf.get("checkpoint_ns", "")), str(conf["checkpoint_id"]))
        task = _enc("task_id", task_id)
        keys = self._keys(thread_id)
        pipe = self.client.pipeline(transaction=True)
        for position, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, position)
            field = ref + _SEP + task + _SEP + str(idx).encode()
            tag, data = self.serde.dumps_typed(value)
            header = json.dumps([task_id, channel, task_path, idx, tag], ensure_ascii=False)
            record = header.encode() + _SEP + data
            if idx >= 0:
                pipe.hsetnx(keys.writes, field, record)
            else:
                pipe.hset(keys.writes, field, record)
            pipe.zadd(keys.wix, {field: 0})
        self._touch(pipe, thread_id)
        await pipe.execute()

    async def adelete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint, value and write of a thread (no-op if absent)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*self._keys(str(thread_id)).all)
        pipe.zrem(self.registry_key, str(thread_id))
        await pipe.execute()

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy all checkpoints and writes of one thread into another (merging
        into whatever the target holds), refreshing the target's TTL."""
        src, dst = self._keys(str(source_thread_id)), self._keys(str(target_thread_id))
        read = self.client.pipeline(transaction=True)
        read.hgetall(src.cp)
        read.hgetall(src.blobs)
        read.hgetall(src.writes)
        read.zrange(src.wix, 0, -1)
        read.zrange(src.idx, 0, -1)
        cps, blobs, writes, wix, idx = await read.execute()
        if not idx:
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(dst.cp, mapping=cps)
        if blobs:
            pipe.hset(dst.blobs, mapping=blobs)
        if writes:
            pipe.hset(dst.writes, mapping=writes)
            pipe.zadd(dst.wix, dict.fromkeys(wix, 0))
        pipe.zadd(dst.idx, dict.fromkeys(idx, 0))
        self._touch(pipe, str(target_thread_id))
        await pipe.execute()

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest` keeps the newest checkpoint of each namespace (with its
        writes and the values it reads); `delete` removes the threads."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                await self._keep_latest(str(thread_id))

    async def _keep_latest(self, thread_id: str) -> None:
        keys = self._keys(thread_id)

        async def prune(pipe: Pipeline) -> None:
            refs: list[bytes] = await _aw(pipe.zrange(keys.idx, 0, -1))
            latest: dict[bytes, bytes] = {}
            for ref in refs:  # ascending, so the last one per namespace wins
                latest[ref.partition(_SEP)[0]] = ref
            old = [ref for ref in refs if ref not in set(latest.values())]
            kept = list(latest.values())
            payloads = await _aw(pipe.hmget(keys.cp, kept)) if kept else []
            used: set[bytes] = set()
            for ref, raw in zip(kept, payloads, strict=True):
                if raw is not None:
                    ns = ref.partition(_SEP)[0].decode()
                    versions = self._load_payload(raw)["checkpoint"]["channel_versions"]
                    used.update(self._blob_field(ns, ch, v) for ch, v in versions.items())
            unused = [f for f in await _aw(pipe.hkeys(keys.blobs)) if f not in used]
            stale_writes = [
                f
                for f in await _aw(pipe.zrange(keys.wix, 0, -1))
                if f.rpartition(_SEP)[0].rpartition(_SEP)[0] not in latest.values()
            ]
            pipe.multi()
            if old:
                pipe.hdel(keys.cp, *old)
                pipe.zrem(keys.idx, *old)
            if stale_writes:
                pipe.hdel(keys.writes, *stale_writes)
                pipe.zrem(keys.wix, *stale_writes)
            if unused:
                pipe.hdel(keys.blobs, *unused)

        await self.client.transaction(prune, *keys.all)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Monotonic version with a random suffix, so that forked branches of a
        thread never write the same (channel, version) blob."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # --------------------------------------------------------------- reads

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by `config`, or the thread's newest one in that
        namespace when it names none; None when there is none."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        cid = get_checkpoint_id(config)
        if cid is None:
            top = await _aw(
                self.client.zrevrangebylex(
                    self._keys(thread_id).idx, b"[" + self._ref(ns, "") + _MAX,
                    b"[" + self._ref(ns, ""), 0, 1,
                )
            )
            if not top:
                return None
            cid = top[0].partition(_SEP)[2].decode()
        loaded = await self._load(thread_id, [(ns, str(cid))])
        return loaded[0]

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first (descending checkpoint id) of one thread, one
        namespace, or (config None) every live thread; `before` is exclusive;
        `filter` matches metadata values exactly."""
        if limit is not None and limit <= 0:
            return
        remaining = limit
        if config is None:
            threads = [t.decode() for t in await _aw(self.client.zrevrange(self.registry_key, 0, -1))]
        else:
            threads = [str(config["configurable"]["thread_id"])]
        ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        for thread_id in threads:
            async for page in self._candidates(thread_id, ns, wanted, before_id, remaining, filter):
                for tup in await self._load(thread_id, page):
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
        limit: int | None,
        filter: dict[str, Any] | None,
    ) -> AsyncIterator[list[tuple[str, str]]]:
        """Pages of (ns, checkpoint id), newest first, before any metadata filter."""
        page = limit if limit is not None and not filter else _PAGE
        idx = self._keys(thread_id).idx
        if ns is None:
            refs = await _aw(self.client.zrange(idx, 0, -1))
            pairs = [(n.decode(), c.decode()) for n, _, c in (r.partition(_SEP) for r in refs)]
            pairs = [
                p
                for p in pairs
                if (wanted is None or p[1] == wanted) and (before_id is None or p[1] < before_id)
            ]
            pairs.sort(key=lambda p: p[1], reverse=True)
            for start in range(0, len(pairs), page):
                yield pairs[start : start + page]
            return
        if wanted is not None:
            if before_id is None or wanted < before_id:
                yield [(ns, wanted)]
            return
        low = b"[" + self._ref(ns, "")
        high = b"(" + self._ref(ns, before_id) if before_id is not None else low + _MAX
        while True:
            refs = await _aw(self.client.zrevrangebylex(idx, high, low, 0, page))
            if not refs:
                return
            yield [(ns, r.partition(_SEP)[2].decode()) for r in refs]
            if len(refs) < page:
                return
            high = b"(" + refs[-1]

    async def _load(
        self, thread_id: str, refs: Sequence[tuple[str, str]]
    ) -> list[CheckpointTuple | None]:
        """Checkpoint tuples for (ns, id) pairs of one thread, in two round trips."""
        if not refs:
            return []
        keys = self._keys(thread_id)
        encoded = [self._ref(ns, cid) for ns, cid in refs]
        first = self.client.pipeline(transaction=False)
        first.hmget(keys.cp, encoded)
        for ref in encoded:
            first.zrangebylex(keys.wix, b"[" + ref + _SEP, b"[" + ref + _SEP + _MAX)
        raw_cps, *write_fields = await first.execute()
        payloads = [self._load_payload(raw) if raw is not None else None for raw in raw_cps]
        blob_fields = sorted(
            {
                self._blob_field(ns, channel, version)
                for (ns, _), p in zip(refs, payloads, strict=True)
                if p is not None
                for channel, version in p["checkpoint"]["channel_versions"].items()
            }
        )
        all_write_fields = [f for fields in write_fields for f in fields]
        second = self.client.pipeline(transaction=False)
        second.hmget(keys.blobs, blob_fields) if blob_fields else second.echo(b"")
        second.hmget(keys.writes, all_write_fields) if all_write_fields else second.echo(b"")
        raw_blobs, raw_writes = await second.execute()
        blobs = dict(zip(blob_fields, raw_blobs, strict=True)) if blob_fields else {}
        write_values = (
            dict(zip(all_write_fields, raw_writes, strict=True)) if all_write_fields else {}
        )
        out: list[CheckpointTuple | None] = []
        for (ns, cid), payload, fields in zip(refs, payloads, write_fields, strict=True):
            if payload is None:
                out.append(None)
                continue
            out.append(
                self._tuple(thread_id, ns, cid, payload, blobs, [write_values[f] for f in fields])
            )
        return out

    def _load_payload(self, raw: bytes) -> dict[str, Any]:
        return cast(dict[str, Any], self.serde.loads_typed(_unpack(raw)))

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
            raw = blobs.get(self._blob_field(ns, channel, version))
            if raw is None:
                continue
            tag, data = _unpack(raw)
            if tag != _EMPTY:
                values[channel] = self.serde.loads_typed((tag, data))
        records = []
        for raw in raw_writes:
            if raw is None:
                continue
            header, _, data = raw.partition(_SEP)
            task_id, channel, task_path, idx, tag = json.loads(header)
            records.append((writes_sort_key(task_path, task_id, idx), task_id, channel, tag, data))
        records.sort(key=lambda r: r[0])
        pending: list[PendingWrite] = [
            (task_id, channel, self.serde.loads_typed((tag, data)))
            for _, task_id, channel, tag, data in records
        ]
        parent = payload.get("parent")
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint=cast(Checkpoint, {**stored, "channel_values": values}),
            metadata=cast(CheckpointMetadata, payload["metadata"]),
            parent_config=(
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}}
                if parent
                else None
            ),
            pending_writes=pending,
        )

    # ------------------------------------------------------- sync API: none

    def _async_only(self) -> NotImplementedError:
        return NotImplementedError(
            "RedisCheckpointSaver is async-only: run the graph with ainvoke/astream "
            "(or aget_state), not invoke/stream."
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
