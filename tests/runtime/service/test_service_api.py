"""The REST API in one process: a text call from start to hang-up, its record,
the call list and analytics, and clear 4xx answers to bad input."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

SCRIPT = ["Hi, I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"]


def _start(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/calls", json={"agent": "front-desk", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_agents_lists_graphs_with_hashes(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    agents = {a["id"]: a for a in client.get("/api/agents", headers=operator_headers).json()}
    assert {"front-desk", "dental-booking"} <= set(agents)
    assert len(agents["front-desk"]["content_hash"]) == 64
    assert agents["front-desk"]["file"].endswith("front-desk.yaml")


def test_text_call_runs_and_is_recorded(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    started = _start(client, operator_headers, caller="+15551230001")
    call_id = started["call_id"]
    assert started["ws_url"].startswith("ws://") and f"/ws/call/{call_id}?" in started["ws_url"]
    assert any(e["type"] == "waiting" for e in started["events"])
    call = {"Authorization": f"Bearer {started['call_token']}"}
    outcome = None
    for line in SCRIPT:
        r = client.post(f"/api/calls/{call_id}/turns", json={"text": line}, headers=call)
        assert r.status_code == 200, r.text
        outcome = r.json()["outcome"]
    assert outcome == "completed"
    again = client.post(f"/api/calls/{call_id}/turns", json={"text": "hello?"}, headers=call)
    assert again.status_code == 409
    assert client.post(f"/api/calls/{call_id}/hangup", headers=call).json()["events"] == []

    detail = client.get(f"/api/calls/{call_id}", headers=call).json()
    assert detail["outcome"] == "completed"
    assert detail["caller"] == "+15551230001"
    assert [t["text"] for t in detail["turns"] if t["role"] == "caller"] == SCRIPT
    assert detail["agent_version"]["graph_id"] == "front-desk"
    assert any(t["name"] == "calendar.book" for t in detail["tool_calls"])
    assert any("graph_ms" in (t["latencies"] or {}) for t in detail["turns"])

    page = client.get(
        "/api/calls", params={"agent": "front-desk", "q": "cleaning"}, headers=operator_headers
    ).json()
    assert [c["id"] for c in page["items"]] == [call_id]
    none = client.get("/api/calls", params={"outcome": "escalated"}, headers=operator_headers)
    assert none.json()["total"] == 0
    rates = client.get("/api/analytics/outcomes", headers=operator_headers).json()
    by_agent = {r["agent"]: r["counts"] for r in rates}
    # The front desk passed the call on; the specialist completed it.
    assert by_agent["front-desk"]["handed_off"] == 1
    assert by_agent["dental-booking"]["completed"] == 1
    funnel = client.get("/api/analytics/funnel", headers=operator_headers).json()
    assert funnel["calls"] == 1 and funnel["nodes"]
    latency = client.get("/api/analytics/latency", headers=operator_headers).json()
    assert "graph_ms" in {s["stage"] for s in latency}
    versions = client.get("/api/agents", headers=operator_headers).json()
    front = next(a for a in versions if a["id"] == "front-desk")
    assert front["versions"][0]["calls"] == 1
    reroutes = client.get("/api/analytics/intents/reroutes", headers=operator_headers)
    assert reroutes.status_code == 200 and isinstance(reroutes.json(), list)
    # Sentiment is scored after the call's rows are written; wait for it (hang guard only).
    deadline = time.monotonic() + 30
    while not (
        scored := client.get("/api/analytics/sentiment/calls", headers=operator_headers).json()
    ):
        assert time.monotonic() < deadline, "the finished call was never scored"
        client.get("/healthz")
    assert [c["id"] for c in scored] == [call_id]
    assert scored[0]["method"] == "lexicon:vader"
    per_agent = client.get("/api/analytics/sentiment", headers=operator_headers).json()
    assert [a["agent"] for a in per_agent] == ["front-desk"]


def test_hangup_ends_call_as_abandoned(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    call_id = _start(client, operator_headers)["call_id"]
    r = client.post(f"/api/calls/{call_id}/hangup", headers=operator_headers)
    assert r.json()["outcome"] == "abandoned"
    detail = client.get(f"/api/calls/{call_id}", headers=operator_headers).json()
    assert detail["outcome"] == "abandoned" and detail["ended_at"] is not None


def test_bad_input_gets_clear_4xx(client: TestClient, operator_headers: dict[str, str]) -> None:
    h = operator_headers
    unknown = client.post("/api/calls", json={"agent": "no-such-agent"}, headers=h)
    assert unknown.status_code == 404 and "no-such-agent" in unknown.json()["detail"]
    assert client.post("/api/calls", json={"agent": "front-desk", "x": 1}, headers=h).status_code
    assert (
        client.post("/api/calls", json={"agent": "front-desk", "transport": "fax"}, headers=h)
    ).status_code == 422
    assert client.post("/api/calls", content=b"{not json", headers=h).status_code == 422
    huge = client.post("/api/calls", json={"agent": "a" * 10_000}, headers=h)
    assert huge.status_code == 413
    call_id = _start(client, h)["call_id"]
    empty = client.post(f"/api/calls/{call_id}/turns", json={"text": ""}, headers=h)
    assert empty.status_code == 422
    missing = client.post("/api/calls/nope/turns", json={"text": "hi"}, headers=h)
    assert missing.status_code == 404
    assert client.get("/api/calls/nope", headers=h).status_code == 404
    backwards = {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert client.get("/api/calls", params=backwards, headers=h).status_code == 422
    assert client.get("/api/calls", params={"limit": 0}, headers=h).status_code == 422
    zone = client.get("/api/analytics/volume/day", params={"tz": "Mars/Base"}, headers=h)
    assert zone.status_code == 422 and "Mars/Base" in zone.json()["detail"]
