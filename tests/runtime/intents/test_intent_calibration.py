"""The shipped constants still follow from the documented calibration procedure."""

from __future__ import annotations

import math

import pytest

from runtime.intents import classifier
from runtime.intents.calibration import (
    Calibration,
    calibrate,
    fit_platt,
    load_set,
    rates,
    score_episodes,
)
from runtime.intents.embedder import get_embedder


@pytest.fixture(scope="module")
def result() -> Calibration:
    return calibrate()


def test_constants_match_calibration(result: Calibration) -> None:
    assert result.slope == pytest.approx(classifier.CONFIDENCE_SLOPE, abs=0.3)
    assert result.midpoint == pytest.approx(classifier.CONFIDENCE_MIDPOINT, abs=0.005)
    assert result.threshold == pytest.approx(classifier.DEFAULT_THRESHOLD, abs=0.02)
    assert result.margin == pytest.approx(classifier.DEFAULT_MARGIN, abs=0.01)
    assert result.confusable_similarity == classifier.DEFAULT_CONFUSABLE_SIMILARITY


def test_shipped_rule_is_near_the_calibration_optimum(result: Calibration) -> None:
    samples = score_episodes(*load_set(), get_embedder())
    shipped = rates(
        samples,
        classifier.CONFIDENCE_SLOPE,
        classifier.CONFIDENCE_MIDPOINT,
        classifier.DEFAULT_THRESHOLD,
        classifier.DEFAULT_MARGIN,
    )
    assert shipped["objective"] >= result.objective - 0.005
    assert shipped["generic"] >= 0.9 and shipped["in"] >= 0.8


def test_documented_threshold_cosine(result: Calibration) -> None:
    cosine = (
        classifier.CONFIDENCE_MIDPOINT
        + math.log(classifier.DEFAULT_THRESHOLD / (1 - classifier.DEFAULT_THRESHOLD))
        / classifier.CONFIDENCE_SLOPE
    )
    assert cosine == pytest.approx(result.threshold_cosine, abs=0.005)
    assert classifier.confidence_of(cosine) == pytest.approx(classifier.DEFAULT_THRESHOLD)


def test_platt_fit_recovers_a_known_logistic() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 4000)
    y = (rng.uniform(0, 1, 4000) < 1 / (1 + np.exp(-10 * (x - 0.4)))).astype(float)
    slope, midpoint = fit_platt(x, y, np.ones_like(x))
    assert slope == pytest.approx(10, rel=0.15)
    assert midpoint == pytest.approx(0.4, abs=0.02)
