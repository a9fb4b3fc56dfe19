"""Free-text slots: the caller's words as said, or None when they said nothing."""

from __future__ import annotations

from runtime.slots.extraction import Extraction
from runtime.slots.words import FILLERS, normalize

_EDGE_PUNCTUATION = ".,!?;:…\"“”' "


def extract_text(utterance: str) -> Extraction | None:
    """The utterance with whitespace collapsed and sentence punctuation that
    speech-to-text adds at the ends removed ("Maria Garcia." -> "Maria Garcia");
    None when it is empty or only hesitation ("um", "uh") and punctuation."""
    if not any(word not in FILLERS for word in normalize(utterance).split()):
        return None
    text = " ".join(utterance.split()).strip(_EDGE_PUNCTUATION).strip()
    return Extraction(text, text)
