"""Embedded intent classifier: few-shot intents from example phrases, offline.

`IntentSet` prepares a handful of intents once and classifies caller turns into
one of them, or none (out of scope), with a calibrated confidence. Embeddings come
from all-MiniLM-L6-v2 (int8 ONNX) through one process-wide `Embedder`.
"""

from runtime.intents.classifier import (
    DEFAULT_CONFUSABLE_SIMILARITY,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    IntentConfigError,
    IntentMatch,
    IntentSet,
    make_intent_set,
    normalise,
)
from runtime.intents.embedder import Embedder, EmbedderError, get_embedder

__all__ = [
    "DEFAULT_CONFUSABLE_SIMILARITY",
    "DEFAULT_MARGIN",
    "DEFAULT_THRESHOLD",
    "Embedder",
    "EmbedderError",
    "IntentConfigError",
    "IntentMatch",
    "IntentSet",
    "get_embedder",
    "make_intent_set",
    "normalise",
]
