"""Open the call database from a URL.

    sqlite:///relative/file.db       SQLite file through aiosqlite (four slashes: absolute,
    sqlite:////abs/path/file.db      sqlite:///~/x.db expands the home directory)
    sqlite://  or sqlite:///:memory: a private in-memory database (one shared connection)
    postgresql://user@host:5432/db   PostgreSQL through asyncpg (postgres:// too;
    postgresql+asyncpg://...         an explicit async driver is kept as given)

Without a URL: $SWITCHBOARD_DATABASE_URL, else $DATABASE_URL, else an SQLite
file under the XDG data directory. On PostgreSQL an optional `schema` puts every
table (and Alembic's version table) in that schema through the search_path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

URL_ENVS = ("SWITCHBOARD_DATABASE_URL", "DATABASE_URL")
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_PG_ASYNC_DRIVERS = ("asyncpg", "psycopg", "psycopg_async")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_HELP = (
    "sqlite:///path/to/file.db (sqlite:////absolute/path.db), sqlite:// (in memory), "
    "postgresql://user:password@host:5432/database"
)


class DatabaseURLError(ValueError):
    """The database URL is malformed or names an unsupported database."""


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """<$XDG_DATA_HOME or ~/.local/share>/switchboard (not created)."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "switchboard"


def database_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """`url` if given, else $SWITCHBOARD_DATABASE_URL, else $DATABASE_URL, else
    sqlite:///<data dir>/switchboard.db (whose directory is created)."""
    if url is not None and url.strip():
        return url.strip()
    env = os.environ if env is None else env
    for name in URL_ENVS:
        if env.get(name, "").strip():
            return env[name].strip()
    data_dir = default_data_dir(env)
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'switchboard.db'}"


def async_url(url: str) -> URL:
    """The SQLAlchemy URL with an async driver: aiosqlite for SQLite, asyncpg
    for PostgreSQL unless an async driver is named. `~` in an SQLite path is
    expanded. DatabaseURLError for anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(
            f"cannot parse database URL {describe_url(url)!r}; expected {_HELP}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "sqlite":
        if driver not in ("", "pysqlite", "aiosqlite"):
            raise DatabaseURLError(f"SQLite driver {driver!r} is not async; use sqlite:///path.db")
        database = parsed.database or None
        if database and database.startswith("~"):
            database = str(Path(database).expanduser())
        return parsed.set(drivername="sqlite+aiosqlite", database=database)
    if backend == "postgresql":
        if driver and driver not in _PG_ASYNC_DRIVERS:
            raise DatabaseURLError(
                f"PostgreSQL driver {driver!r} is not async; use postgresql:// (asyncpg)"
            )
        return parsed.set(drivername=f"postgresql+{driver or 'asyncpg'}")
    raise DatabaseURLError(
        f"unsupported database {backend!r} in {describe_url(url)!r}; expected {_HELP}"
    )


def describe_url(url: str) -> str:
    """The URL with any password replaced by '***', for messages. Never raises."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def is_memory_sqlite(url: URL) -> bool:
    return url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:")


def make_engine(url: str | None = None, *, schema: str | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (see `database_url` for the default).

    SQLite: foreign keys enforced, a 30 s busy timeout, one shared connection for
    an in-memory database. PostgreSQL: connections are checked before use so a
    restarted server is reconnected; `schema` sets the search_path (it must be
    a plain identifier and already exist). Extra keyword arguments go to
    `create_async_engine`.
    """
    target = async_url(database_url(url))
    options: dict[str, Any] = dict(kwargs)
    connect_args: dict[str, Any] = dict(options.pop("connect_args", {}))
    backend = target.get_backend_name()
    if schema is not None and (backend != "postgresql" or not _SCHEMA_NAME.match(schema)):
        raise DatabaseURLError(
            f"schema {schema!r}: a schema needs PostgreSQL and a plain identifier"
        )
    if backend == "sqlite":
        connect_args.setdefault("timeout", 30)
        if is_memory_sqlite(target):
            options.setdefault("poolclass", StaticPool)
            connect_args.setdefault("check_same_thread", False)
    else:
        options.setdefault("pool_pre_ping", True)
        if schema is not None:
            if target.get_driver_name() == "asyncpg":
                settings = dict(connect_args.get("server_settings", {}))
                settings["search_path"] = schema
                connect_args["server_settings"] = settings
            else:
                connect_args["options"] = f"-csearch_path={schema}"
    engine = create_async_engine(target, connect_args=connect_args, **options)
    if backend == "sqlite":
        pragmas = ["PRAGMA foreign_keys=ON"]
        if not is_memory_sqlite(target):
            # Readers (the dashboard) do not block the recorder's writes.
            pragmas.append("PRAGMA journal_mode=WAL")
        event.listen(engine.sync_engine, "connect", partial(_run_pragmas, pragmas))
    return engine


def _run_pragmas(pragmas: list[str], dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(pragma)
    finally:
        cursor.close()
