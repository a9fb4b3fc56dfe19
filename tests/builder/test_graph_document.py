"""Round-trip edits of a graph file: each operation changes exactly the lines it
concerns, and every comment and untouched line stays byte-identical."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.document import (
    DRAFT_MARKER,
    DocumentConflict,
    DocumentError,
    DocumentInvalid,
    Edge,
    GraphDocument,
    edges_of,
)
from schemas.catalog import GraphCatalog
from schemas.loader import load_graph_file, load_graph_text
from schemas.spec import node_targets


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    removed: list[str] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "equal":
            removed += before.splitlines()[a0:a1]
            added += after.splitlines()[b0:b1]
    return removed, added


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if "#" in line and "{" not in line]


def edit_and_diff(
    path: Path, edit: Callable[[GraphDocument], object]
) -> tuple[list[str], list[str]]:
    doc = GraphDocument.open(path)
    before = doc.text
    edit(doc)
    after = doc.text
    assert comments(after) == comments(before)
    assert load_graph_text(after).document is not None
    return changed_lines(before, after)


def test_update_node_field_changes_only_that_line(dental_file: Path) -> None:
    removed, added = edit_and_diff(
        dental_file, lambda d: d.update_node("ask_day", {"prompt": "What day works?"})
    )
    assert removed == ["    prompt: Which day suits you?"]
    assert added == ["    prompt: What day works?"]


def test_update_nested_list_and_remove_field(dental_file: Path) -> None:
    def edit(d: GraphDocument) -> None:
        d.set_field("route", ("intents", "hours", "examples"), ["when are you open", "hours?"])
        d.update_node("ask_day", {"reprompt": None})

    removed, added = edit_and_diff(dental_file, edit)
    assert removed == [
        "        examples: [what are your opening hours, when are you open, "
        "are you open on saturday]",
        "    reprompt: Sorry, which day would you like to come in? For example, next Tuesday.",
    ]
    # The flow style of the list is kept.
    assert added == ["        examples: [when are you open, hours?]"]


def test_add_node_after_another_and_connect(dental_file: Path) -> None:
    def edit(d: GraphDocument) -> None:
        d.add_node(
            "ask_dob",
            "collect",
            {"slot": "dob", "kind": "date", "prompt": "What is your date of birth?"},
            after="ask_name",
        )
        d.connect("ask_dob", "next", "book")
        d.reconnect("ask_name", "next", "ask_dob")

    doc = GraphDocument.open(dental_file)
    before = doc.text
    edit(doc)
    ask_name = "    prompt: And may I have your name, please?\n    next: book\n"
    assert doc.text == before.replace(
        ask_name,
        "    prompt: And may I have your name, please?\n"
        "    next: ask_dob\n"
        "  ask_dob:\n"
        "    type: collect\n"
        "    slot: dob\n"
        "    kind: date\n"
        "    prompt: What is your date of birth?\n"
        "    next: book\n",
    )
    assert doc.node_ids().index("ask_dob") == doc.node_ids().index("ask_name") + 1
    assert [d for d in doc.diagnostics(dental_file.parent) if d.severity == "error"] == []


def test_remove_node_reports_dangling_edges(dental_file: Path) -> None:
    dangling: list[Edge] = []

    def edit(d: GraphDocument) -> None:
        dangling.extend(d.remove_node("kept"))

    removed, added = edit_and_diff(dental_file, edit)
    assert removed == [
        "  kept:",
        "    type: say",
        "    text: No problem, I've kept your appointment.",
        "    next: hand_back",
    ]
    assert added == []
    assert dangling == [Edge("cancel_or_keep", "default", "kept")]


def test_remove_node_keeps_the_comment_of_the_next_node(dental_file: Path) -> None:
    removed, _ = edit_and_diff(dental_file, lambda d: d.remove_node("cancel"))
    assert "  # Anything we cannot do goes to a person." not in removed


def test_rename_node_updates_every_reference(dental_file: Path) -> None:
    removed, added = edit_and_diff(
        dental_file, lambda d: d.rename_node("hand_back", "back_to_desk")
    )
    assert removed == ["    next: hand_back", "  hand_back:"] + ["    next: hand_back"] * 3
    assert added == ["    next: back_to_desk", "  back_to_desk:"] + ["    next: back_to_desk"] * 3
    doc = GraphDocument.open(dental_file)
    doc.rename_node("escalate", "operator")
    data = doc.data
    assert data["global_intents"]["human"]["goto"] == "operator"
    assert "escalate" not in {e.target for e in doc.edges()}
    # The comment above the renamed node stays with it.
    assert "  # Anything we cannot do goes to a person.\n  operator:\n" in doc.text


def test_disconnect_removes_only_the_edge_field(dental_file: Path) -> None:
    removed, added = edit_and_diff(dental_file, lambda d: d.disconnect("has_slots", "case:0"))
    assert removed == ["        next: ask_time"]
    assert added == []
    doc = GraphDocument.open(dental_file)
    with pytest.raises(DocumentError, match="no edge 'intent:nope'"):
        doc.disconnect("route", "intent:nope")


def test_connect_new_intent_and_case(dental_file: Path) -> None:
    doc = GraphDocument.open(dental_file)
    doc.connect("route", "intent:move", "ask_day")
    doc.connect("has_slots", "case:1", "no_slots")
    assert doc.node("route")["intents"]["move"] == {"next": "ask_day"}
    assert doc.node("has_slots")["cases"][1] == {"when": [], "next": "no_slots"}
    with pytest.raises(DocumentError, match="not an edge"):
        doc.connect("has_slots", "case:5", "no_slots")
    with pytest.raises(DocumentError, match="no node 'nowhere'"):
        doc.connect("greeting", "next", "nowhere")


def test_positions_go_to_a_layout_section_at_the_end(dental_file: Path) -> None:
    def edit(d: GraphDocument) -> None:
        d.set_positions({"greeting": (0, 0), "route": (240.04, 130.5)})

    removed, added = edit_and_diff(dental_file, edit)
    assert removed == []
    assert added == ["layout:", "  greeting: {x: 0, y: 0}", "  route: {x: 240, y: 130.5}"]
    doc = GraphDocument.open(dental_file)
    edit(doc)
    doc.set_positions({"greeting": (10, 20)})
    assert doc.text.endswith("layout:\n  greeting: {x: 10, y: 20}\n  route: {x: 240, y: 130.5}\n")
    with pytest.raises(DocumentError, match="finite number"):
        doc.set_positions({"greeting": (float("nan"), 1)})


def test_graph_settings(dental_file: Path) -> None:
    def edit(d: GraphDocument) -> None:
        d.set_setting("name", "Bright Smiles desk")
        d.set_setting("variables", {"clinic": "Bright Smiles", "city": "Leeds"})
        d.set_setting("fallback_line", "One moment please.")

    removed, added = edit_and_diff(dental_file, edit)
    assert removed == ["name: Bright Smiles appointment desk"]
    assert added == [
        "name: Bright Smiles desk",
        "  city: Leeds",
        "fallback_line: One moment please.",
    ]
    with pytest.raises(DocumentError, match="node and layout operations"):
        GraphDocument.open(dental_file).set_setting("nodes", {})


def test_set_node_replaces_fields_keeping_the_rest(dental_file: Path) -> None:
    doc = GraphDocument.open(dental_file)
    body = doc.node("ask_day")
    body.pop("reprompt")
    body["prompt"] = "Which day?"
    before = doc.text
    doc.set_node("ask_day", body)
    removed, added = changed_lines(before, doc.text)
    assert sorted(removed) == [
        "    prompt: Which day suits you?",
        "    reprompt: Sorry, which day would you like to come in? For example, next Tuesday.",
    ]
    assert added == ["    prompt: Which day?"]
    assert "    slot: day  # the caller's preferred day" in doc.text


def test_bad_arguments_are_refused_clearly(dental_file: Path) -> None:
    doc = GraphDocument.open(dental_file)
    with pytest.raises(DocumentError, match="not a valid node id"):
        doc.add_node("../etc", "say")
    with pytest.raises(DocumentError, match="unknown node kind 'speak'"):
        doc.add_node("x", "speak")
    with pytest.raises(DocumentError, match="already exists"):
        doc.add_node("greeting", "say")
    with pytest.raises(DocumentError, match="no node 'ghost'"):
        doc.update_node("ghost", {"text": "x"})
    with pytest.raises(DocumentError, match="cannot hold object"):
        doc.update_node("greeting", {"text": object()})
    with pytest.raises(DocumentError, match="cannot be edited") as info:
        GraphDocument("nodes: [unclosed\n", "broken.yaml")
    assert info.value.diagnostics[0].code == "E101"


def test_invalid_edit_is_saved_only_as_a_marked_draft(dental_file: Path) -> None:
    doc = GraphDocument.open(dental_file)
    doc.connect("greeting", "next", "ask_day")
    doc.update_node("ask_day", {"next": None})  # required field missing
    with pytest.raises(DocumentInvalid) as info:
        doc.save()
    assert any(d.node == "ask_day" for d in info.value.diagnostics)
    assert "reprompt" in dental_file.read_text()  # nothing written
    result = doc.save(draft=True)
    assert result.draft
    text = dental_file.read_text()
    assert text.startswith(DRAFT_MARKER + "\n")
    loaded = load_graph_file(dental_file)
    assert [d.node for d in loaded.diagnostics if d.severity == "error"] == ["ask_day"]
    reopened = GraphDocument.open(dental_file)
    assert reopened.is_draft
    reopened.update_node("ask_day", {"next": "find_slots"})
    assert not reopened.save().draft
    assert not dental_file.read_text().startswith(DRAFT_MARKER)
    assert dental_file.read_text() == reopened.text


def test_save_refuses_to_overwrite_a_file_changed_on_disk(dental_file: Path) -> None:
    doc = GraphDocument.open(dental_file)
    doc.update_node("greeting", {"text": "Hello!"})
    dental_file.write_text(dental_file.read_text() + "# edited by hand\n")
    with pytest.raises(DocumentConflict):
        doc.save()
    assert doc.save(force=True).path == dental_file
    assert "Hello!" in dental_file.read_text()


def test_json_graphs_are_edited_as_json(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(
        '{"schema": "switchboard/v1", "id": "g", "name": "G", "start": "a",'
        ' "nodes": {"a": {"type": "end", "text": "Bye"}}}'
    )
    doc = GraphDocument.open(path)
    doc.update_node("a", {"text": "Goodbye"})
    assert doc.text.startswith('{\n  "schema": "switchboard/v1"')
    assert doc.save().path == path
    assert load_graph_file(path).spec is not None


def test_edges_of_agrees_with_node_targets_on_every_example() -> None:
    catalog = GraphCatalog(Path(__file__).resolve().parents[2] / "graphs")
    for path in catalog.files():
        loaded = catalog.load(path)
        assert loaded.spec is not None
        expected = {
            Edge(node_id, label, target)
            for node_id, node in loaded.spec.nodes.items()
            for label, target in node_targets(node).items()
        }
        assert set(edges_of(loaded.document)) == expected, path.name
