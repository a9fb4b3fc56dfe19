"""Alembic migrations of the call database, run from Python.

The revisions live in `versions/` inside the installed package, so no
alembic.ini is needed: `switchboard db upgrade` (and `init_db`) work from any
directory. Each function runs Alembic on a connection of the given engine, in
the caller's event loop (Alembic's own work is synchronous but brief).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent


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


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database up to `revision` (default: the newest) in one
    transaction where the database allows transactional DDL."""
    async with engine.begin() as connection:
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
