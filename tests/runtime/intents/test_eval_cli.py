"""`switchboard intents eval`: figures computed exactly on a tiny set with a fake
classifier and a fake clock, the classifier built as the route node builds it,
clear errors for bad input, and a run on each real labelled set."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import runtime.intents.eval as eval_module
from nodes.base import IntentSetFactory
from runtime.cli import app
from runtime.intents import IntentMatch
from runtime.intents.eval import (
    FALLBACK,
    OUT_OF_SCOPE,
    EvalInputError,
    Labelled,
    evaluate_route,
    format_report,
    load_labelled,
)
from schemas.spec import GraphSpec
from tests.runtime.fixtures.calls import graph

ROOT = Path(__file__).resolve().parents[3]
ROUTING_DATA = ROOT / "benchmarks" / "data" / "routing"

GRAPH = """\
schema: switchboard/v1
id: shop
name: Shop
start: greet
routing: {threshold: 0.3}
global_intents:
  human: {examples: [a person please, real human], goto: bye}
nodes:
  greet: {type: say, text: Hi, next: menu}
  menu:
    type: route
    intents:
      order: {examples: [place an order, buy something], next: bye}
      track: {examples: [where is my parcel, track my order], next: bye}
    fallback: greet
    threshold: 0.55
  other:
    type: route
    intents:
      yes: {examples: [yes, sure], next: bye}
    fallback: bye
  bye: {type: end}
"""

#: What the fake classifier answers for each text (name as the route's set has it).
ANSWERS: dict[str, tuple[str | None, float]] = {
    "I want to buy shoes": ("order", 0.9),
    "get me some socks": ("order", 0.8),
    "where's my stuff": ("order", 0.6),  # wrong: expected track
    "has it shipped": (None, 0.2),  # wrong: fallback
    "parcel status": ("track", 0.7),
    "let me talk to someone": ("global:human", 0.9),
    "what's the weather": (None, 0.1),
    "tell me a joke": ("track", 0.56),  # wrong: out of scope routed
    "blue moon": ("not-an-intent", 0.9),  # an unknown name counts as the fallback
}
LABELS: list[tuple[str, str | None]] = [
    ("I want to buy shoes", "order"),
    ("get me some socks", "order"),
    ("where's my stuff", "track"),
    ("has it shipped", "track"),
    ("parcel status", "track"),
    ("let me talk to someone", "human"),
    ("what's the weather", None),
    ("tell me a joke", None),
    ("blue moon", None),
]
#: Each classification takes this long (ms) on the fake clock, in order.
DURATIONS_MS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0]


class FakeSet:
    def __init__(self, intents: dict[str, list[str]], threshold: float | None) -> None:
        self.intents = intents
        self.threshold = threshold

    async def classify(self, text: str) -> IntentMatch:
        name, confidence = ANSWERS[text]
        return IntentMatch(name, confidence)


built: list[FakeSet] = []


def fake_factory(spec: GraphSpec) -> IntentSetFactory:
    def make(intents: dict[str, list[str]], threshold: float | None) -> FakeSet:
        made = FakeSet(intents, threshold)
        built.append(made)
        return made

    return make


def fake_clock() -> Iterator[float]:
    now = 0.0
    for ms in DURATIONS_MS:
        yield now
        now += ms / 1000
        yield now
        now += 5.0  # time between classifications is not counted


def write_data(path: Path, rows: list[tuple[str, str | None]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "intent": i}) + "\n" for t, i in rows))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "shop.jsonl", LABELS)


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(GRAPH)
    return path


def evaluate(items: list[Labelled], node: str | None = None) -> Any:
    ticks = fake_clock()
    return asyncio.run(
        evaluate_route(
            graph(GRAPH),
            items,
            node=node,
            intent_sets=fake_factory,
            clock=lambda: next(ticks),
        )
    )


def test_figures_are_exact_on_a_known_set(data: Path) -> None:
    built.clear()
    report = evaluate(load_labelled(data))
    # The node's set is its intents plus the global ones, at the node's threshold.
    [made] = built
    assert set(made.intents) == {"order", "track", "global:human"}
    assert made.threshold == 0.55
    assert (report.node, report.threshold, report.classifier) == ("menu", 0.55, "embedding")
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.out_of_scope_recall == pytest.approx(2 / 3)
    assert report.confusion() == [
        ("order", "order", 2),
        ("track", "(fallback)", 1),
        ("track", "order", 1),
        ("track", "track", 1),
        ("human", "human", 1),
        (OUT_OF_SCOPE, FALLBACK, 2),
        (OUT_OF_SCOPE, "track", 1),
    ]
    # numpy's linear interpolation over [1, 2, ..., 8, 100] ms
    assert report.latency_ms() == {"p50": 5.0, "p99": 92.64, "mean": 15.111}
    doc = report.as_dict()
    assert doc["in_scope"] == {"count": 6, "correct": 4, "accuracy": 0.6667}
    assert doc["out_of_scope"] == {"count": 3, "rejected": 2, "recall": 0.6667}
    assert [(e["line"], e["got"]) for e in doc["errors"]] == [(3, "order"), (4, None), (8, "track")]


def test_text_report_names_the_figures_and_the_misses(data: Path) -> None:
    text = format_report(evaluate(load_labelled(data)))
    assert "shop / menu  (embedding classifier, threshold 0.55)" in text
    assert "utterances: 9 (6 in scope, 3 out of scope)" in text
    assert "in-scope accuracy:    4/6 = 66.7 %" in text
    assert "out-of-scope recall:  2/3 = 66.7 %" in text
    assert "p50 5.00 ms, p99 92.64 ms" in text
    assert "track          -> order: 1  ✗" in text
    assert "(out of scope) -> (fallback): 2\n" in text
    assert "line 8: 'tell me a joke' expected (out of scope), got track (0.56)" in text


def test_another_node_and_the_graph_threshold(tmp_path: Path) -> None:
    built.clear()
    items = [Labelled(1, "I want to buy shoes", None)]
    report = evaluate(items, node="other")
    assert report.node == "other" and built[0].threshold == 0.3  # routing.threshold
    assert report.out_of_scope_recall == 1.0 and report.accuracy is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "hi", "intent": "order"}\nnot json\n', "shop.jsonl:2: not valid JSON"),
        ('["hi", "order"]\n', "shop.jsonl:1: expected an object"),
        ('{"text": "", "intent": "order"}\n', "shop.jsonl:1: 'text' must be a non-empty string"),
        ('{"text": "hi"}\n', "shop.jsonl:1: 'intent' is missing (use null for out of scope)"),
        ('{"text": "hi", "intent": 3}\n', "shop.jsonl:1: 'intent' must be an intent name or null"),
        ("\n\n", "shop.jsonl: no labelled utterances"),
    ],
)
def test_bad_data_files_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "shop.jsonl"
    path.write_text(content)
    with pytest.raises(EvalInputError) as info:
        load_labelled(path)
    assert message in str(info.value)


def test_unknown_labels_and_nodes_are_input_errors() -> None:
    with pytest.raises(EvalInputError, match="line 1: intent 'refund' is not an intent"):
        evaluate([Labelled(1, "x", "refund")])
    with pytest.raises(EvalInputError, match="'greet' is a 'say' node of graph 'shop'"):
        evaluate([Labelled(1, "x", None)], node="greet")
    with pytest.raises(EvalInputError, match="'nope' is not a node of graph 'shop'; its route"):
        evaluate([Labelled(1, "x", None)], node="nope")


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_module, "default_factory", fake_factory)


def test_cli_json_is_one_document_with_the_figures(
    graph_file: Path, data: Path, fake_cli: None
) -> None:
    result = CliRunner().invoke(app, ["intents", "eval", str(graph_file), str(data), "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["graph"] == "shop" and doc["node"] == "menu" and doc["utterances"] == 9
    assert doc["in_scope"]["accuracy"] == 0.6667 and doc["out_of_scope"]["recall"] == 0.6667
    assert {"expected": "track", "got": "order", "count": 1} in doc["confusion"]
    assert set(doc["latency_ms"]) == {"p50", "p99", "mean"}
    assert all(v >= 0 for v in doc["latency_ms"].values())


def test_cli_text_report(graph_file: Path, data: Path, fake_cli: None) -> None:
    result = CliRunner().invoke(app, ["intents", "eval", str(graph_file), str(data)])
    assert result.exit_code == 0, result.output
    assert "in-scope accuracy:    4/6 = 66.7 %" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--node", "greet"], "'greet' is a 'say' node"),
        (["--format", "xml"], "--format must be text or json"),
    ],
)
def test_cli_bad_input_exits_2_with_a_reason(
    graph_file: Path, data: Path, fake_cli: None, extra: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["intents", "eval", str(graph_file), str(data), *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_cli_missing_data_file_exits_2(graph_file: Path, tmp_path: Path, fake_cli: None) -> None:
    result = CliRunner().invoke(
        app, ["intents", "eval", str(graph_file), str(tmp_path / "missing.jsonl")]
    )
    assert result.exit_code == 2 and "cannot read" in result.stderr


@pytest.mark.parametrize("path", sorted(ROUTING_DATA.glob("*.jsonl")), ids=lambda p: p.stem)
def test_cli_runs_on_the_real_labelled_sets(path: Path) -> None:
    graph_id, node = path.name.split(".")[:2]
    args = ["intents", "eval", str(ROOT / "graphs" / f"{graph_id}.yaml"), str(path)]
    result = CliRunner().invoke(app, [*args, "--node", node, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = load_labelled(path)
    assert doc["utterances"] == len(rows) >= 30
    assert doc["out_of_scope"]["count"] == sum(r.intent is None for r in rows) >= 8
    assert sum(c["count"] for c in doc["confusion"]) == len(rows)
    in_errors = sum(e["expected"] is not None for e in doc["errors"])
    assert doc["in_scope"]["correct"] == doc["in_scope"]["count"] - in_errors
    # A floor well below the measured figures (see README): catches a broken
    # classifier or mislabelled data, not small model changes.
    assert doc["in_scope"]["accuracy"] >= 0.5
    assert doc["out_of_scope"]["recall"] >= 0.5
