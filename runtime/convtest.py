"""Conversation tests: YAML scripts of caller turns with expectations.

A test file names a graph (path relative to the test file), optionally a fixed
clock (`now`) and caller number, and a list of cases. Each case is a list of
turns; a turn without `caller` checks the agent's opening. Expectations per turn
(all optional): `agent` (text or list of texts the agent says this turn:
case-insensitive substring, or `/regex/`), `not_agent`, `node` (node or nodes
reached this turn, `node` or `agent/node`), `intent`, `slots` (subset of the
variables after the turn), `tool` (a call or list of calls this turn: name and a
subset of args), `waiting` (node waiting for the caller), `outcome`. A case's
`expect` block checks the whole call: `outcome`, `agent_outcomes`, `visited` (in order, gaps
allowed), `agents`, `slots`, `tools` (names in order). `hangup: true` hangs up
after the last turn. Each case runs on a fresh in-memory checkpointer and a
fresh demo data store, so cases are independent and repeatable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from ruamel.yaml import YAML, YAMLError

from runtime.compiler import CompiledCall, compile_call
from runtime.context import CallContext
from runtime.session import CallEvent, CallSession
from schemas.catalog import GraphCatalog
from schemas.diagnostics import GraphError
from schemas.loader import load_graph_file
from tools.registry import ToolRegistry

ToolsFactory = Callable[[Callable[[], datetime]], ToolRegistry]
TURN_KEYS = {
    "caller",
    "agent",
    "not_agent",
    "node",
    "intent",
    "slots",
    "tool",
    "waiting",
    "outcome",
}
EXPECT_KEYS = {"outcome", "agent_outcomes", "visited", "agents", "slots", "tools", "agent"}


class ConversationFileError(Exception):
    """The test file itself is malformed (not a failing expectation)."""


@dataclass
class CaseResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class ConversationFile:
    path: Path
    graph_path: Path
    cases: list[dict[str, Any]]
    now: datetime | None = None
    caller: str | None = None


def load_conversation_file(path: str | Path) -> ConversationFile:
    """Parse and shape-check a conversation test file."""
    p = Path(path)
    try:
        doc = YAML(typ="safe").load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise ConversationFileError(f"{p}: cannot read: {exc}") from exc
    if not isinstance(doc, Mapping) or "graph" not in doc or "cases" not in doc:
        raise ConversationFileError(f"{p}: expected a mapping with 'graph' and 'cases'")
    cases = doc["cases"]
    if not isinstance(cases, list) or not all(isinstance(c, Mapping) for c in cases):
        raise ConversationFileError(f"{p}: 'cases' must be a list of mappings")
    for i, case in enumerate(cases):
        turns = case.get("turns", [])
        if not isinstance(turns, list) or not all(isinstance(t, Mapping) for t in turns):
            raise ConversationFileError(f"{p}: case {i}: 'turns' must be a list of mappings")
        for j, turn in enumerate(turns):
            unknown = set(turn) - TURN_KEYS
            if unknown:
                raise ConversationFileError(
                    f"{p}: case {case.get('name', i)!r} turn {j}: unknown keys {sorted(unknown)}; "
                    f"expected {sorted(TURN_KEYS)}"
                )
        unknown = set(case.get("expect") or {}) - EXPECT_KEYS
        if unknown:
            raise ConversationFileError(
                f"{p}: case {case.get('name', i)!r}: unknown expect keys {sorted(unknown)}"
            )
    now = doc.get("now")
    if isinstance(now, str):
        try:
            now = datetime.fromisoformat(now)
        except ValueError:
            raise ConversationFileError(
                f"{p}: 'now' must be an ISO date-time, got {now!r}"
            ) from None
    if now is not None and not isinstance(now, datetime):
        raise ConversationFileError(f"{p}: 'now' must be an ISO date-time")
    if isinstance(now, datetime) and now.tzinfo is None:
        now = now.astimezone()
    return ConversationFile(
        path=p,
        graph_path=(p.parent / str(doc["graph"])).resolve(),
        cases=list(cases),
        now=now,
        caller=doc.get("caller"),
    )


def compile_for_tests(graph_path: Path) -> CompiledCall:
    """Compile a graph and its handoff targets (found beside it) with an
    in-memory checkpointer."""
    loaded = load_graph_file(graph_path)
    if loaded.spec is None:
        raise GraphError(loaded.diagnostics)
    catalog = GraphCatalog(graph_path.parent)
    return compile_call(loaded.spec, resolve=catalog.resolve, checkpointer=InMemorySaver())


def _norm(s: Any) -> str:
    return " ".join(str(s).split()).casefold()


def text_matches(expected: str, actual: str) -> bool:
    """`/regex/` or a case- and space-insensitive substring."""
    if len(expected) >= 2 and expected.startswith("/") and expected.endswith("/"):
        return re.search(expected[1:-1], actual, flags=re.IGNORECASE) is not None
    return _norm(expected) in _norm(actual)


def subset(expected: Any, actual: Any) -> bool:
    """Whether `expected` is contained in `actual` (dicts by key, else equal;
    strings compare case-insensitively, numbers by value)."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return (
            text_matches(expected, actual)
            if expected.startswith("/")
            else (_norm(expected) == _norm(actual))
        )
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return bool(expected == actual) or (
        actual is not None
        and not isinstance(actual, Mapping | list)
        and str(expected) == str(actual)
    )


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def _node_reached(expected: str, nodes: Sequence[tuple[str, str]]) -> bool:
    return any(expected in (n, f"{g}/{n}") for g, n in nodes)


def check_turn(
    expect: Mapping[str, Any], events: list[CallEvent], variables: Mapping[str, Any]
) -> list[str]:
    """Failures of one turn's expectations against its events and final variables."""
    fails: list[str] = []
    said = [e.data["text"] for e in events if e.type == "agent"]
    joined = " ".join(said)
    for text in _as_list(expect.get("agent", [])):
        if not text_matches(str(text), joined):
            fails.append(f"agent should say {text!r}; said {said!r}")
    for text in _as_list(expect.get("not_agent", [])):
        if text_matches(str(text), joined):
            fails.append(f"agent should not say {text!r}; said {said!r}")
    nodes = [(e.data["agent"], e.data["node"]) for e in events if e.type == "node"]
    for node in _as_list(expect.get("node", [])):
        if not _node_reached(str(node), nodes):
            fails.append(f"node {node!r} should be reached; reached {[n for _, n in nodes]}")
    if "intent" in expect:
        intents = [e.data.get("name") for e in events if e.type == "intent"]
        if expect["intent"] not in intents:
            fails.append(f"intent {expect['intent']!r} expected; got {intents}")
    if "slots" in expect and not subset(expect["slots"], dict(variables)):
        shown = {k: variables.get(k) for k in expect["slots"]}
        fails.append(f"slots {expect['slots']!r} expected; have {shown!r}")
    calls = [e.data for e in events if e.type == "tool"]
    for want in _as_list(expect.get("tool", [])):
        if not any(
            c["name"] == want.get("name") and subset(want.get("args", {}), c["args"]) for c in calls
        ):
            fails.append(
                f"tool call {want!r} expected; got {[(c['name'], c['args']) for c in calls]}"
            )
    if "waiting" in expect:
        waiting = [e.data.get("node") for e in events if e.type == "waiting"]
        if expect["waiting"] not in waiting:
            fails.append(f"should wait at {expect['waiting']!r}; waiting at {waiting}")
    if "outcome" in expect:
        outcomes = [e.data["outcome"] for e in events if e.type == "outcome"]
        if expect["outcome"] not in outcomes:
            fails.append(f"outcome {expect['outcome']!r} expected; got {outcomes}")
    return fails


def _in_order(wanted: list[str], full: list[str], short: list[str]) -> bool:
    pos = 0
    for w in wanted:
        while pos < len(full) and w not in (full[pos], short[pos]):
            pos += 1
        if pos == len(full):
            return False
        pos += 1
    return True


def check_call(
    expect: Mapping[str, Any], state: Mapping[str, Any], transcript: list[str]
) -> list[str]:
    fails: list[str] = []
    if "outcome" in expect and state.get("outcome") != expect["outcome"]:
        fails.append(
            f"call outcome {expect['outcome']!r} expected; got {state.get('outcome')!r}"
            f" ({state.get('outcome_reason')})"
        )
    if "visited" in expect:
        seq = list(state.get("visited", []))
        short = [v.split("/", 1)[-1] for v in seq]
        if not _in_order([str(w) for w in expect["visited"]], seq, short):
            fails.append(f"path {expect['visited']} expected in order; visited {short}")
    if "agents" in expect and list(state.get("agents", [])) != list(expect["agents"]):
        fails.append(f"agents {expect['agents']} expected; got {state.get('agents')}")
    if "agent_outcomes" in expect and not subset(
        expect["agent_outcomes"], state.get("agent_outcomes", {})
    ):
        fails.append(
            f"agent outcomes {expect['agent_outcomes']} expected; got {state.get('agent_outcomes')}"
        )
    if "slots" in expect and not subset(expect["slots"], state.get("vars", {})):
        fails.append(f"final slots {expect['slots']!r} expected")
    if "tools" in expect:
        names = [c["name"] for c in state.get("tool_calls", [])]
        if names != list(expect["tools"]):
            fails.append(f"tool calls {expect['tools']} expected; got {names}")
    for text in _as_list(expect.get("agent", [])):
        if not text_matches(str(text), " ".join(transcript)):
            fails.append(f"agent should say {text!r} at some point")
    return fails


async def run_case(
    conv: ConversationFile,
    case: Mapping[str, Any],
    compiled: CompiledCall,
    tools_factory: ToolsFactory,
) -> CaseResult:
    """Run one case; never raises for a failing expectation."""
    context = CallContext()
    if conv.now is not None:
        fixed = conv.now
        context.clock = lambda: fixed
    context.tools = tools_factory(context.clock)
    result = CaseResult(file=str(conv.path), name=str(case.get("name", "case")))
    session = CallSession(
        compiled,
        context=context,
        caller=case.get("caller", conv.caller),
        variables=case.get("vars"),
    )
    turns = list(case.get("turns", []))
    events = await session.start()
    first = turns.pop(0) if turns and "caller" not in turns[0] else {}
    _log(result, events)
    state = await session.state()
    for fail in check_turn(first, events, state.get("vars", {})):
        result.failures.append(f"opening: {fail}")
    for i, turn in enumerate(turns, start=1):
        if await session.ended():
            result.failures.append(
                f"turn {i}: call already ended before caller said {turn.get('caller')!r}"
            )
            break
        result.transcript.append(f"caller: {turn.get('caller', '')}")
        events = await session.send(str(turn.get("caller", "")))
        _log(result, events)
        state = await session.state()
        for fail in check_turn(turn, events, state.get("vars", {})):
            result.failures.append(f"turn {i} ({turn.get('caller')!r}): {fail}")
    if case.get("hangup"):
        _log(result, await session.hangup())
    state = await session.state()
    said = [line.split(": ", 1)[1] for line in result.transcript if line.startswith("agent")]
    result.failures += [f"call: {f}" for f in check_call(case.get("expect") or {}, state, said)]
    return result


def _log(result: CaseResult, events: list[CallEvent]) -> None:
    for e in events:
        if e.type == "agent":
            result.transcript.append(f"agent: {e.data['text']}")
        elif e.type == "outcome":
            result.transcript.append(f"[{e.data['outcome']}]")


def default_tools_factory(
    clock: Callable[[], datetime], graphs_dir: Path | None = None
) -> ToolRegistry:
    """Built-in tools on a fresh demo store whose data is seeded on `clock`, plus
    the tools declared in `graphs_dir` (default: the graphs directory) and the
    entry-point tools."""
    from tools.config import build_registry
    from tools.store import DemoStore

    return build_registry(graphs_dir, store=DemoStore(clock=clock))


async def run_file(
    path: str | Path,
    *,
    tools_factory: ToolsFactory | None = None,
) -> list[CaseResult]:
    """Run every case of a conversation test file."""
    conv = load_conversation_file(path)
    compiled = compile_for_tests(conv.graph_path)
    graphs_dir = conv.graph_path.parent
    factory = tools_factory or (lambda clock: default_tools_factory(clock, graphs_dir))
    return [await run_case(conv, case, compiled, factory) for case in conv.cases]


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Conversation test files under the given files/directories (`*.yaml` in a
    `tests` directory, or any file given explicitly)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(q for q in p.rglob("*.y*ml") if q.parent.name == "tests")
    return found
