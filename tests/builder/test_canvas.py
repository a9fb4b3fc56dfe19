"""The graph <-> streamlit-flow canvas conversion."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit_flow.elements import StreamlitFlowEdge
from streamlit_flow.state import StreamlitFlowState

from builder.canvas import (
    KIND_COLOURS,
    Overlay,
    auto_layout,
    canvas_changes,
    canvas_layout_changes,
    document_layout,
    document_targets,
    edge_id,
    flow_positions,
    parse_edge_id,
    to_flow_state,
)
from builder.document import GraphDocument
from builder.edits import set_layout
from schemas.diagnostics import Diagnostic
from schemas.loader import load_graph_file
from schemas.spec import node_targets

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "graphs").glob("*.yaml") if p.name != "tools.yaml")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_node_and_labelled_edge_is_on_the_canvas(path: Path) -> None:
    loaded = load_graph_file(path)
    assert loaded.spec is not None
    state = to_flow_state(loaded.document)
    assert {n.id for n in state.nodes} == set(loaded.spec.nodes)
    expected = {
        edge_id(source, label): target
        for source, node in loaded.spec.nodes.items()
        for label, target in node_targets(node).items()
    }
    assert {e.id: e.target for e in state.edges} == expected
    for node_id, node in loaded.spec.nodes.items():
        # the tolerant reader of plain nodes agrees with the spec's own edges
        assert document_targets(loaded.document["nodes"][node_id]) == node_targets(node)
    for e in state.edges:
        _source, label = parse_edge_id(e.id) or ("", "")
        kind, _, name = label.partition(":")
        if kind in ("intent", "exit"):
            assert e.label == name
        elif label in ("on_error", "on_fail", "fallback", "default", "otherwise", "return_to"):
            assert e.label == label
        elif label == "next":
            assert e.label == ""


def test_nodes_are_coloured_by_kind_and_start_is_an_input_node() -> None:
    loaded = load_graph_file(ROOT / "graphs" / "dental-booking.yaml")
    state = to_flow_state(loaded.document)
    by_id = {n.id: n for n in state.nodes}
    for node_id, node in loaded.document["nodes"].items():
        assert by_id[node_id].style["background"] == KIND_COLOURS[node["type"]]
        assert node_id in by_id[node_id].data["content"]
    assert by_id[loaded.document["start"]].type == "input"
    assert len({KIND_COLOURS[k] for k in KIND_COLOURS}) == len(KIND_COLOURS)


def test_branch_cases_are_labelled_with_their_conditions() -> None:
    doc = {
        "start": "b",
        "nodes": {
            "b": {
                "type": "branch",
                "cases": [
                    {"when": [{"var": "age", "op": "ge", "value": 18}], "next": "adult"},
                    {
                        "when": [{"var": "x", "op": "exists"}, {"var": "y"}],
                        "match": "any",
                        "next": "adult",
                    },
                ],
                "default": "minor",
            },
            "adult": {"type": "end"},
            "minor": {"type": "end"},
        },
    }
    labels = {e.id: e.label for e in to_flow_state(doc).edges}
    assert labels == {
        "b|case:0": "age ge 18",
        "b|case:1": "x exists or y eq None",
        "b|default": "default",
    }


def test_diagnostics_and_diff_are_marked_on_their_nodes() -> None:
    loaded = load_graph_file(ROOT / "graphs" / "dental-booking.yaml")
    diags = [
        Diagnostic("E200", "error", "boom", node="route"),
        Diagnostic("W215", "warning", "hmm", node="greeting"),
    ]
    overlay = Overlay(diagnostics=diags, diff={"clarify": "changed"})
    state = to_flow_state(loaded.document, overlay, removed={"old_step": {"type": "say"}})
    by_id = {n.id: n for n in state.nodes}
    assert "1 error" in by_id["route"].data["content"]
    assert "#dc2626" in by_id["route"].style["border"]
    assert "1 warning" in by_id["greeting"].data["content"]
    assert "changed" in by_id["clarify"].data["content"]
    assert "dashed" in by_id["old_step"].style["border"]  # a ghost of a removed node


def test_an_invalid_document_still_draws() -> None:
    doc = {"start": "a", "nodes": {"a": {"type": "say", "next": 3}, "b": "not a node"}}
    state = to_flow_state(doc)
    assert {n.id for n in state.nodes} == {"a", "b"}
    assert state.edges == []


def test_auto_layout_places_nodes_by_distance_from_start() -> None:
    doc = {
        "start": "a",
        "nodes": {
            "orphan": {"type": "end"},
            "a": {"type": "say", "next": "b"},
            "b": {"type": "collect", "next": "c", "on_fail": "d"},
            "c": {"type": "end"},
            "d": {"type": "escalate"},
        },
    }
    pos = auto_layout(doc)
    assert pos["a"][1] < pos["b"][1] < pos["c"][1] == pos["d"][1] < pos["orphan"][1]
    assert pos["c"][0] != pos["d"][0]
    assert len(set(pos.values())) == len(pos)


def test_layout_round_trip_through_the_file(tmp_path: Path) -> None:
    src = (ROOT / "graphs" / "dental-booking.yaml").read_text("utf-8")
    doc = GraphDocument(src, "dental-booking.yaml")
    state = to_flow_state(doc.data)
    assert canvas_layout_changes(doc.data, state) == {}  # nothing moved: file untouched
    state.nodes[0].position = {"x": 999.0, "y": -40.0}
    moved = canvas_layout_changes(doc.data, state)
    assert set(moved) == {n.id for n in state.nodes}
    set_layout(doc, moved)
    assert "# Bright Smiles dental front desk" in doc.text  # comments kept
    reopened = GraphDocument(doc.text, "dental-booking.yaml").data
    assert document_layout(reopened)[state.nodes[0].id] == (999.0, -40.0)
    again = to_flow_state(reopened)
    assert flow_positions(again) == flow_positions(state)


def test_canvas_edits_map_back_to_fields() -> None:
    loaded = load_graph_file(ROOT / "graphs" / "dental-booking.yaml")
    doc = loaded.document
    state = to_flow_state(doc)
    edges = [e for e in state.edges if e.id != edge_id("route", "intent:hours")]
    nodes = [n for n in state.nodes if n.id != "clarify"]
    edges.append(StreamlitFlowEdge("reactflow__edge-greetingb-hoursa", "greeting", "hours"))
    changed = StreamlitFlowState(nodes=nodes, edges=edges)
    changes = canvas_changes(doc, changed)
    assert changes.deleted_nodes == ("clarify",)
    assert changes.deleted_edges == (("route", "intent:hours"),)
    assert changes.new_edges == (("greeting", "hours"),)
    assert not canvas_changes(doc, state)


def test_canvas_changes_count_only_what_changed_since_the_canvas_was_shown() -> None:
    loaded = load_graph_file(ROOT / "graphs" / "dental-booking.yaml")
    doc = loaded.document
    shown = to_flow_state(doc)
    # the document gained a node after the canvas was drawn: not a canvas deletion
    newer = {**doc, "nodes": {**doc["nodes"], "ask_dob": {"type": "say", "text": "hi"}}}
    assert not canvas_changes(newer, shown, shown=shown)
    # an edge drawn earlier and still on the canvas is not drawn again
    drawn = StreamlitFlowEdge("st-flow-edge_greeting-hours", "greeting", "hours")
    before = StreamlitFlowState(nodes=shown.nodes, edges=[*shown.edges, drawn])
    assert not canvas_changes(doc, before, shown=before)
    after = StreamlitFlowState(nodes=shown.nodes, edges=[*shown.edges, drawn])
    assert canvas_changes(doc, after, shown=shown).new_edges == (("greeting", "hours"),)
