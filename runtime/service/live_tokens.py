"""LLM tokens on the live feed, joined: one message per stretch of a reply
rather than one per token.

A model streams a reply as many small `token` events (a word or less each).
Publishing each as a live-feed message costs a JSON encoding and a Redis
PUBLISH per token for every call, and a dashboard only appends their texts.
`TokenCoalescer` joins the consecutive tokens of one message (same
`message_id`, node and agent) and hands them on as one `token` message when
the text so far ends a sentence, once its first token is `MAX_AGE_S` old (seen
when a later event arrives), before any other event (so order is kept) and
when the step ends (`flush`). The joined message carries the fields of the
first token with the texts concatenated, so a reader appending token texts
sees the same reply.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

#: Longest a token waits to be joined by the tokens after it.
MAX_AGE_S = 0.1
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s*$")
_SAME = ("message_id", "node", "agent")


class TokenCoalescer:
    """Joins consecutive `token` event dicts of one message (module doc)."""

    def __init__(
        self, *, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.clock = clock
        self._first: dict[str, Any] | None = None
        self._parts: list[str] = []
        self._since = 0.0

    def add(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The messages to publish now that `event` happened, in order."""
        if event.get("type") != "token":
            return [*self.flush(), event]
        out: list[dict[str, Any]] = []
        first = self._first
        if first is not None and any(first.get(k) != event.get(k) for k in _SAME):
            out = self.flush()
            first = None
        now = self.clock()
        if first is None:
            self._first, self._parts, self._since = event, [], now
        text = str(event.get("text") or "")
        self._parts.append(text)
        if _SENTENCE_END.search(text) or now - self._since >= self.max_age_s:
            out.extend(self.flush())
        return out

    def flush(self) -> list[dict[str, Any]]:
        """The joined tokens not yet handed on (none or one message)."""
        first, self._first = self._first, None
        if first is None:
            return []
        joined = {**first, "text": "".join(self._parts)}
        self._parts = []
        return [joined]
