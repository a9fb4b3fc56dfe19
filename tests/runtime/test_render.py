"""Mermaid and DOT drawings of the example graphs: every node, every labelled
edge, handoffs and global intents; the DOT text parses."""

from __future__ import annotations

import re
from pathlib import Path

import pydot
import pytest

from runtime.render import SHAPES_DOT, SHAPES_MERMAID, to_dot, to_mermaid
from schemas.loader import load_graph
from schemas.spec import GraphSpec, NodeKind, node_targets

# pydot's parser still calls pyparsing's camelCase names.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


@pytest.fixture(scope="module")
def dental() -> GraphSpec:
    return load_graph(GRAPHS / "dental-booking.yaml")


@pytest.fixture(scope="module")
def front() -> GraphSpec:
    return load_graph(GRAPHS / "front-desk.yaml")


def mid(node_id: str) -> str:
    return "n_" + re.sub(r"[^0-9A-Za-z]", "_", node_id)


def test_every_node_kind_has_a_shape() -> None:
    from typing import get_args

    kinds = set(get_args(NodeKind))
    assert set(SHAPES_MERMAID) == kinds
    assert set(SHAPES_DOT) == kinds


def test_mermaid_has_every_node_with_its_kind_and_every_labelled_edge(dental: GraphSpec) -> None:
    text = to_mermaid(dental)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert f"  start((start)) --> {mid(dental.start)}" in lines
    for node_id, node in dental.nodes.items():
        left, right = SHAPES_MERMAID[node.type]
        assert f"  {mid(node_id)}{left}{node_id}<br/>{node.type}{right}" in lines
        for label, target in node_targets(node).items():
            assert f"  {mid(node_id)} -->|{label}| {mid(target)}" in lines
    edges = [line for line in lines if " -->|" in line]
    assert len(edges) == sum(len(node_targets(n)) for n in dental.nodes.values())
    for name, gi in dental.global_intents.items():
        if gi.goto:
            assert f"  any((any turn)) -.->|{name}| {mid(gi.goto)}" in lines
    assert "-->|intent:book| n_ask_day" in text
    assert "n_ask_day -->|on_fail| n_escalate" in text


def test_mermaid_draws_handoffs_to_other_agents(front: GraphSpec) -> None:
    text = to_mermaid(front)
    assert "n_to_dental -.->|handoff| g_n_dental_booking" in text
    assert 'g_n_dental_booking[["agent dental-booking"]]' in text


def test_mermaid_escapes_quotes_in_labels() -> None:
    spec = GraphSpec.model_validate(
        {
            "id": "q",
            "name": "Q",
            "start": "a",
            "nodes": {
                "a": {
                    "type": "route",
                    "intents": {'say "hi"': {"examples": ["x"], "next": "b"}},
                    "fallback": "b",
                },
                "b": {"type": "end"},
            },
        }
    )
    text = to_mermaid(spec)
    assert '"hi"' not in text
    assert "-->|intent:say #quot;hi#quot;| n_b" in text


def parse_dot(text: str) -> pydot.Dot:
    parsed = pydot.graph_from_dot_data(text)
    assert parsed, "DOT text did not parse"
    [dot] = parsed
    return dot


def unquote(value: object) -> str:
    """A DOT id or attribute as plain text (pydot keeps the quotes)."""
    s = "" if value is None else str(value)
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


@pytest.mark.parametrize(
    "name",
    [
        "dental-booking",
        "front-desk",
        "billing-support",
        "router-support",
        "appointment-confirmation",
    ],
)
def test_dot_parses_with_every_node_and_labelled_edge(name: str) -> None:
    spec = load_graph(GRAPHS / f"{name}.yaml")
    dot = parse_dot(to_dot(spec))
    assert unquote(dot.get_name()) == spec.id
    shapes = {unquote(n.get_name()): n.get("shape") for n in dot.get_nodes()}
    for node_id, node in spec.nodes.items():
        assert shapes[node_id] == SHAPES_DOT[node.type]
    edges = {
        (unquote(e.get_source()), unquote(e.get_destination()), unquote(e.get("label") or ""))
        for e in dot.get_edges()
    }
    assert ("__start__", spec.start, "") in edges
    for node_id, node in spec.nodes.items():
        for label, target in node_targets(node).items():
            assert (node_id, target, label) in edges
    for gi_name, gi in spec.global_intents.items():
        if gi.goto:
            assert ("__any__", gi.goto, gi_name) in edges


def test_dot_labels_each_node_with_id_and_kind(dental: GraphSpec) -> None:
    dot = parse_dot(to_dot(dental))
    labels = {unquote(n.get_name()): unquote(n.get("label") or "") for n in dot.get_nodes()}
    assert labels["ask_day"] == r"ask_day\ncollect"
    assert labels["route"] == r"route\nroute"


def test_dot_draws_handoffs_dashed(front: GraphSpec) -> None:
    dot = parse_dot(to_dot(front))
    handoffs = {
        (unquote(e.get_source()), unquote(e.get_destination()))
        for e in dot.get_edges()
        if e.get("style") == "dashed"
    }
    assert handoffs == {
        ("to_dental", "agent:dental-booking"),
        ("to_billing", "agent:billing-support"),
        ("to_internet", "agent:router-support"),
    }
