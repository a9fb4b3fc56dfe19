"""Static graph checks: every code on a seeded-defect fixture, plus the details
(positions, hints, options, graph view) the CLI and the builder rely on."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from schemas.checks import CHECKS, GLOBAL_SOURCE, check_graph, graph_of
from schemas.diagnostics import Diagnostic
from schemas.source import SourceMap
from schemas.spec import TERMINAL_KINDS, WAITING_KINDS, GraphSpec

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
TOOLS = {"calendar.book", "billing.lookup", "billing.refund"}
GRAPHS = {"billing-support", "tech-support", "dental-front-desk"}
EXPECT = re.compile(r"#\s*expect:\s*(.+)$")


def load(text: str) -> tuple[GraphSpec, SourceMap]:
    """A spec and its source map from YAML text, as the loader builds them."""
    doc = YAML(typ="rt").load(text)
    return GraphSpec.model_validate(doc), SourceMap.from_document(doc)


def check(
    text: str, *, tools: Collection[str] | None = None, graphs: Collection[str] | None = None
) -> list[Diagnostic]:
    spec, source = load(text)
    return check_graph(spec, source, file="g.yaml", tools=tools, graphs=graphs)


def expectations(text: str) -> set[tuple[str, int, str | None]]:
    """(code, line, node) from `# expect: CODE@node CODE ...` markers."""
    out: set[tuple[str, int, str | None]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        m = EXPECT.search(line)
        if m:
            for token in m.group(1).replace(",", " ").split():
                code, _, node = token.partition("@")
                out.add((code, number, node or None))
    return out


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_fixture_reports_exactly_its_seeded_defects(path: Path) -> None:
    text = path.read_text()
    found = check(text, tools=TOOLS, graphs=GRAPHS)
    assert {(d.code, d.line, d.node) for d in found} == expectations(text)
    assert all(d.file == "g.yaml" for d in found)
    assert all(d.code in CHECKS for d in found)
    assert found == sorted(found, key=lambda d: (d.line, d.column, d.code))


def test_every_code_is_seeded_in_some_fixture_and_documented() -> None:
    seeded = set()
    for path in FIXTURES.glob("*.yaml"):
        seeded |= {code for code, _, _ in expectations(path.read_text())}
    assert seeded == set(CHECKS)
    import schemas.checks as module

    assert module.__doc__ is not None
    for code in CHECKS:
        assert f"- {code} " in module.__doc__


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def one(found: list[Diagnostic], code: str, node: str | None = None) -> Diagnostic:
    hits = [d for d in found if d.code == code and (node is None or d.node == node)]
    assert len(hits) == 1, found
    return hits[0]


def test_unknown_target_points_at_the_value_and_suggests() -> None:
    d = one(check(fixture("unknown_targets.yaml")), "E201", "book")
    assert d.severity == "error"
    assert d.pointer == "/nodes/book/on_error"
    assert d.column == 15  # the value `escalte`, not the key
    assert d.message == (
        "node 'book' sends 'on_error' to 'escalte', which is not a node; did you mean 'escalate'?"
    )


def test_unknown_intent_target_and_global_goto() -> None:
    found = check(fixture("unknown_targets.yaml"))
    intent = one(found, "E201", "menu")
    assert intent.pointer == "/nodes/menu/intents/hours/next"
    assert "'intents.hours.next' to 'hourz'" in intent.message
    glob = [d for d in found if d.code == "E201" and d.node is None]
    assert [d.pointer for d in glob] == ["/global_intents/human/goto"]
    assert "did you mean 'escalate'" in glob[0].message


def test_bad_start_suggests_and_skips_reachability() -> None:
    found = check(fixture("bad_start.yaml"))
    assert [(d.code, d.pointer) for d in found] == [("E210", "/start")]
    assert "did you mean 'greeting'" in found[0].message


def test_node_reached_only_by_a_global_intent_is_reachable() -> None:
    found = check(fixture("unreachable.yaml"))
    assert [d.node for d in found if d.code == "W202"] == ["orphan"]
    d = one(found, "W202")
    assert (d.severity, d.column, d.pointer) == ("warning", 3, "/nodes/orphan")


def test_trap_is_reported_once_and_names_its_members_and_feeders() -> None:
    found = check(fixture("trap.yaml"))
    d = one(found, "E204")
    assert d.node == "ask_more"
    assert "(nor from 'again', in the same loop)" in d.message
    assert "'hours' leads only into it" in d.message


def test_global_intent_is_a_way_out_of_a_waiting_loop() -> None:
    text = fixture("trap.yaml").replace(
        "nodes:\n",
        "global_intents:\n  bye: {examples: [goodbye, that is all], goto: transfer}\nnodes:\n",
    )
    assert [d.code for d in check(text)] == []


def test_loop_without_waiting_node_is_still_a_trap_when_it_cannot_finish() -> None:
    text = """
schema: switchboard/v1
id: g
name: g
start: a
global_intents:
  bye: {examples: [goodbye, that is all], goto: z}
nodes:
  a: {type: say, text: one, next: b}
  b: {type: say, text: two, next: a}
  z: {type: end}
"""
    found = check(text)
    assert {(d.code, d.node) for d in found} == {("E204", "a"), ("E205", "a")}
    assert "'a' -> 'b' -> 'a'" in one(found, "E205").message


def test_spin_loop_message_shows_the_cycle() -> None:
    found = check(fixture("spin_loop.yaml"))
    assert "'count_up' -> 'check' -> 'count_up'" in one(found, "E205", "count_up").message
    assert "'spin' -> 'spin'" in one(found, "E205", "spin").message


def test_variable_never_set_points_at_the_string_and_suggests() -> None:
    d = one(check(fixture("variables.yaml")), "E206")
    assert d.pointer == "/nodes/book/args/slots/0"
    assert "reads {dya} in 'args.slots.0'" in d.message
    assert "did you mean 'day'" in d.message


def test_variable_set_on_some_paths_names_the_paths_without_it() -> None:
    found = check(fixture("variables.yaml"))
    sorry = one(found, "W207", "sorry")
    assert sorry.pointer == "/nodes/sorry/text"
    assert "arriving from 'ask_day' via 'on_fail';" in sorry.message
    assert "'book'" not in sorry.message  # the tool's on_error comes after the slot is set
    bye = one(found, "W207", "bye")
    assert "{booking.when}" in bye.message
    assert "after a global intent" in bye.message
    assert "from 'guard' via 'cases.0.next'" in bye.message
    assert "cases.1" not in bye.message  # a false `missing` guard proves the variable is set


MINI = """
schema: switchboard/v1
id: g
name: g
start: ask
nodes:
  ask: {{type: collect, slot: name, prompt: "{prompt}", next: done, on_fail: done}}
  done: {{type: end, text: "{text}"}}
"""


@pytest.mark.parametrize(
    ("prompt", "text", "expected"),
    [
        ("Name?", "Bye {name}", {("W207", "done")}),  # on_fail does not set the slot
        ("Name, {name}?", "Bye", {("E206", "ask")}),  # a prompt cannot read its own slot
        ("Hi {caller}", "Bye {intent} {today}", set()),  # builtins
        ("Hi {name.first}", "Bye", {("E206", "ask")}),  # dotted reads check the root
        ("Use {{name}} literally", "Bye", set()),  # escaped braces are not a read
    ],
)
def test_collect_slot_is_set_only_on_next(
    prompt: str, text: str, expected: set[tuple[str, str]]
) -> None:
    found = check(MINI.format(prompt=prompt, text=text))
    assert {(d.code, d.node) for d in found} == expected


def test_slot_set_on_every_path_is_not_reported() -> None:
    text = MINI.format(prompt="Name?", text="Bye {name}").replace("on_fail: done", "on_fail: ask")
    assert check(text) == []


def test_exists_guard_is_not_a_read_and_sets_the_variable_on_its_edge() -> None:
    text = """
schema: switchboard/v1
id: g
name: g
start: check
nodes:
  check:
    type: branch
    cases:
      - when: [{var: vip, op: exists}, {var: vip.level, op: gt, value: 2}]
        next: greet
    default: plain
  greet: {type: end, text: "Welcome back, {vip.name}"}
  plain: {type: end, text: "Welcome {vip.name}"}
"""
    found = check(text)
    assert [(d.code, d.node, d.pointer) for d in found] == [("E206", "plain", "/nodes/plain/text")]


def test_tool_result_is_set_on_next_and_error_on_on_error() -> None:
    text = """
schema: switchboard/v1
id: g
name: g
start: look
nodes:
  look:
    type: tool
    tool: billing.lookup
    result: acct
    say: "Found account {acct.id}; {error}"
    next: done
    on_error: oops
  oops: {type: end, text: "Sorry about {acct.id}: {error}"}
  done: {type: end, text: "Balance {acct.balance}"}
"""
    found = check(text, tools=TOOLS)
    # the say is spoken after a successful call: it sees the result, never an error
    assert [(d.code, d.node, d.message.split(" in ")[0]) for d in found] == [
        ("E206", "look", "node 'look' reads {error}"),
        ("E206", "oops", "node 'oops' reads {acct.id}"),
    ]


def test_unknown_tools_and_suggestions() -> None:
    found = check(fixture("unknown_tools.yaml"), tools=TOOLS)
    look = one(found, "E208", "look")
    assert look.pointer == "/nodes/look/tool"
    assert look.message.endswith("not a registered tool; did you mean 'billing.lookup'?")
    assert one(found, "E208", "chat").pointer == "/nodes/chat/tools/1"


def test_names_are_not_checked_without_a_catalog() -> None:
    assert check(fixture("unknown_tools.yaml")) == []
    assert check(fixture("handoffs.yaml")) == []


def test_handoff_compares_the_graph_id_before_the_ref() -> None:
    d = one(check(fixture("handoffs.yaml"), graphs=GRAPHS), "E209")
    assert d.pointer == "/nodes/billing/graph"
    assert "graph 'biling-support'" in d.message and "did you mean 'billing-support'" in d.message
    assert check(fixture("clean.yaml"), graphs={"billing-support"}) == []


def test_duplicate_examples_name_both_intents() -> None:
    found = check(fixture("intents.yaml"))
    dups = [d for d in found if d.code == "W213"]
    assert [d.pointer for d in dups] == [
        "/nodes/menu/intents/move/examples/1",
        "/nodes/menu/intents/leave/examples/0",
    ]
    assert "of intent 'move' is also an example of intent 'book';" in dups[0].message
    assert "global intent 'bye'" in dups[1].message


def test_duplicate_examples_across_global_intents() -> None:
    text = """
schema: switchboard/v1
id: g
name: g
start: done
global_intents:
  a: {examples: [stop it, cancel], goto: done}
  b: {examples: [Cancel, never mind], goto: done}
nodes:
  done: {type: end}
"""
    d = one(check(text), "W213")
    assert (d.pointer, d.node) == ("/global_intents/b/examples/0", None)


def test_collect_without_on_fail_says_what_happens() -> None:
    found = check(fixture("collect.yaml"))
    w = one(found, "W215")
    assert "ends as failed" in w.message and "3 failed attempts" in w.message
    e = one(found, "E214")
    assert (e.pointer, e.column) == ("/nodes/pick/kind", 11)


def test_without_source_every_position_is_the_top_of_the_file() -> None:
    spec, _ = load(fixture("collect.yaml"))
    found = check_graph(spec)
    assert {(d.line, d.column, d.file) for d in found} == {(1, 1, "<string>")}
    assert [d.code for d in found] == ["E214", "W215"]


def test_graph_of_labels_edges_and_adds_global_source() -> None:
    spec, _ = load(fixture("clean.yaml"))
    g = graph_of(spec)
    assert g.nodes["route"]["kind"] == "route"
    assert g.nodes[GLOBAL_SOURCE]["kind"] == "global"
    assert {lbl for _, _, lbl in g.out_edges("route", data="label")} == {
        "intent:book",
        "intent:billing",
        "fallback",
    }
    assert list(g.out_edges(GLOBAL_SOURCE, data="label")) == [
        (GLOBAL_SOURCE, "escalate", "global:human")
    ]
    assert g.number_of_edges("book", "escalate") == 1
    assert g.number_of_edges("check", "escalate") == 1
    assert set(g.nodes) == {*spec.nodes, GLOBAL_SOURCE}


def test_graph_of_leaves_out_unknown_targets_and_unused_global_source() -> None:
    spec, _ = load(fixture("unknown_targets.yaml"))
    g = graph_of(spec)
    assert GLOBAL_SOURCE not in g
    assert "hourz" not in g and "escalte" not in g
    assert set(g.successors("book")) == {"bye"}


IDS = ["a", "b", "c", "d", "e"]
KINDS = ["say", "collect", "route", "llm", "tool", "branch", "handoff", "escalate", "end"]
texts = st.sampled_from(["hi", "{x}", "{slot_a} and {res.v}", "{error}", "{missing.deep}"])
targets = st.sampled_from([*IDS, "nowhere"])


@st.composite
def node_docs(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(KINDS))
    doc: dict[str, object] = {"type": kind}
    if kind == "say":
        doc |= {"text": draw(texts), "next": draw(targets)}
    elif kind == "collect":
        doc |= {"slot": "slot_a", "prompt": draw(texts), "next": draw(targets)}
        doc["kind"] = draw(st.sampled_from(["text", "choice"]))
        if draw(st.booleans()):
            doc["on_fail"] = draw(targets)
    elif kind == "route":
        names = draw(st.lists(st.sampled_from(["p", "q"]), unique=True))
        doc["intents"] = {
            n: {
                "examples": draw(st.lists(st.sampled_from(["yes", "no", "Yes "]))),
                "next": draw(targets),
            }
            for n in names
        }
        doc["fallback"] = draw(targets)
    elif kind == "llm":
        doc["prompt"] = draw(texts)
        doc["exits"] = {
            n: {"description": "d", "next": draw(targets)}
            for n in draw(st.lists(st.sampled_from(["done", "stop"]), unique=True))
        }
        if draw(st.booleans()):
            doc["on_error"] = draw(targets)
    elif kind == "tool":
        doc |= {"tool": "calendar.book", "args": {"v": [draw(texts)]}, "next": draw(targets)}
        doc["result"] = draw(st.sampled_from([None, "res"]))
        doc["say"] = draw(st.sampled_from([None, "{res.v}"]))
        if draw(st.booleans()):
            doc["on_error"] = draw(targets)
    elif kind == "branch":
        ops = st.sampled_from(["eq", "exists", "missing"])
        doc["cases"] = [
            {
                "when": [{"var": draw(st.sampled_from(["x", "res.v", "slot_a"])), "op": draw(ops)}],
                "match": draw(st.sampled_from(["all", "any"])),
                "next": draw(targets),
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
        doc["default"] = draw(targets)
    elif kind == "handoff":
        doc["graph"] = draw(st.sampled_from(["billing-support", "nope@v1"]))
    elif kind == "escalate":
        doc["reason"] = "r"
    return doc


@st.composite
def graph_docs(draw: st.DrawFn) -> dict[str, object]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, unique=True))
    gotos = st.sampled_from([None, *IDS, "nowhere"])
    return {
        "id": "g",
        "name": "g",
        "start": draw(st.sampled_from([*ids, "nowhere"])),
        "variables": draw(st.sampled_from([{}, {"x": 1}])),
        "global_intents": {
            n: {"examples": draw(st.lists(st.sampled_from(["yes", "bye"]))), "goto": draw(gotos)}
            for n in draw(st.lists(st.sampled_from(["h", "k"]), unique=True))
        },
        "nodes": {i: draw(node_docs()) for i in ids},
    }


@settings(max_examples=300, deadline=None)
@given(graph_docs())
def test_any_valid_spec_gets_consistent_findings_and_never_raises(doc: dict[str, object]) -> None:
    spec = GraphSpec.model_validate(doc)
    found = check_graph(spec, tools=TOOLS, graphs=GRAPHS)
    assert found == sorted(found, key=lambda d: (d.line, d.column, d.code))
    for d in found:
        assert d.code in CHECKS
        assert d.severity == ("error" if d.code.startswith("E") else "warning")
        kind = spec.nodes[d.node].type if d.node else None
        if d.code == "E204":
            assert kind not in TERMINAL_KINDS
        if d.code == "E205":
            assert kind not in WAITING_KINDS
    per_node = [(d.code, d.node) for d in found if d.code in {"E203", "E204", "W202", "W215"}]
    assert len(per_node) == len(set(per_node))  # never reported twice for one node


def test_escalate_reason_and_say_are_templates() -> None:
    text = """
schema: switchboard/v1
id: g
name: g
start: ask
nodes:
  ask: {type: collect, slot: name, prompt: "Name?", next: done, on_fail: human}
  human: {type: escalate, reason: "could not get a name for {caler}", say: "One moment {name}."}
  done: {type: end}
"""
    found = check(text)
    assert [(d.code, d.pointer) for d in found] == [
        ("E206", "/nodes/human/reason"),
        ("E206", "/nodes/human/say"),
    ]
    assert "did you mean 'caller'" in found[0].message
