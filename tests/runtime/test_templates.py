"""Safe templates: substitution only. A value is inserted verbatim and never
expanded again, and no template can reach an attribute or run code."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.templates import lookup, placeholders, render, render_value

VARS: dict[str, Any] = {
    "name": "Maria",
    "booking": {"when": "Tuesday at 10", "slot": {"room": 3}},
    "items": ["a", "b", "c"],
    "count": 3,
    "price": 12.0,
    "ratio": 0.5,
    "ok": True,
    "no": False,
    "none": None,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {name}.", "Hello Maria."),
        ("{booking.when}", "Tuesday at 10"),
        ("room {booking.slot.room}", "room 3"),
        ("first {items.0}, last {items.2}", "first a, last c"),
        ("{items}", "a, b, c"),
        ("{count} items at {price} ({ratio})", "3 items at 12 (0.5)"),
        ("{ok}/{no}", "yes/no"),
        ("[{none}]", "[]"),
        ("[{missing}] [{booking.nothing}] [{items.9}] [{name.first}]", "[] [] [] []"),
        ("{{name}} is {name}", "{name} is Maria"),
        ("{{{name}}}", "{Maria}"),
        ("a }} b {{ c", "a } b { c"),
        ("{ name } {1name} {} {name!r} {name:>10}", "{ name } {1name} {} {name!r} {name:>10}"),
        ("no placeholders", "no placeholders"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, VARS) == expected


@pytest.mark.parametrize(
    "value",
    ["{other}", "{{7*7}}", "{0.__class__}", "{name}", "${name}", "{{name}}", "}{", "%(name)s"],
)
def test_a_value_that_looks_like_a_template_is_inserted_verbatim(value: str) -> None:
    variables = {**VARS, "said": value, "other": "EXPANDED"}
    assert render("You said: {said}!", variables) == f"You said: {value}!"
    assert render_value("{said}", variables) == value
    assert render_value("x {said}", variables) == f"x {value}"


@pytest.mark.parametrize(
    "template",
    [
        "{name.__class__}",
        "{name.__class__.__mro__}",
        "{booking.__class__}",
        "{name.upper}",
        "{booking.keys}",
        "{items.__len__}",
        "{0.__class__}",
        "{__builtins__}",
        "{__import__}",
    ],
)
def test_attributes_and_builtins_are_unreachable(template: str) -> None:
    out = render(template, VARS)
    assert "<" not in out  # no repr of a class, method or builtin
    assert out in ("", template)


def test_lookup_reads_only_mappings_and_list_indexes() -> None:
    assert lookup(VARS, "booking.slot.room") == 3
    assert lookup(VARS, "items.1") == "b"
    assert lookup(VARS, "items.-1") is None
    assert lookup(VARS, "name.0") is None
    assert lookup(VARS, "count.real") is None


def test_render_value_keeps_the_type_of_a_lone_placeholder() -> None:
    args = {
        "n": "{count}",
        "flag": "{ok}",
        "when": "{booking}",
        "list": ["{items}", "{count} x"],
        "text": "{count}",
        "missing": "{missing}",
        "literal": 7,
        "escaped": "{{count}}",
    }
    assert render_value(args, VARS) == {
        "n": 3,
        "flag": True,
        "when": {"when": "Tuesday at 10", "slot": {"room": 3}},
        "list": [["a", "b", "c"], "3 x"],
        "text": 3,
        "missing": None,
        "literal": 7,
        "escaped": "{count}",
    }


def test_placeholders_lists_every_path_read() -> None:
    value = {"a": "{x} and {y.z}", "b": ["{{not}}", "{w}"], "c": 3}
    assert placeholders(value) == {"x", "y.z", "w"}
    assert placeholders("{{x}}") == set()


# --- properties -------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
LITERAL = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=10,
)


@given(st.lists(st.one_of(LITERAL, st.just(None)), max_size=8), st.text(max_size=40))
def test_rendering_inserts_any_text_value_verbatim(parts: list[str | None], value: str) -> None:
    """A template of literal text and `{v}` placeholders renders to the literal
    text with the value spliced in unchanged, whatever the value contains."""
    template = "".join("{v}" if p is None else p for p in parts)
    expected = "".join(value if p is None else p for p in parts)
    assert render(template, {"v": value, "other": "EXPANDED"}) == expected


@given(st.text(max_size=60), st.dictionaries(NAMES, JSON, max_size=4))
def test_render_never_raises(template: str, variables: dict[str, Any]) -> None:
    assert isinstance(render(template, variables), str)
    render_value({"a": template, "b": [template]}, variables)
    placeholders(template)


@given(st.text(max_size=60))
def test_a_template_without_braces_is_unchanged(template: str) -> None:
    plain = template.replace("{", "").replace("}", "")
    assert render(plain, VARS) == plain
