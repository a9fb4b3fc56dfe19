"""`/api/agents`: the agent graphs this service can run, and their versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from runtime.db import queries
from runtime.service.auth import Principal, operator
from runtime.service.calls import CallService


class AgentOut(BaseModel):
    """An agent graph as on disk now, with every version calls have used."""

    id: str
    name: str | None
    file: str
    content_hash: str
    git_commit: str | None
    versions: list[queries.AgentVersionOut]


def agents_router() -> APIRouter:
    router = APIRouter(tags=["agents"])

    @router.get("/agents", response_model=list[AgentOut], summary="List agents and versions")
    async def list_agents(
        request: Request, _who: Annotated[Principal, Depends(operator)]
    ) -> list[AgentOut]:
        service: CallService = request.app.state.calls
        versions = await queries.list_agents(request.app.state.engine)
        by_graph: dict[str, list[queries.AgentVersionOut]] = {}
        for v in versions:
            by_graph.setdefault(v.graph_id, []).append(v)
        return [
            AgentOut(
                id=a.graph_id,
                name=a.name,
                file=a.file,
                content_hash=a.content_hash,
                git_commit=a.git_commit,
                versions=by_graph.get(a.graph_id, []),
            )
            for a in await service.agents()
        ]

    return router
