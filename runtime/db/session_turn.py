"""Run one step of a call session and record it (`record_session_turn`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runtime.session import CallEvent, CallSession

if TYPE_CHECKING:
    from runtime.db.recorder import CallRecorder


async def record_session_turn(
    recorder: CallRecorder,
    session: CallSession,
    text: str | None = None,
    *,
    interrupted: list[dict[str, str]] | None = None,
    hangup: bool = False,
    metrics: Mapping[str, Any] | None = None,
) -> list[CallEvent]:
    """Run one step of `session` and record it: `start()` when `text` is None,
    `hangup()` when `hangup`, else `send(text)`. The step number comes from the
    call's checkpointed turn counter, so any worker records it under the same
    key; `graph_ms` is measured unless `metrics` gives it. Returns the events.
    Errors of the session itself (e.g. CallEnded) propagate as usual."""
    at = recorder.clock()
    began = time.perf_counter()
    if hangup:
        events = await session.hangup()
    elif text is None:
        events = await session.start()
    else:
        events = await session.send(text, interrupted=interrupted)
    elapsed_ms = (time.perf_counter() - began) * 1000.0
    if hangup and not events:
        return events
    turn = int((await session.state()).get("turn", 0))
    measured = {"graph_ms": round(elapsed_ms, 3), **dict(metrics or {})}
    await recorder.record(
        session.call_id,
        events,
        step=turn + 1 if hangup else turn,
        caller_text=text if not hangup else None,
        metrics=measured,
        at=at,
        ended_at=recorder.clock(),
    )
    return events
