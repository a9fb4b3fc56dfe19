"""Fault: SIGKILL of the service process holding a call mid-conversation.

Two real workers share Redis (checkpoints) and a private PostgreSQL schema
(records). The call's first turns run on worker A; A is killed with SIGKILL
right after a turn is answered (no shutdown hook, no flush); the next turns go
to worker B. Guarantee: the call continues on B from its last checkpoint (same
node, same slots) to its end, and every completed turn — including the ones A
answered just before dying — is in the database exactly once.
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
    service_env,
    worker,
)
from tests.runtime.db.dbhelpers import provision

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SCRIPT = ["Hi, I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"]
ON_A = 2


async def test_sigkill_mid_call_moves_the_call_to_another_worker(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    async with provision("postgresql", tmp_path, database_url) as db:
        env = service_env(
            checkpoint_url=redis_url, database_url=db.url, database_schema=str(db.schema)
        )
        async with (
            worker(env, tmp_path / "a.log") as a,
            worker({**env, "SWITCHBOARD_MIGRATE": "false"}, tmp_path / "b.log") as b,
            httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http,
        ):
            caller = await Caller.login(http, a.base)
            await caller.start(a.base, "front-desk")
            for text in SCRIPT[:ON_A]:
                r = await caller.turn(a.base, text)
                assert r.status_code == 200, r.text
            before = (
                await http.get(f"{a.base}/api/calls/{caller.call_id}/state", headers=caller.token)
            ).json()
            a.kill()
            await a.wait_dead()

            after = (
                await http.get(f"{b.base}/api/calls/{caller.call_id}/state", headers=caller.token)
            ).json()
            assert after == before, "B resumes from A's last checkpoint"
            outcome = None
            for text in SCRIPT[ON_A:]:
                r = await caller.turn(b.base, text)
                assert r.status_code == 200, r.text
                outcome = r.json()["outcome"]
            assert outcome == "completed"

            engine = make_engine(db.url, schema=db.schema)
            try:
                detail = await _recorded(engine, caller.call_id, len(SCRIPT))
            finally:
                await engine.dispose()
    assert detail is not None, "the call is in the database"
    callers = [t.text for t in detail.turns if t.role == "caller"]
    lost = sum(1 for text in SCRIPT if text not in callers)
    record_fault(
        "worker-sigkill",
        injected=f"SIGKILL of the worker holding the call, after {ON_A} of {len(SCRIPT)} turns",
        survived=callers == SCRIPT and detail.outcome == "completed" and after == before,
        records_lost=lost,
        observed={
            "resumed_at_node": after.get("node"),
            "slots_kept": sorted(after.get("vars", {})),
            "caller_turns_in_db": len(callers),
            "outcome": detail.outcome,
        },
    )
    assert callers == SCRIPT, "every completed turn is stored, once, in order"
    agent_ids = [t.message_id for t in detail.turns if t.role == "agent"]
    assert len(agent_ids) == len(set(agent_ids))
    assert detail.outcome == "completed"


async def _recorded(engine: AsyncEngine, call_id: str, turns: int) -> queries.CallDetail | None:
    """The call's record once it holds `turns` caller turns and an outcome
    (or as it stands at the deadline)."""
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
