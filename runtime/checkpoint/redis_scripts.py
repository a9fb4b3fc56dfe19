"""Server-side (Lua) scripts of the Redis checkpointer's hot path.

A LangGraph turn writes the checkpointer several times per superstep. As a
MULTI/EXEC pipeline each write was about ten commands (the data, the index,
five PEXPIREs, the registry prune and touch) that redis-py packs and parses one
by one in Python; as one EVALSHA it is one command and one reply, with the same
atomicity (a script runs alone, like a transaction). Reading the newest
checkpoint likewise becomes one script (newest ref, its record, its pending
writes) plus one HMGET of the channel values it names, instead of three round
trips. The layout is that of `runtime.checkpoint.redis_layout`, unchanged.

Every script takes the thread's five keys then the registry as KEYS
(`ThreadKeys.all` order: cp, blobs, writes, wix, idx), so its keys are declared
as Redis requires.
"""

from __future__ import annotations

from typing import Any

#: Shared tail of the write scripts: ARGV[1..4] = ttl ms ('' for none), now ms,
#: registry cutoff ms, thread id. Refreshes all five keys' TTL, prunes the
#: registry of expired threads and dates this one.
_TOUCH = """
local function touch()
  if ARGV[1] ~= '' then
    for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[3])
  end
  redis.call('ZADD', KEYS[6], ARGV[2], ARGV[4])
end
"""

#: ARGV[5] ref, ARGV[6] checkpoint record, then (blob field, value) pairs.
PUT = (
    _TOUCH
    + """
redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[5], 0, ARGV[5])
touch()
return 1
"""
)

#: Then (mode, field, record) triples: mode '1' keeps an existing field
#: (HSETNX: a regular write is kept once), '0' overwrites (special channels).
PUT_WRITES = (
    _TOUCH
    + """
for i = 5, #ARGV, 3 do
  if ARGV[i] == '1' then
    redis.call('HSETNX', KEYS[3], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
  end
  redis.call('ZADD', KEYS[4], 0, ARGV[i + 1])
end
touch()
return 1
"""
)

#: KEYS: cp, writes, wix, idx of one thread; ARGV: ZREVRANGEBYLEX bounds
#: (max, min) of a namespace. Returns false when the namespace has no
#: checkpoint, else {ref, record or false, {write fields}, {write records}}.
LATEST = """
local top = redis.call('ZREVRANGEBYLEX', KEYS[4], ARGV[1], ARGV[2], 'LIMIT', 0, 1)
if #top == 0 then return false end
local ref = top[1]
local record = redis.call('HGET', KEYS[1], ref)
local fields = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ref .. '\\0', '[' .. ref .. '\\0\\255')
local writes = {}
for i, field in ipairs(fields) do writes[i] = redis.call('HGET', KEYS[2], field) end
return {ref, record, fields, writes}
"""


def flat(pairs: Any) -> list[Any]:
    """[(a, b), (c, d)] or a mapping -> [a, b, c, d], for script arguments."""
    items = pairs.items() if hasattr(pairs, "items") else pairs
    return [part for pair in items for part in pair]
