"""Fault: PostgreSQL unreachable, and the worker buffering the call records
is SIGKILLed before it comes back.

Worker A reaches its private PostgreSQL schema through a TCP gate (as in
test_fault_db_outage). After call 1's first turn is stored the gate is shut;
call 1 goes on to its end and call 2 runs whole, so their records exist only
in A's recorder — in memory and in its write-ahead spool. A is SIGKILLed (no
shutdown hook runs), the gate reopens, and worker B starts on the same
database and spool directory. Guarantee: B replays A's spool at start-up and
every record appears exactly once: 0 lost, 0 duplicated, A's spool deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reliability.report import record_fault
from runtime.db import queries
from runtime.db.engine import make_engine
from runtime.db.spool import read_entries
from tests.reliability.services import (
    HTTP_TIMEOUT_S,
    RECORD_DEADLINE_S,
    Caller,
    service_env,
    worker,
)
from tests.runtime.db.dbhelpers import TcpGate, provision

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SCRIPTS = (
    ["Hi, I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"],
    ["I want to see the dentist", "next Wednesday", "two in the afternoon", "Lars Berg"],
)


async def _stored(engine: AsyncEngine, call_id: str) -> tuple[list[str], str | None, list[str]]:
    """The call's caller lines, outcome and agent message ids, as stored."""
    detail = await queries.get_call(engine, call_id)
    if detail is None:
        return [], None, []
    callers = [t.text for t in detail.turns if t.role == "caller"]
    ids = [t.message_id or "" for t in detail.turns if t.role == "agent"]
    return callers, detail.outcome, ids


async def _play(caller: Caller, base: str, lines: list[str]) -> str | None:
    outcome = None
    for text in lines:
        r = await caller.turn(base, text)
        assert r.status_code == 200, r.text
        outcome = r.json()["outcome"]
    return outcome


def _spooled(directory: Path) -> int:
    return sum(len(read_entries(p)) for p in directory.rglob("*.jsonl"))


async def test_sigkill_during_outage_loses_no_records(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    async with provision("postgresql", tmp_path, database_url) as db:
        upstream = make_engine(db.url, schema=db.schema).url
        gate = TcpGate(upstream.host or "127.0.0.1", upstream.port or 5432)
        port = await gate.start()
        gate.open()
        direct = make_engine(db.url, schema=db.schema)
        env = service_env(
            checkpoint_url=redis_url,
            database_url=db.url_via(port),
            database_schema=str(db.schema),
            SWITCHBOARD_TOOLS_STORE="memory",
            SWITCHBOARD_SPOOL_DIR=str(spool),
        )
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
                async with worker(env, tmp_path / "worker-a.log") as a:
                    first = await Caller.login(http, a.base)
                    await first.start(a.base, "front-desk", caller="+15557770001")
                    await _play(first, a.base, SCRIPTS[0][:1])
                    deadline = time.monotonic() + RECORD_DEADLINE_S
                    while (await _stored(direct, first.call_id))[0] != SCRIPTS[0][:1]:
                        assert time.monotonic() < deadline, "turn 1 stored before the outage"
                        await asyncio.sleep(0.1)
                    second = await Caller.login(http, a.base)

                    gate.shut()
                    answered = [await _play(first, a.base, SCRIPTS[0][1:])]
                    await second.start(a.base, "front-desk", caller="+15557770002")
                    answered.append(await _play(second, a.base, SCRIPTS[1]))
                    assert answered == ["completed", "completed"], "calls went on"
                    assert (await _stored(direct, second.call_id))[0] == [], "database is down"
                    # The recorder fsyncs each batch as it is queued: wait for it.
                    deadline = time.monotonic() + RECORD_DEADLINE_S
                    while (spooled := _spooled(spool)) < len(SCRIPTS[0]) - 1 + len(SCRIPTS[1]):
                        assert time.monotonic() < deadline, f"only {spooled} writes spooled"
                        await asyncio.sleep(0.1)
                    a.kill()
                    await a.wait_dead()
                gate.open()
                reopened_at = time.monotonic()
                async with worker(env, tmp_path / "worker-b.log"):
                    deadline = reopened_at + RECORD_DEADLINE_S
                    while True:
                        stored = [await _stored(direct, c.call_id) for c in (first, second)]
                        done = all(o for _, o, _ in stored)
                        if done and [c for c, _, _ in stored] == list(SCRIPTS):
                            break
                        if time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.2)
                    caught_up_s = time.monotonic() - reopened_at
                    left = sorted(p.name for p in spool.rglob("*") if p.is_file())
        finally:
            await direct.dispose()
            await gate.stop()

    expected = Counter(line for script in SCRIPTS for line in script)
    found = Counter(line for callers, _, _ in stored for line in callers)
    lost = sum((expected - found).values()) + sum(1 for _, o, _ in stored if o is None)
    duplicates = sum((found - expected).values()) + sum(
        len(ids) - len(set(ids)) for _, _, ids in stored
    )
    record_fault(
        "postgres-outage-then-sigkill",
        injected="PostgreSQL unreachable; worker A SIGKILLed with 2 calls' records "
        "unwritten; database back; worker B started",
        survived=lost == 0 and duplicates == 0,
        records_lost=lost,
        observed={
            "writes_spooled_at_kill": spooled,
            "caller_turns_in_db": sum(found.values()),
            "duplicates": duplicates,
            "outcomes": [o for _, o, _ in stored],
            "written_within_s_of_restart": round(caught_up_s, 2),
            "spool_files_left": len([n for n in left if n.endswith(".jsonl")]),
        },
    )
    assert [c for c, _, _ in stored] == list(SCRIPTS), "every turn written once, in order"
    assert [o for _, o, _ in stored] == ["completed", "completed"]
    assert duplicates == 0
    # Only worker B's own (live, empty) spool remains: A's was replayed and deleted.
    assert len([n for n in left if n.endswith(".jsonl")]) <= 1, left
