"""Builder test calls are recorded like real calls (Streamlit AppTest against a
temporary SQLite database): open while in progress, ended with an outcome."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from builder.dashboard.live_data import LiveSnapshot, live_calls
from builder.views.testcall import KEY as CALL_KEY
from builder.views.testcall_record import recordings_dir
from builder.views.testcall_run import start, step, wait_abandoned
from runtime.db.engine import make_engine
from schemas.catalog import GraphCatalog
from schemas.validate import load_valid_graph
from tests.builder.testcall_support import call_db, click, rows, say, start_app

__all__ = ["call_db"]  # a fixture


def test_a_text_test_call_is_recorded_while_open_and_ends_with_its_outcome(
    dental_file: Path, call_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(dental_file.parent, monkeypatch)
    click(at, "Start test call")
    call_id = at.session_state[CALL_KEY].session.call_id
    assert call_id.startswith("builder-")
    say(at, "I need a cleaning")

    [call] = rows(call_db, "SELECT * FROM calls")
    assert call["id"] == call_id
    assert (call["transport"], call["direction"], call["agent"]) == (
        "builder",
        "inbound",
        "dental-booking",
    )
    assert call["ended_at"] is None and call["outcome"] is None  # in progress
    # the graph version is the editor's text (a temporary dir: no git commit)
    expected = hashlib.sha256(dental_file.read_bytes()).hexdigest()
    assert call["graph_hash"] == expected and call["graph_commit"] is None
    [agent] = rows(call_db, "SELECT * FROM agents")
    assert agent["content_hash"] == expected and agent["file_path"] == str(dental_file.resolve())

    turns = rows(call_db, "SELECT step, role, text FROM turns ORDER BY step, seq")
    assert ("caller", "I need a cleaning") in [(t["role"], t["text"]) for t in turns]
    assert any(t["role"] == "agent" and "How can I help" in t["text"] for t in turns)
    assert any(t["role"] == "agent" and "Which day" in t["text"] for t in turns)
    [intent] = rows(call_db, "SELECT name, confidence, step FROM intents")
    assert intent["name"] == "book" and intent["step"] == 1 and intent["confidence"] > 0
    visits = [r["node"] for r in rows(call_db, "SELECT node FROM node_visits ORDER BY step, seq")]
    assert visits[:3] == ["greeting", "route", "ask_day"]
    [reply] = rows(call_db, "SELECT latencies FROM turns WHERE step = 1 AND role = 'agent'")
    assert "graph_ms" in json.loads(reply["latencies"])
    assert "Recorded as call" in "\n".join(str(c.value) for c in at.caption)

    say(at, "can I just talk to a real person")
    [call] = rows(call_db, "SELECT * FROM calls")
    assert call["outcome"] == "escalated" and call["ended_at"] is not None
    assert call["duration_s"] is not None and call["duration_s"] >= 0
    assert "Call ended." in [s.value for s in at.success]
    assert rows(call_db, "SELECT * FROM recordings") == []  # a text call has no audio


def test_hanging_up_or_starting_over_records_the_call_as_abandoned(
    dental_file: Path, call_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(dental_file.parent, monkeypatch)
    click(at, "Start test call")
    first = at.session_state[CALL_KEY].session.call_id
    say(at, "I need a cleaning")
    click(at, "Start test call")  # a new call: the open one is left
    second = at.session_state[CALL_KEY].session.call_id
    assert second != first
    by_id = {r["id"]: r for r in rows(call_db, "SELECT * FROM calls")}
    assert by_id[first]["outcome"] == "abandoned" and by_id[first]["ended_at"] is not None
    assert by_id[second]["ended_at"] is None
    click(at, "Hang up")
    [ended] = rows(call_db, "SELECT outcome, ended_at FROM calls WHERE id = ?", second)
    assert ended["outcome"] == "abandoned" and ended["ended_at"] is not None
    assert "Call ended." in [s.value for s in at.success]


def test_an_unreachable_database_leaves_the_test_call_working(
    dental_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", "mysql://nobody@127.0.0.1/none")
    at = start_app(dental_file.parent, monkeypatch)
    click(at, "Start test call")
    assert any("not recorded" in str(w.value) for w in at.warning)
    say(at, "I need a cleaning")
    lines = "\n".join(str(m.value) for msg in at.chat_message for m in msg.markdown)
    assert "Which day" in lines


def test_recordings_go_to_the_configured_directory_else_the_data_dir(tmp_path: Path) -> None:
    assert recordings_dir({"SWITCHBOARD_RECORDINGS_DIR": str(tmp_path)}) == tmp_path
    data = tmp_path / "xdg"
    assert recordings_dir({"XDG_DATA_HOME": str(data)}) == data / "switchboard" / "recordings"


def test_the_live_page_query_sees_the_open_test_call_from_another_engine(
    dental_file: Path, call_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(dental_file.parent, monkeypatch)
    click(at, "Start test call")
    say(at, "I need a cleaning")
    call_id = at.session_state[CALL_KEY].session.call_id

    async def live() -> LiveSnapshot:
        engine = make_engine(f"sqlite:///{call_db}")
        try:
            return await live_calls(engine)
        finally:
            await engine.dispose()

    snapshot = asyncio.run(live())
    [shown] = snapshot.calls
    assert shown.detail.id == call_id and shown.detail.transport == "builder"
    assert shown.current_node == "ask_day"
    assert [t.text for t in shown.detail.turns if t.role == "caller"] == ["I need a cleaning"]


@pytest.mark.redis
def test_each_step_is_published_on_the_redis_live_feed(
    dental_file: Path,
    call_db: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = f"switchboard:live:test-{uuid.uuid4().hex}"
    monkeypatch.setenv("SWITCHBOARD_REDIS_URL", redis_url)
    monkeypatch.setenv("SWITCHBOARD_LIVE_CHANNEL", channel)
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    try:
        at = start_app(dental_file.parent, monkeypatch)
        click(at, "Start test call")
        say(at, "I need a cleaning")
        call_id = at.session_state[CALL_KEY].session.call_id
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60.0  # a hang guard: the messages are already sent
        while not _answered(messages) and time.monotonic() < deadline:
            raw = pubsub.get_message(timeout=1.0)  # None for the subscription notice
            if raw is not None:
                messages.append(json.loads(raw["data"]))
    finally:
        pubsub.close()
        client.close()
    assert {m["call_id"] for m in messages} == {call_id}
    assert {m["agent"] for m in messages} == {"dental-booking"}
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "node" and "caller" in kinds and "intent" in kinds
    caller = next(m for m in messages if m["type"] == "caller")
    assert caller["text"] == "I need a cleaning" and isinstance(caller["at"], float)


def _answered(messages: list[dict[str, Any]]) -> bool:
    """The caller's turn and the agent waiting again after it were received."""
    kinds = [m.get("type") for m in messages]
    return "caller" in kinds and "waiting" in kinds[kinds.index("caller") :]


def test_a_call_whose_session_goes_away_is_recorded_as_abandoned(
    dental_file: Path, call_db: Path
) -> None:
    text = dental_file.read_text("utf-8")
    catalog = GraphCatalog(dental_file.parent)
    spec = load_valid_graph(dental_file, catalog=catalog)
    call = start(spec, text, dental_file.parent, dental_file)
    call_id = call.session.call_id
    step(call, "I need a cleaning")
    [open_call] = rows(call_db, "SELECT ended_at FROM calls WHERE id = ?", call_id)
    assert open_call["ended_at"] is None
    del call  # the browser session's state is dropped
    gc.collect()
    assert wait_abandoned(60.0)
    [ended] = rows(call_db, "SELECT outcome, ended_at FROM calls WHERE id = ?", call_id)
    assert ended["outcome"] == "abandoned" and ended["ended_at"] is not None
