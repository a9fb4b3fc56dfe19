"""Database URLs: defaults from the environment, async drivers, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from runtime.db.engine import (
    DatabaseURLError,
    async_url,
    database_url,
    describe_url,
    make_engine,
)


def test_explicit_url_wins_then_switchboard_env_then_database_url() -> None:
    env = {"SWITCHBOARD_DATABASE_URL": "sqlite:///a.db", "DATABASE_URL": "postgresql://h/b"}
    assert database_url(" sqlite:///x.db ", env) == "sqlite:///x.db"
    assert database_url(None, env) == "sqlite:///a.db"
    assert database_url(None, {"DATABASE_URL": "postgresql://h/b"}) == "postgresql://h/b"


def test_default_is_an_sqlite_file_in_the_data_directory(tmp_path: Path) -> None:
    url = database_url(None, {"XDG_DATA_HOME": str(tmp_path)})
    assert url == f"sqlite:///{tmp_path / 'switchboard' / 'switchboard.db'}"
    assert (tmp_path / "switchboard").is_dir()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///rel/calls.db", "sqlite+aiosqlite:///rel/calls.db"),
        ("sqlite:////abs/calls.db", "sqlite+aiosqlite:////abs/calls.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ],
)
def test_urls_get_an_async_driver(url: str, expected: str) -> None:
    assert async_url(url).render_as_string(hide_password=False) == expected


def test_home_directory_is_expanded_in_sqlite_paths() -> None:
    assert async_url("sqlite:///~/calls.db").database == str(Path.home() / "calls.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("not a url", "cannot parse database URL"),
        ("postgresql+psycopg2://u@h/db", "not async"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message):
        async_url(url)


def test_passwords_are_hidden_in_messages() -> None:
    assert describe_url("postgresql://bob:s3cret@h/db") == "postgresql://bob:***@h/db"
    with pytest.raises(DatabaseURLError) as info:
        async_url("mysql://bob:s3cret@h/db")
    assert "s3cret" not in str(info.value)


def test_a_schema_needs_postgresql_and_a_plain_name() -> None:
    with pytest.raises(DatabaseURLError, match="schema"):
        make_engine("sqlite://", schema="calls")
    with pytest.raises(DatabaseURLError, match="schema"):
        make_engine("postgresql://u@h/db", schema="x; DROP TABLE calls")


async def test_sqlite_enforces_foreign_keys_and_memory_databases_persist_per_engine() -> None:
    engine = make_engine("sqlite://")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE a (id INTEGER PRIMARY KEY)"))
            await conn.execute(text("CREATE TABLE b (a_id INTEGER REFERENCES a(id))"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            with pytest.raises(Exception, match="FOREIGN KEY"):
                await conn.execute(text("INSERT INTO b VALUES (42)"))
    finally:
        await engine.dispose()
