"""`tool`: call a registered tool with templated arguments and keep its result.

Arguments are rendered from the call's variables (a lone `{var}` keeps its
type), validated against the tool's JSON Schema, and the call is bounded by
`timeout_s`. Every call is recorded in `tool_calls`, failed or not. A failure
follows `on_error`; without one the agent says the graph's fallback line and
the call ends as failed, so a broken backend never leaves a caller waiting.
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, finish, goto, say
from runtime.context import CallContext
from runtime.state import CallState, ToolCallRecord
from runtime.templates import render_value
from schemas.spec import ToolNode
from tools.registry import ToolError


def build(node_id: str, spec: ToolNode, env: BuildEnv) -> NodeFn:
    graph = env.graph

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        variables = state.get("vars", {})
        args = render_value(dict(spec.args), variables)
        started = time.perf_counter()
        result: Any = None
        error: str | None = None
        try:
            tool = runtime.context.tools.get(spec.tool)
            result = await tool.ainvoke(args, timeout_s=spec.timeout_s)
        except ToolError as exc:
            error = str(exc)
        record: ToolCallRecord = {
            "name": spec.tool,
            "args": args,
            "result": result,
            "error": error,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "node": node_id,
        }
        update["tool_calls"] = [record]
        if error is not None:
            update["vars"] = {**variables, "error": error}
            if spec.on_error:
                return Command(goto=goto(graph, spec.on_error), update=update)
            update["messages"] = say(graph.fallback_line, state, graph, node_id)
            update["outcome"] = "failed"
            update["outcome_reason"] = error
            return finish(update)
        new_vars = {**variables, spec.result: result} if spec.result else dict(variables)
        update["vars"] = new_vars
        update["messages"] = say(spec.say, {**state, "vars": new_vars}, graph, node_id)
        return Command(goto=goto(graph, spec.next), update=update)

    return run
