"""`/api/calls`: start a call, send it text turns, hang it up, list and read calls.

A call started with transport "text" is driven by `POST /calls/{id}/turns`; one
started with "websocket" is driven by the voice WebSocket at the returned
`ws_url` with the returned call token. Either token kind (operator, or the
call's own token) may drive and read a call; listing calls needs an operator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.db import queries
from runtime.service.auth import (
    Principal,
    TokenService,
    bearer_token,
    call_access,
    operator,
)
from runtime.service.calls import CallService
from runtime.service.errors import error_responses
from runtime.service.ratelimit import RateLimits, client_address, digest, parse_limit
from runtime.session import CallEnded, CallEvent

CALL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
AGENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"
MAX_TURN_CHARS = 2000

CallId = Annotated[str, Path(pattern=CALL_ID_PATTERN, max_length=128, description="Call id")]


class StartCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=128, pattern=AGENT_PATTERN)
    caller: str | None = Field(default=None, min_length=1, max_length=64)
    direction: Literal["inbound", "outbound"] = "inbound"
    transport: Literal["text", "websocket"] = "text"


class CallStarted(BaseModel):
    """`call_token` opens only this call; `ws_url` is where a websocket call
    connects (add `token=<call_token>` or send it as a bearer header)."""

    call_id: str
    agent: str
    transport: str
    call_token: str
    expires_in: int
    ws_url: str
    events: list[dict[str, Any]]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TURN_CHARS)


class TurnResult(BaseModel):
    call_id: str
    events: list[dict[str, Any]]
    ended: bool
    outcome: str | None


class CallStatus(BaseModel):
    """The call as its checkpoint stands now."""

    call_id: str
    agent: str | None
    node: str | None
    awaiting: str | None
    turn: int
    outcome: str | None
    vars: dict[str, Any]


def _events(events: list[CallEvent]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in events]


def _result(call_id: str, events: list[CallEvent]) -> TurnResult:
    outcome = next((e.data.get("outcome") for e in events if e.type == "outcome"), None)
    return TurnResult(
        call_id=call_id, events=_events(events), ended=outcome is not None, outcome=outcome
    )


def ws_url(request: Request, call_id: str, agent: str, caller: str | None) -> str:
    """The voice WebSocket URL of a call, on SWITCHBOARD_PUBLIC_URL when set."""
    base = request.app.state.settings.public_url or str(request.base_url)
    base = base.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    query = {"graph": agent, **({"caller": caller} if caller else {})}
    return f"{base}/ws/call/{call_id}?{urlencode(query)}"


def call_filter(
    agent: Annotated[str | None, Query(max_length=128)] = None,
    version: Annotated[str | None, Query(max_length=64, description="hash or commit")] = None,
    since: Annotated[datetime | None, Query(description="started at or after")] = None,
    until: Annotated[datetime | None, Query(description="started before")] = None,
    outcome: Annotated[queries.Outcome | None, Query()] = None,
    transport: Annotated[str | None, Query(max_length=32)] = None,
    direction: Annotated[Literal["inbound", "outbound"] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=500, description="transcript search")] = None,
) -> queries.CallFilter:
    """Dependency: the call filter of the query string; 422 when inconsistent."""
    try:
        return queries.CallFilter(
            agent=agent,
            version=version,
            since=since,
            until=until,
            outcome=outcome,
            transport=transport,
            direction=direction,
            text=q,
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from None


async def call_start_limit(request: Request) -> None:
    """Dependency: count a call start per client address and per token (429)."""
    limits: RateLimits = request.app.state.rate_limits
    token = bearer_token(request.headers.get("authorization"), request.query_params) or ""
    await limits.enforce(
        parse_limit(request.app.state.settings.call_start_rate_limit),
        ("call starts per address", client_address(request)),
        ("call starts per token", digest(token)),
    )


def calls_router() -> APIRouter:
    router = APIRouter(tags=["calls"])

    def service_of(request: Request) -> CallService:
        service: CallService = request.app.state.calls
        return service

    @router.post(
        "/calls",
        response_model=CallStarted,
        status_code=status.HTTP_201_CREATED,
        summary="Start a call",
        responses=error_responses(404, 429),
    )
    async def start_call(
        body: StartCall,
        request: Request,
        _who: Annotated[Principal, Depends(operator)],
        _limit: Annotated[None, Depends(call_start_limit)],
    ) -> CallStarted:
        call_id, events = await service_of(request).open_call(
            body.agent, caller=body.caller, direction=body.direction, transport=body.transport
        )
        tokens: TokenService = request.app.state.tokens
        return CallStarted(
            call_id=call_id,
            agent=body.agent,
            transport=body.transport,
            call_token=tokens.call_token(call_id, body.agent),
            expires_in=tokens.call_ttl_s,
            ws_url=ws_url(request, call_id, body.agent, body.caller),
            events=_events(events),
        )

    @router.post(
        "/calls/{call_id}/turns",
        response_model=TurnResult,
        summary="Send a text turn",
        responses=error_responses(404, 409),
    )
    async def send_turn(
        call_id: CallId,
        body: TurnIn,
        request: Request,
        _who: Annotated[Principal, Depends(call_access)],
    ) -> TurnResult:
        try:
            events = await service_of(request).turn(call_id, body.text)
        except CallEnded as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        return _result(call_id, events)

    @router.post(
        "/calls/{call_id}/hangup",
        response_model=TurnResult,
        summary="Hang up",
        responses=error_responses(404),
    )
    async def hangup(
        call_id: CallId, request: Request, _who: Annotated[Principal, Depends(call_access)]
    ) -> TurnResult:
        return _result(call_id, await service_of(request).hangup(call_id))

    @router.get(
        "/calls/{call_id}/state",
        response_model=CallStatus,
        summary="Live call state",
        responses=error_responses(404),
    )
    async def call_state(
        call_id: CallId, request: Request, _who: Annotated[Principal, Depends(call_access)]
    ) -> CallStatus:
        return CallStatus(call_id=call_id, **await service_of(request).status(call_id))

    @router.get("/calls", response_model=queries.CallPage, summary="List and filter calls")
    async def list_calls(
        request: Request,
        _who: Annotated[Principal, Depends(operator)],
        filters: Annotated[queries.CallFilter, Depends(call_filter)],
        limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        order_by: Annotated[queries.OrderBy, Query()] = "started_at",
        descending: bool = True,
    ) -> queries.CallPage:
        return await queries.list_calls(
            request.app.state.engine,
            filters,
            limit=limit,
            offset=offset,
            order_by=order_by,
            descending=descending,
        )

    @router.get(
        "/calls/{call_id}",
        response_model=queries.CallDetail,
        summary="One call: transcript, path, tools, intents, metrics",
        responses=error_responses(404),
    )
    async def get_call(
        call_id: CallId, request: Request, _who: Annotated[Principal, Depends(call_access)]
    ) -> queries.CallDetail:
        found = await queries.get_call(request.app.state.engine, call_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recorded call {call_id!r}")
        return found

    return router
