"""JWT auth for the service: operator users with argon2-hashed passwords, an
admin bootstrapped from the environment, operator tokens and call tokens.

Tokens are HS256 JWTs with `sub`, `scope` ("operator" or "call"), `iat`, `exp`
and issuer "switchboard"; a call token also carries `call_id` and `agent` and
opens only that call. A token is read from `Authorization: Bearer ...`, else
from the `token` (or `access_token`) query parameter (EventSource and WebSocket
clients cannot set headers). Anything missing, expired, forged or out of scope
is refused with 401 (WebSocket: close code 4401) before the route runs.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, HTTPException, Request, WebSocket, WebSocketException, status
from pwdlib import PasswordHash

from runtime.service.settings import ServiceSettings

ISSUER = "switchboard"
ALGORITHM = "HS256"
WS_UNAUTHORIZED = 4401
TOKEN_QUERY_PARAMS = ("token", "access_token")
MAX_TOKEN_CHARS = 4096

Scope = Literal["operator", "call"]


class AuthError(Exception):
    """A token or credentials that do not grant access; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: an operator (`call_id` None) or the holder of a call token."""

    subject: str
    scope: Scope
    call_id: str | None = None
    agent: str | None = None

    def may_access(self, call_id: str) -> bool:
        return self.scope == "operator" or self.call_id == call_id


class UserStore:
    """Operators and their password hashes (argon2 through pwdlib).

    Built from the admin bootstrap variables and the optional users file;
    `verify` takes the same time for unknown users as for known ones.
    """

    def __init__(self, hashes: dict[str, str] | None = None) -> None:
        self.hasher = PasswordHash.recommended()
        self._hashes: dict[str, str] = dict(hashes or {})
        self._dummy = self.hasher.hash("switchboard-timing-equaliser")

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> UserStore:
        """Users of the users file plus the admin from the environment. ValueError
        when the users file is unreadable or not a {name: hash} JSON object."""
        store = cls(load_users_file(settings.users_file) if settings.users_file else None)
        if settings.admin_user and settings.admin_password is not None:
            store.add(settings.admin_user, settings.admin_password.get_secret_value())
        return store

    def add(self, username: str, password: str) -> None:
        self._hashes[username] = self.hasher.hash(password)

    def __len__(self) -> int:
        return len(self._hashes)

    def verify(self, username: str, password: str) -> bool:
        """Whether `password` is the user's (CPU-bound: call it off the loop)."""
        stored = self._hashes.get(username)
        try:
            ok = self.hasher.verify(password, stored or self._dummy)
        except Exception:  # a malformed stored hash never grants access
            return False
        return ok and stored is not None


def load_users_file(path: Path) -> dict[str, str]:
    """{username: password hash} from a JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read users file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v.startswith("$")
        for k, v in data.items()
    ):
        raise ValueError(f"users file {path} must be a JSON object {{username: password hash}}")
    return data


class TokenService:
    """Issues and checks the service's JWTs with one HS256 secret."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self.operator_ttl_s = settings.token_ttl_s
        self.call_ttl_s = settings.call_token_ttl_s

    def _encode(self, claims: dict[str, Any], ttl_s: int) -> str:
        now = int(time.time())
        # A unique id per token: two logins in the same second must not yield the
        # same token (per-token rate limits and revocation tell them apart).
        payload = {
            **claims,
            "iss": ISSUER,
            "iat": now,
            "exp": now + ttl_s,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def operator_token(self, username: str) -> str:
        """A token for operator `username`, valid `token_ttl_s` seconds."""
        return self._encode({"sub": username, "scope": "operator"}, self.operator_ttl_s)

    def call_token(self, call_id: str, agent: str) -> str:
        """A token that opens only call `call_id`, valid `call_token_ttl_s` seconds."""
        claims = {"sub": f"call:{call_id}", "scope": "call", "call_id": call_id, "agent": agent}
        return self._encode(claims, self.call_ttl_s)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthError naming the problem otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("token too long")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        scope = claims.get("scope")
        subject = claims.get("sub")
        if scope == "operator" and isinstance(subject, str):
            return Principal(subject=subject, scope="operator")
        call_id = claims.get("call_id")
        if scope == "call" and isinstance(call_id, str) and isinstance(subject, str):
            agent = claims.get("agent")
            return Principal(
                subject=subject,
                scope="call",
                call_id=call_id,
                agent=agent if isinstance(agent, str) else None,
            )
        raise AuthError("invalid token: unknown scope")


def bearer_token(authorization: str | None, query: Any) -> str | None:
    """The token of an `Authorization: Bearer` header, else of the query string."""
    if authorization:
        kind, _, value = authorization.partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    for name in TOKEN_QUERY_PARAMS:
        value = query.get(name)
        if value:
            return str(value)
    return None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def tokens_of(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


def principal(request: Request) -> Principal:
    """Dependency: the caller's principal (operator or call token), else 401."""
    token = bearer_token(request.headers.get("authorization"), request.query_params)
    if token is None:
        raise _unauthorized("missing bearer token")
    try:
        return tokens_of(request).verify(token)
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None


def operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Dependency: an operator token, else 401 (a call token is refused too)."""
    if who.scope != "operator":
        raise _unauthorized("an operator token is required")
    return who


def call_access(call_id: str, who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Dependency for /calls/{call_id}/...: an operator, or that call's own token."""
    if not who.may_access(call_id):
        raise _unauthorized("this token is for another call")
    return who


async def websocket_call_access(websocket: WebSocket) -> Principal:
    """Dependency for /ws/call/{session_id}: an operator token or that call's
    token (and, given `graph=`, the token's agent), else close with 4401."""
    token = bearer_token(websocket.headers.get("authorization"), websocket.query_params)
    session_id = str(websocket.path_params.get("session_id", ""))
    reason = "missing bearer token"
    if token is not None:
        tokens: TokenService = websocket.app.state.tokens
        try:
            who = tokens.verify(token)
        except AuthError as exc:
            reason = str(exc)
        else:
            graph = websocket.query_params.get("graph")
            if who.may_access(session_id) and (
                who.scope == "operator" or graph is None or graph == who.agent
            ):
                return who
            reason = "this token is for another call"
    # Accepting first makes the client see the 4401 close code rather than an
    # HTTP 403 handshake refusal.
    await websocket.accept()
    raise WebSocketException(code=WS_UNAUTHORIZED, reason=reason)


async def authenticate(users: UserStore, username: str, password: str) -> bool:
    """Check credentials in a worker thread (argon2 is deliberately slow)."""
    return await asyncio.to_thread(users.verify, username, password)
