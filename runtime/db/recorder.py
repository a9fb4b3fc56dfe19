"""Persist calls as they happen, without ever holding up or breaking a call.

`CallRecorder` turns each call step into rows (see `runtime.db.rows`) at once,
queues them, and returns: one background task writes the queue in order, one
transaction per queued write. While the database is unreachable the writes
wait in a bounded buffer and are retried with exponential backoff; once it is
back they are written in their original order. Every row has a natural key
(call + step + position, agent graph + content hash, call + recording path) and
is inserted with ON CONFLICT DO NOTHING, so a write retried after an outage, or
the same step recorded twice, or by a second worker, adds nothing twice.

Given a sentiment scorer (`runtime.sentiment`), the recorder scores every call
when it ends (a step with an outcome, or `call_ended` without a sentiment):
the caller's turns are read back through the queue, so after the call's own
rows, and scored in a task of their own, never holding up the queue; the
result fills the call's sentiment unless one was recorded already.

Given a `Spool` (`runtime.db.spool`), every queued write is also appended
to a local write-ahead file, fsync'd per batch before it is tried: a worker
killed while the database is down loses nothing, since the next recorder on
the same database replays the dead one's spool (`replay_spool`, also run every
30 s by a live recorder whose queue drains), and `close` leaves unwritten
writes there instead of dropping them.

A write that can never succeed (a constraint or data error) is logged and
dropped rather than blocking the queue; so is a write that arrives while the
buffer is full. The recorder's methods never raise into the call: problems are
logged and counted in `stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import writes
from runtime.db.agent_version import AgentVersion
from runtime.db.engine import make_engine
from runtime.db.models import DIRECTIONS, OUTCOMES
from runtime.db.recorder_spool import SpooledQueue, _Pending
from runtime.db.rows import build_step, clean_metrics, clean_name, clean_text
from runtime.db.session_turn import record_session_turn
from runtime.db.spool import Spool
from runtime.db.step_cursor import StepCounter
from runtime.db.writes import Op
from runtime.session import CallEvent

if TYPE_CHECKING:
    from runtime.sentiment import SentimentScorer

log = logging.getLogger("switchboard.db.recorder")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
MAX_CALL_ID = 128
#: How long `close` lets a database attempt in progress finish.
STOP_GRACE_S = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Sentiment:
    """A call's sentiment: `score` in [-1, 1], a `label` (positive, neutral,
    negative) and the `method` that produced it (e.g. llm, lexicon)."""

    score: float
    label: str
    method: str


@dataclass(frozen=True)
class RecorderStats:
    pending: int
    written: int
    dropped: int
    rejected: int
    retries: int
    last_error: str | None
    unspooled: int = 0
    replayed: int = 0


class CallRecorder(SpooledQueue):
    """Records calls into the database behind `engine` (see module docstring).

    Bound to the event loop it is first used in. `max_pending` bounds the queued
    writes; backoff starts at `retry_initial_s` and doubles up to `retry_max_s`.
    `clock` stamps rows that are not given a time; `sleep` waits between
    retries (tests pass a fake). `sentiment` scores each call as it ends
    (None: calls get only the sentiment `call_ended` is given). `spool` makes
    queued writes durable (see module docstring); the recorder closes it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_pending: int = 10_000,
        retry_initial_s: float = 0.25,
        retry_max_s: float = 10.0,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        owns_engine: bool = False,
        sentiment: SentimentScorer | None = None,
        spool: Spool | None = None,
    ) -> None:
        if max_pending < 1 or retry_initial_s <= 0 or retry_max_s < retry_initial_s:
            raise ValueError("max_pending >= 1 and 0 < retry_initial_s <= retry_max_s required")
        self.engine = engine
        self.max_pending = max_pending
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        self._sleep = sleep
        self._owns_engine = owns_engine
        self._sentiment = sentiment
        self._scoring: set[asyncio.Task[None]] = set()
        self._queue: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._steps = StepCounter()
        self._written = self._dropped = self._rejected = self._retries = 0
        self._last_error: str | None = None
        self._failing = False
        self._attempting = False
        self._spool = spool
        self._unspooled = self._replayed = 0
        self._syncing: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> CallRecorder:
        """A recorder on its own engine for `url` (default: `database_url()`),
        disposed by `close()`. The database must already be migrated."""
        schema = options.pop("schema", None)
        return cls(make_engine(url, schema=schema), owns_engine=True, **options)

    @property
    def failing(self) -> bool:
        """True while the database is unreachable (writes are being buffered)."""
        return self._failing

    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            pending=len(self._queue),
            written=self._written,
            dropped=self._dropped,
            rejected=self._rejected,
            retries=self._retries,
            last_error=self._last_error,
            unspooled=self._unspooled,
            replayed=self._replayed,
        )

    # --- the call's side: build rows now, queue them, return ------------------

    async def call_started(
        self,
        call_id: str,
        *,
        agent: AgentVersion | str,
        direction: str = "inbound",
        transport: str = "text",
        caller: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Queue the call's row (and its agent version's). Recording it again
        updates the call's descriptive fields; it never duplicates."""
        if not self._valid(call_id, started_at) or not self._check(
            direction in DIRECTIONS, f"call {call_id}: direction {direction!r} not in {DIRECTIONS}"
        ):
            return
        at = started_at or self.clock()
        version = agent if isinstance(agent, AgentVersion) else None
        graph_id = clean_name(version.graph_id if version else agent)
        row: dict[str, Any] = {
            "id": call_id,
            "agent": graph_id,
            "agent_version_id": None,
            "graph_commit": version.git_commit if version else None,
            "graph_hash": version.content_hash if version else None,
            "direction": direction,
            "transport": clean_name(transport, 32),
            "caller": None if caller is None else clean_name(caller, 64),
            "started_at": at,
        }
        self._steps.cursor(call_id)
        self._enqueue(f"call {call_id} started", Op.call_started(row, version))

    async def record(
        self,
        call_id: str,
        events: Sequence[CallEvent],
        *,
        step: int | None = None,
        caller_text: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """Queue one step of a call: the caller's line (`caller_text`; None for
        the opening) and the events it produced; `metrics` are that step's
        latencies in ms (stt_ms, graph_ms, llm_ttft_ms, tts_ttfa_ms, e2e_ms,
        bargein_ms). `step` numbers the step within the call (0 = opening, n =
        after the n-th caller turn, as `CallState.turn` counts): give it so that
        a step recorded again, by any process, is recognised. Without it the
        recorder numbers steps itself and still recognises an identical batch
        recorded twice by this recorder."""
        if not self._valid(call_id, at, ended_at) or not self._check(
            step is None or (isinstance(step, int) and step >= 0),
            f"call {call_id}: step must be a whole number >= 0, got {step!r}",
        ):
            return
        step = self._steps.step_for(self._steps.cursor(call_id), events, caller_text, step)
        rows = build_step(
            call_id,
            step,
            events,
            at=at or self.clock(),
            ended_at=ended_at,
            caller_text=caller_text,
            metrics=metrics,
        )
        self._rejected += rows.skipped
        self._enqueue(f"call {call_id} step {step}", Op.step(rows))
        if rows.outcome is not None:
            self._score_sentiment(call_id)

    async def call_ended(
        self,
        call_id: str,
        outcome: str,
        reason: str | None = None,
        *,
        ended_at: datetime | None = None,
        sentiment: Sentiment | None = None,
    ) -> None:
        """Queue the call's end: outcome, reason, end time, duration, sentiment."""
        if not self._valid(call_id, ended_at) or not self._check(
            outcome in OUTCOMES, f"call {call_id}: outcome {outcome!r} not in {OUTCOMES}"
        ):
            return
        at = ended_at or self.clock()
        extra: dict[str, Any] = {}
        if sentiment is not None:
            extra = {
                "sentiment_score": float(sentiment.score),
                "sentiment_label": clean_name(sentiment.label, 16),
                "sentiment_method": clean_name(sentiment.method, 32),
            }
        why = None if reason is None else clean_text(reason)
        self._enqueue(f"call {call_id} ended", Op.call_ended(call_id, outcome, why, at, extra))
        if sentiment is None:
            self._score_sentiment(call_id)
        else:
            self._steps.cursor(call_id).scored = True

    async def add_recording(
        self,
        call_id: str,
        path: str,
        *,
        duration_s: float | None = None,
        sample_rate: int | None = None,
    ) -> None:
        """Queue the call's recording (a WAV path); the same path is kept once."""
        if not self._valid(call_id):
            return
        row = {
            "call_id": call_id,
            "path": clean_text(path, 1024),
            "duration_s": duration_s,
            "sample_rate": sample_rate,
            "created_at": self.clock(),
        }
        self._enqueue(f"call {call_id} recording", Op.recording(row))

    async def turn_metrics(self, call_id: str, step: int, metrics: Mapping[str, Any]) -> None:
        """Queue latencies of step `step` measured after it was recorded (a
        voice turn's speech timings): `metrics` as `record` takes them, merged
        into the turn that step keeps its latencies on. Queued after the
        step's own write, so it finds the step's rows; a stage given again
        replaces its value, so recording the same twice changes nothing."""
        if not self._valid(call_id) or not self._check(
            isinstance(step, int) and not isinstance(step, bool) and step >= 0,
            f"call {call_id}: step must be a whole number >= 0, got {step!r}",
        ):
            return
        latencies = clean_metrics(metrics)
        if latencies is not None:
            op = Op.turn_latencies(call_id, step, latencies)
            self._enqueue(f"call {call_id} step {step} latencies", op)

    # --- waiting and shutting down -------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write is done (True) or `timeout` s pass (False)."""
        if not self._queue:
            return True
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float | None = 5.0) -> int:
        """Let sentiment scoring in progress finish and flush, each for up to
        `timeout` s, stop the writer, dispose an owned engine. Returns how
        many writes were left unwritten (and logs them); with a spool the
        durable ones stay in it for the next process to replay."""
        if self._closed:
            return 0
        if self._scoring:
            _done, late = await asyncio.wait(set(self._scoring), timeout=timeout)
            for late_task in late:
                late_task.cancel()
        await self.flush(timeout)
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            # A database attempt in progress is let finish (cancelling it can
            # leave a driver thread reporting to a closed loop); the writer
            # stops right after it. Idle or backing off, it is cancelled.
            if not self._attempting:
                task.cancel()
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, STOP_GRACE_S)
        if self._syncing is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._syncing, STOP_GRACE_S)
        left = len(self._queue)
        kept = self._keep_spooled() if left else 0
        if left:
            log.error(
                "recorder closed with %d unwritten writes (%d kept in the spool): %s",
                left,
                kept,
                self._last_error,
            )
            self._dropped += left - kept
            for pending in self._queue:
                pending.dropped()
            self._queue.clear()
        if self._spool is not None:
            self._spool.close(keep=kept > 0)
        if self._owns_engine:
            await self.engine.dispose()
        return left

    # --- internals ------------------------------------------------------------

    def _check(self, ok: bool, message: str) -> bool:
        if not ok:
            self._rejected += 1
            self._last_error = message
            log.error("not recorded: %s", message)
        return ok

    def _valid(self, call_id: Any, *times: datetime | None) -> bool:
        if not self._check(not self._closed, f"call {call_id}: recorder is closed"):
            return False
        if not self._check(
            isinstance(call_id, str) and 0 < len(call_id) <= MAX_CALL_ID,
            f"call id must be 1..{MAX_CALL_ID} characters, got {call_id!r}",
        ):
            return False
        return all(
            self._check(
                t is None or (t.tzinfo is not None and t.utcoffset() is not None),
                f"call {call_id}: time {t} has no time zone",
            )
            for t in times
        )

    def _score_sentiment(self, call_id: str) -> None:
        """Once per call: read its caller turns through the queue, score them
        in a task of their own, queue the result (see module docstring)."""
        cursor = self._steps.cursor(call_id)
        if self._sentiment is None or cursor.scored:
            return
        cursor.scored = True
        texts: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()

        def deliver(found: list[str]) -> None:
            if not texts.done():
                texts.set_result(found)

        def abandon() -> None:
            if not texts.done():
                texts.cancel()

        self._enqueue(
            f"call {call_id} caller turns",
            Op.caller_texts(call_id, deliver),
            abandon,
        )
        task = asyncio.get_running_loop().create_task(
            self._scored(call_id, self._sentiment, texts), name="switchboard-call-sentiment"
        )
        self._scoring.add(task)
        task.add_done_callback(self._scoring.discard)

    async def _scored(
        self, call_id: str, scorer: SentimentScorer, texts: asyncio.Future[list[str]]
    ) -> None:
        try:
            found = await texts
        except asyncio.CancelledError:
            return  # the read was dropped: the call keeps no sentiment
        try:
            result = await scorer.score(found)
        except Exception as exc:
            self._last_error = f"call {call_id} sentiment: {type(exc).__name__}: {exc}"
            log.error("sentiment not scored: %s", self._last_error)
            return
        if self._closed:
            return
        values = {
            "sentiment_score": float(result.score),
            "sentiment_label": clean_name(result.label, 16),
            "sentiment_method": clean_name(result.method, 32),
        }
        self._enqueue(f"call {call_id} sentiment", Op.sentiment(call_id, values))

    def _enqueue(self, description: str, op: Op, on_drop: Callable[[], None] | None = None) -> None:
        pending = _Pending(description, op, on_drop)
        if len(self._queue) >= self.max_pending:
            self._dropped += 1
            log.error("recorder buffer full (%d writes): %s dropped", self.max_pending, description)
            pending.dropped()
            return
        self._spool_append(pending)
        self._queue.append(pending)
        self._drained.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._writer(), name="switchboard-call-recorder"
            )

    async def _writer(self) -> None:
        delay = self.retry_initial_s
        while not self._closed:
            if not self._queue and not await self._replay_when_due():
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            pending = self._queue[0]
            spool = self._spool
            if spool is not None and pending.seq is not None and pending.seq > spool.synced:
                await self._sync(spool)
            error = await self._attempt(pending)
            if error is None:
                self._queue.popleft()
                self._written += 1
                if spool is not None:
                    self._trim(spool)
                delay = self.retry_initial_s
                if self._failing:
                    self._failing = False
                    log.warning("database reachable again; %d writes queued", len(self._queue))
                continue
            self._last_error = f"{pending.description}: {type(error).__name__}: {error}"
            if not writes.is_transient(error):
                log.error("dropped a write that cannot succeed: %s", self._last_error)
                self._queue.popleft().dropped()
                self._dropped += 1
                continue
            if not self._failing:
                log.warning(
                    "database unavailable; buffering %d writes: %s",
                    len(self._queue),
                    self._last_error,
                )
            self._failing = True
            if self._closed:
                return
            self._retries += 1
            await self._sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    async def _attempt(self, pending: _Pending) -> Exception | None:
        """Run one queued write in its own transaction; the error if it failed."""
        self._attempting = True
        try:
            async with self.engine.begin() as conn:
                await pending.op.write()(conn)
        except Exception as exc:
            return exc
        finally:
            self._attempting = False
        return None


__all__ = ["CallRecorder", "RecorderStats", "Sentiment", "record_session_turn", "utc_now"]
