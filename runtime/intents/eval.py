"""Evaluate a graph's route node on labelled caller utterances.

A data file is JSON Lines: one `{"text": ..., "intent": NAME}` object per line
(blank lines skipped), where NAME is one of the route node's intents or one of
the graph's global intents, and `"intent": null` marks an utterance the node
must not route (it has to reach the node's `fallback`). The node is classified
exactly as the compiled graph would: its intents plus the global intents in one
set, built by the graph's classifier factory (`runtime.compiler.
default_intent_sets`: embedded by default, the LLM with `routing.classifier:
llm`) with the node's threshold, else the graph's `routing.threshold`.

The report gives accuracy on in-scope utterances (labelled with an intent),
out-of-scope recall (null-labelled ones that reached the fallback), a confusion
count of (expected, got) pairs, and the time of each classification (p50, p99),
measured around the same awaited `classify` call a route node makes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nodes.base import IntentSetFactory
from nodes.globals import PREFIX, GlobalIntents
from nodes.route import route_examples, route_threshold
from schemas.spec import GraphSpec, RouteNode

#: Labels shown for "no intent": out of scope as expected, fallback as got.
OUT_OF_SCOPE = "(out of scope)"
FALLBACK = "(fallback)"
#: Largest data file read (a labelled set is a few hundred lines).
MAX_DATA_BYTES = 10 * 1024 * 1024
MAX_TEXT_CHARS = 2000


class EvalInputError(ValueError):
    """The data file or the node to evaluate is unusable; the message says where."""


@dataclass(frozen=True)
class Labelled:
    """One labelled utterance and the line it came from."""

    line: int
    text: str
    intent: str | None


@dataclass(frozen=True)
class Classified:
    """How one utterance was classified: `got` is an intent name (a global
    intent by its own name) or None for the fallback."""

    item: Labelled
    got: str | None
    confidence: float
    ms: float

    @property
    def correct(self) -> bool:
        return self.got == self.item.intent


@dataclass
class RouteEvaluation:
    """Every classification of one evaluation and the figures derived from them."""

    graph: str
    node: str
    classifier: str
    threshold: float | None
    results: list[Classified] = field(default_factory=list)

    @property
    def in_scope(self) -> list[Classified]:
        return [r for r in self.results if r.item.intent is not None]

    @property
    def out_of_scope(self) -> list[Classified]:
        return [r for r in self.results if r.item.intent is None]

    @property
    def accuracy(self) -> float | None:
        """Share of in-scope utterances routed to their intent (None without any)."""
        scope = self.in_scope
        return sum(r.correct for r in scope) / len(scope) if scope else None

    @property
    def out_of_scope_recall(self) -> float | None:
        """Share of out-of-scope utterances that reached the fallback."""
        scope = self.out_of_scope
        return sum(r.got is None for r in scope) / len(scope) if scope else None

    def confusion(self) -> list[tuple[str, str, int]]:
        """(expected, got, count) for every pair seen, by expected label (file
        order of first appearance), most frequent first within it."""
        counts = Counter((r.item.intent or OUT_OF_SCOPE, r.got or FALLBACK) for r in self.results)
        order = {label: i for i, label in enumerate(dict.fromkeys(e for e, _ in counts))}
        pairs = sorted(counts.items(), key=lambda kv: (order[kv[0][0]], -kv[1], kv[0][1]))
        return [(e, g, n) for (e, g), n in pairs]

    def latency_ms(self) -> dict[str, float]:
        """p50, p99 and mean classification time in ms (linear interpolation)."""
        times = np.array([r.ms for r in self.results], dtype=float)
        if times.size == 0:
            return {"p50": 0.0, "p99": 0.0, "mean": 0.0}
        return {
            "p50": round(float(np.percentile(times, 50)), 3),
            "p99": round(float(np.percentile(times, 99)), 3),
            "mean": round(float(times.mean()), 3),
        }

    def as_dict(self) -> dict[str, Any]:
        """The whole report as one JSON-ready document."""
        acc, rec = self.accuracy, self.out_of_scope_recall
        return {
            "graph": self.graph,
            "node": self.node,
            "classifier": self.classifier,
            "threshold": self.threshold,
            "utterances": len(self.results),
            "in_scope": {
                "count": len(self.in_scope),
                "correct": sum(r.correct for r in self.in_scope),
                "accuracy": None if acc is None else round(acc, 4),
            },
            "out_of_scope": {
                "count": len(self.out_of_scope),
                "rejected": sum(r.got is None for r in self.out_of_scope),
                "recall": None if rec is None else round(rec, 4),
            },
            "confusion": [{"expected": e, "got": g, "count": n} for e, g, n in self.confusion()],
            "latency_ms": self.latency_ms(),
            "errors": [
                {
                    "line": r.item.line,
                    "text": r.item.text,
                    "expected": r.item.intent,
                    "got": r.got,
                    "confidence": round(r.confidence, 4),
                }
                for r in self.results
                if not r.correct
            ],
        }


def load_labelled(path: str | Path) -> list[Labelled]:
    """Read a JSONL data file. Raises `EvalInputError` naming `file:line` for an
    unreadable file, bad JSON, or an entry without a non-empty `text` string and
    an `intent` that is a string or null."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_DATA_BYTES:
            raise EvalInputError(f"{p}: larger than {MAX_DATA_BYTES // (1024 * 1024)} MB")
        raw = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{p}: cannot read: {exc}") from None
    items: list[Labelled] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise EvalInputError(f'{where}: expected an object {{"text": ..., "intent": ...}}')
        text, intent = entry.get("text"), entry.get("intent", ...)
        if not isinstance(text, str) or not text.strip():
            raise EvalInputError(f"{where}: 'text' must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            raise EvalInputError(f"{where}: 'text' is longer than {MAX_TEXT_CHARS} characters")
        if intent is ...:
            raise EvalInputError(f"{where}: 'intent' is missing (use null for out of scope)")
        if intent is not None and (not isinstance(intent, str) or not intent):
            raise EvalInputError(f"{where}: 'intent' must be an intent name or null")
        items.append(Labelled(number, text, intent))
    if not items:
        raise EvalInputError(f"{p}: no labelled utterances")
    return items


def route_node(graph: GraphSpec, node_id: str | None = None) -> tuple[str, RouteNode]:
    """The route node `node_id`, or the graph's first route node (file order).
    Raises `EvalInputError` when there is none or `node_id` is not a route."""
    routes = {n: spec for n, spec in graph.nodes.items() if isinstance(spec, RouteNode)}
    if node_id is None:
        if not routes:
            raise EvalInputError(f"graph {graph.id!r} has no route node")
        first = next(iter(routes))
        return first, routes[first]
    if node_id not in routes:
        kind = f"a {graph.nodes[node_id].type!r} node" if node_id in graph.nodes else "not a node"
        known = ", ".join(routes) or "none"
        raise EvalInputError(
            f"{node_id!r} is {kind} of graph {graph.id!r}; its route nodes: {known}"
        )
    return node_id, routes[node_id]


def check_labels(items: Sequence[Labelled], spec: RouteNode, graph: GraphSpec) -> None:
    """`EvalInputError` for the first label that is neither an intent of the node
    nor a global intent of the graph."""
    known = [*spec.intents, *graph.global_intents]
    for item in items:
        if item.intent is not None and item.intent not in known:
            raise EvalInputError(
                f"line {item.line}: intent {item.intent!r} is not an intent of this route node "
                f"or a global intent (known: {', '.join(known)}; null for out of scope)"
            )


def default_factory(graph: GraphSpec) -> IntentSetFactory:
    """The classifier factory the compiled graph uses; an LLM-routed graph gets
    the configured model (falling back to the embedded classifier without one)."""
    if graph.routing.classifier == "llm":
        from runtime.intents_llm import make_llm_intent_set_factory
        from runtime.llm import default_llm_factory

        return make_llm_intent_set_factory(graph, llm_factory=default_llm_factory())
    from runtime.compiler import default_intent_sets

    return default_intent_sets(graph)


async def evaluate_route(
    graph: GraphSpec,
    items: Sequence[Labelled],
    *,
    node: str | None = None,
    intent_sets: Callable[[GraphSpec], IntentSetFactory] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> RouteEvaluation:
    """Classify every item with route node `node` (default: the first one) as
    the compiled graph would, timing each classification with `clock` (seconds).
    Raises `EvalInputError` for an unknown node or label."""
    node_id, spec = route_node(graph, node)
    check_labels(items, spec, graph)
    factory = (intent_sets or default_factory)(graph)
    examples = route_examples(spec, GlobalIntents(graph=graph, matcher=None))
    threshold = route_threshold(spec, graph)
    # Preparing a set embeds every example: a worker thread, not the event loop.
    matcher = await asyncio.to_thread(factory, examples, threshold)
    effective = getattr(matcher, "threshold", threshold)
    report = RouteEvaluation(
        graph=graph.id,
        node=node_id,
        classifier=graph.routing.classifier,
        threshold=float(effective) if isinstance(effective, int | float) else None,
    )
    for item in items:
        started = clock()
        match = await matcher.classify(item.text)
        elapsed_ms = (clock() - started) * 1000
        name = match.name
        if isinstance(name, str) and name.startswith(PREFIX):
            got: str | None = name[len(PREFIX) :]
        else:
            got = name if name in spec.intents else None
        report.results.append(Classified(item, got, float(match.confidence), elapsed_ms))
    return report


def format_report(report: RouteEvaluation) -> str:
    """The report as readable text (what `switchboard intents eval` prints)."""

    def share(part: int, whole: int) -> str:
        return f"{part}/{whole} = {100 * part / whole:.1f} %" if whole else "n/a (none)"

    ins, oos = report.in_scope, report.out_of_scope
    threshold = "default" if report.threshold is None else f"{report.threshold:.2f}"
    lat = report.latency_ms()
    lines = [
        f"{report.graph} / {report.node}  ({report.classifier} classifier, threshold {threshold})",
        f"utterances: {len(report.results)} ({len(ins)} in scope, {len(oos)} out of scope)",
        f"in-scope accuracy:    {share(sum(r.correct for r in ins), len(ins))}",
        f"out-of-scope recall:  {share(sum(r.got is None for r in oos), len(oos))}",
        f"classification time:  p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms "
        f"(mean {lat['mean']:.2f} ms)",
        "confusion (expected -> got: count):",
    ]
    pairs = report.confusion()
    width = max((len(e) for e, _, _ in pairs), default=0)
    for expected, got, count in pairs:
        mark = "" if expected == got or (expected, got) == (OUT_OF_SCOPE, FALLBACK) else "  ✗"
        lines.append(f"  {expected:<{width}} -> {got}: {count}{mark}")
    misses = [r for r in report.results if not r.correct]
    if misses:
        lines.append("misses:")
        for r in misses:
            lines.append(
                f"  line {r.item.line}: {r.item.text!r} expected {r.item.intent or OUT_OF_SCOPE}, "
                f"got {r.got or FALLBACK} ({r.confidence:.2f})"
            )
    return "\n".join(lines) + "\n"
