"""`llm`: free conversation with a chat model that may call tools and leaves
through declared exits.

On entry the node says its `greeting` and waits for the caller (a caller turn
handed on by an earlier node, e.g. a matched route, is answered at once). Each
caller turn calls the model with the rendered `prompt` as system message, the
conversation so far (the caller's and this agent's messages, tool calls
included) and one function per registry tool in `tools` plus one `exit_<name>`
function per exit. The reply streams to the driver as `token` events. Tool calls
run through the registry (arguments validated; a failure goes back to the model
as the tool's result so it can recover) for at most `MAX_TOOL_ROUNDS` rounds; an
exit call leaves through that exit. A model error, timeout or missing LLM makes
the agent say the graph's `fallback_line` and follow `on_error`, or end the call
as failed. After `max_turns` caller turns the node leaves the same way.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import (
    BuildEnv,
    NodeFn,
    agent_message,
    carried_input,
    consumed,
    entered,
    finish,
    goto,
    resuming,
    say,
    wait_for_caller,
)
from runtime.context import CallContext
from runtime.llm import (
    LLMUnavailable,
    internal_kwargs,
    is_internal,
    model_messages,
    stream_reply,
)
from runtime.state import CallState, ToolCallRecord
from runtime.templates import render
from schemas.spec import GraphSpec, LLMNode, LLMSettings
from tools.registry import Tool, ToolError

#: Key of the barge-in event in `CallContext.extra`: when set, a streaming reply
#: stops and the turn ends with what was generated.
INTERRUPT_KEY = "interrupt"
#: Model calls per caller turn; a model still calling tools after this many is
#: treated as failing.
MAX_TOOL_ROUNDS = 5
EXIT_PREFIX = "exit_"
#: OpenAI function names: ^[a-zA-Z0-9_-]{1,64}$.
_FUNCTION_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
MAX_REASON_CHARS = 300


class LLMTurnError(RuntimeError):
    """The model did not produce a usable answer for this turn."""


@dataclass
class TurnResult:
    """What one caller turn produced: messages to append (agent lines and
    internal tool messages), tool call records, and the exit taken, if any."""

    messages: list[BaseMessage] = field(default_factory=list)
    records: list[ToolCallRecord] = field(default_factory=list)
    exit: str | None = None


def exit_functions(spec: LLMNode) -> dict[str, str]:
    """OpenAI function name -> exit name, one per exit, names made API-safe and
    unique."""
    out: dict[str, str] = {}
    for name in spec.exits:
        base = (EXIT_PREFIX + _FUNCTION_NAME_BAD.sub("_", name))[:60]
        fname, n = base, 1
        while fname in out:
            n += 1
            fname = f"{base}_{n}"
        out[fname] = name
    return out


def node_settings(graph: GraphSpec, spec: LLMNode) -> LLMSettings:
    """The graph's LLM settings (defaults when it has none) with the node's model."""
    settings = graph.llm or LLMSettings()
    return settings.model_copy(update={"model": spec.model}) if spec.model else settings


def system_prompt(spec: LLMNode, variables: dict[str, Any], exits: dict[str, str]) -> str:
    """The rendered node prompt followed by how to speak and how to leave."""
    lines = [
        render(spec.prompt, variables).strip(),
        "",
        "You are speaking with a caller on the phone: answer in short spoken sentences, "
        "without lists or formatting.",
    ]
    if exits:
        lines.append(
            "When one of these situations applies, call its function (you may say one "
            "short sentence first):"
        )
        lines += [f"- {fname}: {spec.exits[name].description}" for fname, name in exits.items()]
    return "\n".join(lines)


def _exit_schema(fname: str, description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": fname,
            "description": description,
            "parameters": {"type": "object", "properties": {}},
        },
    }


def _tool_content(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:MAX_REASON_CHARS]


def build(node_id: str, spec: LLMNode, env: BuildEnv) -> NodeFn:
    """The LangGraph node function of an `llm` node (see the module docstring)."""
    graph = env.graph
    settings = node_settings(graph, spec)
    exits = exit_functions(spec)
    exit_schemas = [_exit_schema(f, spec.exits[n].description) for f, n in exits.items()]

    async def call_tool(tool: Tool, call: ToolCall, result: TurnResult) -> ToolMessage:
        started = time.perf_counter()
        value: Any = None
        error: str | None = None
        try:
            value = await tool.ainvoke(dict(call["args"]))
        except ToolError as exc:
            error = str(exc)
        result.records.append(
            {
                "name": tool.name,
                "args": dict(call["args"]),
                "result": value,
                "error": error,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "node": node_id,
            }
        )
        content = _tool_content({"error": error} if error is not None else value)
        return _tool_message(content, call["id"] or "")

    def _tool_message(content: str, call_id: str) -> ToolMessage:
        return ToolMessage(
            content=content,
            tool_call_id=call_id,
            additional_kwargs=internal_kwargs(graph.id, node_id),
        )

    async def converse(
        state: CallState,
        runtime: Runtime[CallContext],
        said: list[BaseMessage],
        result: TurnResult,
    ) -> None:
        """One caller turn: model rounds until a plain answer or an exit, adding
        to `result` as each round completes (so a later failure keeps earlier
        rounds' tool calls). `said` are lines already spoken this step. Raises on
        model failure."""
        factory = runtime.context.llm_factory
        if factory is None:
            raise LLMUnavailable("no LLM is configured for this call")
        tools = [runtime.context.tools.get(name) for name in spec.tools]
        by_function = {t.openai_schema()["function"]["name"]: t for t in tools}
        model = factory(settings).bind_tools([t.openai_schema() for t in tools] + exit_schemas)
        system = SystemMessage(system_prompt(spec, state.get("vars", {}), exits))
        earlier: list[BaseMessage] = [*state.get("messages", []), *said]

        stop = runtime.context.extra.get(INTERRUPT_KEY)
        stop_event = stop if isinstance(stop, asyncio.Event) else None

        def emitter(message_id: str) -> Callable[[str], None]:
            def emit(text: str) -> None:
                runtime.stream_writer(
                    {
                        "type": "token",
                        "node": node_id,
                        "agent": graph.id,
                        "message_id": message_id,
                        "text": text,
                    }
                )

            return emit

        for _ in range(MAX_TOOL_ROUNDS):
            history = model_messages([*earlier, *result.messages], graph.id)
            message_id = str(uuid.uuid4())
            reply = await stream_reply(
                model, [system, *history], emitter(message_id), stop=stop_event
            )
            text = reply.text.strip()
            if text:
                result.messages.append(agent_message(text, graph, node_id, message_id=message_id))
            if reply.response_metadata.get("stopped"):
                return  # the caller barged in: keep what was said, call no tools
            if not reply.tool_calls and not reply.invalid_tool_calls:
                if not any(
                    isinstance(m, AIMessage) and not is_internal(m) for m in result.messages
                ):
                    raise LLMTurnError("the model returned an empty reply")
                return
            answers: list[BaseMessage] = []
            for call in reply.tool_calls:
                fname = call["name"]
                if fname in exits:
                    result.exit = result.exit or exits[fname]
                    answers.append(_tool_message("leaving through this exit", call["id"] or ""))
                elif fname in by_function:
                    answers.append(await call_tool(by_function[fname], call, result))
                else:
                    answers.append(
                        _tool_message(
                            _tool_content({"error": f"unknown function {fname!r}"}),
                            call["id"] or "",
                        )
                    )
            for bad in reply.invalid_tool_calls:
                answers.append(
                    _tool_message(
                        _tool_content(
                            {"error": f"arguments of {bad['name']!r} are not valid JSON"}
                        ),
                        bad["id"] or "",
                    )
                )
            result.messages.append(
                AIMessage(
                    content="",
                    tool_calls=reply.tool_calls,
                    invalid_tool_calls=reply.invalid_tool_calls,
                    name=graph.id,
                    additional_kwargs=internal_kwargs(graph.id, node_id),
                )
            )
            result.messages += answers
            if result.exit is not None:
                return
        raise LLMTurnError(f"the model still called tools after {MAX_TOOL_ROUNDS} rounds")

    def give_up(
        state: CallState, update: dict[str, Any], reason: str, *, failed: bool
    ) -> Command[Any]:
        """Leave through `on_error`, else end the call as failed. The fallback line
        is said after a failure, and whenever the call ends here."""
        update.update(awaiting=None, pending_input=None)
        update["vars"] = {**state.get("vars", {}), "error": reason}
        if failed or not spec.on_error:
            update["messages"] = [
                *update.get("messages", []),
                *say(graph.fallback_line, state, graph, node_id),
            ]
        if spec.on_error:
            return Command(goto=goto(graph, spec.on_error), update=update)
        return finish({**update, "outcome": "failed", "outcome_reason": reason})

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        attempts = dict(state.get("attempts", {}))
        said: list[BaseMessage] = []
        if resuming(state, graph, node_id):
            text = state.get("pending_input")
        else:
            said += say(spec.greeting, state, graph, node_id)
            attempts[node_id] = 0
            text = carried_input(state, graph, node_id)
        if text is None:
            return wait_for_caller(
                graph, node_id, {**update, "messages": said, "attempts": attempts}
            )
        if env.globals is not None:
            strong = await env.globals.match(text, strict=True)
            if strong is not None:
                update.update(
                    messages=said, attempts=attempts, consumed=consumed(state, graph, node_id)
                )
                return env.globals.take(*strong, state, node_id, update)  # type: ignore[no-any-return,unused-ignore]
        turn = attempts.get(node_id, 0) + 1
        attempts[node_id] = turn
        update.update(attempts=attempts, consumed=consumed(state, graph, node_id))
        result = TurnResult()
        try:
            await converse(state, runtime, said, result)
            failure = None
        except Exception as exc:  # any provider failure must end in a spoken line
            failure = f"llm node {node_id}: {_reason(exc)}"
        update["messages"] = [*said, *result.messages]
        update["tool_calls"] = result.records
        if failure is not None:
            return give_up(state, update, failure, failed=True)
        if result.exit is not None:
            update.update(awaiting=None, pending_input=None)
            return Command(goto=goto(graph, spec.exits[result.exit].next), update=update)
        if turn >= spec.max_turns:
            reason = f"llm node {node_id}: reached max_turns ({spec.max_turns})"
            return give_up(state, update, reason, failed=False)
        return wait_for_caller(graph, node_id, update)

    return run
