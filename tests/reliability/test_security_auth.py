"""Security of the service's front door: forged, expired and misdirected JWTs
are refused on REST and WebSocket; call tokens open only their own call;
passwords are stored as argon2 hashes; login and call start are rate-limited
per client address and per credential (429 with Retry-After); CORS is closed
unless origins are configured."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from reliability.report import record_security
from runtime.service import ServiceSettings, create_app
from runtime.service.auth import UserStore

SECRET = "k" * 64
ADMIN = ("admin", "correct horse battery staple")
GRAPHS_DIR = Path(__file__).resolve().parents[2] / "graphs"
CLIENT_HEADER = "x-test-client-address"


class ClientAddress:
    """Sets the ASGI client address from a test header, so one test client can
    speak for several addresses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            given = dict(scope["headers"]).get(CLIENT_HEADER.encode())
            if given:
                scope = {**scope, "client": (given.decode(), 40000)}
        await self.app(scope, receive, send)


def _settings(tmp_path: Path, **overrides: Any) -> ServiceSettings:
    fields: dict[str, Any] = {
        "jwt_secret": SECRET,
        "admin_user": ADMIN[0],
        "admin_password": ADMIN[1],
        "graphs_dir": GRAPHS_DIR,
        "checkpoint_url": "memory://",
        "database_url": f"sqlite:///{tmp_path / 'calls.db'}",
        "redis_url": None,
        **overrides,
    }
    return ServiceSettings(**fields)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(ClientAddress(create_app(_settings(tmp_path)))) as c:
        yield c


def _login(client: TestClient, address: str = "10.0.0.1") -> str:
    r = client.post(
        "/api/auth/login",
        json={"username": ADMIN[0], "password": ADMIN[1]},
        headers={CLIENT_HEADER: address},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _bearer(token: str, address: str = "10.0.0.1") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", CLIENT_HEADER: address}


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": ADMIN[0],
        "scope": "operator",
        "iss": "switchboard",
        "iat": now,
        "exp": now + 600,
    }


def _alg_none(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _forged_tokens() -> dict[str, str]:
    now = int(time.time())
    good = _claims()
    return {
        "alg=none": _alg_none(good),
        "alg=none, empty signature dropped": _alg_none(good).rstrip("."),
        "wrong key": jwt.encode(good, "w" * 48, algorithm="HS256"),
        "HS512 with the right key": jwt.encode(good, SECRET, algorithm="HS512"),
        "expired": jwt.encode({**good, "iat": now - 7200, "exp": now - 3600}, SECRET, "HS256"),
        "wrong issuer": jwt.encode({**good, "iss": "someone-else"}, SECRET, "HS256"),
        "no exp": jwt.encode({k: v for k, v in good.items() if k != "exp"}, SECRET, "HS256"),
        "unknown scope": jwt.encode({**good, "scope": "root"}, SECRET, "HS256"),
        "garbage": "not.a.jwt",
        "oversized": "a" * 10_000,
    }


def test_forged_and_expired_tokens_are_refused_everywhere(client: TestClient) -> None:
    operator = _login(client)
    started = client.post("/api/calls", json={"agent": "front-desk"}, headers=_bearer(operator))
    call_id = started.json()["call_id"]
    refused = 0
    for name, token in _forged_tokens().items():
        for method, path in (
            ("GET", "/api/calls"),
            ("GET", "/api/agents"),
            ("POST", "/api/calls"),
            ("GET", f"/api/calls/{call_id}/state"),
        ):
            body = {"agent": "front-desk"} if method == "POST" else None
            r = client.request(method, path, json=body, headers=_bearer(token))
            assert r.status_code == 401, (name, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
            refused += 1
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect(f"/ws/call/{call_id}?token={token}") as ws,
        ):
            ws.receive_text()
        assert closed.value.code == 4401, name
        refused += 1
    # Nothing a forged token asked for happened: still exactly one call.
    listed = client.get("/api/calls", headers=_bearer(operator)).json()
    assert listed["total"] <= 1
    record_security(
        "jwt-forged-expired-refused",
        passed=True,
        detail=f"{refused} requests with {len(_forged_tokens())} bad tokens: all 401/4401",
    )


def test_call_tokens_open_only_their_own_call(client: TestClient) -> None:
    operator = _bearer(_login(client))
    one = client.post("/api/calls", json={"agent": "front-desk"}, headers=operator).json()
    two = client.post("/api/calls", json={"agent": "front-desk"}, headers=operator).json()
    mine = _bearer(one["call_token"])
    assert client.get(f"/api/calls/{one['call_id']}/state", headers=mine).status_code == 200
    for method, path in (
        ("GET", f"/api/calls/{two['call_id']}/state"),
        ("GET", f"/api/calls/{two['call_id']}"),
        ("POST", f"/api/calls/{two['call_id']}/hangup"),
        ("GET", "/api/calls"),
        ("GET", "/api/agents"),
        ("GET", "/api/analytics/outcomes"),
    ):
        assert client.request(method, path, headers=mine).status_code == 401, path
    turn = client.post(f"/api/calls/{two['call_id']}/turns", json={"text": "hello"}, headers=mine)
    assert turn.status_code == 401
    started = client.post("/api/calls", json={"agent": "front-desk"}, headers=mine)
    assert started.status_code == 401
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/ws/call/{two['call_id']}?token={one['call_token']}") as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 4401
    # The other call is untouched: still waiting on its first node.
    state = client.get(f"/api/calls/{two['call_id']}/state", headers=operator).json()
    assert state["outcome"] is None and state["turn"] == 0
    record_security("call-token-scope", passed=True, detail="other call: REST 401, WS 4401")


def test_passwords_are_stored_as_argon2_hashes() -> None:
    store = UserStore()
    store.add("ops", "s3cret-password")
    stored = store._hashes["ops"]
    assert stored.startswith("$argon2id$") and "s3cret-password" not in stored
    assert store.verify("ops", "s3cret-password")
    assert not store.verify("ops", "S3cret-password")
    assert not store.verify("nobody", "s3cret-password")
    record_security("password-hashing", passed=True, detail=stored.split("$")[1])


def test_login_is_rate_limited_per_address_and_per_user(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, login_rate_limit="3/minute"))
    with TestClient(ClientAddress(app)) as client:

        def attempt(address: str, user: str = ADMIN[0], password: str = "wrong") -> Any:
            return client.post(
                "/api/auth/login",
                json={"username": user, "password": password},
                headers={CLIENT_HEADER: address},
            )

        assert [attempt("10.1.0.1").status_code for _ in range(3)] == [401] * 3
        over = attempt("10.1.0.1")
        assert over.status_code == 429
        assert 1 <= int(over.headers["retry-after"]) <= 60
        # The right password does not get through an exhausted address either.
        assert attempt("10.1.0.1", password=ADMIN[1]).status_code == 429
        # The user name is exhausted too: a fresh address guessing it is refused.
        assert attempt("10.1.0.2").status_code == 429
        # Another user from a fresh address is unaffected.
        assert attempt("10.1.0.3", user="someone").status_code == 401
    record_security("login-rate-limit", passed=True, detail="4th attempt per address/user: 429")


def test_call_start_is_rate_limited_per_address_and_per_token(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, call_start_rate_limit="2/minute"))
    with TestClient(ClientAddress(app)) as client:
        a, b, c = (_login(client, f"10.2.0.{n}") for n in (1, 2, 3))

        def start(token: str, address: str) -> Any:
            return client.post(
                "/api/calls", json={"agent": "front-desk"}, headers=_bearer(token, address)
            )

        assert [start(a, "10.2.1.1").status_code for _ in range(2)] == [201, 201]
        refused = start(a, "10.2.1.1")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        # Per token: token a from a new address is still refused.
        assert start(a, "10.2.1.2").status_code == 429
        # Per address: a fresh token from the exhausted address is refused.
        assert start(b, "10.2.1.1").status_code == 429
        # A fresh token from a fresh address starts calls.
        assert start(c, "10.2.1.3").status_code == 201
    record_security("call-start-rate-limit", passed=True, detail="per token and per address: 429")


def test_rate_limit_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        _settings(tmp_path, login_rate_limit="lots")
    with pytest.raises(ValueError, match="list the allowed origins"):
        _settings(tmp_path, cors_origins=["*"])


def test_cors_is_closed_by_default_and_open_only_to_listed_origins(tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with TestClient(create_app(_settings(tmp_path))) as client:
        token = _login(client)
        options = client.options("/api/calls", headers=preflight)
        assert "access-control-allow-origin" not in options.headers
        plain = client.get(
            "/api/calls", headers={**_bearer(token), "Origin": "https://evil.example"}
        )
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    allowed = "https://ops.example"
    app = create_app(_settings(tmp_path / "b", cors_origins=[allowed]))
    (tmp_path / "b").mkdir()
    with TestClient(app) as client:
        ok = client.options("/api/calls", headers={**preflight, "Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed
        evil = client.options("/api/calls", headers=preflight)
        assert "access-control-allow-origin" not in evil.headers
    record_security("cors-closed-by-default", passed=True, detail="no ACAO for unlisted origins")
