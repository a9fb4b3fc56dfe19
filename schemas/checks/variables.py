"""Template variables read before they are set: E206 (no path sets the variable
before the read) and W207 (only some paths do).

A must/may dataflow over the graph, solved by iterating to a fixpoint: the
variables definitely set on entering a node are the intersection over every way
of arriving there, the possibly set ones the union. A node's own writes apply to
its outgoing edges only: a collect node's `slot` on `next` (not `on_fail`), a
tool node's `result` on `next` (not `on_error`), `error` on a tool or llm node's
`on_error`, and a branch case that tests `exists` (or a skipped case that tests
`missing`) tells the edge it takes that the variable is set. A tool node speaks
its `say` after the call succeeded, so `say` may read the `result`. The start
node and global-intent targets begin with the graph variables and builtins; a
global intent can fire at any waiting node, so its target may also see anything
set at one. A handoff's `return_to` edge is taken when another agent hands the
call back with variables of its choosing: after it any variable may be set
(`RETURNED`), so reads there are never E206, only W207 unless guarded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runtime.templates import placeholders
from schemas.checks._report import Reporter, field_path, names, node_pointer, suggest
from schemas.source import escape
from schemas.spec import (
    BUILTIN_VARIABLES,
    WAITING_KINDS,
    BranchNode,
    CollectNode,
    EndNode,
    EscalateNode,
    GraphSpec,
    HandoffNode,
    LLMNode,
    NodeSpec,
    ReturnNode,
    RouteNode,
    SayNode,
    ToolNode,
    edge_pointer,
    node_targets,
)

#: Branch operators that test whether a variable is set rather than read it.
GUARD_OPS = frozenset({"exists", "missing"})

Vars = frozenset[str]

#: What a tool or llm node sets when it leaves through `on_error`.
ERROR_VARS: Vars = frozenset({"error"})
#: Marks a may-set that can hold any variable (not a variable name: it has `*`).
RETURNED = "*returned*"


@dataclass(frozen=True, slots=True)
class Read:
    """One variable read: the dotted path as written, the field (a pointer suffix
    relative to the node) that holds it, and variables known to be set whenever
    the read happens (from branch guards tested before it)."""

    path: str
    field: str
    guarded: Vars = frozenset()
    #: A read that tolerates an unset variable (a carried variable is passed on
    #: only when set): E206 when no path sets it, never W207.
    optional: bool = False

    @property
    def var(self) -> str:
        return root(self.path)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One way into a node and the variables definitely/possibly set along it."""

    origin: str
    must: Vars
    may: Vars


def root(path: str) -> str:
    """The variable a dotted path belongs to (`booking.when` -> `booking`)."""
    return path.split(".", 1)[0]


def node_reads(node: NodeSpec) -> list[Read]:
    """Every variable the node reads, in field order: template placeholders in
    its spoken lines, prompts, escalation reason and tool arguments, and branch
    conditions' `var` (except `exists`/`missing` guards), and the variables a
    handoff or return node carries (optional reads)."""
    texts: list[tuple[str, str | None]] = []
    reads: list[Read] = []
    match node:
        case SayNode():
            texts.append(("/text", node.text))
        case CollectNode():
            texts += [("/prompt", node.prompt), ("/reprompt", node.reprompt)]
        case RouteNode():
            texts.append(("/prompt", node.prompt))
        case LLMNode():
            texts += [("/prompt", node.prompt), ("/greeting", node.greeting)]
        case ToolNode():
            texts += list(_strings(node.args, "/args"))
            if node.say:
                after = frozenset({root(node.result)} if node.result else ())
                reads += [Read(path, "/say", after) for path in sorted(placeholders(node.say))]
        case HandoffNode() | ReturnNode():
            texts.append(("/say", node.say))
            reads += [Read(v, f"/carry/{i}", optional=True) for i, v in enumerate(node.carry)]
        case EscalateNode():
            texts += [("/say", node.say), ("/reason", node.reason)]
        case EndNode():
            texts.append(("/text", node.text))
        case BranchNode():
            for i, case in enumerate(node.cases):
                known = set(_ruled_out(node, i))
                for j, cond in enumerate(case.when):
                    if cond.op not in GUARD_OPS:
                        reads.append(Read(cond.var, f"/cases/{i}/when/{j}/var", frozenset(known)))
                    elif cond.op == "exists" and case.match == "all":
                        # later conditions of an `all` case only matter when this one holds
                        known.add(root(cond.var))
    for where, text in texts:
        if text:
            reads += [Read(path, where) for path in sorted(placeholders(text))]
    return reads


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}/{escape(str(k))}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}/{i}")


def edge_writes(node: NodeSpec, label: str) -> Vars:
    """Variables known to be set when the call leaves `node` by edge `label`."""
    if isinstance(node, CollectNode) and label == "next":
        return frozenset({root(node.slot)})
    if isinstance(node, ToolNode) and label == "next" and node.result:
        return frozenset({root(node.result)})
    if isinstance(node, ToolNode | LLMNode) and label == "on_error":
        return ERROR_VARS
    if isinstance(node, BranchNode):
        return _guarded(node, label)
    return frozenset()


def _ruled_out(node: BranchNode, taken: int) -> set[str]:
    """Variables known to be set once the cases before `taken` were all false
    (a false `missing` test, when that test alone decides its case)."""
    known: set[str] = set()
    for case in node.cases[:taken]:
        if case.match == "any" or len(case.when) == 1:
            known |= {root(c.var) for c in case.when if c.op == "missing"}
    return known


def _guarded(node: BranchNode, label: str) -> Vars:
    taken = len(node.cases) if label == "default" else int(label.partition(":")[2])
    known = _ruled_out(node, taken)
    if taken < len(node.cases):
        case = node.cases[taken]
        if case.match == "all" or len(case.when) == 1:
            known |= {root(c.var) for c in case.when if c.op == "exists"}
    return frozenset(known)


def check_variables(spec: GraphSpec, rep: Reporter) -> None:
    """E206/W207 for every read in a node reachable from `start`; nothing when
    `start` names no node (E210 covers that)."""
    if spec.start not in spec.nodes:
        return
    flow = _Flow(spec)
    flow.solve()
    written = set(flow.initial)
    for node in spec.nodes.values():
        for label in node_targets(node):
            written |= edge_writes(node, label)
    for node_id, node in spec.nodes.items():
        must = flow.must[node_id]
        if must is None:
            continue
        for read in node_reads(node):
            if read.var in must or read.var in read.guarded:
                continue
            where = f"node {node_id!r} reads {{{read.path}}} in {field_path(read.field)!r}"
            ptr = node_pointer(node_id, read.field)
            if read.var not in flow.may[node_id] and RETURNED not in flow.may[node_id]:
                rep.add(
                    "E206",
                    f"{where}, but no path sets {read.var!r} before it; set it earlier (graph "
                    f"variables, a collect slot or a tool result){suggest(read.var, written)}",
                    ptr,
                    node=node_id,
                )
                continue
            if read.optional:
                continue
            missing = [a.origin for a in flow.arrivals(node_id) if read.var not in a.must]
            paths = names(missing, quote=False)
            rep.add(
                "W207",
                f"{where}, but {read.var!r} is not set when arriving {paths}; "
                "set it on every path or test it first with a branch (op: exists)",
                ptr,
                node=node_id,
            )


class _Flow:
    """The must/may-set fixpoint over one graph."""

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.initial: Vars = frozenset(spec.variables) | BUILTIN_VARIABLES
        self.incoming: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for u, node in spec.nodes.items():
            for label, v in node_targets(node).items():
                if v in spec.nodes:
                    self.incoming[v].append((u, label))
        self.global_targets = {i.goto for i in spec.global_intents.values() if i.goto in spec.nodes}
        self.waiting = [n for n, node in spec.nodes.items() if node.type in WAITING_KINDS]
        # None: no path reaches the node (yet); the top of the must lattice.
        self.must: dict[str, Vars | None] = dict.fromkeys(spec.nodes)
        self.may: dict[str, Vars] = dict.fromkeys(spec.nodes, frozenset())

    def arrivals(self, node_id: str) -> list[Arrival]:
        """Every way into `node_id` that some path currently reaches."""
        out: list[Arrival] = []
        if node_id == self.spec.start:
            out.append(Arrival("from the start", self.initial, self.initial))
        if node_id in self.global_targets:
            at_waits = [self.may[w] for w in self.waiting if self.must[w] is not None]
            may = self.initial.union(*at_waits)
            out.append(Arrival("after a global intent", self.initial, may))
        for u, label in self.incoming[node_id]:
            must = self.must[u]
            if must is None:
                continue
            writes = edge_writes(self.spec.nodes[u], label)
            origin = f"from {u!r} via {field_path(edge_pointer(label))!r}"
            may = self.may[u] | writes | ({RETURNED} if label == "return_to" else set())
            out.append(Arrival(origin, must | writes, may))
        return out

    def solve(self) -> None:
        """Iterate until nothing changes; `must` only shrinks and `may` only grows,
        so this terminates."""
        changed = True
        while changed:
            changed = False
            for node_id in self.spec.nodes:
                arrivals = self.arrivals(node_id)
                if not arrivals:
                    continue
                must = frozenset.intersection(*(a.must for a in arrivals))
                may = frozenset.union(*(a.may for a in arrivals))
                if must != self.must[node_id] or may != self.may[node_id]:
                    self.must[node_id], self.may[node_id] = must, may
                    changed = True
