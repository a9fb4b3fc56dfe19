"""The recorder's write-ahead spool in one process: durable writes survive a
recorder that dies (or closes) while the database is unreachable, are replayed
exactly once by the next recorder on the same database, a live recorder's
spool is never taken, and a full spool keeps writes in memory only."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from runtime.db import queries
from runtime.db.migrations import init_db
from runtime.db.models import Turn
from runtime.db.recorder import CallRecorder
from runtime.db.spool import Spool, decode, encode, open_spool, read_entries
from runtime.db.writes import Op
from runtime.session import CallEvent

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


async def _noop_sleep(_s: float) -> None:
    return None


def _events(n: int) -> list[CallEvent]:
    return [
        CallEvent("agent", {"text": f"reply {n}", "agent": "front-desk", "node": "route"}),
        CallEvent("node", {"agent": "front-desk", "node": "route"}),
    ]


async def _record_call(recorder: CallRecorder, call_id: str) -> None:
    await recorder.call_started(call_id, agent="front-desk", caller="+15551234567", started_at=AT)
    for n in range(3):
        await recorder.record(call_id, _events(n), step=n, caller_text=f"line {n}", at=AT)
    await recorder.call_ended(call_id, "completed", "booked", ended_at=AT)


def _die(spool: Spool) -> None:
    """What SIGKILL leaves: the file as flushed, the lock released, no cleanup."""
    spool._file.flush()
    os.close(spool._lock_fd)
    spool.closed = True


def test_encoding_round_trips_datetimes_and_tag_like_dicts() -> None:
    value = {"at": AT, "args": {"__dt__": "not a time"}, "nested": [{"__dict__": {"a": 1}}]}
    assert decode(encode(value)) == value
    op = Op.call_ended("c1", "completed", None, AT, {"sentiment_score": 0.5})
    assert Op.from_dict(decode(encode(op.as_dict()))) == op
    with pytest.raises(ValueError, match="not a durable"):
        Op.from_dict({"kind": "drop_table", "args": {}})
    with pytest.raises(ValueError, match="bad arguments"):
        Op.from_dict({"kind": "call_ended", "args": {"call_id": "c1"}})


def test_in_memory_sqlite_gets_no_spool(tmp_path: Path) -> None:
    assert open_spool("sqlite://", base=tmp_path) is None
    spool = open_spool(f"sqlite:///{tmp_path / 'a.db'}", base=tmp_path)
    assert spool is not None
    spool.close(keep=False)


async def test_dead_recorders_spool_is_replayed_exactly_once(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    down = CallRecorder.from_url(
        f"sqlite:///{tmp_path / 'missing' / 'calls.db'}",  # cannot be opened: "down"
        spool=Spool(spool_dir),
        sleep=_noop_sleep,
        retry_max_s=0.25,
    )
    await _record_call(down, "call-a")
    assert not await down.flush(timeout=1.0)
    assert down.failing and down.stats.pending == 5
    await down._sync(down._spool)  # type: ignore[arg-type]
    assert len(read_entries(next(spool_dir.glob("*.jsonl")))) == 5

    url = f"sqlite:///{tmp_path / 'calls.db'}"
    engine = await init_db(url)
    # While its owner lives, no other recorder takes the spool.
    live = CallRecorder(engine, spool=Spool(spool_dir))
    assert await live.replay_spool() == 0
    await live.close()

    _die(down._spool)  # type: ignore[arg-type]
    down._closed = True
    if down._task is not None:
        down._task.cancel()
    await down.engine.dispose()

    after = CallRecorder(engine, spool=Spool(spool_dir))
    assert await after.replay_spool() == 5
    assert await after.flush(timeout=30)
    assert await after.replay_spool() == 0, "the dead spool was deleted"
    assert await after.close() == 0
    detail = await queries.get_call(engine, "call-a")
    assert detail is not None and detail.outcome == "completed"
    assert [t.text for t in detail.turns if t.role == "caller"] == ["line 0", "line 1", "line 2"]
    async with engine.connect() as conn:
        turns = (await conn.execute(select(func.count()).select_from(Turn))).scalar_one()
    assert turns == 6, "3 caller + 3 agent turns, none twice"
    assert not spool_dir.exists(), "every spool cleaned up"
    await engine.dispose()


async def test_close_while_down_keeps_writes_for_the_next_process(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    down = CallRecorder.from_url(
        f"sqlite:///{tmp_path / 'missing' / 'calls.db'}",
        spool=Spool(spool_dir),
        sleep=_noop_sleep,
        retry_max_s=0.25,
    )
    await _record_call(down, "call-b")
    assert await down.close(timeout=0.5) == 5
    assert down.stats.dropped == 0, "kept in the spool, not dropped"

    engine = await init_db(f"sqlite:///{tmp_path / 'calls.db'}")
    after = CallRecorder(engine, spool=Spool(spool_dir))
    assert await after.replay_spool() == 5
    await after.close()
    detail = await queries.get_call(engine, "call-b")
    assert detail is not None and len(detail.turns) == 6 and detail.outcome == "completed"
    await engine.dispose()


async def test_a_full_spool_keeps_writes_in_memory_and_still_writes_them(tmp_path: Path) -> None:
    engine = await init_db(f"sqlite:///{tmp_path / 'calls.db'}")
    recorder = CallRecorder(engine, spool=Spool(tmp_path / "spool", max_bytes=1024))
    await _record_call(recorder, "call-c")
    assert await recorder.flush(timeout=30)
    assert recorder.stats.unspooled > 0
    assert recorder.stats.written == 5 and recorder.stats.dropped == 0
    await recorder.close()
    detail = await queries.get_call(engine, "call-c")
    assert detail is not None and len(detail.turns) == 6
    await engine.dispose()


async def test_a_live_recorder_picks_up_a_dead_peers_spool_when_it_drains(
    tmp_path: Path,
) -> None:
    spool_dir = tmp_path / "spool"
    engine = await init_db(f"sqlite:///{tmp_path / 'calls.db'}")
    live = CallRecorder(engine, spool=Spool(spool_dir))
    assert await live.replay_spool() == 0
    down = CallRecorder.from_url(
        f"sqlite:///{tmp_path / 'missing' / 'calls.db'}",
        spool=Spool(spool_dir),
        sleep=_noop_sleep,
        retry_max_s=0.25,
    )
    await _record_call(down, "call-dead")
    await down._sync(down._spool)  # type: ignore[arg-type]
    _die(down._spool)  # type: ignore[arg-type]
    down._closed = True
    if down._task is not None:
        down._task.cancel()
    await down.engine.dispose()

    await _record_call(live, "call-live")  # its queue drains: the dead spool is due
    assert await live.flush(timeout=30)
    assert live.stats.replayed == 5
    await live.close()
    for call_id in ("call-dead", "call-live"):
        detail = await queries.get_call(engine, call_id)
        assert detail is not None and len(detail.turns) == 6 and detail.outcome == "completed"
    await engine.dispose()
