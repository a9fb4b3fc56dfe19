"""Open a LangGraph checkpointer from a URL.

    memory://                      LangGraph's InMemorySaver (lost when the process exits)
    sqlite:///relative/file.db     AsyncSqliteSaver; four slashes for an absolute path
    sqlite:////abs/path/file.db    (sqlite:///~/x.db expands the home directory)
    sqlite://:memory:              AsyncSqliteSaver on a private in-memory database
    redis://[:password@]host:port/db, rediss://...
                                   RedisCheckpointSaver: plain Redis, per-thread TTL

Without a URL: $SWITCHBOARD_CHECKPOINT_URL, else an SQLite file under the XDG data
directory. The Redis TTL is `ttl_s`, else $SWITCHBOARD_CHECKPOINT_TTL, else 3600 s;
memory and SQLite keep threads until deleted.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from redis.exceptions import RedisError

from runtime.checkpoint.redis_saver import DEFAULT_TTL_S, RedisCheckpointSaver

URL_ENV = "SWITCHBOARD_CHECKPOINT_URL"
TTL_ENV = "SWITCHBOARD_CHECKPOINT_TTL"
SUPPORTED_SCHEMES = ("memory", "sqlite", "redis", "rediss")
_SCHEME_HELP = (
    "memory://, sqlite:///path/to/file.db (sqlite:////absolute/path.db), "
    "sqlite://:memory:, redis://host:port/db, rediss://host:port/db"
)


class CheckpointerUnavailable(ConnectionError):
    """The checkpoint store named by a valid URL cannot be opened or reached."""


def default_checkpointer_url(env: Mapping[str, str] | None = None) -> str:
    """$SWITCHBOARD_CHECKPOINT_URL if set, else
    sqlite:///<$XDG_DATA_HOME or ~/.local/share>/switchboard/checkpoints.db."""
    env = os.environ if env is None else env
    if env.get(URL_ENV, "").strip():
        return env[URL_ENV].strip()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return f"sqlite:///{base / 'switchboard' / 'checkpoints.db'}"


def resolve_ttl(ttl_s: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """`ttl_s` if given, else $SWITCHBOARD_CHECKPOINT_TTL, else 3600; always a
    positive number of seconds (ValueError otherwise)."""
    env = os.environ if env is None else env
    if ttl_s is None:
        raw = env.get(TTL_ENV, "").strip()
        if not raw:
            return DEFAULT_TTL_S
        try:
            ttl_s = int(raw)
        except ValueError:
            raise ValueError(f"{TTL_ENV} must be a whole number of seconds, got {raw!r}") from None
        source = TTL_ENV
    else:
        source = "ttl_s"
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0:
        raise ValueError(f"{source} must be a positive whole number of seconds, got {ttl_s!r}")
    return ttl_s


def describe_checkpointer_url(url: str | None = None) -> str:
    """The URL (default when None) with any password replaced by '***', for logs.
    Never raises."""
    if url is None:
        url = default_checkpointer_url()
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable checkpointer URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url
    netloc = f"{user}:***@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in SUPPORTED_SCHEMES:
        shown = f"{scheme!r}" if sep else "no scheme"
        raise ValueError(
            f"unsupported checkpointer URL {describe_checkpointer_url(url)!r} ({shown}); "
            f"supported schemes: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)} "
            f"- e.g. {_SCHEME_HELP}"
        )
    return scheme.lower()


def sqlite_target(url: str) -> str:
    """The path (or ':memory:') an sqlite:// URL names; ValueError when malformed."""
    rest = url.partition("://")[2]
    if rest in ("", ":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/") or rest == "/":
        raise ValueError(
            f"malformed SQLite URL {url!r}: use sqlite:///relative/file.db, "
            "sqlite:////absolute/file.db or sqlite://:memory:"
        )
    path = rest[1:]
    if "?" in path or "#" in path:
        raise ValueError(f"SQLite URL {url!r} must not carry a query or fragment")
    return str(Path(path).expanduser())


@asynccontextmanager
async def open_checkpointer(
    url: str | None = None, *, ttl_s: int | None = None
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Yield an open checkpointer for `url` (see module doc) and close it on exit.

    Raises ValueError for an unknown scheme, a malformed URL or a bad TTL, and
    CheckpointerUnavailable when the store cannot be opened (Redis unreachable
    or refusing auth, SQLite file not creatable) - before anything is yielded.
    """
    if url is None:
        url = default_checkpointer_url()
    scheme = _scheme(url)
    if scheme == "memory":
        if url.partition("://")[2] not in ("", "/"):
            raise ValueError(f"memory:// takes no host or path, got {url!r}")
        yield InMemorySaver()
        return
    if scheme == "sqlite":
        async with _open_sqlite(url) as sqlite_saver:
            yield sqlite_saver
        return
    ttl = resolve_ttl(ttl_s)
    try:
        _check_redis_db(url)
        saver = RedisCheckpointSaver.from_url(url, ttl_s=ttl)
    except ValueError as exc:
        raise ValueError(f"malformed Redis URL {describe_checkpointer_url(url)!r}: {exc}") from None
    try:
        try:
            await saver.ping()
        except (RedisError, OSError) as exc:
            raise CheckpointerUnavailable(
                f"cannot use Redis at {describe_checkpointer_url(url)}: {exc}"
            ) from exc
        yield saver
    finally:
        await saver.aclose()


def _check_redis_db(url: str) -> None:
    # redis-py silently falls back to db 0 when the path is not a number.
    path = urlsplit(url).path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the path must be a database number (redis://host:port/0), got {path!r}")


@asynccontextmanager
async def _open_sqlite(url: str) -> AsyncIterator[AsyncSqliteSaver]:
    target = sqlite_target(url)
    if target != ":memory:":
        try:
            await asyncio.to_thread(Path(target).parent.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointerUnavailable(
                f"cannot create the directory for SQLite checkpoints {target!r}: {exc}"
            ) from exc
    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(target))
            await saver.setup()
        except sqlite3.Error as exc:
            raise CheckpointerUnavailable(
                f"cannot open SQLite checkpoints at {target!r}: {exc}"
            ) from exc
        yield saver
