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
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from ruamel.yaml import YAML

from runtime.intents.classifier import IntentSet, centroid
from runtime.intents.embedder import DATA_DIR, Embedder, get_embedder

CALIBRATION_FILE = DATA_DIR / "calibration.yaml"
THRESHOLD_GRID = [round(0.05 + 0.01 * i, 2) for i in range(91)]
MARGIN_GRID = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
#: Intents per episode (a route node holds a few) and episodes of each size.
EPISODE_SIZES = (2, 3, 4, 5, 6)
EPISODES_PER_SIZE = 40
#: Pairs with at least this many calibration errors between them set the confusable level.
CONFUSED_PAIR_ERRORS = 3

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Calibration:
    slope: float
    midpoint: float
    threshold: float
    threshold_cosine: float
    margin: float
    confusable_similarity: float
    episodes: int
    intents: int
    in_scope_texts: int
    out_of_scope_texts: int
    top1: float
    routed_correctly: float
    rejected_out_of_scope: float
    rejected_unlisted: float
    objective: float
    confused_pairs: list[tuple[str, str, float, int]]


@dataclass
class Samples:
    """Scored caller turns pooled over episodes: best and runner-up cosine, whether
    the best intent is right, and the group (`in`, `generic` or `unlisted`)."""

    best: Floats
    second: Floats
    correct: npt.NDArray[np.bool_]
    group: npt.NDArray[np.str_]

    def weights(self) -> Floats:
        """In-scope 1/2, generic out-of-scope 1/4, unlisted intents 1/4 of the total."""
        w = np.zeros(len(self.best))
        for group, share in (("in", 0.5), ("generic", 0.25), ("unlisted", 0.25)):
            mask = self.group == group
            w[mask] = share / max(int(mask.sum()), 1)
        return w


def load_set(path: Path = CALIBRATION_FILE) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """The intents (`examples`, `utterances`) and out-of-scope turns of a calibration file."""
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data["intents"], list(data["out_of_scope"])


def score_episodes(
    intents: dict[str, dict[str, list[str]]],
    out_of_scope: Sequence[str],
    embedder: Embedder,
    *,
    sizes: Sequence[int] = EPISODE_SIZES,
    per_size: int = EPISODES_PER_SIZE,
    seed: int = 0,
) -> Samples:
    """Score every episode: a random subset of the intents as one route node would
    hold them. In scope: the subset's utterances against the example centroids, and
    each example against centroids where its own intent leaves it out. Out of scope:
    the generic turns and the utterances of the intents not in the subset."""
    names = list(intents)
    examples = {n: embedder.embed(intents[n]["examples"]) for n in names}
    utterances = {n: embedder.embed(intents[n]["utterances"]) for n in names}
    generic = embedder.embed(list(out_of_scope))
    rng = random.Random(seed)
    best: list[float] = []
    second: list[float] = []
    correct: list[bool] = []
    group: list[str] = []

    def add(sims: Floats, truth: int | None, kind: str) -> None:
        order = np.argsort(-sims)
        best.append(float(sims[order[0]]))
        second.append(float(sims[order[1]]))
        correct.append(truth is not None and int(order[0]) == truth)
        group.append(kind)

    for size in sizes:
        for _ in range(per_size):
            chosen = rng.sample(names, size)
            centroids = np.stack([centroid(examples[n]) for n in chosen])
            for i, name in enumerate(chosen):
                for vector in utterances[name]:
                    add(centroids @ vector, i, "in")
                for j in range(len(examples[name])):
                    rest = np.delete(examples[name], j, axis=0)
                    if len(rest):
                        loo = centroids.copy()
                        loo[i] = centroid(rest)
                        add(loo @ examples[name][j], i, "in")
            for vector in generic:
                add(centroids @ vector, None, "generic")
            for name in names:
                if name not in chosen:
                    for vector in utterances[name]:
                        add(centroids @ vector, None, "unlisted")
    return Samples(np.array(best), np.array(second), np.array(correct, dtype=bool), np.array(group))


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
    samples: Samples, slope: float, midpoint: float, threshold: float, margin: float
) -> dict[str, float]:
    """Routed-correctly rate of in-scope turns and rejection rates of the two
    out-of-scope groups under one decision rule, plus the weighted objective."""
    confidence = 1.0 / (1.0 + np.exp(-slope * (samples.best - midpoint)))
    accepted = (confidence >= threshold) & (samples.best - samples.second >= margin)
    good = np.where(samples.group == "in", accepted & samples.correct, ~accepted)
    out = {g: float(good[samples.group == g].mean()) for g in ("in", "generic", "unlisted")}
    out["objective"] = float((good * samples.weights()).sum())
    return out


def calibrate(embedder: Embedder | None = None, path: Path = CALIBRATION_FILE) -> Calibration:
    """Run the documented calibration procedure on `path` (see classifier docstring)."""
    embedder = embedder or get_embedder()
    intents, out_of_scope = load_set(path)
    samples = score_episodes(intents, out_of_scope, embedder)
    weight = samples.weights() * len(samples.best)
    label = (samples.correct & (samples.group == "in")).astype(np.float64)
    slope, midpoint = fit_platt(samples.best, label, weight)
    slope, midpoint = round(slope, 1), round(midpoint, 3)

    scored = {
        (t, m): rates(samples, slope, midpoint, t, m)["objective"]
        for m in MARGIN_GRID
        for t in THRESHOLD_GRID
    }
    top = max(scored.values())
    margin = min(m for (_, m), v in scored.items() if v == top)
    tied = sorted(t for (t, m), v in scored.items() if v == top and m == margin)
    threshold = tied[len(tied) // 2]
    final = rates(samples, slope, midpoint, threshold, margin)
    confusable, confused = _confusable_level(intents, embedder)

    return Calibration(
        slope=slope,
        midpoint=midpoint,
        threshold=threshold,
        threshold_cosine=round(midpoint + math.log(threshold / (1 - threshold)) / slope, 3),
        margin=margin,
        confusable_similarity=confusable,
        episodes=len(EPISODE_SIZES) * EPISODES_PER_SIZE,
        intents=len(intents),
        in_scope_texts=sum(len(i["utterances"]) + len(i["examples"]) for i in intents.values()),
        out_of_scope_texts=len(out_of_scope),
        top1=round(float(samples.correct[samples.group == "in"].mean()), 4),
        routed_correctly=round(final["in"], 4),
        rejected_out_of_scope=round(final["generic"], 4),
        rejected_unlisted=round(final["unlisted"], 4),
        objective=round(final["objective"], 4),
        confused_pairs=confused,
    )


def _confusable_level(
    intents: dict[str, dict[str, list[str]]], embedder: Embedder
) -> tuple[float, list[tuple[str, str, float, int]]]:
    """Errors per intent pair with all intents in one set (utterances and left-out
    examples), and the lowest centroid cosine among pairs with frequent errors."""
    examples = {n: spec["examples"] for n, spec in intents.items()}
    full = IntentSet(examples, embedder=embedder)
    errors: Counter[frozenset[str]] = Counter()
    for name, spec in intents.items():
        probes = [(full, text) for text in spec["utterances"]]
        for i, text in enumerate(spec["examples"]):
            rest = [e for j, e in enumerate(spec["examples"]) if j != i]
            if rest:
                probes.append((IntentSet({**examples, name: rest}, embedder=embedder), text))
        for intent_set, text in probes:
            scores = intent_set.classify_sync(text).scores
            guess = max(scores, key=lambda n: scores[n])
            if guess != name:
                errors[frozenset((name, guess))] += 1
    similarity = {frozenset((a, b)): v for a, b, v in full.confusable_pairs(-1.0)}
    confused: list[tuple[str, str, float, int]] = []
    for pair, n in errors.items():
        a, b = sorted(pair)
        confused.append((a, b, round(similarity[pair], 3), n))
    confused.sort(key=lambda p: (-p[3], -p[2]))
    frequent = [sim for _, _, sim, n in confused if n >= CONFUSED_PAIR_ERRORS]
    level = math.floor(min(frequent) * 20) / 20 if frequent else 1.0
    return round(level, 2), confused


def main() -> None:
    result: dict[str, Any] = asdict(calibrate())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
