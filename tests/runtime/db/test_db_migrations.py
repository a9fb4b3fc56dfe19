"""Alembic migrations: empty -> head -> base on SQLite and PostgreSQL, the
migrated schema equals the models, and the `switchboard db` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from runtime.cli import app
from runtime.db.migrations import current_revisions, downgrade, head_revision, upgrade
from runtime.db.models import Base
from tests.runtime.db.dbhelpers import Database

TABLES = {"agents", "calls", "turns", "node_visits", "tool_calls", "intents", "recordings"}
TABLES |= {"call_agents"}  # per-agent outcomes (revision 0004)
#: The demo business data of the built-in tools (revision 0003).
TABLES |= {
    "appointments",
    "accounts",
    "charges",
    "refunds",
    "tickets",
    "routers",
    "service_areas",
    "outages",
    "business_counters",
}
runner = CliRunner()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _turn_indexes(conn: Connection) -> set[str]:
    return {str(i["name"]) for i in inspect(conn).get_indexes("turns")}


def _schema_diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


# SQLite cannot reflect expression indexes; the PostgreSQL-only one is compared there.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
async def test_upgrade_from_empty_to_head_and_down_to_base(database: Database) -> None:
    engine = database.engine()
    try:
        assert await current_revisions(engine) == ()
        await upgrade(engine)
        assert await current_revisions(engine) == (head_revision(),)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
            # The migrated schema is exactly what the models describe.
            assert await conn.run_sync(_schema_diff) == []
            indexes = await conn.run_sync(_turn_indexes)
        assert ("ix_turns_text_search" in indexes) == (database.dialect == "postgresql")

        await downgrade(engine, "0001")
        async with engine.connect() as conn:
            assert "ix_turns_text_search" not in await conn.run_sync(_turn_indexes)
        await downgrade(engine)
        assert await current_revisions(engine) == ()
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()

        await upgrade(engine)  # and back up again from base
        assert await current_revisions(engine) == (head_revision(),)
    finally:
        await engine.dispose()


def test_db_commands_migrate_and_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    before = runner.invoke(app, ["db", "current", "--url", url])
    assert before.exit_code == 0, before.output
    assert "not migrated" in before.output

    done = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert done.exit_code == 0, done.output
    assert f"at revision {head_revision()}" in done.output

    after = runner.invoke(app, ["db", "current", "--url", url])
    assert after.exit_code == 0
    assert f"{head_revision()} (head)" in after.output


def test_db_commands_read_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    done = runner.invoke(app, ["db", "upgrade"], env={"SWITCHBOARD_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    assert (tmp_path / "env.db").is_file()


def test_db_command_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad_url = runner.invoke(app, ["db", "upgrade", "--url", "mysql://u:pw@h/db"])
    assert bad_url.exit_code == 2
    assert "unsupported database 'mysql'" in bad_url.output
    assert "pw" not in bad_url.output

    # Port 1 on localhost: nothing listens, the connection is refused at once.
    down = runner.invoke(app, ["db", "current", "--url", "postgresql://u@127.0.0.1:1/db"])
    assert down.exit_code == 1
    assert "127.0.0.1:1" in down.output and "Traceback" not in down.output

    url = f"sqlite:///{tmp_path / 'x.db'}"
    bad_rev = runner.invoke(app, ["db", "upgrade", "--url", url, "--revision", "9999"])
    assert bad_rev.exit_code == 1
    assert "9999" in bad_rev.output


WORKER = """
import asyncio, sys, time
from runtime.db.migrations import init_db
async def main():
    start_at, url, schema = float(sys.argv[1]), sys.argv[2], sys.argv[3] or None
    time.sleep(max(0.0, start_at - time.time()))
    engine = await init_db(url, schema=schema)
    await engine.dispose()
asyncio.run(main())
"""


async def test_workers_starting_together_migrate_once(database: Database) -> None:
    """Four processes run `init_db` on one new database at the same instant (as
    `serve --workers 4` does): every one starts, and the tables exist once."""
    import subprocess
    import sys
    import time

    start_at = f"{time.time() + 3.0:.3f}"  # after every interpreter has imported
    args = [start_at, database.url, database.schema or ""]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[3],
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    failures = [err[-600:] for p, (_, err) in zip(procs, results, strict=True) if p.returncode]
    assert not failures, failures
    engine = database.engine()
    try:
        assert await current_revisions(engine) == (head_revision(),)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
    finally:
        await engine.dispose()
