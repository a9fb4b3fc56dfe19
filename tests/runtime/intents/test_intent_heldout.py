"""Held-out quality floors of the embedded intent classifier.

The set (`heldout_intents.yaml`) was written after the constants were calibrated
and never used to choose them. Measured with the shipped model: top-1 88.6 %,
routed 73.3 %, out-of-scope rejected 98.5 % (105 in-scope, 65 out-of-scope turns;
`benchmarks/intents_quality.py` prints the current figures). The floors leave a
margin below those figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.intents.evaluation import Evaluation, evaluate, load_sets

HELDOUT = Path(__file__).with_name("heldout_intents.yaml")


@pytest.fixture(scope="module")
def heldout() -> Evaluation:
    return evaluate(load_sets(HELDOUT))


def test_set_is_substantial(heldout: Evaluation) -> None:
    summary = heldout.summary()
    assert summary["sets"] >= 6
    assert summary["in_scope"] >= 100 and summary["out_of_scope"] >= 60


def test_top1_accuracy_floor(heldout: Evaluation) -> None:
    assert heldout.top1_accuracy >= 0.82, heldout.summary()


def test_routed_accuracy_floor(heldout: Evaluation) -> None:
    assert heldout.routed_accuracy >= 0.66, heldout.summary()


def test_out_of_scope_rejection_floor(heldout: Evaluation) -> None:
    assert heldout.rejection_rate >= 0.92, heldout.summary()


def test_every_set_beats_chance_by_far(heldout: Evaluation) -> None:
    for name, result in heldout.sets.items():
        assert result.top1 / result.in_scope >= 0.65, (name, result.errors)
        assert result.rejected / result.out_of_scope >= 0.8, (name, result.errors)
