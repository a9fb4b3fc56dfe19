"""Semantic diff of two graph revisions: exactly the expected node, field, edge,
setting and layout changes, as lines and as JSON for the canvas."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import versions
from builder.document import Edge, GraphDocument
from builder.semantic_diff import DiffError, FieldChange, diff_texts


def test_diff_of_two_revisions_lists_exactly_the_changes(
    repo: Path, git: Callable[..., str]
) -> None:
    path = repo / "graphs" / "dental-booking.yaml"
    doc = GraphDocument.open(path)
    doc.add_node("ask_dob", "collect", {"slot": "dob", "kind": "date", "prompt": "Date of birth?"})
    doc.connect("ask_dob", "next", "book")
    doc.reconnect("ask_name", "next", "ask_dob")
    doc.remove_node("kept")
    doc.connect("cancel_or_keep", "default", "hand_back")
    doc.set_field("route", ("intents", "hours", "examples"), ["when are you open", "hours"])
    doc.set_setting("name", "Bright Smiles desk")
    doc.set_positions({"greeting": (0, 0)})
    doc.save()
    versions.commit_file(path, "date of birth step")

    result = diff_texts(versions.show_file(path, "HEAD~1"), versions.show_file(path, "HEAD"))
    assert result.highlights == {
        "ask_dob": "added",
        "kept": "removed",
        "ask_name": "changed",
        "route": "changed",
        "cancel_or_keep": "changed",
    }
    changed = {n.node_id: n.fields for n in result.by_status("changed")}
    assert changed["ask_name"] == (FieldChange("next", "book", "ask_dob"),)
    assert changed["cancel_or_keep"] == (FieldChange("default", "kept", "hand_back"),)
    assert changed["route"] == (
        FieldChange(
            "intents.hours.examples",
            ["what are your opening hours", "when are you open", "are you open on saturday"],
            ["when are you open", "hours"],
        ),
    )
    assert sorted(result.edges_added, key=str) == sorted(
        [
            Edge("cancel_or_keep", "default", "hand_back"),
            Edge("ask_name", "next", "ask_dob"),
            Edge("ask_dob", "next", "book"),
        ],
        key=str,
    )
    assert sorted(result.edges_removed, key=str) == sorted(
        [
            Edge("ask_name", "next", "book"),
            Edge("cancel_or_keep", "default", "kept"),
            Edge("kept", "next", "hand_back"),
        ],
        key=str,
    )
    assert result.settings == [
        FieldChange("name", "Bright Smiles appointment desk", "Bright Smiles desk")
    ]
    assert result.moved == []  # greeting had no position before: not a move
    lines = result.lines()
    assert "+ node ask_dob (collect) added" in lines
    assert "- node kept (say) removed" in lines
    assert (
        '    intents.hours.examples: +"hours" -"what are your opening hours" '
        '-"are you open on saturday"' in lines
    )
    as_json = json.loads(json.dumps(result.to_json()))
    assert as_json["nodes"]["added"] == [{"id": "ask_dob", "type": "collect", "fields": []}]
    assert as_json["highlights"]["kept"] == "removed"


def test_comment_and_format_changes_are_no_change() -> None:
    old = "schema: switchboard/v1\nid: g\nname: G\nstart: a\nnodes: {a: {type: end, text: Bye}}\n"
    new = (
        "# a note\nschema: switchboard/v1\nid: g\nname: G\nstart: a\n"
        "nodes:\n  a:\n    type: end\n    text: Bye\n"
    )
    result = diff_texts(old, new)
    assert result.empty and result.lines() == ["no changes to the graph"]
    moved = diff_texts(old + "layout: {a: {x: 1, y: 2}}\n", old + "layout: {a: {x: 5, y: 2}}\n")
    assert moved.moved == ["a"] and not moved.nodes


def test_missing_version_is_all_added_and_broken_text_is_an_error() -> None:
    new = "schema: switchboard/v1\nid: g\nname: G\nstart: a\nnodes: {a: {type: end, text: Bye}}\n"
    result = diff_texts(None, new)
    assert result.highlights == {"a": "added"}
    with pytest.raises(DiffError, match="line 1"):
        diff_texts("nodes: [", new)
