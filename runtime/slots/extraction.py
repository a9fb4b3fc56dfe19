"""The result of extracting one slot value from a caller's utterance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Extraction:
    """A typed slot value and the words the agent uses to read it back.

    `value` is JSON-serialisable and canonical for its kind (see
    `runtime.slots.extract`); `spoken` is short and unambiguous when read by TTS,
    e.g. "Tuesday, December 1", "2:30 PM", "5 5 5, 1 2 3, 4 5 6 7".
    """

    value: Any
    spoken: str
