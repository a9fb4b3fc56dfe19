"""The Live page (Streamlit AppTest) against a real call in progress, recorded
by the `CallRecorder` as a worker records it; and the Redis live feed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from streamlit.testing.v1 import AppTest

from builder.dashboard.data import Database
from builder.dashboard.live_data import STALE_AFTER_S, live_calls
from builder.dashboard.live_feed import LiveFeed, feed_settings
from tests.builder.dashboard.dashdb import ROOT, LiveCallDriver, sqlite_url

PAGE = str(ROOT / "builder" / "dashboard" / "live_page.py")
TIMEOUT = 120  # generous: the machine is shared; AppTest runs are not timed


def page_text(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error]
    metrics = [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join([*(str(p.value) for p in parts), *metrics])


def open_page(monkeypatch: pytest.MonkeyPatch, url: str) -> AppTest:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    monkeypatch.delenv("SWITCHBOARD_REDIS_URL", raising=False)
    monkeypatch.delenv("SWITCHBOARD_CHECKPOINT_URL", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LiveCallDriver]:
    d = LiveCallDriver(sqlite_url(tmp_path / "calls.db"))
    try:
        yield d
    finally:
        d.close()


def test_a_call_in_progress_shows_then_leaves_when_it_ends(
    driver: LiveCallDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    opening = driver.start()
    greeting = next(e for e in opening if e.type == "agent")
    reply = driver.say("I need a cleaning")
    # the caller talks over the agent's question; recorded with the next turn
    asked = [e for e in reply if e.type == "agent"][-1]
    heard = " ".join(str(asked.data["text"]).split()[:2])
    driver.say(
        "hmm, I am not sure yet",
        interrupted=[{"message_id": str(asked.data["message_id"]), "heard": heard}],
    )

    at = open_page(monkeypatch, driver.url)
    text = page_text(at)
    assert "1 call in progress" in text
    assert driver.call_id in text
    assert "dental-booking" in text
    assert "Caller: +15550001111" in text
    assert "I need a cleaning" in text
    assert "Thanks for calling Bright Smiles" in text, greeting
    assert "barge-in" in text and heard in text  # heard versus planned
    assert "e2e 780 ms" in text  # per-turn latencies
    current = [m.value for m in at.metric if m.label == "Current node"]
    assert current and current[0] not in ("", "starting")

    driver.hang_up()
    at.run()
    assert not at.exception, at.exception
    text = page_text(at)
    assert driver.call_id not in text
    assert "No calls in progress" in text


def test_a_call_silent_for_half_an_hour_is_counted_as_stale(driver: LiveCallDriver) -> None:
    driver.start()
    database = Database(driver.url)
    try:
        now = datetime.now(UTC)
        fresh = database.run(lambda engine: live_calls(engine, now=now))
        assert [c.detail.id for c in fresh.calls] == [driver.call_id] and fresh.stale == 0
        assert fresh.calls[0].current_node == "route"
        later = now + timedelta(seconds=STALE_AFTER_S + 60)
        stale = database.run(lambda engine: live_calls(engine, now=later))
        assert stale.calls == [] and stale.stale == 1
    finally:
        database.run(lambda engine: engine.dispose())


def test_an_empty_database_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(monkeypatch, sqlite_url(tmp_path / "empty.db"))
    assert "No calls in progress" in page_text(at)


def test_feed_settings_follow_the_service() -> None:
    assert feed_settings({}) is None
    assert feed_settings({"SWITCHBOARD_CHECKPOINT_URL": "sqlite:///x.db"}) is None
    assert feed_settings({"SWITCHBOARD_CHECKPOINT_URL": "redis://h:6379/1"}) == (
        "redis://h:6379/1",
        "switchboard:live",
    )
    assert feed_settings(
        {"SWITCHBOARD_REDIS_URL": "redis://a/0", "SWITCHBOARD_LIVE_CHANNEL": "c"}
    ) == ("redis://a/0", "c")


def _publish(client: Any, channel: str, message: dict[str, Any]) -> None:
    assert client.publish(channel, json.dumps(message)) >= 1


@pytest.mark.redis
def test_the_redis_feed_keeps_interim_text_and_events(redis_url: str) -> None:
    channel = f"switchboard:test-live:{uuid.uuid4().hex}"
    feed = LiveFeed(redis_url, channel).start()
    client = redis.Redis.from_url(redis_url)
    try:
        assert feed.wait_connected(60), feed.status()
        base = {"call_id": "c1", "agent": "dental-booking", "at": 1_700_000_000.0}
        interim = {**base, "type": "transcript", "final": False}
        _publish(client, channel, {**interim, "text": "I ne"})
        _publish(client, channel, {**interim, "text": "I need a"})
        _publish(client, channel, {**base, "type": "token", "text": "Which "})
        _publish(client, channel, {**base, "type": "token", "text": "day"})
        _publish(client, channel, {**base, "type": "node", "node": "ask_day"})
        _publish(client, channel, {"type": "noise"})  # no call id: ignored
        ended = {**base, "call_id": "c2", "type": "outcome", "outcome": "completed"}
        _publish(client, channel, ended)
        snap = _wait(lambda: feed.snapshot("c2"))
        c1 = feed.snapshot("c1")
        assert c1 is not None
        assert c1.interim_caller == "I need a"
        assert c1.interim_agent == "Which day"
        assert [e["type"] for e in c1.events] == ["node"]
        assert snap.ended
        _publish(client, channel, {**base, "type": "caller", "text": "I need a cleaning"})
        _publish(client, channel, {**base, "type": "agent", "text": "Which day suits you?"})
        _wait(lambda: (s := feed.snapshot("c1")) and len(s.events) == 3 and s)
        c1 = feed.snapshot("c1")
        assert c1 is not None and c1.interim_caller is None and c1.interim_agent is None
        assert feed.status().connected and feed.status().messages == 8
    finally:
        feed.close()
        client.close()


def _wait(probe: Any, timeout: float = 60.0) -> Any:
    """Poll `probe` until it returns something truthy (hang guard `timeout` s)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("the live feed did not deliver in time")


@pytest.mark.redis
def test_the_page_shows_interim_text_from_the_redis_feed(
    driver: LiveCallDriver, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.start()
    channel = f"switchboard:test-live:{uuid.uuid4().hex}"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", driver.url)
    monkeypatch.setenv("SWITCHBOARD_REDIS_URL", redis_url)
    monkeypatch.setenv("SWITCHBOARD_LIVE_CHANNEL", channel)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    client = redis.Redis.from_url(redis_url)
    message = {
        "call_id": driver.call_id,
        "agent": driver.graph_id,
        "type": "transcript",
        "text": "I would like to book",
        "final": False,
        "at": 1_700_000_000.0,
    }
    try:

        def shown() -> bool:
            # the page's subscriber thread connects in the background: publish
            # until one message has reached it, then the page shows it
            client.publish(channel, json.dumps(message))
            at.run()
            assert not at.exception, at.exception
            return "Caller (interim):" in page_text(at)

        _wait(shown)
        text = page_text(at)
        assert "I would like to book" in text
        assert f"Redis live feed on `{channel}`: connected" in text
    finally:
        client.close()
