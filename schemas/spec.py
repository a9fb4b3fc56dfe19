"""Typed graph specification: what a validated graph file becomes.

The JSON Schema (`graph.schema.json`) is the contract for files; these pydantic
models are the contract for code. The loader validates a document against the
schema first (so every error gets a file:line), then builds a `GraphSpec` from
it; building never fails for a document the schema accepted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SlotKind = Literal["text", "number", "yes_no", "date", "time", "phone", "email", "choice"]
NodeKind = Literal[
    "say", "collect", "route", "llm", "tool", "branch", "handoff", "escalate", "end", "return"
]
#: Node kinds after which the call leaves this graph (a `return` node leaves it
#: when an agent is waiting to take the call back, else follows `otherwise`).
TERMINAL_KINDS: frozenset[str] = frozenset({"end", "escalate", "handoff", "return"})
#: Node kinds that stop and wait for a caller turn.
WAITING_KINDS: frozenset[str] = frozenset({"collect", "route", "llm"})
#: Variables every call has before any node runs.
#: `handoff_summary` is empty unless the call was handed over (or back) with
#: `summary: true`.
BUILTIN_VARIABLES: frozenset[str] = frozenset(
    {"call_id", "caller", "agent", "now", "today", "last_utterance", "intent", "handoff_summary"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BargeInSettings(_Model):
    """When caller speech counts as an interruption of the agent."""

    enabled: bool = True
    min_speech_ms: int = 250
    min_words: int = 0
    pause: bool = True
    resume_ms: int = 2000


class VoiceSettings(_Model):
    stt: str = "whisper"
    tts: str = "espeak"
    voice: str | None = None
    language: str = "en"
    end_of_turn_ms: int = 700
    barge_in: BargeInSettings = BargeInSettings()


class LLMSettings(_Model):
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.3
    timeout_s: float = 15.0


class RoutingSettings(_Model):
    """How `route` nodes and global intents classify caller turns."""

    classifier: Literal["embedding", "llm"] = "embedding"
    threshold: float | None = None


class Intent(_Model):
    examples: list[str]
    next: str
    description: str | None = None


class GlobalIntent(_Model):
    """Checked on every caller turn before the waiting node sees it.

    Exactly one of `goto` (jump to a node) or `action` applies.
    """

    examples: list[str]
    goto: str | None = None
    action: Literal["repeat"] | None = None
    description: str | None = None


class _Node(_Model):
    description: str | None = None


class SayNode(_Node):
    type: Literal["say"]
    text: str
    next: str


class CollectNode(_Node):
    type: Literal["collect"]
    slot: str
    kind: SlotKind = "text"
    prompt: str
    reprompt: str | None = None
    choices: list[str] | None = None
    max_attempts: int = 3
    next: str
    on_fail: str | None = None


class RouteNode(_Node):
    type: Literal["route"]
    prompt: str | None = None
    intents: dict[str, Intent]
    fallback: str
    threshold: float | None = None


class LLMExit(_Model):
    description: str
    next: str


class LLMNode(_Node):
    type: Literal["llm"]
    prompt: str
    greeting: str | None = None
    tools: list[str] = []
    exits: dict[str, LLMExit] = {}
    max_turns: int = 20
    on_error: str | None = None
    model: str | None = None


class ToolNode(_Node):
    type: Literal["tool"]
    tool: str
    args: dict[str, Any] = {}
    result: str | None = None
    say: str | None = None
    next: str
    on_error: str | None = None
    timeout_s: float = 10.0


Operator = Literal[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "not_in",
    "contains",
    "exists",
    "missing",
    "matches",
]


class Condition(_Model):
    """A test on one variable (dotted path); no expression language, no eval."""

    var: str
    op: Operator = "eq"
    value: Any = None


class BranchCase(_Model):
    when: list[Condition]
    match: Literal["all", "any"] = "all"
    next: str


class BranchNode(_Node):
    type: Literal["branch"]
    cases: list[BranchCase]
    default: str


class HandoffNode(_Node):
    """Pass the call to another agent graph (`graph`, optionally `id@gitref`).

    The context contract: the target gets its own variables, the built-ins, the
    variables named in `carry` and, with `summary`, a conversation summary in
    `handoff_summary`. With `return_to`, the target's `return` nodes hand the
    call back here, continuing at that node of this graph.
    """

    type: Literal["handoff"]
    graph: str
    say: str | None = None
    carry: list[str] = []
    entry: str | None = None
    summary: bool = False
    return_to: str | None = None


class EscalateNode(_Node):
    type: Literal["escalate"]
    reason: str
    say: str | None = "Let me transfer you to a member of our team."
    queue: str | None = None


class EndNode(_Node):
    type: Literal["end"]
    text: str | None = None


class ReturnNode(_Node):
    """Hand the call back to the agent that handed it over, if that agent's
    handoff set `return_to`; otherwise continue at `otherwise` in this graph.

    Handing back restores the calling agent's variables and adds the ones named
    in `carry` (and, with `summary`, a summary in `handoff_summary`).
    """

    type: Literal["return"]
    say: str | None = None
    carry: list[str] = []
    summary: bool = False
    otherwise: str


NodeSpec = Annotated[
    SayNode
    | CollectNode
    | RouteNode
    | LLMNode
    | ToolNode
    | BranchNode
    | HandoffNode
    | EscalateNode
    | EndNode
    | ReturnNode,
    Field(discriminator="type"),
]


class Position(_Model):
    x: float
    y: float


class GraphSpec(_Model):
    schema_: Literal["switchboard/v1"] = Field("switchboard/v1", alias="schema")
    id: str
    name: str
    description: str | None = None
    start: str
    voice: VoiceSettings = VoiceSettings()
    llm: LLMSettings | None = None
    routing: RoutingSettings = RoutingSettings()
    fallback_line: str = "Sorry, I'm having trouble right now."
    variables: dict[str, Any] = {}
    global_intents: dict[str, GlobalIntent] = {}
    nodes: dict[str, NodeSpec]
    layout: dict[str, Position] = {}

    def node(self, node_id: str) -> NodeSpec:
        return self.nodes[node_id]


class PinnedGraphSpec(GraphSpec):
    """A graph as it was at a git ref (a handoff to `id@ref`): `ref` as written,
    the `commit` it resolved to, and the file's `path` in the repository."""

    ref: str
    commit: str
    path: str


def node_targets(node: NodeSpec) -> dict[str, str]:
    """Outgoing edges of a node as {label: target node id}, in file order.

    Labels are the field that holds the edge (`next`, `on_fail`, `intent:book`,
    `case:0`, `default`, `exit:done`, `return_to`, `otherwise`, ...). A handoff's
    `graph` is another graph, not a node, so only its `return_to` (where the call
    continues when handed back) is an edge here.
    """
    out: dict[str, str] = {}
    match node:
        case SayNode() | CollectNode() | ToolNode():
            out["next"] = node.next
            if isinstance(node, CollectNode) and node.on_fail:
                out["on_fail"] = node.on_fail
            if isinstance(node, ToolNode) and node.on_error:
                out["on_error"] = node.on_error
        case RouteNode():
            for name, intent in node.intents.items():
                out[f"intent:{name}"] = intent.next
            out["fallback"] = node.fallback
        case LLMNode():
            for name, ex in node.exits.items():
                out[f"exit:{name}"] = ex.next
            if node.on_error:
                out["on_error"] = node.on_error
        case BranchNode():
            for i, case in enumerate(node.cases):
                out[f"case:{i}"] = case.next
            out["default"] = node.default
        case HandoffNode():
            if node.return_to:
                out["return_to"] = node.return_to
        case ReturnNode():
            out["otherwise"] = node.otherwise
        case EscalateNode() | EndNode():
            pass
    return out


def edge_pointer(label: str) -> str:
    """JSON-pointer suffix (relative to the node) of the field holding an edge."""
    kind, _, name = label.partition(":")
    if kind == "intent":
        return f"/intents/{name}/next"
    if kind == "exit":
        return f"/exits/{name}/next"
    if kind == "case":
        return f"/cases/{name}/next"
    return f"/{label}"
