"""Derive the classifier's confidence scale, threshold, margin and confusable-pair
level from the calibration set `data/calibration.yaml`.

The procedure and its figures are documented in `runtime.intents.classifier`;
`python -m runtime.intents.calibration` reruns it and prints JSON. Rerun it (and
update the constants in `classifier.py`) after changing the model, e.g. through
`SWITCHBOARD_EMBEDDING_MODEL`. Only calibration data is read here, never the
held-out evaluation set.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from ruamel.yaml import YAML

from runtime.intents.classifier import IntentSet
from runtime.intents.embedder import DATA_DIR, Embedder, get_embedder

CALIBRATION_FILE = DATA_DIR / "calibration.yaml"
THRESHOLD_GRID = [round(0.05 + 0.01 * i, 2) for i in range(91)]
MARGIN_GRID = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
#: Pairs with at least this many calibration errors between them set the confusable level.
CONFUSED_PAIR_ERRORS = 3

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Sample:
    """One scored caller turn: its true intent (None = out of scope) and scores."""

    text: str
    expected: str | None
    scores: dict[str, float]

    @property
    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.scores.items(), key=lambda kv: kv[1], reverse=True)


@dataclass(frozen=True)
class Calibration:
    slope: float
    midpoint: float
    threshold: float
    margin: float
    confusable_similarity: float
    in_scope: int
    out_of_scope: int
    top1: float
    routed_correctly: float
    rejected: float
    balanced_accuracy: float
    confused_pairs: list[tuple[str, str, float, int]]


def load_set(path: Path = CALIBRATION_FILE) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """The intents (`examples`, `utterances`) and out-of-scope turns of a calibration file."""
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data["intents"], list(data["out_of_scope"])


def score_samples(
    intents: dict[str, dict[str, list[str]]], out_of_scope: Sequence[str], embedder: Embedder
) -> list[Sample]:
    """Utterances and out-of-scope turns against the example centroids, plus every
    example against centroids in which its own intent leaves it out."""
    examples = {name: spec["examples"] for name, spec in intents.items()}
    full = IntentSet(examples, embedder=embedder)
    samples: list[Sample] = []
    for name, spec in intents.items():
        for text in spec["utterances"]:
            samples.append(Sample(text, name, full.classify_sync(text).scores))
        for i, text in enumerate(spec["examples"]):
            rest = [e for j, e in enumerate(spec["examples"]) if j != i]
            if rest:
                loo = IntentSet({**examples, name: rest}, embedder=embedder)
                samples.append(Sample(text, name, loo.classify_sync(text).scores))
    for text in out_of_scope:
        samples.append(Sample(text, None, full.classify_sync(text).scores))
    return samples


def fit_platt(x: Floats, y: Floats, weight: Floats) -> tuple[float, float]:
    """Weighted logistic regression `P(y=1) = sigmoid(slope * (x - midpoint))` by
    Newton's method; returns (slope, midpoint)."""
    design = np.column_stack([x, np.ones_like(x)])
    beta = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (weight * (y - p))
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    slope, intercept = float(beta[0]), float(beta[1])
    return slope, -intercept / slope


def rates(
    samples: Sequence[Sample], slope: float, midpoint: float, threshold: float, margin: float
) -> tuple[float, float]:
    """(in-scope routed-correctly rate, out-of-scope rejection rate) of a decision rule."""
    routed = rejected = n_in = n_out = 0
    for s in samples:
        (best, top), (_, second) = s.ranked[0], s.ranked[1]
        confidence = 1.0 / (1.0 + np.exp(-slope * (top - midpoint)))
        accepted = confidence >= threshold and top - second >= margin
        if s.expected is None:
            n_out += 1
            rejected += not accepted
        else:
            n_in += 1
            routed += accepted and best == s.expected
    return routed / max(n_in, 1), rejected / max(n_out, 1)


def calibrate(embedder: Embedder | None = None, path: Path = CALIBRATION_FILE) -> Calibration:
    """Run the documented calibration procedure on `path` (see classifier docstring)."""
    embedder = embedder or get_embedder()
    intents, out_of_scope = load_set(path)
    samples = score_samples(intents, out_of_scope, embedder)
    inside = [s for s in samples if s.expected is not None]
    outside = [s for s in samples if s.expected is None]

    best = np.array([s.ranked[0][1] for s in samples])
    correct = np.array([float(s.ranked[0][0] == s.expected) for s in samples])
    weight = np.array([0.5 / len(inside) if s.expected else 0.5 / len(outside) for s in samples])
    slope, midpoint = fit_platt(best, correct, weight * len(samples))
    slope, midpoint = round(slope, 1), round(midpoint, 3)

    def key(rule: tuple[float, float]) -> tuple[float, float, float]:
        threshold, margin = rule
        routed, rejected = rates(samples, slope, midpoint, threshold, margin)
        return (round((routed + rejected) / 2, 6), -margin, -abs(threshold - 0.5))

    threshold, margin = max(((t, m) for m in MARGIN_GRID for t in THRESHOLD_GRID), key=key)
    routed, rejected = rates(samples, slope, midpoint, threshold, margin)

    errors: Counter[frozenset[str]] = Counter()
    for s in inside:
        if s.ranked[0][0] != s.expected:
            errors[frozenset((s.expected or "", s.ranked[0][0]))] += 1
    centroids = IntentSet({n: spec["examples"] for n, spec in intents.items()}, embedder=embedder)
    similarity = {frozenset((a, b)): v for a, b, v in centroids.confusable_pairs(-1.0)}
    confused = sorted(
        ((*sorted(pair), similarity[pair], n) for pair, n in errors.items()),
        key=lambda p: (-p[3], -p[2]),
    )
    frequent = [p[2] for p in confused if p[3] >= CONFUSED_PAIR_ERRORS]
    confusable = float(np.floor(min(frequent) * 20) / 20) if frequent else 1.0

    top1 = sum(s.ranked[0][0] == s.expected for s in inside) / len(inside)
    return Calibration(
        slope=slope,
        midpoint=midpoint,
        threshold=threshold,
        margin=margin,
        confusable_similarity=round(confusable, 2),
        in_scope=len(inside),
        out_of_scope=len(outside),
        top1=round(top1, 4),
        routed_correctly=round(routed, 4),
        rejected=round(rejected, 4),
        balanced_accuracy=round((routed + rejected) / 2, 4),
        confused_pairs=[(a, b, round(v, 3), n) for a, b, v, n in confused],
    )


def main() -> None:
    result: dict[str, Any] = asdict(calibrate())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
