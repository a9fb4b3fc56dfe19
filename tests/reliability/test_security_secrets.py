"""Secrets never leak: after a service call that used HTTP tools with a secret
header and a secret query parameter (one succeeding, one failing), none of
the secrets — tool credentials, the admin password, the JWT key, the operator
and call tokens — appears in any log record, call event, API export, or
byte of the call database and checkpoint files."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from reliability.report import record_security
from runtime.service import ServiceSettings, create_app
from tests.fakes.http_tool_server import HttpToolServer

JWT_SECRET = "jwt-key-" + "Q" * 40
ADMIN_PASSWORD = "admin-pw-Zx81-never-logged"
TOOL_TOKEN = "tool-token-Hq93-never-stored"
TOOL_KEY = "tool-key-Pm27-never-stored"

GRAPH = """
schema: switchboard/v1
id: secret-desk
name: Secret desk
start: hello
nodes:
  hello: {type: say, text: "Hi, let me look up your order.", next: lookup}
  lookup:
    type: tool
    tool: orders.status
    args: {order_id: Z-1}
    result: order
    next: audit
    on_error: audit
  audit:
    type: tool
    tool: orders.audit
    args: {code: "404"}
    result: audit
    next: ask
    on_error: ask
  ask: {type: collect, slot: name, kind: text, prompt: "What's your name?", next: bye}
  bye: {type: end, text: "Your order is {order.status}. Goodbye {name}!"}
"""

TOOLS = """
tools:
  orders.status:
    description: Where an order is.
    parameters:
      type: object
      properties: {{order_id: {{type: string}}}}
      required: [order_id]
    url: "{base}/orders/{{order_id}}"
    headers: {{Authorization: "Bearer {{env.SB_TEST_TOOL_TOKEN}}"}}
    response: {{status: /status}}
    allow_private_network: true
  orders.audit:
    description: An audit endpoint that fails.
    parameters:
      type: object
      properties: {{code: {{type: string}}}}
      required: [code]
    url: "{base}/status/{{code}}"
    query: {{key: "{{env.SB_TEST_TOOL_KEY}}"}}
    headers: {{X-Api-Key: "{{env.SB_TEST_TOOL_KEY}}"}}
    allow_private_network: true
"""


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with HttpToolServer() as s:
        yield s


def test_secrets_stay_out_of_logs_events_exports_and_storage(
    server: HttpToolServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (graphs / "secret-desk.yaml").write_text(GRAPH, encoding="utf-8")
    (graphs / "tools.yaml").write_text(TOOLS.format(base=server.base_url), encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SB_TEST_TOOL_TOKEN", TOOL_TOKEN)
    monkeypatch.setenv("SB_TEST_TOOL_KEY", TOOL_KEY)
    caplog.set_level(logging.DEBUG)
    settings = ServiceSettings(
        jwt_secret=SecretStr(JWT_SECRET),
        admin_user="admin",
        admin_password=SecretStr(ADMIN_PASSWORD),
        graphs_dir=graphs,
        checkpoint_url=f"sqlite:///{data / 'memory.db'}",
        database_url=f"sqlite:///{data / 'calls.db'}",
        redis_url=None,
    )
    exported: list[str] = []
    with TestClient(create_app(settings)) as client:
        login = client.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        operator = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {operator}"}
        wrong = client.post("/api/auth/login", json={"username": "admin", "password": TOOL_TOKEN})
        assert wrong.status_code == 401
        started = client.post("/api/calls", json={"agent": "secret-desk"}, headers=headers)
        assert started.status_code == 201, started.text
        call_id, call_token = started.json()["call_id"], started.json()["call_token"]
        exported.append(str(started.json()["events"]))
        call = {"Authorization": f"Bearer {call_token}"}
        turn = client.post(f"/api/calls/{call_id}/turns", json={"text": "Maria"}, headers=call)
        assert turn.json()["outcome"] == "completed", turn.text
        exported.append(turn.text)
        for path in (f"/api/calls/{call_id}", f"/api/calls/{call_id}/state", "/api/calls"):
            r = client.get(path, headers=headers)
            assert r.status_code == 200
            exported.append(r.text)
        for path in ("/api/analytics/tools", "/api/agents"):
            exported.append(client.get(path, headers=headers).text)

    # The tools really ran with the secrets (else this test would prove nothing).
    sent = [r for r in server.requests if r.raw_path.startswith(("/orders/Z-1", "/status/404"))]
    assert any(r.headers.get("authorization") == f"Bearer {TOOL_TOKEN}" for r in sent)
    assert any(TOOL_KEY in r.query for r in sent)
    assert "shipped" in exported[1] and "audit" in exported[2]

    secrets = {
        "tool header token": TOOL_TOKEN,
        "tool query key": TOOL_KEY,
        "admin password": ADMIN_PASSWORD,
        "jwt secret": JWT_SECRET,
        "operator token": operator,
        "call token": call_token,
    }
    logs = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__.get('extra', '')}"
        for r in caplog.records
    )
    stored = b"".join(p.read_bytes() for p in sorted(data.iterdir()) if p.is_file())
    assert caplog.records and len(stored) > 0
    leaks = [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, haystack in (
            ("logs", logs),
            ("events and exports", "\n".join(exported)),
            ("database files", stored.decode("latin-1")),
        )
        if secret in haystack
    ]
    assert not leaks, leaks
    record_security(
        "secrets-not-leaked",
        passed=True,
        detail=(
            f"{len(secrets)} secrets absent from {len(caplog.records)} log records, "
            f"{len(exported)} API answers and {len(stored)} bytes of database files"
        ),
    )
