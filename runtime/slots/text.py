"""Free-text slots: the caller's words as said, or None when they said nothing."""

from __future__ import annotations

from runtime.slots.extraction import Extraction
from runtime.slots.words import FILLERS, normalize


def extract_text(utterance: str) -> Extraction | None:
    """The utterance with whitespace collapsed; None when it is empty or only
    hesitation ("um", "uh") and punctuation."""
    if not any(word not in FILLERS for word in normalize(utterance).split()):
        return None
    text = " ".join(utterance.split())
    return Extraction(text, text)
