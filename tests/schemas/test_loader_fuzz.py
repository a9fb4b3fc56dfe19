"""Property tests: no input makes the loader raise; broken documents always get a
located diagnostic near the break; documents the spec rejects never load; and
rewrites that keep a graph's meaning (key order, YAML or JSON, flow or block
style, extra descriptions and variables) still load to the same spec."""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from schemas.loader import LoadedGraph, load_graph_text
from schemas.source import escape
from schemas.spec import GraphSpec

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CODES = {"E100", "E101", "E102", "E103", "E110", "E111", "E112", "E113"}
KINDS = ["say", "collect", "route", "llm", "tool", "branch", "handoff", "escalate", "end"]
#: Mappings keyed by names the author chooses (not closed field sets).
OPEN_MAPS = {"variables", "args", "nodes", "intents", "exits", "global_intents", "layout"}

BASE: dict[str, Any] = {
    "schema": "switchboard/v1",
    "id": "dental-front-desk",
    "name": "Bright Smiles front desk",
    "start": "greeting",
    "voice": {"stt": "whisper", "tts": "espeak", "barge_in": {"min_words": 1}},
    "llm": {"model": "gpt-4o-mini", "temperature": 0.2},
    "variables": {"clinic": "Bright Smiles", "hours": [9, 17]},
    "global_intents": {
        "human": {"examples": ["talk to a person"], "goto": "escalate"},
        "again": {"examples": ["repeat that"], "action": "repeat"},
    },
    "nodes": {
        "greeting": {"type": "say", "text": "Thanks for calling {clinic}.", "next": "route"},
        "route": {
            "type": "route",
            "intents": {
                "book": {"examples": ["book an appointment"], "next": "ask_day"},
                "billing": {"examples": ["question about my bill"], "next": "billing"},
            },
            "fallback": "greeting",
        },
        "ask_day": {
            "type": "collect",
            "slot": "day",
            "kind": "date",
            "prompt": "Which day?",
            "next": "check",
            "max_attempts": 2,
        },
        "check": {
            "type": "branch",
            "cases": [{"when": [{"var": "day", "op": "exists"}], "next": "book"}],
            "default": "escalate",
        },
        "book": {
            "type": "tool",
            "tool": "calendar.book",
            "args": {"day": "{day}"},
            "result": "booking",
            "next": "chat",
            "on_error": "escalate",
        },
        "chat": {
            "type": "llm",
            "prompt": "Help the caller.",
            "tools": ["calendar.book"],
            "exits": {"done": {"description": "finished", "next": "confirm"}},
        },
        "billing": {"type": "handoff", "graph": "billing-support", "carry": ["day"]},
        "escalate": {"type": "escalate", "reason": "caller asked for a person"},
        "confirm": {"type": "end", "text": "Booked for {booking.when}."},
    },
    "layout": {"greeting": {"x": 0, "y": 0}},
}


# Control characters are not allowed raw in YAML (even inside strings), and a JSON
# dump may leave some raw; test_loader.py checks how they are reported.
def printable_text(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    chars = st.characters(exclude_categories=("Cc", "Cs"))
    return st.text(chars, min_size=min_size, max_size=max_size)


printable = printable_text()
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | printable
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(printable, inner, max_size=3),
    max_leaves=6,
)
var_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc)
    if fmt == "json-indented":
        return json.dumps(doc, indent=2, ensure_ascii=False)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = fmt == "yaml-flow"
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


formats = st.sampled_from(["yaml-block", "yaml-flow", "json", "json-indented"])


def load_as(doc: Any, fmt: str) -> tuple[LoadedGraph, str]:
    text = dump(doc, fmt)
    if fmt.startswith("yaml"):
        # ruamel's emitter can write flow YAML that no YAML parser reads back (a key
        # like ':0'); such a text is not the document under test.
        try:
            same = YAML(typ="safe", pure=True).load(text) == doc
        except YAMLError:
            same = False
        assume(same)
    return load_graph_text(text, "g.json" if fmt.startswith("json") else "g.yaml"), text


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))


def ptr(path: tuple[Any, ...]) -> str:
    return "".join("/" + escape(str(p)) for p in path)


def parent_of(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path[:-1]:
        doc = doc[p]
    return doc


def spec_accepts(doc: Any) -> bool:
    try:
        GraphSpec.model_validate(doc)
    except ValidationError:
        return False
    return True


def assert_sound(result: LoadedGraph, text: str | bytes) -> None:
    """What holds for every input: a spec xor errors, each located inside the text."""
    assert result.ok == (result.spec is not None)
    if not result.ok:
        assert any(d.severity == "error" for d in result.diagnostics)
    newline = b"\n" if isinstance(text, bytes) else "\n"
    last_line = text.count(newline) + 1  # type: ignore[arg-type]
    for d in result.diagnostics:
        assert d.code in CODES, d.format()
        assert 1 <= d.line <= last_line and d.column >= 1, d.format()
        assert "please report" not in d.message, d.format()  # schema and spec never drift


def assert_agrees_with_spec(result: LoadedGraph, doc: Any) -> None:
    """A document loads exactly when the spec accepts it too, and to the same spec."""
    if result.ok:
        assert result.spec == GraphSpec.model_validate(doc)
    else:
        assert result.spec is None
    if not spec_accepts(doc):
        assert not result.ok


def near(result: LoadedGraph, *pointers: str) -> bool:
    """Some error sits at or under one of `pointers`."""
    return any(
        d.pointer == p or d.pointer.startswith(p + "/")
        for d in result.diagnostics
        if d.severity == "error"
        for p in pointers
    )


# --- any input ---------------------------------------------------------------------------

yamlish = st.text(alphabet=st.sampled_from(list("ab:-[]{},&*!<>|#'\"?%@`~.0 \n\t")), max_size=200)


@FUZZ
@given(st.text(max_size=300) | yamlish)
def test_any_text_gives_a_spec_or_located_errors(text: str) -> None:
    assert_sound(load_graph_text(text, "g.yaml"), text)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_give_a_spec_or_located_errors(data: bytes) -> None:
    assert_sound(load_graph_text(data, "g.json"), data)


# --- structural mutations of a valid graph ----------------------------------------------


def test_base_document_is_valid_in_every_format() -> None:
    for fmt in ["yaml-block", "yaml-flow", "json", "json-indented"]:
        result = load_graph_text(dump(BASE, fmt), f"g.{fmt[:4]}")
        assert result.ok, [d.format() for d in result.diagnostics]
        assert result.spec == GraphSpec.model_validate(BASE)


@FUZZ
@given(st.data(), st.sampled_from(["yaml-block", "json-indented"]))
def test_text_edits_of_a_valid_file_give_a_spec_or_located_errors(
    data: st.DataObject, fmt: str
) -> None:
    text = dump(BASE, fmt)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 8)))
    inserted = data.draw(yamlish.map(lambda s: s[:6]))
    edited = text[:start] + inserted + text[end:]
    assert_sound(load_graph_text(edited, f"g.{fmt[:4]}"), edited)


@FUZZ
@given(st.data(), formats)
def test_dropped_field_is_reported_in_its_mapping(data: st.DataObject, fmt: str) -> None:
    doc = copy.deepcopy(BASE)
    keyed = [p for p, v in walk(doc) if p and isinstance(parent_of(doc, p), dict)]
    path = data.draw(st.sampled_from(keyed))
    del parent_of(doc, path)[path[-1]]
    result, text = load_as(doc, fmt)
    assert_sound(result, text)
    assert_agrees_with_spec(result, doc)
    if not result.ok:
        assert near(result, ptr(path[:-1])) if path[:-1] else result.diagnostics


@FUZZ
@given(st.data(), formats, json_values)
def test_wrong_type_is_reported_at_the_value(data: st.DataObject, fmt: str, new: Any) -> None:
    doc = copy.deepcopy(BASE)
    path = data.draw(st.sampled_from([p for p, _ in walk(doc) if p]))
    old = parent_of(doc, path)[path[-1]]
    if type(new) is type(old) or (isinstance(old, int | float) and isinstance(new, int | float)):
        new = [new] if not isinstance(old, list) else {"x": new}
    parent_of(doc, path)[path[-1]] = new
    result, text = load_as(doc, fmt)
    assert_sound(result, text)
    assert_agrees_with_spec(result, doc)
    if not result.ok:
        assert near(result, ptr(path), ptr(path[:-1]) or "/")


@FUZZ
@given(st.data(), formats, printable_text(min_size=1), json_values)
def test_unknown_field_is_reported_at_its_key(
    data: st.DataObject, fmt: str, key: str, value: Any
) -> None:
    doc = copy.deepcopy(BASE)
    maps = [p for p, v in walk(doc) if isinstance(v, dict) and key not in v]
    path = data.draw(st.sampled_from(maps))
    if key == "<<" or not maps:
        return
    target = doc
    for p in path:
        target = target[p]
    target[key] = value
    result, text = load_as(doc, fmt)
    assert_sound(result, text)
    assert_agrees_with_spec(result, doc)
    new_ptr = ptr((*path, key))
    if not path or path[-1] not in OPEN_MAPS:
        unknown = [d for d in result.diagnostics if d.code == "E112" and d.pointer == new_ptr]
        assert len(unknown) == 1, [d.format() for d in result.diagnostics]
        assert re.search(r"unknown field '.*'", unknown[0].message)
    elif not result.ok:
        assert near(result, new_ptr, ptr(path))


@FUZZ
@given(st.data(), formats, st.sampled_from(KINDS) | printable_text(max_size=8))
def test_changed_node_type_is_reported_on_that_node(
    data: st.DataObject, fmt: str, kind: str
) -> None:
    doc = copy.deepcopy(BASE)
    node_id = data.draw(st.sampled_from(sorted(doc["nodes"])))
    doc["nodes"][node_id]["type"] = kind
    result, text = load_as(doc, fmt)
    assert_sound(result, text)
    assert_agrees_with_spec(result, doc)
    if result.ok:
        assert result.spec is not None and result.spec.nodes[node_id].type == kind
    else:
        assert any(d.node == node_id for d in result.diagnostics)


# --- rewrites that keep the meaning ------------------------------------------------------


def shuffled(value: Any, rnd: Any) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rnd) for v in value]
    return value


@FUZZ
@given(
    formats,
    st.randoms(use_true_random=False),
    st.dictionaries(
        st.sampled_from(sorted(BASE["nodes"])), printable_text(max_size=40), max_size=4
    ),
    st.dictionaries(var_names, json_values, max_size=4),
)
def test_meaning_preserving_rewrites_still_load(
    fmt: str, rnd: Any, descriptions: dict[str, str], variables: dict[str, Any]
) -> None:
    doc = copy.deepcopy(BASE)
    for node_id, text in descriptions.items():
        doc["nodes"][node_id]["description"] = text
    doc["variables"].update(variables)
    doc = shuffled(doc, rnd)
    result, text = load_as(doc, fmt)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.spec == GraphSpec.model_validate(doc)
