"""Static checks around handoffs and hand-back: `return` nodes and `return_to`
edges, carried variables, handoff entries and pinned targets checked through a
resolver, and the schema of the new fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas.checks import check_graph
from schemas.diagnostics import Diagnostic, GraphError
from schemas.loader import load_graph_text
from schemas.spec import GraphSpec, HandoffNode, ReturnNode, node_targets

HEAD = "schema: switchboard/v1\nid: g\nname: G\nstart: menu\n"

DESK = (
    HEAD
    + """\
nodes:
  menu:
    type: route
    prompt: Yes?
    intents:
      bill: {examples: [my bill, a charge], next: to_billing}
    fallback: menu
  to_billing:
    type: handoff
    graph: billing
    carry: [refund, name]
    return_to: again
  again:
    type: route
    prompt: "Anything else? {refund.refund_id}"
    intents:
      bill: {examples: [my bill, a charge], next: to_billing}
    fallback: bye
  bye: {type: end}
"""
)

SPECIALIST = """\
schema: switchboard/v1
id: billing
name: Billing
start: ask
nodes:
  ask: {type: collect, slot: amount, kind: number, prompt: How much?, next: maybe, on_fail: back}
  maybe:
    type: branch
    cases:
      - when: [{var: amount, op: gt, value: 10}]
        next: refund
    default: back
  refund: {type: say, text: "Refunding {amount}.", next: back}
  back: {type: return, carry: [amount], say: "Back you go.", otherwise: bye}
  bye: {type: end}
"""


def load(text: str) -> GraphSpec:
    loaded = load_graph_text(text, file="g.yaml")
    assert loaded.spec is not None, [d.format() for d in loaded.diagnostics]
    return loaded.spec


def check(text: str, resolve: Callable[[str], GraphSpec] | None = None) -> list[Diagnostic]:
    loaded = load_graph_text(text, file="g.yaml")
    assert loaded.spec is not None, [d.format() for d in loaded.diagnostics]
    return check_graph(loaded.spec, loaded.source, file="g.yaml", resolve=resolve)


def codes(found: list[Diagnostic]) -> list[tuple[str, str | None, str]]:
    return [(d.code, d.node, d.pointer) for d in found]


def test_return_to_and_otherwise_are_edges() -> None:
    desk, billing = load(DESK), load(SPECIALIST)
    assert isinstance(desk.nodes["to_billing"], HandoffNode)
    assert node_targets(desk.nodes["to_billing"]) == {"return_to": "again"}
    assert isinstance(billing.nodes["back"], ReturnNode)
    assert node_targets(billing.nodes["back"]) == {"otherwise": "bye"}


def test_a_node_reached_only_through_a_hand_back_is_reachable_and_reads_are_warnings() -> None:
    found = check(DESK)
    # `again` is reached through `return_to` only. What comes back is not known
    # statically, so after it any variable may be set: reading one is a W207, never
    # an E206, and carrying `refund` or `name` from there on is accepted.
    assert codes(found) == [("W207", "again", "/nodes/again/prompt")]
    assert "when arriving from 'to_billing' via 'return_to'" in found[0].message


def test_carrying_a_variable_set_on_some_paths_is_not_a_warning() -> None:
    assert check(SPECIALIST) == []  # `amount` is set on some paths only (not on_fail)
    found = check(SPECIALIST.replace("carry: [amount]", "carry: [amount, refnd]"))
    assert codes(found) == [("E206", "back", "/nodes/back/carry/1")]


def test_unknown_return_targets_are_E201() -> None:
    text = DESK.replace("return_to: again", "return_to: agian")
    [d] = [d for d in check(text) if d.code == "E201"]
    assert (d.node, d.pointer) == ("to_billing", "/nodes/to_billing/return_to")
    assert "did you mean 'again'" in d.message
    text = SPECIALIST.replace("otherwise: bye", "otherwise: by")
    [d] = [d for d in check(text) if d.code == "E201"]
    assert d.pointer == "/nodes/back/otherwise"


def test_a_return_node_counts_as_a_way_to_finish() -> None:
    text = (
        HEAD
        + """\
nodes:
  menu: {type: collect, slot: x, prompt: X?, next: back, on_fail: back}
  back: {type: return, otherwise: menu}
"""
    )
    assert [d.code for d in check(text)] == []


def test_with_a_resolver_the_entry_must_be_a_node_of_the_target() -> None:
    billing = load(SPECIALIST)
    text = DESK.replace("graph: billing", "graph: billing\n    entry: refnd")
    found = check(text, resolve={"billing": billing}.__getitem__)
    [d] = [d for d in found if d.code == "E201"]
    assert (d.node, d.pointer) == ("to_billing", "/nodes/to_billing/entry")
    assert "at 'refnd', which is not one of its nodes; did you mean 'refund'?" in d.message
    assert [d.code for d in check(text)] == ["W207"]  # not checked without one


def test_with_a_resolver_an_unreadable_pinned_target_is_E209() -> None:
    def resolve(ref: str) -> GraphSpec:
        if ref == "billing":
            raise GraphError([Diagnostic("E111", "error", "broken", file="billing.yaml")])
        raise GraphError([Diagnostic("E209", "error", "graph 'billing@v3': unknown git ref 'v3'")])

    assert [d.code for d in check(DESK, resolve)] == ["W207"]  # its own file reports it
    found = check(DESK.replace("graph: billing", "graph: billing@v3"), resolve)
    [d] = [d for d in found if d.code == "E209"]
    assert d.pointer == "/nodes/to_billing/graph"
    assert d.message.endswith("cannot be loaded: graph 'billing@v3': unknown git ref 'v3'")


@pytest.mark.parametrize(
    ("node", "code", "pointer"),
    [
        ("{type: return}", "E110", "/nodes/back/otherwise"),
        ("{type: return, otherwise: bye, carry: [a, a]}", "E113", "/nodes/back/carry"),
        ("{type: return, otherwise: bye, summary: maybe}", "E111", "/nodes/back/summary"),
        ("{type: return, otherwise: bye, graph: x}", "E112", "/nodes/back/graph"),
    ],
)
def test_the_schema_shapes_return_nodes(node: str, code: str, pointer: str) -> None:
    text = HEAD.replace("menu", "back") + f"nodes:\n  back: {node}\n  bye: {{type: end}}\n"
    loaded = load_graph_text(text, file="g.yaml")
    assert loaded.spec is None
    assert (code, pointer) in [(d.code, d.pointer) for d in loaded.diagnostics]
