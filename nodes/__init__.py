"""Node kinds: one module per kind, each with `build(node_id, spec, env) -> NodeFn`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes import branch, collect, end, escalate, handoff, return_, route, say, tool
from nodes.base import BuildEnv, NodeFn

Builder = Callable[[str, Any, BuildEnv], NodeFn]


def builder_for(kind: str) -> Builder:
    """The builder of a node kind (imports `llm` lazily: it pulls in LangChain's
    OpenAI client)."""
    if kind == "llm":
        from nodes import llm

        return llm.build
    return BUILDERS[kind]


BUILDERS: dict[str, Builder] = {
    "say": say.build,
    "collect": collect.build,
    "route": route.build,
    "tool": tool.build,
    "branch": branch.build,
    "handoff": handoff.build,
    "escalate": escalate.build,
    "end": end.build,
    "return": return_.build,
}
