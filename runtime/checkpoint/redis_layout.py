"""Where the Redis checkpointer keeps a thread, and how its records are encoded.

Every thread owns exactly five keys, hash-tagged so that they share a cluster
slot and can be written in one MULTI/EXEC and expired together:

    {prefix}:{<thread>}:cp      hash  ns NUL checkpoint_id             -> checkpoint + metadata
    {prefix}:{<thread>}:blobs   hash  ns NUL channel NUL version       -> channel value
    {prefix}:{<thread>}:writes  hash  ns NUL cid NUL task_id NUL idx   -> pending write
    {prefix}:{<thread>}:wix     zset  the `writes` fields (score 0: lex order)
    {prefix}:{<thread>}:idx     zset  ns NUL checkpoint_id (score 0: the timeline)
    {prefix}:threads            zset  thread id -> unix ms of its last write

Checkpoint ids are LangGraph's time-ordered UUIDs, so lexicographic order of the
`idx` members is chronological order per namespace (the order the reference
savers use), and ZRANGEBYLEX ranges over `ns NUL` or `ns NUL cid NUL` select one
namespace or one checkpoint's writes. Namespaces, checkpoint ids and task ids
therefore must not contain NUL. Key names are unambiguous for any thread id:
the five suffixes differ and none is a suffix of another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

SEP = b"\x00"
MAX = b"\xff"  # sorts after every byte that UTF-8 produces
EMPTY_TAG = "empty"


def encode_part(name: str, value: str) -> bytes:
    """UTF-8 bytes of one member part; ValueError naming `name` if it holds NUL."""
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters: {value!r}")
    return value.encode()


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    cp: str
    blobs: str
    writes: str
    wix: str
    idx: str

    @classmethod
    def of(cls, prefix: str, thread_id: str) -> ThreadKeys:
        base = f"{prefix}:{{{thread_id}}}"
        return cls(f"{base}:cp", f"{base}:blobs", f"{base}:writes", f"{base}:wix", f"{base}:idx")

    @property
    def all(self) -> tuple[str, ...]:
        return (self.cp, self.blobs, self.writes, self.wix, self.idx)


def registry_key(prefix: str) -> str:
    return f"{prefix}:threads"


def checkpoint_ref(ns: str, checkpoint_id: str) -> bytes:
    """`cp` field and `idx` member of one checkpoint."""
    return encode_part("checkpoint_ns", ns) + SEP + encode_part("checkpoint_id", checkpoint_id)


def split_ref(ref: bytes) -> tuple[str, str]:
    ns, _, cid = ref.partition(SEP)
    return ns.decode(), cid.decode()


def namespace_bounds(ns: str, before_id: str | None = None) -> tuple[bytes, bytes]:
    """(max, min) ZREVRANGEBYLEX bounds of a namespace's checkpoints, optionally
    only those strictly older than `before_id`."""
    low = b"[" + checkpoint_ref(ns, "")
    if before_id is None:
        return low + MAX, low
    return b"(" + checkpoint_ref(ns, before_id), low


def blob_field(ns: str, channel: str, version: Any) -> bytes:
    return encode_part("checkpoint_ns", ns) + SEP + channel.encode() + SEP + str(version).encode()


def write_field(ref: bytes, task_id: str, idx: int) -> bytes:
    return ref + SEP + encode_part("task_id", task_id) + SEP + str(idx).encode()


def write_bounds(ref: bytes) -> tuple[bytes, bytes]:
    """(min, max) ZRANGEBYLEX bounds of one checkpoint's write fields."""
    return b"[" + ref + SEP, b"[" + ref + SEP + MAX


def ref_of_write_field(field: bytes) -> bytes:
    return field.rpartition(SEP)[0].rpartition(SEP)[0]


def pack_typed(tag: str, data: bytes) -> bytes:
    """One serializer output (tag, bytes) as a single binary-safe value."""
    return encode_part("serializer tag", tag) + SEP + data


def unpack_typed(raw: bytes) -> tuple[str, bytes]:
    tag, _, data = raw.partition(SEP)
    return tag.decode(), data


class WriteRecord(NamedTuple):
    task_id: str
    channel: str
    task_path: str
    idx: int
    tag: str
    data: bytes


def encode_write(record: WriteRecord) -> bytes:
    # JSON escapes control characters, so the header never contains SEP.
    header = json.dumps(list(record[:5]), ensure_ascii=False)
    return header.encode() + SEP + record.data


def decode_write(raw: bytes) -> WriteRecord:
    header, _, data = raw.partition(SEP)
    task_id, channel, task_path, idx, tag = json.loads(header)
    return WriteRecord(task_id, channel, task_path, int(idx), tag, data)
