"""Fault: PostgreSQL unreachable for a few seconds mid-call.

A real service worker reaches its private PostgreSQL schema through a TCP gate
this test controls (checkpoints stay in Redis). After the first turn is stored
the gate is shut — open connections are cut and new ones refused — while the
caller goes on talking to the end of the call (business tools use the
in-memory store, so the outage hits the call records alone). Guarantee: the call is not held
up (every turn answered), its records wait in the recorder's buffer, and once
the gate reopens they are all written, in order, exactly once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reliability.report import full_mode, record_fault
from runtime.db import queries
from runtime.db.engine import make_engine
from tests.reliability.services import (
    HTTP_TIMEOUT_S,
    RECORD_DEADLINE_S,
    Caller,
    service_env,
    worker,
)
from tests.runtime.db.dbhelpers import TcpGate, provision

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SCRIPT = ["Hi, I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"]


def _outage_s() -> float:
    """How long the database stays unreachable (the fault itself, not a margin)."""
    return 20.0 if full_mode() else 3.0


async def _callers(engine: AsyncEngine, call_id: str) -> tuple[list[str], str | None, list[str]]:
    detail = await queries.get_call(engine, call_id)
    if detail is None:
        return [], None, []
    callers = [t.text for t in detail.turns if t.role == "caller"]
    ids = [t.message_id or "" for t in detail.turns if t.role == "agent"]
    return callers, detail.outcome, ids


async def test_database_outage_buffers_records_and_writes_them_once(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    async with provision("postgresql", tmp_path, database_url) as db:
        upstream = make_engine(db.url, schema=db.schema).url
        gate = TcpGate(upstream.host or "127.0.0.1", upstream.port or 5432)
        port = await gate.start()
        gate.open()
        direct = make_engine(db.url, schema=db.schema)
        outage = _outage_s()
        try:
            env = service_env(
                checkpoint_url=redis_url,
                database_url=db.url_via(port),
                database_schema=str(db.schema),
                # The demo's business tools would use the same database; kept in
                # memory here so the outage hits the call records alone (a tool
                # failing mid-outage is the tool fault, see test_fault_backends).
                SWITCHBOARD_TOOLS_STORE="memory",
            )
            async with (
                worker(env, tmp_path / "worker.log") as w,
                httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http,
            ):
                caller = await Caller.login(http, w.base)
                await caller.start(w.base, "front-desk")
                r = await caller.turn(w.base, SCRIPT[0])
                assert r.status_code == 200, r.text
                deadline = time.monotonic() + RECORD_DEADLINE_S
                while (await _callers(direct, caller.call_id))[0] != SCRIPT[:1]:
                    assert time.monotonic() < deadline, "turn 1 stored before the outage"
                    await asyncio.sleep(0.1)

                gate.shut()
                shut_at = time.monotonic()
                answered = []
                for text in SCRIPT[1:]:
                    r = await caller.turn(w.base, text)
                    assert r.status_code == 200, r.text
                    answered.append(r.json()["outcome"])
                assert answered[-1] == "completed", "the call went on to its end"
                during = (await _callers(direct, caller.call_id))[0]
                assert during == SCRIPT[:1], "nothing reached the database while it was down"
                await asyncio.sleep(max(0.0, outage - (time.monotonic() - shut_at)))
                gate.open()
                reopened_at = time.monotonic()

                deadline = reopened_at + RECORD_DEADLINE_S
                while True:
                    callers, outcome, agent_ids = await _callers(direct, caller.call_id)
                    if (len(callers) >= len(SCRIPT) and outcome) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                caught_up_s = time.monotonic() - reopened_at
        finally:
            await direct.dispose()
            await gate.stop()
    record_fault(
        "postgres-outage",
        injected=f"PostgreSQL unreachable for {outage:.0f} s (TCP gate shut) during turns 2-4",
        survived=callers == SCRIPT and outcome == "completed",
        records_lost=sum(1 for t in SCRIPT if t not in callers),
        observed={
            "turns_answered_during_outage": len(answered),
            "caller_turns_in_db": len(callers),
            "duplicates": len(callers) - len(set(callers)) + len(agent_ids) - len(set(agent_ids)),
            "written_within_s_of_return": round(caught_up_s, 2),
            "outcome": outcome,
        },
    )
    assert callers == SCRIPT, "every turn written once, in order"
    assert len(agent_ids) == len(set(agent_ids))
    assert outcome == "completed"
