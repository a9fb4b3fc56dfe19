"""Whole-thread operations of the Redis checkpointer: delete, copy, prune.

A mixin of `RedisCheckpointSaver` (`runtime.checkpoint.redis_saver`), kept
apart because none of it is on a call's hot path; the key layout is
`redis_layout`'s. Deletes and copies are one MULTI/EXEC each; pruning runs
under WATCH of the thread's keys, so a concurrent write restarts it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from runtime.checkpoint.redis_layout import ThreadKeys, blob_field, ref_of_write_field, split_ref


def aw(value: Any) -> Awaitable[Any]:
    """redis-py types commands as `T | Awaitable[T]`; on the asyncio client they await."""
    return cast(Awaitable[Any], value)


class ThreadMaintenance:
    """Delete, copy and prune threads; the saver provides what is declared here."""

    client: aioredis.Redis
    prefix: str
    registry_key: str

    if TYPE_CHECKING:

        def keys_for(self, thread_id: str) -> tuple[str, ...]: ...

        def _touch(self, pipe: Pipeline, thread_id: str) -> None: ...

        def _payload(self, raw: bytes) -> dict[str, Any]: ...

    async def adelete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint, value and write of a thread (no-op if absent)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*self.keys_for(str(thread_id)))
        pipe.zrem(self.registry_key, str(thread_id))
        await pipe.execute()

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy all checkpoints and writes of one thread into another (merged
        into whatever the target holds), refreshing the target's TTL."""
        src = ThreadKeys.of(self.prefix, str(source_thread_id))
        dst = ThreadKeys.of(self.prefix, str(target_thread_id))
        read = self.client.pipeline(transaction=True)
        for key in (src.cp, src.blobs, src.writes):
            read.hgetall(key)
        read.zrange(src.wix, 0, -1)
        read.zrange(src.idx, 0, -1)
        cps, blobs, writes, wix, idx = await read.execute()
        if not idx or not cps:
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
        """`keep_latest` keeps the newest checkpoint of each namespace with its
        writes and the values it reads; `delete` removes the threads."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                await self._keep_latest(str(thread_id))

    async def _keep_latest(self, thread_id: str) -> None:
        keys = ThreadKeys.of(self.prefix, thread_id)

        async def prune(pipe: Pipeline) -> None:
            # Runs under WATCH of all thread keys: a concurrent write restarts it.
            refs: list[bytes] = await aw(pipe.zrange(keys.idx, 0, -1))
            latest = {split_ref(ref)[0]: ref for ref in refs}  # ascending: newest wins
            kept = list(latest.values())
            used: set[bytes] = set()
            if kept:
                for ref, raw in zip(kept, await aw(pipe.hmget(keys.cp, kept)), strict=True):
                    if raw is not None:
                        versions = self._payload(raw)["checkpoint"]["channel_versions"]
                        ns = split_ref(ref)[0]
                        used.update(blob_field(ns, ch, v) for ch, v in versions.items())
            old = [ref for ref in refs if ref not in kept]
            unused = [f for f in await aw(pipe.hkeys(keys.blobs)) if f not in used]
            stale = [
                f
                for f in await aw(pipe.zrange(keys.wix, 0, -1))
                if ref_of_write_field(f) not in kept
            ]
            pipe.multi()
            if old:
                pipe.hdel(keys.cp, *old)
                pipe.zrem(keys.idx, *old)
            if stale:
                pipe.hdel(keys.writes, *stale)
                pipe.zrem(keys.wix, *stale)
            if unused:
                pipe.hdel(keys.blobs, *unused)

        await self.client.transaction(prune, *keys.all)
