"""The call recorder's side of its write-ahead spool (`runtime.db.spool`):
the queued-write record, appending each durable write as it is queued with one
fsync per batch, emptying or compacting the spool as writes land, keeping the
unwritten ones at close, and replaying the spools of dead processes.

`SpooledQueue` is a base of `runtime.db.recorder.CallRecorder`, which owns the
queue and the writer; this module holds only the spool bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from runtime.db.spool import Spool, dumps
from runtime.db.writes import Op

log = logging.getLogger("switchboard.db.recorder")

#: A running recorder looks for dead processes' spools at most this often (s),
#: when its queue drains.
REPLAY_EVERY_S = 30.0


@dataclass
class _Pending:
    description: str
    op: Op
    on_drop: Callable[[], None] | None = None
    line: str | None = None  # its spool line, when durable
    seq: int | None = None  # its number in the spool; None: in memory only

    def dropped(self) -> None:
        if self.on_drop is not None:
            self.on_drop()


class SpooledQueue:
    """Spool bookkeeping for a queue of `_Pending` writes (see module docstring)."""

    max_pending: int
    _queue: deque[_Pending]
    _closed: bool
    _spool: Spool | None
    _syncing: asyncio.Task[None] | None
    _unspooled: int
    _replayed: int
    _next_replay: float = 0.0

    def _enqueue(self, description: str, op: Op, on_drop: Callable[[], None] | None = None) -> None:
        """Queue one write; `CallRecorder` defines it (replay re-queues through it)."""
        raise NotImplementedError

    def _spool_append(self, pending: _Pending) -> None:
        """Append a durable write to the spool; schedule one fsync for the batch."""
        if self._spool is None or not pending.op.durable:
            return
        pending.line = dumps({"description": pending.description, "op": pending.op.as_dict()})
        pending.seq = self._spool.append(pending.line)
        if pending.seq is None:
            self._unspooled += 1
        elif self._syncing is None or self._syncing.done():
            # One fsync for the writes queued until this task runs.
            self._syncing = asyncio.get_running_loop().create_task(
                self._sync(self._spool), name="switchboard-recorder-spool-sync"
            )

    async def replay_spool(self) -> int:
        """Queue the writes left in the spools of dead processes on this
        database (as many as the buffer has room for; the rest stay for the
        next call), copied into this recorder's spool before theirs are
        deleted. Returns how many were queued; 0 without a spool."""
        spool, taken = self._spool, 0
        if spool is None or self._closed:
            return 0
        for orphan in spool.claim():
            room = self.max_pending - len(self._queue)
            for entry in orphan.entries[:room]:
                try:
                    op = Op.from_dict(entry.get("op") or {})
                except ValueError as exc:
                    log.error("spooled write unreadable, skipped: %s", exc)
                    continue
                self._enqueue(str(entry.get("description", op.kind)), op)
                taken += 1
            await self._sync(spool)
            if len(orphan.entries) > room:
                orphan.keep(orphan.entries[room:])
            else:
                orphan.remove()
        if taken:
            log.warning("replaying %d writes spooled by a process that died", taken)
        self._replayed += taken
        return taken

    async def _replay_when_due(self) -> int:
        """`replay_spool` when the last look was `REPLAY_EVERY_S` ago or more,
        so a dead peer's spool is picked up by live workers too."""
        if self._spool is None or time.monotonic() < self._next_replay:
            return 0
        self._next_replay = time.monotonic() + REPLAY_EVERY_S
        return await self.replay_spool()

    async def _sync(self, spool: Spool) -> None:
        """Make the spooled writes durable (fsync in a thread); on a disk
        failure they are counted as held in memory only."""
        upto = spool.flush()
        try:
            await asyncio.to_thread(spool.fsync)
        except OSError as exc:
            log.error("spool fsync failed; writes held in memory only: %s", exc)
            for pending in self._queue:
                if pending.seq is not None and pending.seq > spool.synced:
                    pending.seq = None
                    self._unspooled += 1
        spool.synced = max(spool.synced, upto)

    def _trim(self, spool: Spool) -> None:
        """After a write: empty the spool when nothing is pending; rewrite it
        with the pending writes when the written ones make up most of it."""
        if not self._queue:
            spool.clear()
        elif (
            spool.size > spool.max_bytes // 4
            and spool.lines > 2 * len(self._queue)
            and (self._syncing is None or self._syncing.done())
        ):
            self._keep_spooled()

    def _keep_spooled(self) -> int:
        """Rewrite the spool with the pending durable writes; how many it kept."""
        if self._spool is None:
            return 0
        durable = [p for p in self._queue if p.line is not None]
        kept = self._spool.reset(p.line or "" for p in durable)
        for pending, fits in zip(durable, kept, strict=True):
            pending.seq = self._spool.appended if fits else None
        return sum(kept)
