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

Calibration (reproduce with `python -m runtime.intents.calibration`; a test checks
that these constants still follow from it). The calibration set,
`data/calibration.yaml`, was written for this purpose and never used for
evaluation: 13 call-centre intents (book, reschedule, cancel, billing question,
payment, hours, location, a person, goodbye, repeat, order status, password,
refund) with 2-4 author-style examples and 9-10 caller-style utterances each, and
80 out-of-scope turns (small talk, other topics, and slot answers such as "next
Tuesday at three" or "yes please", which global intents see on every turn).

1. Episodes: 200 random subsets of 2-6 intents (40 per size, seed 0), as route
   nodes hold them. In scope: the subset's utterances against the example
   centroids, and each example against centroids where its own intent leaves it
   out. Out of scope: the 80 generic turns, and the utterances of the intents not
   in the subset ("unlisted": in-domain requests this node does not handle).
2. Platt scaling: a logistic regression of "routed correctly" (in scope and the
   best intent is right) on the best cosine, weighted so that in-scope samples
   count 1/2, generic 1/4 and unlisted 1/4. Result: slope 12.9, midpoint 0.396.
3. Threshold and margin: the pair (confidence 0.05-0.95 by 0.01, margin 0-0.05
   by 0.01) with the best weighted accuracy under the same weights; ties go to the
   smaller margin, then to the middle threshold. Result: threshold 0.40 (cosine
   0.365), margin 0.01. On the calibration episodes: best intent right (threshold
   aside) 93.5 %, in-scope routed correctly 82.6 %, generic out-of-scope rejected
   92.8 %, unlisted intents rejected 79.3 %. Weighting generic and in-scope 1/2
   each (no unlisted group) peaks at the same cosine, 0.365; accepting down to
   cosine 0.335 would cost 4 points of generic rejection for 0.7 points of
   routing. Tried on the same episodes and not adopted: a second Platt feature
   (best minus runner-up), subtracting the mean embedding, and thresholding the
   mean similarity to the examples instead of the centroid cosine; none beat the
   plain centroid cosine.
4. Confusable intents: errors concentrate in pairs with close centroids
   (cancel/reschedule 0.60, book/reschedule 0.59, billing/payment 0.58,
   book/cancel 0.56, book/hours 0.50: 3-4 errors each; every other pair at most
   2). `DEFAULT_CONFUSABLE_SIMILARITY` is the lowest centroid cosine among pairs
   with at least 3 errors with all 13 intents in one set, rounded down to 0.05:
   0.50.

Known limit: an intent with a single example generalises less. The cosine of a
paraphrase to one phrase runs lower (calibration mean 0.42 with one example, 0.51
with three), e.g. "why was I charged twice" against only "question about my bill"
scores 0.34 (confidence 0.32), ranked first but below the default threshold. Give
intents 2-10 varied examples, or lower the node's `threshold`.

Held-out evaluation (6 sets, other businesses, intents and phrasings, written
after these constants were fixed; `tests/runtime/intents/heldout_intents.yaml`,
`benchmarks/intents_quality.py`): best intent right 88.6 %, routed correctly
73.3 %, out-of-scope rejected 98.5 % (105 + 65 turns). Model load 0.25-0.4 s,
about 4 ms per new turn on 2 cores, microseconds for an exact example.
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

CONFIDENCE_SLOPE = 12.9
CONFIDENCE_MIDPOINT = 0.396
DEFAULT_THRESHOLD = 0.40
DEFAULT_MARGIN = 0.01
DEFAULT_CONFUSABLE_SIMILARITY = 0.50

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
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= 1:
            raise IntentConfigError(f"margin must be a number between 0 and 1, got {margin!r}")
        self.margin = float(margin)
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
