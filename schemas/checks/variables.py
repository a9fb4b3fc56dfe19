"""Template variables read before they are set: E206 (no path sets the variable
before the read) and W207 (only some paths do).

A must/may dataflow over the graph, solved with a worklist to a fixpoint: the
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

from collections import defaultdict, deque
from collections.abc import Collection, Iterator
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
        if not flow.reached(node_id):
            continue
        for read in node_reads(node):
            if flow.must_have(node_id, read.var) or read.var in read.guarded:
                continue
            where = f"node {node_id!r} reads {{{read.path}}} in {field_path(read.field)!r}"
            ptr = node_pointer(node_id, read.field)
            if not flow.may_have(node_id, read.var):
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
    """The must/may-set fixpoint over one graph, solved with a worklist.

    Variable sets are bit masks (one bit per variable name, plus one for
    `RETURNED`), so joining two sets costs a few machine words, and a node is
    re-evaluated only when something it arrives from changed: the cost grows
    with the edges times the (small) number of times a set can change, not with
    nodes x rounds x variables.
    """

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.initial: Vars = frozenset(spec.variables) | BUILTIN_VARIABLES
        self._bits: dict[str, int] = {}
        self._initial = self._mask(self.initial)
        self._returned = self._mask((RETURNED,))
        # v -> [(u, label, writes on the edge, may-only additions on the edge)]
        self.incoming: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
        self.successors: dict[str, list[str]] = defaultdict(list)
        for u, node in spec.nodes.items():
            for label, v in node_targets(node).items():
                if v in spec.nodes:
                    writes = self._mask(edge_writes(node, label))
                    extra = self._returned if label == "return_to" else 0
                    self.incoming[v].append((u, label, writes, extra))
                    self.successors[u].append(v)
        self.global_targets = {i.goto for i in spec.global_intents.values() if i.goto in spec.nodes}
        self.waiting = {n for n, node in spec.nodes.items() if node.type in WAITING_KINDS}
        # None: no path reaches the node (yet); the top of the must lattice.
        self._must: dict[str, int | None] = dict.fromkeys(spec.nodes)
        self._may: dict[str, int] = dict.fromkeys(spec.nodes, 0)
        #: Union of the may-sets of the waiting nodes reached so far (only grows).
        self._at_waits = 0

    def _mask(self, names: Collection[str]) -> int:
        mask = 0
        for name in names:
            bit = self._bits.get(name)
            if bit is None:
                bit = self._bits[name] = 1 << len(self._bits)
            mask |= bit
        return mask

    def _names(self, mask: int) -> Vars:
        return frozenset(name for name, bit in self._bits.items() if mask & bit)

    def reached(self, node_id: str) -> bool:
        """Whether some path from the start or a global intent reaches the node."""
        return self._must[node_id] is not None

    def must_have(self, node_id: str, var: str) -> bool:
        """`var` is set on every path into the node."""
        must = self._must[node_id]
        bit = self._bits.get(var, 0)
        return must is not None and bool(must & bit)

    def may_have(self, node_id: str, var: str) -> bool:
        """`var` is set on some path into the node (or a handback may have set it)."""
        bit = self._bits.get(var, 0) | self._returned
        return bool(self._may[node_id] & bit)

    def arrivals(self, node_id: str) -> list[Arrival]:
        """Every way into `node_id` that some path reaches, with its sets."""
        out: list[Arrival] = []
        if node_id == self.spec.start:
            out.append(Arrival("from the start", self.initial, self.initial))
        if node_id in self.global_targets:
            at_waits = self._names(self._initial | self._at_waits)
            out.append(Arrival("after a global intent", self.initial, at_waits))
        for u, label, writes, extra in self.incoming[node_id]:
            must = self._must[u]
            if must is None:
                continue
            origin = f"from {u!r} via {field_path(edge_pointer(label))!r}"
            may_mask = self._may[u] | writes | extra
            out.append(Arrival(origin, self._names(must | writes), self._names(may_mask)))
        return out

    def _join(self, node_id: str) -> tuple[int, int] | None:
        """(must, may) on entering the node from what reaches it now; None when
        nothing does."""
        must: int | None = None
        may = 0
        if node_id == self.spec.start:
            must, may = self._initial, self._initial
        if node_id in self.global_targets:
            must = self._initial if must is None else must & self._initial
            may |= self._initial | self._at_waits
        for u, _label, writes, extra in self.incoming[node_id]:
            u_must = self._must[u]
            if u_must is None:
                continue
            arriving = u_must | writes
            must = arriving if must is None else must & arriving
            may |= self._may[u] | writes | extra
        return None if must is None else (must, may)

    def solve(self) -> None:
        """Worklist iteration to the fixpoint; `must` only shrinks and `may` only
        grows, so this terminates."""
        queue = deque(self.spec.nodes)
        queued = set(queue)
        while queue:
            node_id = queue.popleft()
            queued.discard(node_id)
            joined = self._join(node_id)
            if joined is None or joined == (self._must[node_id], self._may[node_id]):
                continue
            self._must[node_id], self._may[node_id] = joined
            todo = list(self.successors[node_id])
            if node_id in self.waiting and joined[1] & ~self._at_waits:
                self._at_waits |= joined[1]
                todo += self.global_targets
            for v in todo:
                if v not in queued:
                    queued.add(v)
                    queue.append(v)
