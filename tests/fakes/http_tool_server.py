"""A local HTTP service for HTTP tool tests, on 127.0.0.1 in a background thread.

Endpoints:

- `GET /orders/{id}`: an order document (status, shipment, items).
- `ANY /echo[/...]`: what the request was (method, raw path, query, headers, JSON body).
- `GET /flaky/{key}?failures=N&status=S`: the first N requests per key answer S
  (default 503), then `{"ok": true, "attempt": n}`.
- `GET /limited/{key}?retry_after=V`: the first request per key answers 429 with
  `Retry-After: V`, later ones 200.
- `GET /slow`: holds the request until the server stops (at most 30 s).
- `GET /redirect?to=URL&status=302`: a redirect.
- `GET /big?size=N`: a JSON string of N characters.
- `GET /text`: plain text. `GET /status/{code}`: that status with a JSON body.

Every request is recorded (`requests`), so tests can count attempts and read
what was sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from tests.fakes.background import BackgroundServer, serve_in_thread

MAX_HOLD_S = 30.0


@dataclass(frozen=True)
class SeenRequest:
    """A request the server received."""

    method: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class HttpToolServer:
    """The service above on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[SeenRequest] = []
        self._counts: Counter[str] = Counter()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._background: BackgroundServer | None = None
        self.port = 0
        self.app = self._make_app()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, key: str) -> int:
        """Requests seen for a flaky/limited key."""
        with self._lock:
            return self._counts[key]

    def start(self) -> HttpToolServer:
        self._background = serve_in_thread(
            self.app, self._ready, "HTTP tool test server", log_level="warning"
        )
        self.port = self._background.port
        return self

    def stop(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)
        if self._background is not None:
            self._background.stop()

    def __enter__(self) -> HttpToolServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bump(self, key: str) -> int:
        with self._lock:
            self._counts[key] += 1
            return self._counts[key]

    def _make_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            self._ready.set()
            yield

        app = FastAPI(lifespan=lifespan)

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Response:
            body = await request.body()
            seen = SeenRequest(
                method=request.method,
                raw_path=request.scope.get("raw_path", b"").decode("latin-1"),
                query=request.scope.get("query_string", b"").decode("latin-1"),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
            with self._lock:
                self._requests.append(seen)
            response: Response = await call_next(request)
            return response

        @app.get("/orders/{order_id}")
        async def order(order_id: str) -> dict[str, Any]:
            return {
                "id": order_id,
                "status": "shipped",
                "shipment": {"carrier": "UPS", "eta": "2026-01-07"},
                "items": [{"sku": "MUG-1", "qty": 2}],
            }

        @app.api_route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def echo(request: Request) -> dict[str, Any]:
            body = await request.body()
            return {
                "method": request.method,
                "path": request.scope.get("raw_path", b"").decode("latin-1"),
                "query": request.scope.get("query_string", b"").decode("latin-1"),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "json": json.loads(body) if body else None,
            }

        @app.get("/flaky/{key}")
        async def flaky(key: str, failures: int = 2, status: int = 503) -> Response:
            n = self._bump(key)
            if n <= failures:
                return JSONResponse({"error": f"failure {n}"}, status_code=status)
            return JSONResponse({"ok": True, "attempt": n})

        @app.get("/limited/{key}")
        async def limited(key: str, retry_after: str = "1") -> Response:
            n = self._bump(key)
            if n == 1:
                return JSONResponse(
                    {"error": "slow down"}, status_code=429, headers={"Retry-After": retry_after}
                )
            return JSONResponse({"ok": True, "attempt": n})

        @app.get("/slow")
        async def slow() -> dict[str, bool]:
            assert self._release is not None
            with suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), MAX_HOLD_S)
            return {"late": True}

        @app.get("/redirect")
        async def redirect(to: str, status: int = 302) -> Response:
            return RedirectResponse(to, status_code=status)

        @app.get("/big")
        async def big(size: int) -> Response:
            return Response(json.dumps("x" * size), media_type="application/json")

        @app.get("/text")
        async def text() -> Response:
            return PlainTextResponse("plain words")

        @app.get("/status/{code}")
        async def status(code: int) -> Response:
            return JSONResponse({"error": f"status {code}"}, status_code=code)

        return app


@pytest.fixture(name="http_tool_server")
def http_tool_server_fixture() -> Iterator[HttpToolServer]:
    """A started `HttpToolServer`, stopped after the test."""
    with HttpToolServer() as server:
        yield server
