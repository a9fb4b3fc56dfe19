"""Real processes for the fault suites: service workers (uvicorn running
`runtime.service.app:create_app`), a private `redis-server` that can be killed
and restarted, and a small HTTP client for driving text calls.

Everything waits on the asyncio loop (the TCP gate of a database outage runs
on the same loop), and every wait has a deadline so a fault shows as a failed
test, never as a hung one. Deadlines are generous: start-up imports LangGraph
and migrates the database on a machine shared by several test runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.service.conftest import ADMIN, GRAPHS_DIR, SECRET

ROOT = Path(__file__).resolve().parents[2]
#: Start-up includes importing LangGraph and migrating; generous for a busy machine.
START_DEADLINE_S = 120.0
#: How long a call's records may take to reach the database once it is reachable.
RECORD_DEADLINE_S = 60.0
HTTP_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(
    *,
    checkpoint_url: str,
    database_url: str,
    database_schema: str | None = None,
    graphs_dir: Path = GRAPHS_DIR,
    **extra: str,
) -> dict[str, str]:
    """The environment of a service worker: shared JWT secret and admin, the
    given stores, a private live channel; `extra` adds SWITCHBOARD_* or other
    variables verbatim."""
    env = {
        **os.environ,
        "SWITCHBOARD_JWT_SECRET": SECRET,
        "SWITCHBOARD_ADMIN_USER": ADMIN[0],
        "SWITCHBOARD_ADMIN_PASSWORD": ADMIN[1],
        "SWITCHBOARD_GRAPHS_DIR": str(graphs_dir),
        "SWITCHBOARD_CHECKPOINT_URL": checkpoint_url,
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_LIVE_CHANNEL": f"switchboard:reliability:{uuid.uuid4().hex}",
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    if database_schema:
        env["SWITCHBOARD_DATABASE_SCHEMA"] = database_schema
    return env


@dataclass
class Worker:
    """One running service process."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; what was not written is gone."""
        self.proc.send_signal(signal.SIGKILL)

    async def wait_dead(self, timeout: float = 30.0) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def _wait_http(proc: subprocess.Popen[bytes], url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not start in {START_DEADLINE_S} s:\n{log.read_text()}")
            await asyncio.sleep(0.2)


async def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
    except TimeoutError:
        proc.kill()
        await asyncio.to_thread(proc.wait)


@contextlib.asynccontextmanager
async def worker(env: Mapping[str, str], log: Path) -> AsyncIterator[Worker]:
    """A service worker on a free port, healthy when yielded, stopped on exit
    (terminated, or already dead after `kill`)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "runtime.service.app:create_app"),
                *("--factory", "--host", "127.0.0.1", "--port", str(port)),
                *("--log-level", "warning"),
            ],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_http(proc, f"{base}/healthz", log, "service worker")
            yield Worker(proc, base, log)
        finally:
            await _stop(proc)


class RedisServer:
    """A private `redis-server` on a free port, which a test may kill and
    restart on the same port. With `persistent`, it keeps an append-only file
    (fsync always) in `directory`, so a restart keeps what was written;
    otherwise it keeps nothing and a restart starts empty."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start (or restart) the server and wait until it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.directory), "--daemonize", "no"]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        log = self.directory / f"redis-{self.starts}.log"
        self.starts += 1
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not await self._pings():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start:\n{log.read_text()}")
            await asyncio.sleep(0.05)

    async def _pings(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return (await asyncio.wait_for(reader.readline(), 2)).startswith(b"+PONG")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()

    async def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 30)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            await _stop(self.proc)


@contextlib.asynccontextmanager
async def redis_server(directory: Path, *, persistent: bool = False) -> AsyncIterator[RedisServer]:
    """A started private Redis (see `RedisServer`), stopped on exit."""
    server = RedisServer(directory, persistent=persistent)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Caller:
    """Drives one text call over HTTP: an operator token plus the call's own."""

    http: httpx.AsyncClient
    operator: dict[str, str]
    call_id: str = ""
    token: dict[str, str] | None = None

    @classmethod
    async def login(cls, http: httpx.AsyncClient, base: str) -> Caller:
        r = await http.post(
            f"{base}/api/auth/login", json=dict(zip(("username", "password"), ADMIN, strict=True))
        )
        assert r.status_code == 200, r.text
        return cls(http, {"Authorization": f"Bearer {r.json()['access_token']}"})

    async def start(self, base: str, agent: str, caller: str = "+15551230001") -> dict[str, Any]:
        r = await self.http.post(
            f"{base}/api/calls", json={"agent": agent, "caller": caller}, headers=self.operator
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        self.call_id = body["call_id"]
        self.token = {"Authorization": f"Bearer {body['call_token']}"}
        return body

    async def turn(self, base: str, text: str) -> httpx.Response:
        """POST one caller turn; the response as it came (status not checked)."""
        return await self.http.post(
            f"{base}/api/calls/{self.call_id}/turns", json={"text": text}, headers=self.token
        )

    async def detail(self, base: str) -> httpx.Response:
        return await self.http.get(f"{base}/api/calls/{self.call_id}", headers=self.operator)


def said(events: list[dict[str, Any]]) -> list[str]:
    """The agent lines among a turn's events."""
    return [str(e["text"]) for e in events if e.get("type") == "agent"]
