"""Voice calls in LiveKit rooms, started through the API.

`POST /api/livekit/calls` (operators) records a new call on an agent, sends
the agent into a LiveKit room (`runtime.voice.livekit_transport.join_room`)
and returns what the caller needs to join the same room: the server URL, the
room name and a participant token minted for the caller's identity. The
agent answers once the caller's audio track is subscribed, runs the call
through the voice pipeline like a WebSocket call (published live, recorded,
per-turn latencies kept) and leaves the room when the call ends. If the
caller's track has not arrived within `caller_wait_s`, the caller side is
closed at once, so the call is hung up rather than left waiting.

The server and key pair come from `LIVEKIT_URL`, `LIVEKIT_API_KEY` and
`LIVEKIT_API_SECRET`, read when a call starts: without them the route answers
503 naming what is missing. A join the server refuses or does not answer is a
502 with the reason; the call is then recorded as failed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from runtime.service.auth import Principal, operator
from runtime.service.calls import CallService
from runtime.service.errors import error_responses
from runtime.service.routes_calls import AGENT_PATTERN, call_start_limit
from runtime.voice.livekit_tokens import LiveKitSettings, mint_token
from runtime.voice.livekit_transport import (
    LiveKitError,
    LiveKitTransport,
    abandoned_joins_settled,
    join_room,
)
from runtime.voice.websocket import CallSetup, GraphNotFound, VoiceCall

log = logging.getLogger("switchboard.service.livekit")

#: How long the agent waits in the room for the caller's audio track.
CALLER_WAIT_S = 120.0
#: Lifetime of the caller's participant token.
CALLER_TOKEN_TTL = datetime.timedelta(minutes=30)
#: How long a refused call waits for its failed outcome to be written.
FAILED_FLUSH_S = 5.0
NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"

Joiner = Callable[..., Awaitable[LiveKitTransport]]


class StartLiveKitCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=128, pattern=AGENT_PATTERN)
    #: The room to use (default: a new room named after the call).
    room: str | None = Field(default=None, pattern=NAME_PATTERN)
    #: The caller's participant identity (default: `caller-<call id>`).
    caller_identity: str | None = Field(default=None, pattern=NAME_PATTERN)
    #: The caller's phone number or other id, kept with the call.
    caller: str | None = Field(default=None, min_length=1, max_length=64)


class LiveKitCallStarted(BaseModel):
    """Join `room` at `url` with `caller_token` (identity `caller_identity`)."""

    call_id: str
    agent: str
    url: str
    room: str
    caller_identity: str
    caller_token: str
    agent_identity: str


class LiveKitCalls:
    """The agents of this worker in LiveKit rooms: one task per call."""

    def __init__(self, *, join: Joiner = join_room, caller_wait_s: float = CALLER_WAIT_S) -> None:
        self._join = join
        self.caller_wait_s = caller_wait_s
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(
        self,
        settings: LiveKitSettings,
        call: VoiceCall,
        *,
        room: str,
        caller_identity: str,
        agent_identity: str,
    ) -> LiveKitTransport:
        """Join `room` as the agent and run `call` there in the background;
        `LiveKitError` if the join fails (nothing keeps running then)."""
        transport = await self._join(
            settings,
            room,
            identity=agent_identity,
            caller_identity=caller_identity,
        )
        task = asyncio.create_task(self._run(call, transport), name=f"livekit-call-{room}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return transport

    async def _run(self, call: VoiceCall, transport: LiveKitTransport) -> None:
        call_id = call.session.call_id
        try:
            async with asyncio.timeout(self.caller_wait_s):
                await transport.caller_joined.wait()
        except TimeoutError:
            log.info("call %s: the caller did not join within %g s", call_id, self.caller_wait_s)
            transport.caller_left("the caller never joined")
        try:
            await call.pipeline(transport).run()
        except Exception:
            log.exception("LiveKit call %s failed", call_id)
        finally:
            await transport.close("call ended")

    async def aclose(self) -> None:
        """End every call of this worker and wait until each agent left its room."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await abandoned_joins_settled()


def voice_setup_of(app: FastAPI) -> CallSetup:
    """The worker's voice call setup, made once on first use (after start-up)
    and shared by the WebSocket and LiveKit routes."""
    state = app.state
    if not hasattr(state, "voice_setup"):
        service: CallService = state.calls
        state.voice_setup = service.voice_setup()
    setup: CallSetup = state.voice_setup
    return setup


def livekit_router() -> APIRouter:
    router = APIRouter(tags=["calls"])

    @router.post(
        "/livekit/calls",
        response_model=LiveKitCallStarted,
        status_code=status.HTTP_201_CREATED,
        summary="Start a voice call in a LiveKit room",
        responses=error_responses(404, 429, 502, 503),
    )
    async def start_livekit_call(
        body: StartLiveKitCall,
        request: Request,
        _who: Annotated[Principal, Depends(operator)],
        _limit: Annotated[None, Depends(call_start_limit)],
    ) -> LiveKitCallStarted:
        try:
            settings = LiveKitSettings.from_env()
        except ValueError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        service: CallService = request.app.state.calls
        call_id, _ = await service.open_call(
            body.agent, caller=body.caller, direction="inbound", transport="livekit"
        )
        room = body.room or f"switchboard-{call_id}"
        caller_identity = body.caller_identity or f"caller-{call_id[:12]}"
        agent_identity = f"agent-{call_id[:12]}"
        try:
            call = await voice_setup_of(request.app)(call_id, body.agent, body.caller)
        except GraphNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        calls: LiveKitCalls = request.app.state.livekit
        try:
            await calls.start(
                settings,
                call,
                room=room,
                caller_identity=caller_identity,
                agent_identity=agent_identity,
            )
        except LiveKitError as exc:
            await service.recorder.call_ended(call_id, "failed", str(exc))
            await service.recorder.flush(FAILED_FLUSH_S)
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None
        token = mint_token(
            settings.api_key,
            settings.api_secret,
            room=room,
            identity=caller_identity,
            name=body.caller or caller_identity,
            ttl=CALLER_TOKEN_TTL,
        )
        return LiveKitCallStarted(
            call_id=call_id,
            agent=body.agent,
            url=settings.url,
            room=room,
            caller_identity=caller_identity,
            caller_token=token,
            agent_identity=agent_identity,
        )

    return router
