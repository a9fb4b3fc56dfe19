"""open_checkpointer: URL schemes, defaults, TTL resolution, errors, redaction."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from redis.exceptions import ConnectionError as RedisConnectionError

from runtime.checkpoint import (
    CheckpointerUnavailable,
    RedisCheckpointSaver,
    default_checkpointer_url,
    describe_checkpointer_url,
    open_checkpointer,
    resolve_ttl,
)
from runtime.checkpoint.factory import sqlite_target


def _cfg(thread: str) -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


async def _write_one(saver: Any, thread: str) -> str:
    from langgraph.checkpoint.base import empty_checkpoint

    cp = empty_checkpoint()
    cp["channel_values"] = {"slot": "tuesday"}
    cp["channel_versions"] = {"slot": saver.get_next_version(None, None)}
    await saver.aput(_cfg(thread), cp, {"source": "loop", "step": 1}, cp["channel_versions"])
    return str(cp["id"])


# ------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "url",
    ["postgres://localhost/db", "checkpoints.db", "http://x", "memcached://h:1", ""],
)
async def test_unknown_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError) as err:
        async with open_checkpointer(url):
            pass
    message = str(err.value)
    for scheme in ("memory://", "sqlite://", "redis://", "rediss://"):
        assert scheme in message


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("sqlite:///relative/calls.db", "relative/calls.db"),
        ("sqlite:////abs/dir/calls.db", "/abs/dir/calls.db"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://", ":memory:"),
    ],
)
def test_sqlite_urls_name_a_file_or_memory(url: str, target: str) -> None:
    assert sqlite_target(url) == target


def test_sqlite_url_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sqlite_target("sqlite:///~/calls.db") == str(tmp_path / "calls.db")


@pytest.mark.parametrize("url", ["sqlite://host/calls.db", "sqlite:///", "sqlite:///x.db?mode=ro"])
def test_malformed_sqlite_url_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="SQLite URL"):
        sqlite_target(url)


async def test_memory_url_takes_nothing_else() -> None:
    with pytest.raises(ValueError, match="memory:// takes no host or path"):
        async with open_checkpointer("memory://somewhere"):
            pass


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/notadb", "redis://127.0.0.1:port/0"])
async def test_malformed_redis_url_is_rejected_before_connecting(url: str) -> None:
    with pytest.raises(ValueError, match="malformed Redis URL"):
        async with open_checkpointer(url):
            pass


def test_default_url_prefers_env_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert default_checkpointer_url({"SWITCHBOARD_CHECKPOINT_URL": " memory:// "}) == "memory://"
    assert (
        default_checkpointer_url({"XDG_DATA_HOME": "/srv/data"})
        == "sqlite:////srv/data/switchboard/checkpoints.db"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = f"sqlite:///{tmp_path}/.local/share/switchboard/checkpoints.db"
    assert default_checkpointer_url({"XDG_DATA_HOME": "relative/ignored"}) == expected
    assert default_checkpointer_url({}) == expected


def test_ttl_comes_from_argument_then_env_then_default() -> None:
    assert resolve_ttl(90, {"SWITCHBOARD_CHECKPOINT_TTL": "5"}) == 90
    assert resolve_ttl(None, {"SWITCHBOARD_CHECKPOINT_TTL": " 5 "}) == 5
    assert resolve_ttl(None, {}) == 3600


@pytest.mark.parametrize(
    ("ttl", "env", "match"),
    [
        (None, {"SWITCHBOARD_CHECKPOINT_TTL": "an hour"}, "SWITCHBOARD_CHECKPOINT_TTL must be"),
        (None, {"SWITCHBOARD_CHECKPOINT_TTL": "0"}, "SWITCHBOARD_CHECKPOINT_TTL must be"),
        (-1, {}, "ttl_s must be a positive"),
        (True, {}, "ttl_s must be a positive"),
    ],
)
def test_bad_ttl_is_a_clear_error(ttl: Any, env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_ttl(ttl, env)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://app:s3cret@cache:6380/2", "rediss://app:***@cache:6380/2"),
        ("redis://app@cache:6379/0", "redis://app@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite:////var/lib/calls.db", "sqlite:////var/lib/calls.db"),
        ("redis://[::1", "<unparsable checkpointer URL>"),
    ],
)
def test_describe_redacts_passwords(url: str, shown: str) -> None:
    assert describe_checkpointer_url(url) == shown


def test_describe_without_url_describes_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_CHECKPOINT_URL", "redis://:pw@h:1/0")
    assert describe_checkpointer_url() == "redis://:***@h:1/0"


# -------------------------------------------------------------- opening


async def test_memory_url_opens_an_in_memory_saver() -> None:
    async with open_checkpointer("memory://") as saver:
        assert isinstance(saver, InMemorySaver)
        cid = await _write_one(saver, "t")
        tup = await saver.aget_tuple(_cfg("t"))
        assert tup is not None and tup.checkpoint["id"] == cid


async def test_sqlite_file_is_created_and_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/calls.db"
    async with open_checkpointer(url) as saver:
        assert isinstance(saver, AsyncSqliteSaver)
        cid = await _write_one(saver, "t")
    assert (tmp_path / "nested" / "dir" / "calls.db").is_file()
    async with open_checkpointer(url) as saver:
        tup = await saver.aget_tuple(_cfg("t"))
        assert tup is not None and tup.checkpoint["id"] == cid
        assert tup.checkpoint["channel_values"] == {"slot": "tuesday"}


async def test_default_url_is_an_sqlite_file_under_xdg_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SWITCHBOARD_CHECKPOINT_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    async with open_checkpointer() as saver:
        assert isinstance(saver, AsyncSqliteSaver)
        await _write_one(saver, "t")
    assert (tmp_path / "switchboard" / "checkpoints.db").is_file()


async def test_env_url_is_used_when_no_url_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_CHECKPOINT_URL", "sqlite://:memory:")
    async with open_checkpointer() as saver:
        assert isinstance(saver, AsyncSqliteSaver)


async def test_sqlite_in_an_uncreatable_directory_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointerUnavailable, match="a-file"):
        async with open_checkpointer(f"sqlite:///{blocker}/calls.db"):
            pass


async def test_unreachable_redis_is_unavailable_and_the_password_stays_hidden() -> None:
    with pytest.raises(CheckpointerUnavailable) as err:
        async with open_checkpointer("redis://:hunter2@127.0.0.1:1/0"):
            pass
    assert "127.0.0.1:1" in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.redis
async def test_redis_url_opens_our_saver_with_the_env_ttl(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_CHECKPOINT_TTL", "77")
    thread = f"factory-test-{uuid.uuid4().hex}"
    async with open_checkpointer(redis_url) as saver:
        assert isinstance(saver, RedisCheckpointSaver)
        assert saver.ttl_s == 77
        await _write_one(saver, thread)
        client = aioredis.from_url(redis_url)
        try:
            ttl = await client.ttl(saver.keys_for(thread)[0])
        finally:
            await saver.adelete_thread(thread)
            await client.aclose()
        assert 70 < ttl <= 77
    async with open_checkpointer(redis_url, ttl_s=5) as saver:
        assert isinstance(saver, RedisCheckpointSaver) and saver.ttl_s == 5


@pytest.mark.redis
async def test_errors_raised_inside_the_block_are_not_rewrapped(redis_url: str) -> None:
    with pytest.raises(RedisConnectionError, match="from the caller"):
        async with open_checkpointer(redis_url):
            raise RedisConnectionError("from the caller")
