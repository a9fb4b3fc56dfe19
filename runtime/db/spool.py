"""A write-ahead spool for the call recorder: pending writes survive SIGKILL.

Each recorder process keeps one append-only JSONL file of the writes it has
queued but not yet written, in a directory per database (URL without password
+ schema, see `spool_dir`), and holds an exclusive `flock` on a companion lock
file for as long as it lives. The recorder appends each durable write as it
queues it and `sync`s (flush + fsync) the batch before the first of them is
tried against the database; when its queue drains the file is emptied, and
while it stays busy it is rewritten with the pending writes alone (`reset`,
via a temporary file and rename, so a crash keeps the old or the new file).

A process that starts next `claim`s the spools whose lock it can take (their
owner is dead; a live process's spool is never touched), appends their writes
to its own spool, syncs, and only then deletes them. Replaying a write that
was already written changes nothing (see `runtime.db.writes`).

Bounds: `max_bytes` per spool file. When an entry does not fit (or the disk
fails), `append` returns False: the write is then held in memory only, as
before the spool existed — written if the process lives, lost if it is killed
— and the recorder counts it in `stats.unspooled`. The file gets room again
when the queue drains.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runtime.db.engine import (
    async_url,
    database_url,
    default_data_dir,
    describe_url,
    is_memory_sqlite,
)

log = logging.getLogger("switchboard.db.spool")

SPOOL_DIR_ENV = "SWITCHBOARD_SPOOL_DIR"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_DT = "__dt__"
_DICT = "__dict__"


def spool_dir(url: str | None = None, schema: str | None = None, base: Path | None = None) -> Path:
    """The spool directory of one database: <base>/<hash of URL and schema>,
    base = `base`, else $SWITCHBOARD_SPOOL_DIR, else <data dir>/spool. Two
    processes share it exactly when they write to the same database under the
    same URL (not created here)."""
    if base is None:
        configured = os.environ.get(SPOOL_DIR_ENV, "").strip()
        base = Path(configured) if configured else default_data_dir() / "spool"
    key = f"{describe_url(database_url(url))}|{schema or ''}"
    return base.expanduser() / hashlib.sha256(key.encode()).hexdigest()[:16]


def open_spool(
    url: str | None = None, schema: str | None = None, base: Path | None = None
) -> Spool | None:
    """This process's spool for the database at `url` (see `spool_dir`); None
    for an in-memory SQLite database, which no other process could reach."""
    if is_memory_sqlite(async_url(database_url(url))):
        return None
    return Spool(spool_dir(url, schema, base))


def encode(value: Any) -> Any:
    """`value` as JSON data, datetimes tagged (a dict that looks like a tag is
    wrapped), so `decode` gives back an equal value."""
    if isinstance(value, datetime):
        return {_DT: value.isoformat()}
    if isinstance(value, dict):
        out = {str(k): encode(v) for k, v in value.items()}
        return {_DICT: out} if len(out) == 1 and next(iter(out)) in (_DT, _DICT) else out
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of `encode`."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(_DT), str):
            return datetime.fromisoformat(value[_DT])
        if len(value) == 1 and isinstance(value.get(_DICT), dict):
            return {k: decode(v) for k, v in value[_DICT].items()}
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def dumps(entry: dict[str, Any]) -> str:
    """One spool line (with its newline) for a JSON-able entry with datetimes."""
    return json.dumps(encode(entry), separators=(",", ":"), allow_nan=False) + "\n"


def read_entries(path: Path) -> list[dict[str, Any]]:
    """The complete entries of a spool file, in order; a torn or corrupt line
    (a crash mid-append) is skipped with a warning."""
    found: list[dict[str, Any]] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return found
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            entry = decode(json.loads(line))
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("%s line %d unreadable, skipped: %s", path, number, exc)
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found


@dataclass
class Orphan:
    """The spool of a dead process, locked by us until `release`d."""

    data: Path
    lock: Path
    entries: list[dict[str, Any]]
    _fd: int

    def remove(self) -> None:
        """Delete it (its entries are safe elsewhere) and release the lock."""
        self.data.unlink(missing_ok=True)
        self.lock.unlink(missing_ok=True)
        os.close(self._fd)

    def keep(self, entries: list[dict[str, Any]]) -> None:
        """Leave `entries` (those not taken) for a later claim; release the lock."""
        _replace(self.data, "".join(dumps(e) for e in entries))
        os.close(self._fd)


class Spool:
    """This process's spool in `directory` (created), locked while open."""

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        self.directory = directory
        self.max_bytes = max_bytes
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.lock_path = directory / f"{name}.lock"
        self.path = directory / f"{name}.jsonl"
        for attempt in range(3):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                self._lock_fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o600)
                break
            except FileNotFoundError:  # another process removed the empty directory
                if attempt == 2:
                    raise
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file = self.path.open("ab")
        self.size = 0
        self.lines = 0
        self.appended = 0  # entries appended since open
        self.synced = 0  # of which flushed and fsync'd
        self.closed = False

    def append(self, line: str) -> int | None:
        """Append one `dumps` line; its sequence number (for `synced`), or None
        when it does not fit in `max_bytes` or the disk refused it."""
        data = line.encode()
        if self.closed or self.size + len(data) > self.max_bytes:
            return None
        try:
            self._file.write(data)
        except OSError as exc:
            log.error("spool %s: append failed: %s", self.path, exc)
            return None
        self.size += len(data)
        self.lines += 1
        self.appended += 1
        return self.appended

    def flush(self) -> int:
        """Hand appended lines to the OS; the sequence number `fsync` makes durable."""
        upto = self.appended
        self._file.flush()
        return upto

    def fsync(self) -> None:
        """fsync the file (may run in a worker thread; OSError on disk failure)."""
        os.fsync(self._file.fileno())

    def clear(self) -> None:
        """Empty the file: every entry in it has been written."""
        self._file.flush()
        self._file.truncate(0)
        self.size = self.lines = 0
        self.synced = self.appended

    def reset(self, lines: Iterable[str]) -> list[bool]:
        """Rewrite the file atomically with `lines` (the still-pending entries,
        in order) while they fit; which of them were kept. Durable on return."""
        kept: list[bool] = []
        size = 0
        chunks: list[str] = []
        for line in lines:
            fits = size + len(line.encode()) <= self.max_bytes
            kept.append(fits)
            if fits:
                chunks.append(line)
                size += len(line.encode())
        self._file.close()
        _replace(self.path, "".join(chunks))
        self._file = self.path.open("ab")
        self.size, self.lines = size, len(chunks)
        self.synced = self.appended
        return kept

    def claim(self) -> Iterator[Orphan]:
        """The spools of dead processes in this directory, one at a time, each
        locked by us until the caller `remove`s or `keep`s it."""
        for lock in sorted(self.directory.glob("*.lock")):
            if lock == self.lock_path:
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # its owner is alive
                continue
            if not lock.exists():  # removed by another claimant meanwhile
                os.close(fd)
                continue
            data = lock.with_suffix(".jsonl")
            yield Orphan(data, lock, read_entries(data), fd)

    def close(self, *, keep: bool) -> None:
        """Release the lock. With `keep` the file stays for the next process
        to replay (writes left pending); without, it is deleted."""
        if self.closed:
            return
        self.closed = True
        self._file.flush()
        if keep and self.size:
            os.fsync(self._file.fileno())
            self._file.close()
        else:
            self._file.close()
            self.path.unlink(missing_ok=True)
            self.lock_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # left when another spool is in it
                self.directory.rmdir()
        os.close(self._lock_fd)


def _replace(path: Path, text: str) -> None:
    """Write `path` atomically: a fsync'd temporary file renamed over it."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(text.encode())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
