"""Measure an intent classifier on a labelled set of route nodes.

An evaluation file (YAML) holds `sets: {NAME: {intents: {INTENT: {examples: [...],
utterances: [...]}}, out_of_scope: [...]}}`. Each set is prepared as one
`IntentSet`; every utterance must come back as its intent and every out-of-scope
turn as no intent. Used by the held-out tests and `benchmarks/intents_quality.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from runtime.intents.classifier import IntentMatch, IntentSet
from runtime.intents.embedder import Embedder


@dataclass
class SetResult:
    """Counts for one set; `errors` lists (text, expected, got) of every miss."""

    in_scope: int = 0
    top1: int = 0
    routed: int = 0
    out_of_scope: int = 0
    rejected: int = 0
    errors: list[tuple[str, str | None, str | None]] = field(default_factory=list)


@dataclass
class Evaluation:
    sets: dict[str, SetResult]

    def _sum(self, attr: str) -> int:
        return sum(int(getattr(r, attr)) for r in self.sets.values())

    @property
    def top1_accuracy(self) -> float:
        """In-scope turns whose best-scoring intent is right, threshold aside."""
        return self._sum("top1") / max(self._sum("in_scope"), 1)

    @property
    def routed_accuracy(self) -> float:
        """In-scope turns classified as their intent (above threshold and right)."""
        return self._sum("routed") / max(self._sum("in_scope"), 1)

    @property
    def rejection_rate(self) -> float:
        """Out-of-scope turns classified as no intent."""
        return self._sum("rejected") / max(self._sum("out_of_scope"), 1)

    def summary(self) -> dict[str, Any]:
        return {
            "sets": len(self.sets),
            "in_scope": self._sum("in_scope"),
            "out_of_scope": self._sum("out_of_scope"),
            "top1_accuracy": round(self.top1_accuracy, 4),
            "routed_accuracy": round(self.routed_accuracy, 4),
            "out_of_scope_rejection": round(self.rejection_rate, 4),
        }


def load_sets(path: Path) -> dict[str, dict[str, Any]]:
    """The `sets` mapping of an evaluation file."""
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    sets: dict[str, dict[str, Any]] = data["sets"]
    return sets


def evaluate(
    sets: dict[str, dict[str, Any]],
    *,
    embedder: Embedder | None = None,
    threshold: float | None = None,
    on_turn: Callable[[IntentSet, str], IntentMatch] | None = None,
) -> Evaluation:
    """Classify every utterance and out-of-scope turn of every set.

    `on_turn` replaces `IntentSet.classify_sync` (e.g. to time each call)."""
    classify = on_turn or (lambda s, text: s.classify_sync(text))
    results: dict[str, SetResult] = {}
    for set_name, spec in sets.items():
        intents = spec["intents"]
        intent_set = IntentSet(
            {n: i["examples"] for n, i in intents.items()}, threshold=threshold, embedder=embedder
        )
        result = SetResult()
        for name, intent in intents.items():
            for text in intent["utterances"]:
                match = classify(intent_set, text)
                result.in_scope += 1
                result.top1 += max(match.scores, key=lambda n: match.scores[n]) == name
                result.routed += match.name == name
                if match.name != name:
                    result.errors.append((text, name, match.name))
        for text in spec.get("out_of_scope", []):
            match = classify(intent_set, text)
            result.out_of_scope += 1
            result.rejected += match.name is None
            if match.name is not None:
                result.errors.append((text, None, match.name))
        results[set_name] = result
    return Evaluation(results)
