"""The Redis live feed, as the Live page sees it: the newest events per call.

When a Redis live feed is configured (`SWITCHBOARD_REDIS_URL`, else a redis://
`SWITCHBOARD_CHECKPOINT_URL`, on the channel `SWITCHBOARD_LIVE_CHANNEL`, the
same settings the service publishes with), one `LiveFeed` per dashboard
process subscribes in a daemon thread and keeps, per call, the newest events
and what is only on the feed: interim text (a caller's partial transcript, an
agent line still streaming). The database stays the record; the feed only adds
what has not been written yet. A lost connection is retried with backoff and
reported by `status()`, never raised into the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from runtime.service.live import RedisLiveBus

log = logging.getLogger("switchboard.dashboard.live")

DEFAULT_CHANNEL = "switchboard:live"
#: Events kept per call, and calls kept (the least recently active are forgotten).
EVENTS_PER_CALL = 30
CALLS_KEPT = 500
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 15.0
#: Event types that carry no information for an operator.
QUIET_TYPES = frozenset({"subscribed", "token"})


def feed_settings(env: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(Redis URL, channel) of the live feed as the service configures it, or
    None when the service publishes in-process only (no Redis)."""
    env = dict(os.environ) if env is None else env
    url = env.get("SWITCHBOARD_REDIS_URL") or ""
    if not url:
        checkpoint = env.get("SWITCHBOARD_CHECKPOINT_URL") or ""
        url = checkpoint if checkpoint.startswith(("redis://", "rediss://")) else ""
    if not url:
        return None
    return url, env.get("SWITCHBOARD_LIVE_CHANNEL") or DEFAULT_CHANNEL


@dataclass
class CallFeed:
    """What the feed said about one call: the newest events (oldest first),
    the caller's interim transcript and the agent line still streaming (None
    once final), and when the last message came (epoch seconds)."""

    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS_PER_CALL))
    interim_caller: str | None = None
    interim_agent: str | None = None
    ended: bool = False
    last_at: float = 0.0

    def copy(self) -> CallFeed:
        return CallFeed(
            deque(self.events, maxlen=EVENTS_PER_CALL),
            self.interim_caller,
            self.interim_agent,
            self.ended,
            self.last_at,
        )


@dataclass(frozen=True)
class FeedStatus:
    connected: bool
    messages: int
    error: str | None


class LiveFeed:
    """Per-call state built from live messages (see module docstring).

    `handle()` applies one message (what the subscriber thread calls);
    `start()` runs the subscription; `snapshot()` and `status()` are safe to
    call from any thread."""

    def __init__(self, url: str, channel: str = DEFAULT_CHANNEL) -> None:
        self.url = url
        self.channel = channel
        self._lock = threading.Lock()
        self._calls: OrderedDict[str, CallFeed] = OrderedDict()
        self._messages = 0
        self._error: str | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- state ------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        """Apply one live message; messages without a call id are ignored."""
        kind = str(message.get("type") or "")
        call_id = message.get("call_id")
        if kind == "subscribed" or not isinstance(call_id, str) or not call_id:
            return
        with self._lock:
            self._messages += 1
            feed = self._calls.pop(call_id, None) or CallFeed()
            self._calls[call_id] = feed
            while len(self._calls) > CALLS_KEPT:
                self._calls.popitem(last=False)
            at = message.get("at")
            feed.last_at = float(at) if isinstance(at, int | float) else time.time()
            _apply(feed, kind, message)

    def snapshot(self, call_id: str) -> CallFeed | None:
        """A copy of what the feed holds for `call_id`, None if nothing."""
        with self._lock:
            feed = self._calls.get(call_id)
            return feed.copy() if feed is not None else None

    def status(self) -> FeedStatus:
        with self._lock:
            return FeedStatus(self._connected.is_set(), self._messages, self._error)

    # --- the subscription -----------------------------------------------------------

    def start(self) -> LiveFeed:
        """Start the subscriber thread (once); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dashboard-live", daemon=True)
            self._thread.start()
        return self

    def wait_connected(self, timeout: float) -> bool:
        """True once the subscription is in place (within `timeout` s)."""
        return self._connected.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the subscriber thread."""
        self._stop.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._listen_forever())
        finally:
            loop.close()

    async def _listen_forever(self) -> None:
        delay = RETRY_INITIAL_S
        while not self._stop.is_set():
            bus = RedisLiveBus(self.url, self.channel)
            stream = bus.subscribe()
            try:
                async for message in _until(stream, self._stop):
                    if message.get("type") == "subscribed":
                        self._set_connected(None)
                        delay = RETRY_INITIAL_S
                    self.handle(message)
            except (RedisError, OSError) as exc:
                self._set_connected(f"{type(exc).__name__}: {exc}")
                log.warning("live feed lost (%s); retrying in %.1f s", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
                with contextlib.suppress(Exception):
                    await bus.close()
            if self._stop.is_set():
                break
            await _sleep_unless(self._stop, delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _set_connected(self, error: str | None) -> None:
        with self._lock:
            self._error = error
            if error is None:
                self._connected.set()
            else:
                self._connected.clear()


def _apply(feed: CallFeed, kind: str, message: dict[str, Any]) -> None:
    if kind == "transcript":
        text = str(message.get("text") or "")
        if message.get("final"):
            feed.interim_caller = None
        else:
            feed.interim_caller = text or None
            return  # interims replace each other; only the newest is kept
    elif kind == "caller":
        feed.interim_caller = None
    elif kind == "token":
        feed.interim_agent = (feed.interim_agent or "") + str(message.get("text") or "")
        return
    elif kind == "agent":
        feed.interim_agent = None
    elif kind in ("outcome", "hangup"):
        feed.ended = True
    if kind not in QUIET_TYPES:
        feed.events.append(dict(message))


async def _until(
    stream: AsyncIterator[dict[str, Any]], stop: threading.Event, poll_s: float = 0.5
) -> AsyncIterator[dict[str, Any]]:
    """The messages of `stream` until `stop` is set (checked every `poll_s`)."""
    iterator = stream.__aiter__()
    pending: asyncio.Task[dict[str, Any]] | None = None
    try:
        while not stop.is_set():
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=poll_s)
            if not done:
                continue
            task, pending = pending, None
            try:
                yield task.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending


async def _sleep_unless(stop: threading.Event, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(min(0.25, deadline - time.monotonic()))
