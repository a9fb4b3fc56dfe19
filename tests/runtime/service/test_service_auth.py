"""Every route needs a valid token: missing, forged, expired or out-of-scope
tokens get 401 (the voice WebSocket closes with 4401) and change nothing."""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.runtime.service.conftest import ADMIN, SECRET


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_json_and_form(client: TestClient) -> None:
    form = client.post("/api/auth/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert form.status_code == 200 and form.json()["token_type"] == "bearer"
    wrong = client.post("/api/auth/login", json={"username": ADMIN[0], "password": "nope"})
    assert wrong.status_code == 401
    nobody = client.post("/api/auth/login", json={"username": "ghost", "password": ADMIN[1]})
    assert nobody.status_code == 401
    assert client.post("/api/auth/login", json={"username": ADMIN[0]}).status_code == 422
    assert client.post("/api/auth/login", content=b"x", headers={"content-type": "text/plain"})


def _forged(**claims: object) -> str:
    now = int(time.time())
    base = {"sub": "admin", "scope": "operator", "iss": "switchboard", "iat": now, "exp": now + 60}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _bearer("not-a-jwt"),
        _bearer(jwt.encode({"sub": "admin", "scope": "operator"}, "x" * 40, algorithm="HS256")),
        _bearer(_forged(exp=int(time.time()) - 10)),
        _bearer(_forged(iss="someone-else")),
        _bearer(_forged(scope="root")),
        {"Authorization": "Basic YWRtaW46cHc="},
    ],
    ids=["missing", "garbage", "wrong-key", "expired", "issuer", "scope", "basic"],
)
def test_bad_tokens_get_401_and_change_nothing(
    client: TestClient, operator_headers: dict[str, str], headers: dict[str, str]
) -> None:
    started = client.post("/api/calls", json={"agent": "front-desk"}, headers=operator_headers)
    call_id = started.json()["call_id"]
    for method, path, body in [
        ("GET", "/api/agents", None),
        ("GET", "/api/calls", None),
        ("POST", "/api/calls", {"agent": "front-desk"}),
        ("POST", f"/api/calls/{call_id}/turns", {"text": "I need a cleaning"}),
        ("POST", f"/api/calls/{call_id}/hangup", None),
        ("GET", f"/api/calls/{call_id}", None),
        ("GET", "/api/analytics/outcomes", None),
        ("GET", "/api/live", None),
    ]:
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    state = client.get(f"/api/calls/{call_id}/state", headers=operator_headers).json()
    assert state["turn"] == 0 and state["outcome"] is None
    assert client.get("/api/calls", headers=operator_headers).json()["total"] == 1


def test_call_token_opens_only_its_call(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    first = client.post("/api/calls", json={"agent": "front-desk"}, headers=operator_headers)
    second = client.post("/api/calls", json={"agent": "front-desk"}, headers=operator_headers)
    token = _bearer(first.json()["call_token"])
    other = second.json()["call_id"]
    assert client.post(f"/api/calls/{other}/turns", json={"text": "hi"}, headers=token)
    assert (
        client.post(f"/api/calls/{other}/turns", json={"text": "hi"}, headers=token).status_code
        == 401
    )
    assert client.get(f"/api/calls/{other}/state", headers=token).status_code == 401
    assert client.get("/api/calls", headers=token).status_code == 401
    assert client.post("/api/calls", json={"agent": "front-desk"}, headers=token).status_code == 401
    own = first.json()["call_id"]
    assert client.get(f"/api/calls/{own}/state", headers=token).status_code == 200
    assert client.get(f"/api/calls/{other}/state", headers=operator_headers).json()["turn"] == 0


def test_websocket_refuses_bad_tokens_with_4401(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    first = client.post(
        "/api/calls",
        json={"agent": "front-desk", "transport": "websocket"},
        headers=operator_headers,
    ).json()
    second = client.post(
        "/api/calls",
        json={"agent": "front-desk", "transport": "websocket"},
        headers=operator_headers,
    ).json()
    for url in [
        f"/ws/call/{first['call_id']}",
        f"/ws/call/{first['call_id']}?token=forged",
        f"/ws/call/{second['call_id']}?token={first['call_token']}",
        f"/ws/call/{first['call_id']}?graph=billing-support&token={first['call_token']}",
    ]:
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url) as ws:
            ws.receive_text()
        assert closed.value.code == 4401, url
