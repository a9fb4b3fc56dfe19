"""Alembic migrations of the call database, run from Python.

The revisions live in `versions/` inside the installed package, so no
alembic.ini is needed: `switchboard db upgrade` (and `init_db`) work from any
directory. Each function runs Alembic on a connection of the given engine, in
the caller's event loop (Alembic's own work is synchronous but brief).

Several workers starting at once on a new database must not all create the
tables: an upgrade holds a lock for its whole transaction — a PostgreSQL
advisory lock, or on an SQLite file an exclusive `flock` on a file beside it —
so the others wait, then find the database at the newest revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
#: The PostgreSQL advisory lock key that serialises upgrades ("SWBD").
ADVISORY_LOCK_KEY = 0x53574244


def alembic_config() -> Config:
    """An Alembic config whose script location is this package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision in `versions/`."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


def _command(connection: Connection, name: str, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, name)(config, revision)


@contextlib.asynccontextmanager
async def _file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """An exclusive lock on `<database file>.migrate.lock` for an SQLite file
    database; nothing for other databases (or an in-memory SQLite)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database up to `revision` (default: the newest) in one
    transaction where the database allows transactional DDL; concurrent
    upgrades of one database run one after the other (see module doc)."""
    async with _file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
        await connection.run_sync(_command, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Migrate the database down to `revision` (default: empty)."""
    async with engine.begin() as connection:
        await connection.run_sync(_command, "downgrade", revision)


def _heads(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> tuple[str, ...]:
    """The revisions the database is at; empty when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(_heads)


async def init_db(url: str | None = None, *, schema: str | None = None) -> AsyncEngine:
    """An engine for `url` (default: see `runtime.db.engine.database_url`) whose
    database has been migrated to the newest revision. On PostgreSQL `schema`
    (which must exist) holds the tables."""
    engine = make_engine(url, schema=schema)
    try:
        await upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine
