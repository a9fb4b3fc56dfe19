"""The FastAPI app of the call service: `create_app(settings)`.

At start-up it opens the shared checkpointer, migrates and connects the call
database, starts the call recorder and the live feed, and builds the tools;
at shutdown it flushes the recorder and closes them all. Routes live under
/api (docs at /docs), the voice WebSocket at /ws/call/{session_id}, and an
unauthenticated liveness probe at /healthz.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.checkpoint import CheckpointerUnavailable, open_checkpointer
from runtime.db.engine import make_engine
from runtime.db.migrations import init_db
from runtime.db.recorder import CallRecorder
from runtime.db.spool import open_spool
from runtime.sentiment import configured_scorer
from runtime.service.auth import TokenService, UserStore, authenticate, websocket_call_access
from runtime.service.calls import CallService, UnknownAgent, UnknownCall
from runtime.service.errors import COMMON, error_responses
from runtime.service.gc_tuning import tune_for_service
from runtime.service.live import LiveBus, LocalLiveBus, RedisLiveBus, live_router
from runtime.service.livekit_calls import LiveKitCalls, livekit_router, voice_setup_of
from runtime.service.ratelimit import RateLimits, client_address, digest, parse_limit
from runtime.service.recordings import recording_hook, recordings_router
from runtime.service.routes_agents import agents_router
from runtime.service.routes_analytics import analytics_router
from runtime.service.routes_calls import calls_router
from runtime.service.settings import ServiceSettings
from schemas.diagnostics import GraphError

log = logging.getLogger("switchboard.service")


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether announced by
    Content-Length or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, self._detail())
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> str:
        return f"request body over {self.limit} bytes"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self._detail()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _open_live(settings: ServiceSettings) -> LiveBus:
    url = settings.live_redis_url()
    if url is None:
        return LocalLiveBus()
    bus = RedisLiveBus(url, settings.live_channel)
    try:
        await bus.ping()
    except (RedisError, OSError) as exc:
        await bus.close()
        raise CheckpointerUnavailable(f"live feed: cannot reach Redis: {exc}") from exc
    return bus


def _auth_router() -> APIRouter:
    router = APIRouter(tags=["auth"])
    body_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": Credentials.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": Credentials.model_json_schema()},
            },
        }
    }

    @router.post(
        "/auth/login",
        response_model=AccessToken,
        openapi_extra=body_doc,
        responses=error_responses(401, 415, 429),
    )
    async def login(request: Request) -> AccessToken:
        """Exchange an operator's username and password (JSON or form) for a token.
        Attempts are rate-limited per client address and per user name (429)."""
        settings: ServiceSettings = request.app.state.settings
        limits: RateLimits = request.app.state.rate_limits
        limit = parse_limit(settings.login_rate_limit)
        await limits.enforce(limit, ("login per address", client_address(request)))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind == "application/json":
                raw: Any = json.loads(await request.body() or b"null")
            elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.form()
                raw = {k: v for k, v in form.items() if k in ("username", "password")}
            else:
                raise HTTPException(
                    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    "send application/json or application/x-www-form-urlencoded",
                )
            creds = Credentials.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            detail = exc.errors() if isinstance(exc, ValidationError) else f"bad JSON: {exc}"
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
        await limits.enforce(limit, ("login per user", digest(creds.username)))
        users: UserStore = request.app.state.users
        if not await authenticate(users, creds.username, creds.password):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "wrong username or password",
                headers={"WWW-Authenticate": "Bearer"},
            )
        tokens: TokenService = request.app.state.tokens
        return AccessToken(
            access_token=tokens.operator_token(creds.username), expires_in=tokens.operator_ttl_s
        )

    return router


def _error(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


def _install_errors(app: FastAPI) -> None:
    async def not_found(_r: Request, exc: Exception) -> JSONResponse:
        return _error(404, str(exc.args[0] if exc.args else exc))

    async def bad_graph(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GraphError)
        problems = "; ".join(d.format() for d in exc.diagnostics[:5])
        return _error(503, f"the agent's graph file is invalid: {problems}")

    async def unavailable(_r: Request, exc: Exception) -> JSONResponse:
        log.warning("storage unavailable: %s", exc)
        return _error(503, f"storage unavailable: {type(exc).__name__}")

    app.add_exception_handler(UnknownAgent, not_found)
    app.add_exception_handler(UnknownCall, not_found)
    app.add_exception_handler(GraphError, bad_graph)
    for kind in (RedisError, SQLAlchemyError, CheckpointerUnavailable, ConnectionError):
        app.add_exception_handler(kind, unavailable)


def create_app(settings: ServiceSettings | None = None, *, tune_gc: bool = False) -> FastAPI:
    """The service app for `settings` (default: read from the environment).
    Nothing is opened until the app starts (its lifespan). `tune_gc`: once
    started, set the process's garbage collector for serving calls
    (`runtime.service.gc_tuning`); for a worker process of its own."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if "jwt_secret" not in settings.model_fields_set:
            log.warning("SWITCHBOARD_JWT_SECRET is not set: tokens are valid on this process only")
        async with AsyncExitStack() as stack:
            users = await asyncio.to_thread(UserStore.from_settings, settings)
            if not len(users):
                log.warning("no operators: set SWITCHBOARD_ADMIN_USER/SWITCHBOARD_ADMIN_PASSWORD")
            checkpointer = await stack.enter_async_context(
                open_checkpointer(settings.checkpoint_url)
            )
            schema = settings.database_schema
            if settings.migrate:
                engine = await init_db(settings.database_url, schema=schema)
            else:
                engine = make_engine(settings.database_url, schema=schema)
            stack.push_async_callback(engine.dispose)
            spool = open_spool(settings.database_url, schema)
            recorder = CallRecorder(engine, sentiment=configured_scorer(), spool=spool)
            stack.push_async_callback(recorder.close)
            await recorder.replay_spool()
            live = await _open_live(settings)
            stack.push_async_callback(live.close)
            from tools.config import build_registry
            from tools.db_store import DbStore, open_store

            # The service's business tools use the database (SWITCHBOARD_TOOLS_STORE
            # may say `memory`): bookings and refunds survive restarts and are
            # shared by every worker.
            store = await asyncio.to_thread(
                open_store, "db", database_url=settings.database_url, schema=schema
            )
            if isinstance(store, DbStore):
                stack.callback(store.dispose)
            tools = await asyncio.to_thread(build_registry, settings.graphs_dir, store=store)
            app.state.users = users
            app.state.engine = engine
            app.state.recorder = recorder
            app.state.live = live
            app.state.calls = CallService(
                graphs_dir=settings.graphs_dir,
                checkpointer=checkpointer,
                recorder=recorder,
                live=live,
                tools=tools,
            )
            # Last in, first out: LiveKit agents leave their rooms before the
            # recorder and the stores close.
            stack.push_async_callback(app.state.livekit.aclose)
            if tune_gc:
                tune_for_service()
            yield

    app = FastAPI(
        title="Switchboard",
        summary="Voice call agents: agents, calls, analytics and the live feed.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = TokenService(settings)
    app.state.rate_limits = RateLimits(settings.rate_limit_url)
    app.state.livekit = LiveKitCalls()
    api = APIRouter(prefix="/api", responses=COMMON)
    api.include_router(_auth_router())
    api.include_router(agents_router())
    api.include_router(calls_router())
    api.include_router(recordings_router())
    api.include_router(analytics_router())
    api.include_router(live_router(), tags=["live"])
    api.include_router(livekit_router())
    app.include_router(api)
    _mount_voice(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _install_errors(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def serve_app() -> FastAPI:
    """The app `switchboard serve` runs in each worker process: settings from
    the environment, garbage collector tuned for serving calls."""
    return create_app(tune_gc=True)


def _mount_voice(app: FastAPI) -> None:
    """The voice WebSocket, behind the call-token check; its calls are made by
    the worker's `CallService` once the app has started, and recorded unless
    SWITCHBOARD_RECORD_CALLS is off."""
    from runtime.voice.recording import CallAudioRecorder
    from runtime.voice.websocket import VoiceCall, voice_router

    settings: ServiceSettings = app.state.settings

    async def setup(session_id: str, graph: str | None, caller: str | None) -> VoiceCall:
        return await voice_setup_of(app)(session_id, graph, caller)

    async def keep(session_id: str, recording: CallAudioRecorder) -> None:
        hook = recording_hook(settings.recordings_path(), app.state.recorder)
        await hook(session_id, recording)

    app.include_router(
        voice_router(
            setup=setup,
            auth=websocket_call_access,
            recordings=keep if settings.record_calls else None,
        )
    )
