"""Quality and speed of the embedded intent classifier on the held-out set.

Prints one JSON object: model load time, intent-set preparation time, held-out
top-1 accuracy, routed accuracy (above threshold and right), out-of-scope
rejection, and per-turn latency (p50/p99, cache off so every turn runs the model;
plus the lexical fast path). Run: `switchboard bench intents_quality` or
`python benchmarks/intents_quality.py`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.intents import DEFAULT_THRESHOLD, Embedder, IntentSet
from runtime.intents.embedder import resolve_model_files
from runtime.intents.evaluation import evaluate, load_sets

HELDOUT = Path(__file__).resolve().parent.parent / "tests/runtime/intents/heldout_intents.yaml"
ROUNDS = 3
DESCRIPTION = "Embedded intent classifier: held-out accuracy, rejection and per-turn latency"


def measure(rounds: int = ROUNDS) -> dict[str, Any]:
    """The report: quality on the held-out set and latency over `rounds`
    passes (blocking; run it in a worker thread from async code)."""
    sets = load_sets(HELDOUT)

    started = time.perf_counter()
    embedder = Embedder(resolve_model_files())
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    quality = evaluate(sets, embedder=embedder)
    first_pass_s = time.perf_counter() - started

    uncached = Embedder(resolve_model_files(), cache_size=0)
    texts = [
        t
        for spec in sets.values()
        for t in [u for i in spec["intents"].values() for u in i["utterances"]]
        + spec["out_of_scope"]
    ]
    intent_set = IntentSet(
        {n: i["examples"] for n, i in sets["dental_front_desk"]["intents"].items()},
        embedder=uncached,
    )
    started = time.perf_counter()
    IntentSet(
        {n: i["examples"] for spec in sets.values() for n, i in spec["intents"].items()},
        embedder=uncached,
    )
    prepare_s = time.perf_counter() - started

    latencies: list[float] = []
    for _ in range(rounds):
        for text in texts:
            t0 = time.perf_counter()
            intent_set.classify_sync(text)
            latencies.append((time.perf_counter() - t0) * 1000)
    fast: list[float] = []
    example = sets["dental_front_desk"]["intents"]["book_cleaning"]["examples"][0]
    for _ in range(200):
        t0 = time.perf_counter()
        intent_set.classify_sync(example.upper() + "!")
        fast.append((time.perf_counter() - t0) * 1000)

    report = {
        "model": embedder.model_id,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_s": round(load_s, 3),
        "prepare_all_examples_uncached_s": round(prepare_s, 3),
        "first_pass_s": round(first_pass_s, 3),
        "threshold": DEFAULT_THRESHOLD,
        **quality.summary(),
        "latency_ms": {
            "turns": len(latencies),
            "p50": round(float(np.percentile(latencies, 50)), 3),
            "p99": round(float(np.percentile(latencies, 99)), 3),
            "mean": round(statistics.fmean(latencies), 3),
            "exact_example_p50": round(float(np.percentile(fast, 50)), 4),
        },
        "per_set": {
            name: {
                "top1": round(r.top1 / r.in_scope, 3),
                "routed": round(r.routed / r.in_scope, 3),
                "rejected": round(r.rejected / max(r.out_of_scope, 1), 3),
            }
            for name, r in quality.sets.items()
        },
    }
    return report


async def run(settings: Any) -> dict[str, Any]:
    """`measure()` for the bench harness (one latency pass with --quick)."""
    import asyncio

    from benchmarks.harness import Skipped

    if not HELDOUT.is_file():
        raise Skipped(f"the held-out set {HELDOUT} is not here (it ships with the tests)")
    report = await asyncio.to_thread(measure, 1 if settings.quick else ROUNDS)
    report.pop("machine", None)  # the harness reports the machine once
    report["baseline"] = "the held-out floors of tests/runtime/intents (accuracy, rejection)"
    return report


def main() -> None:
    print(json.dumps(measure(), indent=2))


if __name__ == "__main__":
    main()
