"""Step numbers of recorded calls: given by the caller or counted here, and an
identical batch recorded twice recognised by its fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.session import CallEvent

#: Calls whose step counters are kept (recorded without `step`, a call
#: forgotten here would restart at step 0 and its new rows be ignored).
TRACKED_CALLS = 10_000
#: Steps remembered per call to recognise a batch recorded twice without `step`.
FINGERPRINTS_PER_CALL = 64


@dataclass
class CallCursor:
    next_step: int = 0
    steps_by_fingerprint: OrderedDict[str, int] = field(default_factory=OrderedDict)
    scored: bool = False


class StepCounter:
    """The step counters of the most recently recorded calls."""

    def __init__(self) -> None:
        self._calls: OrderedDict[str, CallCursor] = OrderedDict()

    def cursor(self, call_id: str) -> CallCursor:
        """The call's step counter; the least recently used are forgotten."""
        cursor = self._calls.pop(call_id, None) or CallCursor()
        self._calls[call_id] = cursor
        while len(self._calls) > TRACKED_CALLS:
            self._calls.popitem(last=False)
        return cursor

    def step_for(
        self,
        cursor: CallCursor,
        events: Sequence[CallEvent],
        caller_text: str | None,
        step: int | None,
    ) -> int:
        fingerprint = _fingerprint(events, caller_text)
        if step is None:
            known = cursor.steps_by_fingerprint.get(fingerprint)
            step = cursor.next_step if known is None else known
        cursor.steps_by_fingerprint[fingerprint] = step
        while len(cursor.steps_by_fingerprint) > FINGERPRINTS_PER_CALL:
            cursor.steps_by_fingerprint.popitem(last=False)
        cursor.next_step = max(cursor.next_step, step + 1)
        return step


def _fingerprint(events: Sequence[CallEvent], caller_text: str | None) -> str:
    payload = json.dumps(
        [caller_text, [e.as_dict() for e in events]], sort_keys=True, default=str
    ).encode()
    return hashlib.sha256(payload).hexdigest()
