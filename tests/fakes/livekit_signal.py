"""The front door of a LiveKit server's signaling endpoint, for tests.

A LiveKit client opens a WebSocket to `/rtc/v1?join_request=...` with the
participant token in `Authorization: Bearer ...`; `join_request` is a base64url
`WrappedJoinRequest` protobuf (optionally gzip-compressed `JoinRequest`). This
fake decodes and records every such request, checks the token with the API
secret as the server would (HTTP 401 for a bad one), and then refuses the
join with HTTP 503. `tests/fakes/livekit_sfu.py` goes on from there: it
answers in protobuf and negotiates WebRTC media.
"""

from __future__ import annotations

import base64
import gzip
import http
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from livekit.api import TokenVerifier
from livekit.api.access_token import Claims
from livekit.protocol import rtc as signal
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response


@dataclass
class JoinAttempt:
    path: str
    claims: Claims | None
    token_error: str | None
    join: signal.JoinRequest | None


class FakeSignalServer:
    """`async with FakeSignalServer(key, secret) as server:` then connect to
    `server.url`; `server.attempts` lists what each connection sent."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.verifier = TokenVerifier(api_key, api_secret)
        self.attempts: list[JoinAttempt] = []
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    def _process(self, connection: ServerConnection, request: Request) -> Response:
        parts = urlsplit(request.path)
        raw = parse_qs(parts.query).get("join_request", [""])[0]
        join = decode_join_request(raw) if raw else None
        auth = request.headers.get("Authorization", "")
        claims, error = None, None
        try:
            claims = self.verifier.verify(auth.removeprefix("Bearer "))
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        self.attempts.append(JoinAttempt(parts.path, claims, error, join))
        if claims is None:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, f"invalid token: {error}\n")
        return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "no media server here\n")

    async def __aenter__(self) -> FakeSignalServer:
        self._server = await serve(self._reject, "127.0.0.1", 0, process_request=self._process)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _reject(self, connection: ServerConnection) -> None:
        await connection.close()


def decode_join_request(raw: str) -> signal.JoinRequest:
    """The `JoinRequest` inside a `join_request` query parameter."""
    data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    wrapped = signal.WrappedJoinRequest.FromString(data)
    payload = wrapped.join_request
    if wrapped.compression == signal.WrappedJoinRequest.GZIP:
        payload = gzip.decompress(payload)
    return signal.JoinRequest.FromString(payload)
