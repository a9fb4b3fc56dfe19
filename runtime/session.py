"""Drive one call through a compiled graph, turn by turn, as events.

A `CallSession` is the text-level call: `start()` runs the flow until it first
needs the caller, `send(text)` resumes it with one caller turn, `hangup()` ends
it. Each returns the events of that step (agent lines, nodes entered, slots
filled, intents, tool calls, outcome); `stream_*` variants yield them as they
happen, including LLM tokens. The same thread id resumes the call in another
process from its checkpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from nodes.base import LISTEN, split_name
from runtime.compiler import CompiledCall, initial_state
from runtime.context import CallContext


@dataclass(frozen=True)
class CallEvent:
    """One thing that happened in a call. `type` is one of: agent, token, node,
    slot, intent, tool, waiting, outcome, heard (an agent line cut short by a
    barge-in, with the part the caller heard), handoff (another agent takes the
    call: `from`, `to`, `kind` handoff or return, the `voice` settings now in
    force, and the `commit` when `to` runs from a git ref)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}


class CallEnded(Exception):
    """The call already has an outcome; no more caller turns are accepted."""


@dataclass
class CallSession:
    compiled: CompiledCall
    context: CallContext = field(default_factory=CallContext)
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    caller: str | None = None
    variables: Mapping[str, Any] | None = None
    _vars: dict[str, Any] = field(default_factory=dict, init=False)
    #: (state, call over) as this object's last complete run left them, so the
    #: next turn need not read the checkpoint back; None when unknown.
    _known: tuple[dict[str, Any], bool] | None = field(default=None, init=False)

    @property
    def config(self) -> RunnableConfig:
        return self.compiled.config(self.call_id)

    async def state(self) -> dict[str, Any]:
        """The checkpointed call state (empty before `start`)."""
        snap = await self.compiled.graph.aget_state(self.config)
        return dict(snap.values or {})

    async def started(self) -> bool:
        return bool(await self.state())

    async def ended(self) -> bool:
        snap = await self.compiled.graph.aget_state(self.config)
        return bool(snap.values) and not snap.next

    async def start(self) -> list[CallEvent]:
        """Run a new call until it first waits for the caller (or ends)."""
        return [e async for e in self.stream_start()]

    async def send(
        self, text: str, *, interrupted: list[dict[str, str]] | None = None
    ) -> list[CallEvent]:
        """Give the call one caller turn; run until it waits again or ends.

        `interrupted` lists agent messages a barge-in cut short, as
        `{"message_id", "heard"}`; they are truncated in the same step.
        """
        return [e async for e in self.stream_send(text, interrupted=interrupted)]

    async def hangup(self, *, interrupted: list[dict[str, str]] | None = None) -> list[CallEvent]:
        """The caller hung up: the call ends as abandoned unless already over.
        `interrupted` (as for `send`) lists agent lines the hang-up cut short."""
        values, over = await self.checkpointed()
        if over:
            return []
        resume: dict[str, Any] = {"hangup": True}
        if interrupted:
            resume["interrupted"] = interrupted
        return [e async for e in self._run(Command(resume=resume), values.get("vars", {}))]

    def stream_start(self) -> AsyncIterator[CallEvent]:
        root = self.compiled.root
        state = initial_state(
            root,
            call_id=self.call_id,
            caller=self.caller,
            context=self.context,
            variables=self.variables,
        )
        return self._run(state)

    async def stream_send(
        self, text: str, *, interrupted: list[dict[str, str]] | None = None
    ) -> AsyncIterator[CallEvent]:
        values, over = await self.checkpointed()
        if over:
            raise CallEnded(f"call {self.call_id} has ended")
        resume: Any = {"text": text, "interrupted": interrupted} if interrupted else text
        async for event in self._run(Command(resume=resume), values.get("vars", {})):
            yield event

    async def checkpointed(self) -> tuple[dict[str, Any], bool]:
        """(checkpointed state, call over). After a run of this object that
        completed, that run's final state (it is what it checkpointed: one
        process drives a call at a time); otherwise one checkpoint read."""
        if self._known is not None:
            return self._known
        snap = await self.compiled.graph.aget_state(self.config)
        values = dict(snap.values or {})
        return values, bool(values) and not snap.next

    async def _run(
        self, payload: Any, current_vars: Mapping[str, Any] | None = None
    ) -> AsyncIterator[CallEvent]:
        if isinstance(payload, Mapping) and "vars" in payload:
            self._vars = dict(payload["vars"])
        elif current_vars is not None:
            self._vars = dict(current_vars)
        else:
            self._vars = dict((await self.state()).get("vars", {}))
        graph = self.compiled.graph
        self._known = None
        final: dict[str, Any] | None = None
        waiting = False
        async for mode, chunk in graph.astream(
            payload,
            self.config,
            context=self.context,
            stream_mode=["updates", "custom", "values"],
        ):
            if mode == "values":
                # An interrupt also shows up here, under a key that is not state.
                if isinstance(chunk, Mapping):
                    final = {k: v for k, v in chunk.items() if k != "__interrupt__"}
                continue
            if mode == "custom":
                if isinstance(chunk, Mapping) and "type" in chunk:
                    data = {k: v for k, v in chunk.items() if k != "type"}
                    yield CallEvent(str(chunk["type"]), data)
                continue
            if not isinstance(chunk, Mapping):
                continue
            for name, update in chunk.items():
                if name == "__interrupt__":
                    waiting = True
                    for intr in update:
                        yield CallEvent("waiting", dict(intr.value))
                    continue
                if isinstance(update, Mapping):
                    for event in self._events(name, update):
                        yield event
        if final is not None:
            # Without an interrupt the run went to END: the call is over.
            self._known = (dict(final), bool(final) and not waiting)

    def _events(self, name: str, update: Mapping[str, Any]) -> list[CallEvent]:
        out: list[CallEvent] = []
        agent, node = split_name(name) if name != LISTEN else (update.get("agent", ""), "")
        for visited in update.get("visited", []):
            g, n = split_name(visited)
            out.append(CallEvent("node", {"agent": g, "node": n}))
        target = update.get("handoff_to")
        if target and name != LISTEN:
            out.append(self._handoff_event(agent, node, str(target), update))
        intent = update.get("intent")
        if intent:
            out.append(CallEvent("intent", dict(intent)))
        for record in update.get("tool_calls", []):
            out.append(CallEvent("tool", dict(record)))
        new_vars = update.get("vars")
        if isinstance(new_vars, Mapping):
            for key, value in new_vars.items():
                if key in ("last_utterance",):
                    continue
                if key not in self._vars or self._vars[key] != value:
                    out.append(CallEvent("slot", {"name": key, "value": value}))
            self._vars = dict(new_vars)
        for msg in update.get("messages", []):
            if isinstance(msg, AIMessage) and msg.additional_kwargs.get("interrupted"):
                out.append(CallEvent("heard", {"message_id": msg.id, "text": _text(msg)}))
            elif isinstance(msg, AIMessage) and not msg.additional_kwargs.get("internal"):
                text = _text(msg)
                if text:
                    out.append(
                        CallEvent(
                            "agent",
                            {
                                "message_id": msg.id,
                                "text": text,
                                "agent": msg.name or agent,
                                "node": msg.additional_kwargs.get("node", node),
                            },
                        )
                    )
        if update.get("outcome"):
            out.append(
                CallEvent(
                    "outcome",
                    {
                        "outcome": update["outcome"],
                        "reason": update.get("outcome_reason"),
                    },
                )
            )
        return out

    def _handoff_event(
        self, agent: str, node: str, target: str, update: Mapping[str, Any]
    ) -> CallEvent:
        source = self.compiled.agents.get(agent)
        spec = source.nodes.get(node) if source is not None else None
        to = self.compiled.agents.get(target)
        data: dict[str, Any] = {
            "from": agent,
            "to": target,
            "node": node,
            "kind": spec.type if spec is not None else "handoff",
            "voice": to.voice.model_dump() if to is not None else None,
        }
        commit = (update.get("agent_commits") or {}).get(target)
        if commit:
            data["commit"] = commit
        return CallEvent("handoff", data)


def _text(msg: BaseMessage) -> str:
    content = msg.content
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )
