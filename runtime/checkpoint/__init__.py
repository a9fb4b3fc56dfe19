"""Checkpointers chosen by URL: memory://, sqlite:///file.db, redis:// (plain Redis, TTL)."""

from runtime.checkpoint.factory import (
    SUPPORTED_SCHEMES,
    CheckpointerUnavailable,
    default_checkpointer_url,
    describe_checkpointer_url,
    open_checkpointer,
    resolve_ttl,
)
from runtime.checkpoint.redis_saver import RedisCheckpointSaver

__all__ = [
    "SUPPORTED_SCHEMES",
    "CheckpointerUnavailable",
    "RedisCheckpointSaver",
    "default_checkpointer_url",
    "describe_checkpointer_url",
    "open_checkpointer",
    "resolve_ttl",
]
