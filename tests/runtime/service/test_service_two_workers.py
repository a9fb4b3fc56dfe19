"""Two real service processes sharing Redis and PostgreSQL: a call started on
worker A continues on worker B at the same node with the same slots, every
turn is stored once, and B's live feed carries the events of A's turns."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.db.dbhelpers import provision
from tests.runtime.service.conftest import ADMIN, GRAPHS_DIR, SECRET
from tests.runtime.service.processes import service_process

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
RECORD_DEADLINE_S = 30.0


@asynccontextmanager
async def _live_feed(base: str, headers: dict[str, str]) -> AsyncIterator[list[dict[str, Any]]]:
    """Collect B's live events in the background, once its subscription is up."""
    received: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", f"{base}/api/live", headers=headers) as stream,
        ):
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:].strip())
                    if message.get("type") == "subscribed":
                        ready.set()
                    else:
                        received.append(message)

    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(ready.wait(), RECORD_DEADLINE_S)
        yield received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_call_moves_between_workers(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    async with provision("postgresql", tmp_path, database_url) as db:
        env = {
            **os.environ,
            "SWITCHBOARD_JWT_SECRET": SECRET,
            "SWITCHBOARD_ADMIN_USER": ADMIN[0],
            "SWITCHBOARD_ADMIN_PASSWORD": ADMIN[1],
            "SWITCHBOARD_GRAPHS_DIR": str(GRAPHS_DIR),
            "SWITCHBOARD_CHECKPOINT_URL": redis_url,
            "SWITCHBOARD_DATABASE_URL": db.url,
            "SWITCHBOARD_DATABASE_SCHEMA": str(db.schema),
            "SWITCHBOARD_LIVE_CHANNEL": f"switchboard:test:{uuid.uuid4().hex}",
        }
        with (
            service_process(env, tmp_path / "a.log") as a,
            service_process({**env, "SWITCHBOARD_MIGRATE": "false"}, tmp_path / "b.log") as b,
        ):
            await _exercise(a, b)


async def _exercise(a: str, b: str) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        login = await http.post(
            f"{a}/api/auth/login", data=dict(zip(("username", "password"), ADMIN, strict=True))
        )
        op = {"Authorization": f"Bearer {login.json()['access_token']}"}
        async with _live_feed(b, op) as live:
            started = (
                await http.post(
                    f"{a}/api/calls",
                    json={"agent": "front-desk", "caller": "+15551230001"},
                    headers=op,
                )
            ).json()
            call_id = started["call_id"]
            token = {"Authorization": f"Bearer {started['call_token']}"}
            for text in ["Hi, I need a cleaning", "next Tuesday"]:
                r = await http.post(
                    f"{a}/api/calls/{call_id}/turns", json={"text": text}, headers=token
                )
                assert r.status_code == 200, r.text
            on_a = (await http.get(f"{a}/api/calls/{call_id}/state", headers=token)).json()
            on_b = (await http.get(f"{b}/api/calls/{call_id}/state", headers=token)).json()
            assert on_b == on_a
            assert on_b["node"] == "ask_time" and on_b["vars"]["day"]

            r = await http.post(
                f"{b}/api/calls/{call_id}/turns", json={"text": "ten in the morning"}, headers=token
            )
            assert r.status_code == 200, r.text
            slots = {e["name"]: e["value"] for e in r.json()["events"] if e["type"] == "slot"}
            assert slots.get("time") == "10:00"
            r = await http.post(
                f"{b}/api/calls/{call_id}/turns", json={"text": "Maria Garcia"}, headers=token
            )
            assert r.json()["outcome"] == "completed", r.text

            deadline = time.monotonic() + RECORD_DEADLINE_S
            while True:
                detail = (await http.get(f"{b}/api/calls/{call_id}", headers=op)).json()
                callers = [t["text"] for t in detail.get("turns", []) if t["role"] == "caller"]
                if (len(callers) >= 4 and detail["outcome"]) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert callers == [
                "Hi, I need a cleaning",
                "next Tuesday",
                "ten in the morning",
                "Maria Garcia",
            ]
            agent_ids = [t["message_id"] for t in detail["turns"] if t["role"] == "agent"]
            assert len(agent_ids) == len(set(agent_ids))
            assert detail["outcome"] == "completed"

            deadline = time.monotonic() + RECORD_DEADLINE_S
            while not any(m.get("type") == "outcome" for m in live):
                assert time.monotonic() < deadline, live
                await asyncio.sleep(0.1)
        mine = [m for m in live if m.get("call_id") == call_id]
        caller_lines = [m["text"] for m in mine if m["type"] == "caller"]
        assert caller_lines[:2] == ["Hi, I need a cleaning", "next Tuesday"]  # ran on A
        assert any(m["type"] == "agent" and m["node"] == "ask_day" for m in mine)
