"""Rate limits on login and call start: per client address and per credential.

Limits are moving windows (the `limits` package) written like "10/minute" or
"5 per 10 seconds". They are kept in process memory by default, so with N
workers a client gets up to N times the limit; set SWITCHBOARD_RATE_LIMIT_URL
to a redis:// URL to share them between workers. A request over a limit gets
429 with `Retry-After` (whole seconds until the window frees a slot). When the
shared store is unreachable the request is allowed and the outage logged: a
storage outage must not lock every operator out.

Credentials are never stored: keys hold a SHA-256 digest of the token or user
name.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

log = logging.getLogger("switchboard.service.ratelimit")

KEY_PREFIX = "switchboard:ratelimit"


def parse_limit(text: str) -> RateLimitItem:
    """The limit written in `text` ("10/minute", "5 per 10 seconds"); ValueError
    naming the text when it is not a limit."""
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"not a rate limit: {text!r} (write e.g. '10/minute')") from None


def digest(secret: str) -> str:
    """A short one-way digest of a credential, safe to keep as a key."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn resolves trusted
    proxy headers into it when run with --proxy-headers)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Refused:
    """A hit over its limit: which limit, and seconds until a slot frees."""

    what: str
    retry_after_s: int


class RateLimits:
    """Named limits over one storage; `check` counts a hit on every key given."""

    def __init__(self, storage_url: str | None = None) -> None:
        self._storage: Storage
        if storage_url and storage_url.startswith(("redis://", "rediss://")):
            self._storage = RedisStorage(
                "async+" + storage_url, implementation="redispy", key_prefix=KEY_PREFIX
            )
        else:
            self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def check(self, limit: RateLimitItem, *keys: tuple[str, str]) -> Refused | None:
        """Count one hit against `limit` for each `(what, key)`; the first refusal,
        or None when every key is within its limit (a refused hit is not counted
        on the keys after it)."""
        for what, key in keys:
            try:
                if await self._limiter.hit(limit, what, key):
                    continue
                stats = await self._limiter.get_window_stats(limit, what, key)
            except (StorageError, OSError, ConnectionError) as exc:
                log.warning("rate limit store unavailable, request allowed: %s", exc)
                return None
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            return Refused(what=what, retry_after_s=wait)
        return None

    async def enforce(self, limit: RateLimitItem, *keys: tuple[str, str]) -> None:
        """`check`, raising 429 with Retry-After when a limit is exceeded."""
        refused = await self.check(limit, *keys)
        if refused is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many requests ({refused.what}); retry in {refused.retry_after_s} s",
                headers={"Retry-After": str(refused.retry_after_s)},
            )

    async def reset(self) -> None:
        """Forget every hit (tests, operator action)."""
        await self._storage.reset()
