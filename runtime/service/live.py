"""The live feed: call events published by whichever worker runs the call,
delivered to every dashboard subscribed to any worker.

`RedisLiveBus` publishes JSON messages on a Redis pub/sub channel; each
subscriber holds its own subscription. `LocalLiveBus` does the same inside one
process (the embedded default, when no Redis is configured). A message is
`{"call_id", "agent", "type", ...event fields, "at"}`. Publishing never raises
into a call: a Redis outage loses live messages (the database keeps the record)
and is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse

from runtime.service.auth import Principal, principal

log = logging.getLogger("switchboard.service.live")

#: Messages a slow local subscriber may fall behind before it loses the oldest.
LOCAL_QUEUE = 1000
SUBSCRIBED: dict[str, Any] = {"type": "subscribed"}
#: Seconds between SSE keep-alive comments (proxies drop idle connections).
PING_S = 15


class LiveBus(Protocol):
    async def publish(self, message: dict[str, Any]) -> None:
        """Send one message to every current subscriber (never raises)."""

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """First `{"type": "subscribed"}` once the subscription is in place, then
        the messages published from then on, until the iterator is closed."""

    async def close(self) -> None: ...


def live_message(call_id: str, agent: str | None, event: dict[str, Any]) -> dict[str, Any]:
    """The live-feed message for one call event."""
    return {"call_id": call_id, "agent": agent, **event, "at": time.time()}


class LocalLiveBus:
    """An in-process feed: one bounded queue per subscriber."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    async def publish(self, message: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(LOCAL_QUEUE)
        self._queues.add(queue)
        try:
            yield dict(SUBSCRIBED)
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        self._queues.clear()


class RedisLiveBus:
    """A feed over Redis pub/sub on `channel`, shared by every worker.

    `publish` only queues the message: one sender task per bus sends what is
    queued, in order, as pipelined PUBLISHes (one round trip per batch), so a
    call's events never wait for Redis. Past `MAX_QUEUED` waiting messages
    (Redis too slow or down) new ones are dropped and logged. `close` sends
    what is queued first (for at most `CLOSE_FLUSH_S`)."""

    MAX_QUEUED = 10000
    MAX_BATCH = 500
    CLOSE_FLUSH_S = 2.0

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self._redis: Redis = Redis.from_url(url)
        self._queue: asyncio.Queue[str] = asyncio.Queue(self.MAX_QUEUED)
        self._sender: asyncio.Task[None] | None = None
        self._dropped = 0

    async def ping(self) -> None:
        """Raise RedisError/OSError when the server cannot be reached."""
        await self._redis.ping()

    async def publish(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, default=str)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name="live-publisher")
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("live feed behind: %d messages dropped", self._dropped)

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for data in batch:
                        pipe.publish(self.channel, data)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("%d live events not published: %s", len(batch), exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        try:
            yield dict(SUBSCRIBED)
            async for raw in pubsub.listen():
                if raw.get("type") != "message":
                    continue
                try:
                    message = json.loads(raw["data"])
                except (TypeError, ValueError):
                    continue
                if isinstance(message, dict):
                    yield message
        finally:
            with suppress(RedisError, OSError):
                await pubsub.unsubscribe(self.channel)
            with suppress(RedisError, OSError):
                await pubsub.aclose()

    async def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            if not sender.done():
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), self.CLOSE_FLUSH_S)
            sender.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await sender
        await self._redis.aclose()


def live_router() -> APIRouter:
    """`GET /live`: Server-Sent Events of live calls, from every worker.

    An operator sees every call (or one, with `call_id=`); a call token sees
    only its own call. Each SSE event is named by the message `type` and its
    data is the JSON message; the first is `subscribed`."""
    router = APIRouter()

    @router.get("/live", summary="Live call events (Server-Sent Events)")
    async def live(
        request: Request,
        who: Annotated[Principal, Depends(principal)],
        call_id: Annotated[str | None, Query(max_length=128)] = None,
    ) -> EventSourceResponse:
        if who.scope == "call":
            call_id = who.call_id
        bus: LiveBus = request.app.state.live

        async def events() -> AsyncIterator[dict[str, Any]]:
            stream = bus.subscribe()
            try:
                async for message in stream:
                    wanted = message.get("type") == "subscribed" or call_id is None
                    if wanted or message.get("call_id") == call_id:
                        yield {
                            "event": str(message.get("type", "message")),
                            "data": json.dumps(message, default=str),
                        }
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        return EventSourceResponse(events(), ping=PING_S)

    return router
