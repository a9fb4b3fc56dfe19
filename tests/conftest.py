"""Fixtures for the external services tests may need: Redis and PostgreSQL.

A missing server skips the test with the reason, except under CI=true where it
fails it: CI must exercise every backend.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: services are required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """$REDIS_URL (default redis://127.0.0.1:6379/0), checked with PING."""
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    problem = None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        problem = str(exc)
    if problem is not None:
        _unavailable(f"Redis at REDIS_URL={url} is unavailable: {problem}")
    return url


@pytest.fixture(scope="session")
def database_url() -> str:
    """$DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test), checked
    by opening a TCP connection to its host and port."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    problem = None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
        with socket.create_connection((host, port), timeout=2):
            pass
    except (OSError, ValueError) as exc:
        problem = str(exc)
    if problem is not None:
        _unavailable(f"PostgreSQL at DATABASE_URL={url} is unavailable: {problem}")
    return url


@pytest.fixture(autouse=True)
def _private_spool_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test's recorders (and the service processes it starts) keep their
    write-ahead spool in a directory of the test's own: one test's leftover
    records are never replayed into another test's database, and nothing is
    written under the user's data directory. A test that needs a particular
    spool directory sets SWITCHBOARD_SPOOL_DIR itself."""
    monkeypatch.setenv("SWITCHBOARD_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))
