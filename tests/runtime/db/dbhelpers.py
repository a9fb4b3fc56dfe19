"""Helpers for the persistence tests: the database under test, a TCP gate that
plays a database outage, and a fake sleep for the recorder's backoff."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.engine import make_engine

#: Parameters for a fixture that runs each test on both databases.
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@dataclass
class Database:
    """A database for one test: SQLite file, or a private PostgreSQL schema."""

    url: str
    schema: str | None
    dialect: str
    tmp: Path

    def engine(self, url: str | None = None, **options: Any) -> AsyncEngine:
        return make_engine(url or self.url, schema=self.schema, **options)

    def url_via(self, port: int) -> str:
        """The PostgreSQL URL with its host and port replaced by 127.0.0.1:port."""
        url = make_url(self.url).set(host="127.0.0.1", port=port)
        return url.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def provision(kind: str, tmp: Path, pg_url: str | None = None) -> AsyncIterator[Database]:
    """An empty database: an SQLite file in `tmp`, or (kind "postgresql") a new
    schema in the database at `pg_url`, dropped on exit."""
    if kind == "sqlite":
        yield Database(f"sqlite:///{tmp / 'calls.db'}", None, "sqlite", tmp)
        return
    assert pg_url is not None
    schema = f"sbtest_{uuid.uuid4().hex[:16]}"
    admin = make_engine(pg_url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield Database(pg_url, schema, "postgresql", tmp)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


class TcpGate:
    """A TCP forwarder to a server. Open, it relays bytes both ways; shut, it
    accepts each connection and drops it at once, and cuts the open ones: to a
    client, the server is down."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.is_open = False
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def open(self) -> None:
        self.is_open = True

    def shut(self) -> None:
        self.is_open = False
        for writer in list(self._links):
            writer.close()
        self._links.clear()

    async def stop(self) -> None:
        self.shut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(dst)
            with contextlib.suppress(OSError, RuntimeError):
                dst.close()


@dataclass
class FakeSleep:
    """The recorder's backoff sleep without waiting: records each delay and
    lets the event loop run; `reached(n)` fires once `n` retries were made."""

    delays: list[float] = field(default_factory=list)
    _waiters: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        for n, event in self._waiters:
            if len(self.delays) >= n:
                event.set()
        await asyncio.sleep(0)

    async def reached(self, n: int, timeout: float = 60.0) -> None:
        """Wait until `n` retries happened (the timeout only guards a hang)."""
        event = asyncio.Event()
        if len(self.delays) >= n:
            return
        self._waiters.append((n, event))
        await asyncio.wait_for(event.wait(), timeout)
