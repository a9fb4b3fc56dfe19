"""Graph loader: every error code at its exact line and column, YAML and JSON,
hostile documents (alias bombs, deep nesting, bad bytes), and the schema kept in
step with the pydantic spec."""

from __future__ import annotations

import json
import textwrap
import tracemalloc
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

import schemas.loader as loader_module
from schemas import spec as spec_module
from schemas.diagnostics import Diagnostic, GraphError
from schemas.loader import LoadedGraph, graph_schema, load_graph, load_graph_file, load_graph_text
from schemas.parsing import MAX_DEPTH, MAX_FILE_BYTES
from schemas.spec import CollectNode, GraphSpec, SayNode

FIXTURE = Path(__file__).parent / "fixtures" / "loader" / "front_desk.yaml"

MINIMAL = """\
id: tiny
name: Tiny
start: hello
nodes:
  hello: {type: say, text: Hi, next: bye}
  bye: {type: end}
"""


def load(text: str | bytes, file: str = "g.yaml") -> LoadedGraph:
    return load_graph_text(text if isinstance(text, bytes) else textwrap.dedent(text), file)


def only(result: LoadedGraph, code: str) -> Diagnostic:
    """The single diagnostic with `code`, after checking the load failed cleanly."""
    assert result.spec is None and not result.ok
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, [d.format() for d in result.diagnostics]
    return found[0]


def where(d: Diagnostic) -> tuple[int, int, str, str | None]:
    return d.line, d.column, d.pointer, d.node


# --- valid documents ----------------------------------------------------------------------


def test_minimal_graph_loads_with_defaults() -> None:
    result = load(MINIMAL)
    assert result.ok and result.diagnostics == []
    assert result.spec is not None
    assert result.spec.id == "tiny" and result.spec.start == "hello"
    assert result.spec.nodes["hello"] == SayNode(type="say", text="Hi", next="bye")
    assert result.spec.voice.stt == "whisper" and result.spec.routing.classifier == "embedding"
    assert result.document["nodes"]["hello"]["text"] == "Hi"  # round-trip document kept


def test_fixture_with_every_node_kind_anchors_and_merge_keys_loads() -> None:
    spec = load_graph(FIXTURE)
    assert {n.type for n in spec.nodes.values()} == {
        "say",
        "route",
        "collect",
        "branch",
        "tool",
        "llm",
        "handoff",
        "escalate",
        "end",
    }
    merged = spec.nodes["ask_again"]
    assert isinstance(merged, CollectNode)
    assert (merged.slot, merged.kind, merged.prompt) == ("day", "date", "Which other day?")
    assert spec.global_intents["again"].action == "repeat"
    assert spec.layout["route"].y == 0.5


def test_yaml_timestamps_stay_as_written_text() -> None:
    spec = load_graph(FIXTURE)
    assert spec.variables["opened"] == "2021-03-04"


def test_json_document_gives_the_same_spec_as_yaml(tmp_path: Path) -> None:
    from_yaml = load_graph_file(FIXTURE)
    assert from_yaml.spec is not None
    path = tmp_path / "front_desk.json"
    plain = json.loads(json.dumps(from_yaml.spec.model_dump(by_alias=True)))
    path.write_text(json.dumps(plain, indent=2))
    assert load_graph(path) == from_yaml.spec


def test_json_errors_point_at_json_lines() -> None:
    text = '{\n  "id": "x",\n  "name": 5,\n  "start": "a",\n  "nodes": {"a": {"type": "end"}}\n}'
    d = only(load(text, "g.json"), "E111")
    assert where(d) == (3, 11, "/name", None)
    assert "must be text, got the number 5" in d.message


def test_utf8_bom_is_accepted() -> None:
    assert load(b"\xef\xbb\xbf" + MINIMAL.encode()).ok


# --- E100 --------------------------------------------------------------------------------


def test_e100_missing_file(tmp_path: Path) -> None:
    d = only(load_graph_file(tmp_path / "nope.yaml"), "E100")
    assert d.file == str(tmp_path / "nope.yaml")
    assert "No such file" in d.message


def test_e100_directory_is_not_a_graph_file(tmp_path: Path) -> None:
    d = only(load_graph_file(tmp_path), "E100")
    assert "cannot read graph file" in d.message


def test_e100_non_utf8_bytes_at_their_position() -> None:
    d = only(load(b"id: x\nname: caf\xe9 bar\n"), "E100")
    assert (d.line, d.column) == (2, 10)
    assert "0xe9" in d.message


def test_e100_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    assert "larger than 2 MB" in only(load_graph_file(path), "E100").message


# --- E101 --------------------------------------------------------------------------------


def test_e101_yaml_syntax_error_at_parser_position() -> None:
    d = only(load("id: x\nnodes: [a, b\nname: y\n"), "E101")
    assert (d.line, d.column) == (3, 5)
    assert d.message.startswith("YAML syntax error:")


def test_e101_json_syntax_error_at_parser_position() -> None:
    d = only(load('{\n  "id": "x",\n}\n', "g.json"), "E101")
    assert (d.line, d.column) == (3, 1)
    assert d.message.startswith("JSON syntax error:")


def test_e101_undefined_alias() -> None:
    d = only(load("id: x\nname: *nope\n"), "E101")
    assert (d.line, d.column) == (2, 7)
    assert "undefined alias" in d.message


def test_e101_forbidden_control_character() -> None:
    d = only(load("id: x\nname: a\x00b\n"), "E101")
    assert (d.line, d.column) == (2, 8)


def test_e101_raw_control_character_in_a_json_string() -> None:
    d = only(load('{"id": "a\x7fb"}', "g.json"), "E101")
    assert (d.line, d.column) == (1, 10)
    assert "U+007F is not allowed" in d.message and "\\u007f" in d.message


def test_e101_json_nan_is_not_json() -> None:
    d = only(load('{"id": NaN}', "g.json"), "E101")
    assert "NaN is not valid JSON" in d.message


# --- E102 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty"), ("# only a comment\n", "empty"), ("- a\n- b\n", "a list"), ("hi", "text")],
)
def test_e102_document_is_not_a_mapping(text: str, words: str) -> None:
    d = only(load(text), "E102")
    assert words in d.message and "expected a mapping" in d.message


def test_e102_billion_laughs_is_refused_before_expansion() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    tracemalloc.start()
    try:
        result = load("\n".join(lines) + "\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    d = only(result, "E102")
    assert "alias" in d.message and d.line <= 10
    assert result.document is None
    assert peak < 5_000_000  # the 10**9-item expansion is never built


def test_e102_recursive_alias() -> None:
    d = only(load("id: x\nname: &loop [1, *loop]\n"), "E102")
    assert (d.line, d.column) == (2, 17)


def test_e102_deeply_nested_document() -> None:
    d = only(load("variables: " + "[" * 50_000 + "]" * 50_000 + "\n"), "E102")
    assert d.line == 1 and f"deeper than {MAX_DEPTH}" in d.message


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_DEPTH - 2  # root mapping and `variables` take two levels
    result = load(MINIMAL + "variables: {deep: " + "[" * (depth - 1) + "]" * (depth - 1) + "}\n")
    assert result.ok, [d.format() for d in result.diagnostics]


# --- E103 --------------------------------------------------------------------------------


def test_e103_every_duplicate_key_is_reported() -> None:
    text = """\
    id: tiny
    name: Tiny
    start: hello
    nodes:
      hello: {type: say, text: Hi, next: bye, text: Hello}
      bye: {type: end}
      bye: {type: end, text: Bye}
    name: Again
    """
    result = load(text)
    dups = [where(d) for d in result.diagnostics if d.code == "E103"]
    assert dups == [
        (5, 43, "/nodes/hello/text", "hello"),
        (7, 3, "/nodes/bye", "bye"),
        (8, 1, "/name", None),
    ]
    assert result.spec is None


# --- E110 .. E113 ------------------------------------------------------------------------


def test_e110_missing_field_points_at_the_enclosing_mapping() -> None:
    text = """\
    id: tiny
    name: Tiny
    start: ask_day
    nodes:
      ask_day:
        type: collect
        prompt: Which day?
        next: bye
      bye: {type: end}
    """
    d = only(load(text), "E110")
    assert where(d) == (5, 3, "/nodes/ask_day/slot", "ask_day")
    assert d.message.startswith("node 'ask_day': field 'slot' is required for a collect node")


def test_e110_top_level_field_and_choice_slot() -> None:
    text = """\
    id: tiny
    name: Tiny
    nodes:
      pick: {type: collect, slot: plan, kind: choice, prompt: Which?, next: bye}
      bye: {type: end}
    """
    found = [where(d) for d in load(text).diagnostics if d.code == "E110"]
    assert found == [(1, 1, "/start", None), (4, 3, "/nodes/pick/choices", "pick")]


def test_e110_global_intent_needs_goto_or_action() -> None:
    text = MINIMAL + "global_intents:\n  human: {examples: [a person please]}\n"
    d = only(load(text), "E110")
    assert where(d) == (8, 3, "/global_intents/human", None)
    assert "one of 'goto' or 'action' is required" in d.message


def test_e111_wrong_type_points_at_the_value() -> None:
    text = MINIMAL.replace("next: bye}", "next: bye, description: [a, b]}")
    d = only(load(text), "E111")
    assert where(d) == (5, 56, "/nodes/hello/description", "hello")
    assert "must be text or empty, got a list" in d.message


def test_e111_node_that_is_not_a_mapping() -> None:
    d = only(load(MINIMAL + "  oops: just text\n"), "E111")
    assert where(d) == (7, 9, "/nodes/oops", "oops")
    assert "must be a mapping with a 'type' field" in d.message


def test_e111_non_text_key_and_unsupported_yaml_value() -> None:
    text = MINIMAL + "  1: {type: end}\nvariables: {blob: !!binary aGVsbG8=}\n"
    found = [(d.line, d.column, d.message) for d in load(text).diagnostics if d.code == "E111"]
    assert found[0][:2] == (7, 3) and "key 1 must be text" in found[0][2]
    assert found[1][:2] == (8, 19) and "bytes values are not supported" in found[1][2]


def test_e112_unknown_field_points_at_the_key_with_a_suggestion() -> None:
    d = only(load(MINIMAL.replace("next: bye}", "nxt: bye}")), "E112")
    assert where(d) == (5, 32, "/nodes/hello/nxt", "hello")
    assert "unknown field 'nxt' for a say node (did you mean 'next'?)" in d.message


def test_e112_unknown_top_level_field_lists_the_allowed_ones() -> None:
    d = only(load(MINIMAL + "colour: blue\n"), "E112")
    assert where(d) == (7, 1, "/colour", None)
    assert "allowed: schema, id, name" in d.message


@pytest.mark.parametrize(
    ("old", "new", "pos", "pointer", "words"),
    [
        ("type: end}", "type: ending}", (6, 15), "/nodes/bye/type", "did you mean 'end'?"),
        ("id: tiny", "id: Tiny Desk", (1, 5), "/id", "expected a graph id"),
        ("  bye: {", "  bye bye: {", (6, 3), "/nodes/bye bye", "node id 'bye bye' is not valid"),
        ("text: Hi,", "text: '',", (5, 28), "/nodes/hello/text", "must not be empty"),
    ],
)
def test_e113_invalid_values(
    old: str, new: str, pos: tuple[int, int], pointer: str, words: str
) -> None:
    d = only(load(MINIMAL.replace(old, new)), "E113")
    assert ((d.line, d.column), d.pointer) == (pos, pointer)
    assert words in d.message


def test_e113_condition_operator_and_regex() -> None:
    text = """\
    id: tiny
    name: Tiny
    start: check
    nodes:
      check:
        type: branch
        cases:
          - when: [{var: day, op: equals, value: 1}, {var: day, op: matches, value: "(["}]
            match: every
            next: bye
        default: bye
      bye: {type: end}
    """
    found = [(d.line, d.column, d.pointer) for d in load(text).diagnostics]
    assert found == [
        (8, 31, "/nodes/check/cases/0/when/0/op"),
        (8, 81, "/nodes/check/cases/0/when/1/value"),
        (9, 16, "/nodes/check/cases/0/match"),
    ]
    messages = [d.message for d in load(text).diagnostics]
    assert "field 'cases[0].match' must be one of: all, any; got 'every'" in messages[2]
    assert "not a valid regular expression" in messages[1]


def test_every_error_in_a_file_is_reported_in_file_order() -> None:
    text = """\
    id: Bad Id
    name: 7
    start: a
    nodes:
      a: {type: say, text: Hi}
      b: {type: collect, slot: s, prompt: p, next: a, max_attempts: many, extra: 1}
      c: {type: rout}
    """
    result = load(text)
    codes = [(d.line, d.code) for d in result.diagnostics]
    assert codes == [(1, "E113"), (2, "E111"), (5, "E110"), (6, "E111"), (6, "E112"), (7, "E113")]
    assert all(d.file == "g.yaml" for d in result.diagnostics)


def test_load_graph_raises_graph_error_with_all_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: Bad Id\nname: 7\nstart: a\nnodes: {a: {type: end}}\n")
    with pytest.raises(GraphError) as info:
        load_graph(path)
    assert [d.code for d in info.value.diagnostics] == ["E113", "E111"]
    assert str(info.value).startswith(f"{path}:1:5: error E113")


def test_spec_drift_becomes_a_diagnostic_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    permissive = jsonschema.Draft202012Validator({})
    monkeypatch.setattr(loader_module, "_validator", lambda: permissive)
    d = only(load(MINIMAL.replace("text: Hi", "text: [1]")), "E111")
    assert where(d)[2:] == ("/nodes/hello/text", "hello")
    assert "please report" in d.message


# --- the schema and the spec agree --------------------------------------------------------

MODELS: dict[str, type[BaseModel]] = {
    "voice": spec_module.VoiceSettings,
    "barge_in": spec_module.BargeInSettings,
    "llm_settings": spec_module.LLMSettings,
    "routing": spec_module.RoutingSettings,
    "intent": spec_module.Intent,
    "global_intent": spec_module.GlobalIntent,
    "llm_exit": spec_module.LLMExit,
    "condition": spec_module.Condition,
    "branch_case": spec_module.BranchCase,
    "position": spec_module.Position,
    "say_node": spec_module.SayNode,
    "collect_node": spec_module.CollectNode,
    "route_node": spec_module.RouteNode,
    "llm_node": spec_module.LLMNode,
    "tool_node": spec_module.ToolNode,
    "branch_node": spec_module.BranchNode,
    "handoff_node": spec_module.HandoffNode,
    "escalate_node": spec_module.EscalateNode,
    "end_node": spec_module.EndNode,
    "return_node": spec_module.ReturnNode,
}


def test_schema_is_valid_draft_2020_12() -> None:
    schema = graph_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", ["<root>", *MODELS])
def test_schema_fields_required_and_defaults_match_the_spec(name: str) -> None:
    schema = graph_schema()
    sub = schema if name == "<root>" else schema["$defs"][name]
    model = GraphSpec if name == "<root>" else MODELS[name]
    fields = {(f.alias or n): f for n, f in model.model_fields.items()}
    assert set(sub["properties"]) == set(fields)
    assert sub["additionalProperties"] is False
    assert set(sub.get("required", [])) == {n for n, f in fields.items() if f.is_required()}
    for n, f in fields.items():
        prop = sub["properties"][n]
        if "default" in prop:
            default: Any = f.get_default()
            assert prop["default"] == default, (name, n)


def test_schema_enums_match_the_spec_literals() -> None:
    defs = graph_schema()["$defs"]
    assert defs["node"]["properties"]["type"]["enum"] == list(typing.get_args(spec_module.NodeKind))
    assert defs["collect_node"]["properties"]["kind"]["enum"] == list(
        typing.get_args(spec_module.SlotKind)
    )
    assert defs["condition"]["properties"]["op"]["enum"] == list(
        typing.get_args(spec_module.Operator)
    )
    dispatched = [b["then"]["$ref"].rsplit("/", 1)[1] for b in defs["node"]["allOf"]]
    assert dispatched == [f"{k}_node" for k in typing.get_args(spec_module.NodeKind)]


def test_every_field_has_a_description_for_the_builder_forms() -> None:
    schema = graph_schema()
    objects = {"<root>": schema, **schema["$defs"]}
    for name, sub in objects.items():
        for field, prop in sub.get("properties", {}).items():
            described = "description" in prop or set(prop) == {"$ref"}  # described at the $ref
            assert described, f"{name}.{field}"
        if "properties" in sub and name != "node":
            assert "description" in sub, name
