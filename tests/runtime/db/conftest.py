"""Databases for the persistence tests: every test that takes `database` runs
once on an SQLite file and once on the real PostgreSQL at DATABASE_URL, there
in a schema of its own that is dropped afterwards (so parallel runs never meet).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.migrations import init_db
from tests.runtime.db.dbhelpers import DIALECTS, Database, provision


@pytest.fixture(params=DIALECTS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    pg_url = request.getfixturevalue("database_url") if request.param == "postgresql" else None
    async with provision(request.param, tmp_path, pg_url) as db:
        yield db


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    """The test's database, migrated to the newest revision."""
    migrated = await init_db(database.url, schema=database.schema)
    try:
        yield migrated
    finally:
        await migrated.dispose()
