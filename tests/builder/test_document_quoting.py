"""The quoting of an edited string: the author's quotes are kept unless the old
value forced them (an empty '' or ""), a value that needs quotes gets them, and
only the edited line changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.document import GraphDocument
from builder.roundtrip import scalar_style
from schemas.loader import load_graph_text

HOURS = "    text: We're open Monday to Friday from 9 to 5, and Saturday mornings from 9 to noon.\n"


def edit_text(dental_file: Path, old: str, new: str) -> tuple[list[str], object]:
    """Write `text: OLD` into node `hours`, set it to `new` through the document,
    and return the changed lines and the value the loader reads back."""
    text = dental_file.read_text("utf-8")
    assert text.count(HOURS) == 1
    before = text.replace(HOURS, f"    text: {old}\n")
    doc = GraphDocument(before, str(dental_file))
    doc.update_node("hours", {"text": new})
    changed = [b for a, b in zip(before.splitlines(), doc.text.splitlines(), strict=True) if a != b]
    loaded = load_graph_text(doc.text)
    assert loaded.document is not None
    return changed, loaded.document["nodes"]["hours"]["text"]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        # the empty string was quoted only because it was empty
        ("''", "x", "text: x"),
        ('""', "Hello there", "text: Hello there"),
        ("''", "it's open", "text: it's open"),
        # ... but a value that needs quotes still gets them
        ("''", "123", "text: '123'"),
        ("''", "true", "text: 'true'"),
        ("''", "a: b", "text: 'a: b'"),
        ("''", "#hash", "text: '#hash'"),
        # a plain value that must become quoted to stay a string
        ("hi", "null", "text: 'null'"),
        ("hi", "", "text: ''"),
        # the author's own quoting is kept
        ("'hello'", "bye", "text: 'bye'"),
        ('"hello"', "bye", 'text: "bye"'),
        ('"hello"', "it's", 'text: "it\'s"'),
        # single quotes holding a quote switch to double quotes (no '' doubling)
        ("'hello'", "it's", 'text: "it\'s"'),
        ("hi", "x", "text: x"),
    ],
)
def test_edited_string_gets_the_right_quoting(
    dental_file: Path, old: str, new: str, line: str
) -> None:
    changed, value = edit_text(dental_file, old, new)
    assert changed == [f"    {line}"]
    assert value == new and isinstance(value, str)


def test_a_text_with_several_lines_becomes_a_literal_block(dental_file: Path) -> None:
    text = dental_file.read_text("utf-8")
    doc = GraphDocument(text, str(dental_file))
    doc.update_node("hours", {"text": "We're open weekdays.\nClosed on Sundays."})
    assert "    text: |-\n      We're open weekdays.\n      Closed on Sundays.\n" in doc.text
    doc.update_node("hours", {"text": "Open every day."})
    assert "    text: Open every day.\n" in doc.text
    assert doc.text == text.replace(HOURS, "    text: Open every day.\n")


def test_scalar_style_keeps_an_equal_value_as_written() -> None:
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    kept = scalar_style(SingleQuotedScalarString("a"), "b")
    assert isinstance(kept, SingleQuotedScalarString) and kept == "b"
    assert type(scalar_style(SingleQuotedScalarString(""), "b")) is str
