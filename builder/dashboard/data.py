"""Database access for the dashboard pages.

Streamlit runs page scripts synchronously in their own threads, while the call
database is reached through SQLAlchemy's async engine, whose connections
belong to one event loop. So one event loop runs in a daemon thread per
dashboard process, the engine lives on it, and pages submit coroutines to it
with `run()`. The database is the service's (`SWITCHBOARD_DATABASE_URL`, else
`DATABASE_URL`, else the default SQLite file) and is migrated on first use.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import streamlit as st
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import init_db

T = TypeVar("T")

#: Longest a page waits for one query; a stuck database must not hang the page forever.
QUERY_TIMEOUT_S = 60.0


def configured_url() -> str | None:
    """The database URL the service reads, or None for the default SQLite file."""
    return os.environ.get("SWITCHBOARD_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


class LoopThread:
    """An asyncio event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="dashboard-db", daemon=True
        )
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


class Database:
    """The dashboard's engine on its own loop thread."""

    def __init__(self, url: str | None, schema: str | None = None) -> None:
        self.url = url
        self._loop = LoopThread()
        self.engine: AsyncEngine = self._loop.submit(init_db(url, schema=schema)).result(
            timeout=QUERY_TIMEOUT_S
        )

    def run(
        self,
        query: Callable[[AsyncEngine], Coroutine[Any, Any, T]],
        timeout: float = QUERY_TIMEOUT_S,
    ) -> T:
        """Run `query(engine)` on the database loop and return its result."""
        return self._loop.submit(query(self.engine)).result(timeout=timeout)


@st.cache_resource(show_spinner=False)
def _database(url: str | None, schema: str | None) -> Database:
    return Database(url, schema)


def database() -> Database:
    """The process-wide dashboard database for the configured URL (created once)."""
    return _database(configured_url(), os.environ.get("SWITCHBOARD_DATABASE_SCHEMA") or None)


def run(query: Callable[[AsyncEngine], Coroutine[Any, Any, T]]) -> T:
    """Run `query(engine)` against the configured database and return its result."""
    return database().run(query)
