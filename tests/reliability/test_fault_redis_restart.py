"""Fault: the Redis holding call checkpoints is killed mid-call and restarted.

A real service worker keeps its checkpoints (and live feed) in a private
`redis-server` this test owns; call records go to an SQLite file. After the
caller's first turn Redis is SIGKILLed; a turn sent while it is down must be
answered within a bound (503 "storage unavailable": the call pauses, the
caller's side may retry), never hang. Redis is then restarted on the same port:

- persistent (append-only file, fsync always — how production Redis should
  run): the checkpoint survives the restart, so the retried turn continues the
  call where it was and it completes;
- ephemeral (no persistence): the restart lost the checkpoint, so the call
  cannot continue; the retried turn gets the graph's spoken apology (its
  fallback line) and the call ends `failed`, in the database too.

Either way every turn committed before the fault stays in the database.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reliability.report import record_fault
from runtime.db import queries
from runtime.db.engine import make_engine
from tests.reliability.services import (
    HTTP_TIMEOUT_S,
    RECORD_DEADLINE_S,
    Caller,
    redis_server,
    said,
    service_env,
    worker,
)

#: A turn during the outage must be answered within this bound (redis-py's
#: reconnect attempts with backoff, on a busy machine); a hang would exceed it.
OUTAGE_ANSWER_S = 45.0
FALLBACK = "Sorry, I'm having trouble right now."
SCRIPT = ["Hi, I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"]


@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "ephemeral"])
async def test_redis_restart_mid_call(persistent: bool, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'calls.db'}"
    async with redis_server(tmp_path, persistent=persistent) as redis:
        env = service_env(checkpoint_url=redis.url, database_url=db_url)
        async with (
            worker(env, tmp_path / "worker.log") as w,
            httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http,
        ):
            caller = await Caller.login(http, w.base)
            await caller.start(w.base, "front-desk")
            r = await caller.turn(w.base, SCRIPT[0])
            assert r.status_code == 200, r.text

            await redis.kill()
            began = time.monotonic()
            during = await caller.turn(w.base, SCRIPT[1])
            answered_s = time.monotonic() - began
            assert answered_s < OUTAGE_ANSWER_S, "a turn during the outage is answered"
            assert during.status_code == 503, during.text
            assert "storage unavailable" in during.json()["detail"]

            await redis.start()
            retried = await caller.turn(w.base, SCRIPT[1])
            assert retried.status_code == 200, retried.text
            outcome = retried.json()["outcome"]
            if persistent:
                for text in SCRIPT[2:]:
                    r = await caller.turn(w.base, text)
                    assert r.status_code == 200, r.text
                    outcome = r.json()["outcome"]
                expected_turns, expected_outcome = SCRIPT, "completed"
            else:
                assert said(retried.json()["events"]) == [FALLBACK]
                after_end = await caller.turn(w.base, SCRIPT[2])
                assert after_end.status_code == 409, after_end.text
                expected_turns, expected_outcome = SCRIPT[:2], "failed"
            assert outcome == expected_outcome

            engine = make_engine(db_url)
            try:
                detail = await _settled(engine, caller.call_id, len(expected_turns))
            finally:
                await engine.dispose()
    assert detail is not None
    callers = [t.text for t in detail.turns if t.role == "caller"]
    record_fault(
        f"redis-restart-{'aof' if persistent else 'ephemeral'}",
        injected=(
            "SIGKILL of the checkpoint Redis after turn 1, a turn sent while down, "
            f"restart on the same port ({'append-only file' if persistent else 'no persistence'})"
        ),
        survived=callers == expected_turns and detail.outcome == expected_outcome,
        records_lost=sum(1 for t in expected_turns if t not in callers),
        observed={
            "during_outage": f"{during.status_code} in {answered_s:.2f} s",
            "after_restart": "call continued" if persistent else "apology, outcome failed",
            "outcome": detail.outcome,
            "caller_turns_in_db": len(callers),
        },
    )
    assert callers == expected_turns
    assert detail.outcome == expected_outcome


async def _settled(engine: AsyncEngine, call_id: str, turns: int) -> queries.CallDetail | None:
    deadline = time.monotonic() + RECORD_DEADLINE_S
    while True:
        detail = await queries.get_call(engine, call_id)
        if detail is not None:
            callers = [t for t in detail.turns if t.role == "caller"]
            if len(callers) >= turns and detail.outcome:
                return detail
        if time.monotonic() > deadline:
            return detail
        await asyncio.sleep(0.2)
