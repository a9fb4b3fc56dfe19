"""`live_calls` on both databases (SQLite and the real PostgreSQL): a call
recorded by the `CallRecorder` is live from its first write until it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from builder.dashboard.live_data import live_calls
from runtime.db.migrations import init_db
from runtime.db.recorder import CallRecorder
from runtime.session import CallEvent
from tests.runtime.db.dbhelpers import DIALECTS, provision

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(params=DIALECTS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    pg_url = request.getfixturevalue("database_url") if request.param == "postgresql" else None
    async with provision(request.param, tmp_path, pg_url) as db:
        migrated = await init_db(db.url, schema=db.schema)
        try:
            yield migrated
        finally:
            await migrated.dispose()


async def test_a_recorded_call_is_live_until_it_ends(engine: AsyncEngine) -> None:
    recorder = CallRecorder(engine)
    try:
        await recorder.call_started("c1", agent="front-desk", caller="+1555", started_at=T0)
        await recorder.call_started("old", agent="front-desk", started_at=T0 - timedelta(hours=2))
        opening = [
            CallEvent("node", {"agent": "front-desk", "node": "greeting"}),
            CallEvent("agent", {"agent": "front-desk", "text": "Hello!", "message_id": "m1"}),
            CallEvent("node", {"agent": "billing-support", "node": "ask_account"}),
        ]
        at = T0 + timedelta(seconds=5)
        await recorder.record("c1", opening, step=0, at=at, ended_at=at, metrics={"e2e_ms": 900})
        assert await recorder.flush(60)
        now = T0 + timedelta(minutes=1)
        snapshot = await live_calls(engine, now=now)
        assert [c.detail.id for c in snapshot.calls] == ["c1"]
        assert snapshot.stale == 1  # "old": two hours without a sound
        live = snapshot.calls[0]
        assert live.last_activity == at
        assert (live.current_agent, live.current_node) == ("billing-support", "ask_account")
        assert live.duration_s(now) == 60.0
        assert live.detail.turns[0].latencies == {"e2e_ms": 900.0}

        await recorder.call_ended("c1", "handed_off", ended_at=now)
        assert await recorder.flush(60)
        after = await live_calls(engine, now=now)
        assert after.calls == [] and after.stale == 1
    finally:
        await recorder.close()
