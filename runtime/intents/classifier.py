"""Few-shot intent classification: cosine similarity to each intent's centroid.

An intent is a handful of example phrases. Each example is embedded (unit vector,
see `embedder`); the intent's centroid is their mean, re-normalised. A caller turn
is embedded the same way and scored against every centroid by cosine similarity
(`IntentMatch.scores`). The best score becomes a confidence in [0, 1] by Platt
scaling, `1 / (1 + exp(-CONFIDENCE_SLOPE * (score - CONFIDENCE_MIDPOINT)))`. The
turn is that intent when the confidence reaches the threshold (`DEFAULT_THRESHOLD`
unless the graph sets one; a graph's threshold is on this same confidence scale)
and the best score beats the runner-up by `DEFAULT_MARGIN`; otherwise it is out of
scope (`name=None`) and the route node takes its fallback. A turn that equals an
example once normalised (case, punctuation, spacing) is that example's intent with
confidence 1.0 without running the model.

Calibration (reproduce with `python -m runtime.intents.calibration`; the test
suite checks that these constants still follow from it). The calibration set,
`data/calibration.yaml`, was written for this purpose and is never used for
evaluation: 13 call-centre intents (booking, rescheduling, cancelling, billing,
payment, hours, location, a person, goodbye, repeat, order status, password,
refund) with 2-4 author-style examples and 5-6 caller-style utterances each, plus
40 out-of-scope turns. Scored samples are every utterance against the example
centroids and every example left out of its own intent's centroid (105 in-scope
samples in all), and every out-of-scope turn. The procedure:

1. Platt scaling: a logistic regression of "routed correctly" (1 for an in-scope
   sample whose top intent is right, 0 for a wrong top intent or an out-of-scope
   turn) on the best cosine score, in-scope and out-of-scope weighted equally.
   Result: slope 15.2, midpoint 0.383.
2. Threshold and margin: the pair (confidence 0.05-0.95 by 0.01, margin 0-0.05 by
   0.01) with the best balanced accuracy, the mean of the in-scope routed-correctly
   rate and the out-of-scope rejection rate; ties go to the smaller margin, then
   to the threshold nearest 0.5. Result: threshold 0.25 (cosine 0.31), margin 0;
   in-scope routed correctly 75.2 % (top-1 regardless of threshold 81.0 %),
   out-of-scope rejected 87.5 %, balanced accuracy 81.3 %.
3. Confusable intents: the calibration's errors concentrate in the pairs whose
   centroids are closest (booking/rescheduling/cancelling, billing/payment, all
   with centroid cosine >= 0.56; no other pair reaches 0.51).
   `DEFAULT_CONFUSABLE_SIMILARITY` is the lowest centroid cosine among pairs with
   at least 3 calibration errors between them, rounded down to 0.05: 0.55.

The held-out evaluation (other intents, other phrasings, written after these
constants were fixed) lives in `tests/runtime/intents/` and `benchmarks/`.
"""

from __future__ import annotations

import asyncio
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt

from runtime.intents.embedder import Embedder, get_embedder

CONFIDENCE_SLOPE = 15.2
CONFIDENCE_MIDPOINT = 0.383
DEFAULT_THRESHOLD = 0.25
DEFAULT_MARGIN = 0.0
DEFAULT_CONFUSABLE_SIMILARITY = 0.55

Vectors = npt.NDArray[np.float32]


class IntentConfigError(ValueError):
    """An intent set was given malformed intents, examples or threshold."""


@dataclass(frozen=True)
class IntentMatch:
    """The classification of one caller turn.

    `name` is None when the turn is out of scope (below threshold, or too close
    between two intents). `confidence` is the best intent's calibrated score in
    [0, 1]; `scores` holds every intent's cosine similarity.
    """

    name: str | None
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Case-, punctuation- and spacing-insensitive form used by the lexical fast path."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = folded.replace("'", "").replace("\u2019", "")
    return " ".join(re.findall(r"\w+", folded))


def confidence_of(similarity: float) -> float:
    """Calibrated confidence in [0, 1] of a centroid cosine similarity."""
    z = CONFIDENCE_SLOPE * (similarity - CONFIDENCE_MIDPOINT)
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def centroid(vectors: Vectors) -> Vectors:
    """Unit-length mean of unit vectors (rows)."""
    mean = vectors.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def _check_threshold(threshold: float | None) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise IntentConfigError(f"threshold must be a number, got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise IntentConfigError(f"threshold must be between 0 and 1, got {threshold}")
    return float(threshold)


def _check_intents(intents: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if not isinstance(intents, Mapping) or not intents:
        raise IntentConfigError("an intent set needs at least one intent")
    checked: dict[str, list[str]] = {}
    for name, examples in intents.items():
        if not isinstance(name, str) or not name.strip():
            raise IntentConfigError(f"intent name must be a non-empty string, got {name!r}")
        if isinstance(examples, str) or not isinstance(examples, Sequence):
            raise IntentConfigError(
                f"intent {name!r}: examples must be a list of phrases, got {examples!r}"
            )
        if not examples:
            raise IntentConfigError(f"intent {name!r} has no examples")
        for i, example in enumerate(examples):
            if not isinstance(example, str) or not normalise(example):
                raise IntentConfigError(
                    f"intent {name!r}: example {i} must be a phrase with words, got {example!r}"
                )
        checked[name] = list(dict.fromkeys(examples))
    return checked


class IntentSet:
    """Intents prepared once (examples embedded, centroids computed) for many turns.

    The constructor runs the model (loading it on first use), so call it at compile
    time or from a worker thread, not on an event loop. Raises `IntentConfigError`
    for malformed intents or threshold.
    """

    def __init__(
        self,
        intents: Mapping[str, Sequence[str]],
        *,
        threshold: float | None = None,
        embedder: Embedder | None = None,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.intents = _check_intents(intents)
        self.threshold = _check_threshold(threshold)
        self.margin = margin
        self.names = list(self.intents)
        self._embedder = embedder or get_embedder()
        self._examples = {n: self._embedder.embed(ex) for n, ex in self.intents.items()}
        self._centroids = np.stack([centroid(self._examples[n]) for n in self.names])
        # Normalised example -> (intent, row); an example shared by two intents is
        # ambiguous and left to the model.
        owners: dict[str, set[str]] = {}
        self._lexical: dict[str, tuple[str, int]] = {}
        for name, examples in self.intents.items():
            for row, example in enumerate(examples):
                key = normalise(example)
                owners.setdefault(key, set()).add(name)
                self._lexical.setdefault(key, (name, row))
        for key, names in owners.items():
            if len(names) > 1:
                del self._lexical[key]

    def classify_sync(self, text: str) -> IntentMatch:
        """Classify one caller turn (blocking: runs the model on this thread).

        Blank text is out of scope with confidence 0. Raises `TypeError` for a
        non-string.
        """
        if not isinstance(text, str):
            raise TypeError(f"classify() takes a string, got {type(text).__name__}")
        key = normalise(text)
        if not key:
            return IntentMatch(None, 0.0, dict.fromkeys(self.names, 0.0))
        exact = self._lexical.get(key)
        if exact is not None:
            name, row = exact
            scores = self._score(self._examples[name][row])
            scores[name] = 1.0
            return IntentMatch(name, 1.0, scores)
        scores = self._score(self._embedder.embed([text])[0])
        return self.decide(scores)

    async def classify(self, text: str) -> IntentMatch:
        """`classify_sync` in a worker thread, so the event loop never blocks."""
        return await asyncio.to_thread(self.classify_sync, text)

    def decide(self, scores: Mapping[str, float]) -> IntentMatch:
        """Apply the threshold and margin to per-intent cosine scores."""
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        best, top = ranked[0]
        confidence = confidence_of(top)
        runner_up = ranked[1][1] if len(ranked) > 1 else -1.0
        accepted = confidence >= self.threshold and top - runner_up >= self.margin
        return IntentMatch(best if accepted else None, confidence, dict(scores))

    def confusable_pairs(
        self, min_similarity: float = DEFAULT_CONFUSABLE_SIMILARITY
    ) -> list[tuple[str, str, float]]:
        """Pairs of intents the classifier is likely to mix up, most similar first.

        A pair is listed when the cosine similarity of the two centroids reaches
        `min_similarity`, or with similarity 1.0 when both intents list the same
        example (after normalisation).
        """
        similarity = self._centroids @ self._centroids.T
        shared = {
            frozenset((a, b))
            for a, b in combinations(self.names, 2)
            if {normalise(e) for e in self.intents[a]} & {normalise(e) for e in self.intents[b]}
        }
        pairs: list[tuple[str, str, float]] = []
        for (i, a), (j, b) in combinations(enumerate(self.names), 2):
            value = 1.0 if frozenset((a, b)) in shared else float(similarity[i, j])
            if value >= min_similarity:
                pairs.append((a, b, round(value, 4)))
        return sorted(pairs, key=lambda p: p[2], reverse=True)

    def _score(self, vector: Vectors) -> dict[str, float]:
        sims = self._centroids @ vector
        return {name: float(s) for name, s in zip(self.names, sims, strict=True)}


def make_intent_set(intents: dict[str, list[str]], threshold: float | None) -> IntentSet:
    """The default `IntentSetFactory` for compiled graphs (shares the process embedder)."""
    return IntentSet(intents, threshold=threshold)
