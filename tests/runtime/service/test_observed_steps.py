"""Recording a call's step takes its number from the state the step's own run
ended with: no checkpoint read after the step, and the numbers still match the
turns (each step recorded once, in order)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.session import CallSession

SCRIPT = ["Hi, I need a cleaning", "next Tuesday"]


def test_steps_are_numbered_without_reading_the_state_back(
    client: TestClient, operator_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    plain_state = CallSession.state

    async def counted(self: CallSession) -> dict[str, Any]:
        reads.append(self.call_id)
        return await plain_state(self)

    monkeypatch.setattr(CallSession, "state", counted)
    r = client.post("/api/calls", json={"agent": "front-desk"}, headers=operator_headers)
    assert r.status_code == 201, r.text
    started = r.json()
    call = {"Authorization": f"Bearer {started['call_token']}"}
    for line in SCRIPT:
        turn = client.post(
            f"/api/calls/{started['call_id']}/turns", json={"text": line}, headers=call
        )
        assert turn.status_code == 200, turn.text
    assert reads == []
    detail = client.get(f"/api/calls/{started['call_id']}", headers=call).json()
    callers = [t for t in detail["turns"] if t["role"] == "caller"]
    assert [t["text"] for t in callers] == SCRIPT
    steps = [t["step"] for t in callers]
    assert steps == sorted(set(steps)) and len(steps) == len(SCRIPT)
