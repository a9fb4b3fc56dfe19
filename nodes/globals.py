"""Global intents ("talk to a person", "repeat that", "goodbye"): checked on
every caller turn by the node that receives it.

Each waiting node arbitrates between its own reading of the turn and the global
intents, because a global intent must not steal an answer that fits the
question ("yes please" is an answer to a yes/no question, not "repeat that"):
- a `route` node classifies the turn against its own intents and the global
  ones together, so the closest intent wins;
- a `collect` or `llm` node lets a global intent take the turn first only when
  it is a confident match (`STRICT_CONFIDENCE`); a `collect` whose extraction
  fails then accepts a global intent at the ordinary threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.types import Command

from nodes.base import IntentMatcher, IntentSetFactory, agent_message, goto, wait_for_caller
from runtime.state import CallState, IntentResult
from schemas.spec import GraphSpec

#: Confidence a global intent needs to interrupt a question the turn may answer.
STRICT_CONFIDENCE = 0.85
#: Prefix of global intents inside a route node's combined intent set.
PREFIX = "global:"


def _last_agent_line(state: CallState) -> AIMessage | None:
    for msg in reversed(state.get("messages", [])):
        if not isinstance(msg, AIMessage) or msg.additional_kwargs.get("internal"):
            continue
        if isinstance(msg.content, str) and msg.content:
            return msg
    return None


@dataclass
class GlobalIntents:
    """A graph's global intents, prepared once at compile time."""

    graph: GraphSpec
    matcher: IntentMatcher | None

    @classmethod
    def build(cls, graph: GraphSpec, factory: IntentSetFactory) -> GlobalIntents:
        examples = {n: list(gi.examples) for n, gi in graph.global_intents.items()}
        matcher = factory(examples, graph.routing.threshold) if examples else None
        return cls(graph=graph, matcher=matcher)

    def examples(self) -> dict[str, list[str]]:
        """Global intents under their prefixed names, for a route's combined set."""
        return {PREFIX + n: list(gi.examples) for n, gi in self.graph.global_intents.items()}

    async def match(self, text: str, *, strict: bool) -> tuple[str, float] | None:
        """(intent, confidence) when the turn is a global intent, else None."""
        if self.matcher is None or not text:
            return None
        found = await self.matcher.classify(text)
        name = found.name
        if name not in self.graph.global_intents:
            return None
        if strict and float(found.confidence) < STRICT_CONFIDENCE:
            return None
        return name, float(found.confidence)

    def take(
        self,
        name: str,
        confidence: float,
        state: CallState,
        node_id: str,
        update: dict[str, Any],
    ) -> Command[Any]:
        """Act on global intent `name` for the turn that `node_id` received."""
        intent = self.graph.global_intents[name]
        result: IntentResult = {"name": name, "confidence": confidence, "node": node_id}
        update = {**update, "intent": result}
        if intent.action == "repeat":
            last = _last_agent_line(state)
            if last is not None:
                node = str(last.additional_kwargs.get("node", node_id))
                update["messages"] = [
                    *update.get("messages", []),
                    agent_message(str(last.content), self.graph, node),
                ]
            return wait_for_caller(self.graph, node_id, update)
        if intent.goto is None:  # the schema requires goto or action; keep waiting
            return wait_for_caller(self.graph, node_id, update)
        update["vars"] = {**state.get("vars", {}), **update.get("vars", {}), "intent": name}
        update.update(pending_input=None, awaiting=None)
        return Command(goto=goto(self.graph, intent.goto), update=update)
