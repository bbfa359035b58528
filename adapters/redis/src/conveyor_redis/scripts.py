"""The Lua scripts: one atomic script per verb, so no crash between two commands loses a message.

Each runs whole or not at all on the server. A receive moves due delayed messages and expired
leases back to ``ready``, pops the best ones and leases them in one step, so a consumer that
dies after receiving leaves a lease that runs out, never a message that is nowhere (the
pop-then-record gap of list-based queues). The key order is :data:`conveyor_redis.keys.KEY_NAMES`;
times are unix milliseconds from the caller's clock.

redis-py runs them by SHA and loads them again when the server answers NOSCRIPT (after a
restart the script cache is empty).
"""

from __future__ import annotations

__all__ = ["SEND", "RECEIVE", "ACK", "RELEASE", "RENEW", "INSPECT", "MOVE_BATCH"]

MOVE_BATCH = 512
"""At most this many due delayed messages and expired leases are moved per receive, so one
receive never blocks the server for long; the next receive moves the rest."""

# ARGV: stored message, now, not-before (ms), priority, expiry (ms or "").
SEND = """
local id = string.format('%016x', redis.call('INCR', KEYS[8]))
redis.call('HSET', KEYS[1], id, ARGV[1])
local priority = tonumber(ARGV[4])
if priority ~= 0 then redis.call('HSET', KEYS[6], id, ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[7], id, ARGV[5]) end
if tonumber(ARGV[3]) > tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[3], ARGV[3], id)
else
  redis.call('ZADD', KEYS[2], 0 - priority, id)
end
redis.call('LPUSH', KEYS[9], 1)
redis.call('LTRIM', KEYS[9], 0, 0)
return id
"""

_BACK_TO_READY = """
local function back_to_ready(key, ids)
  if #ids == 0 then return end
  redis.call('ZREM', key, unpack(ids))
  local priorities = redis.call('HMGET', KEYS[6], unpack(ids))
  for i, id in ipairs(ids) do
    redis.call('ZADD', KEYS[2], 0 - (tonumber(priorities[i]) or 0), id)
  end
end
"""

# ARGV: now, lease expiry (ms), how many, drop expired ("1" or "0").
# Returns {next due ms or -1, id, count, stored, id, count, stored, ...}; the first element is
# the earliest delayed or leased instant, given only when nothing was received (for the long
# poll), else -1.
RECEIVE = (
    _BACK_TO_READY
    + f"""
local now = tonumber(ARGV[1])
back_to_ready(KEYS[3], redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, {MOVE_BATCH}))
back_to_ready(KEYS[4], redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, {MOVE_BATCH}))
local out = {{-1}}
local wanted = tonumber(ARGV[3])
local got = 0
while got < wanted do
  local popped = redis.call('ZPOPMIN', KEYS[2], wanted - got)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local id = popped[i]
    local stored = redis.call('HGET', KEYS[1], id)
    local expired = false
    if stored and ARGV[4] == '1' then
      local expiry = redis.call('HGET', KEYS[7], id)
      expired = expiry and tonumber(expiry) <= now
    end
    if expired then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[5], id)
      redis.call('HDEL', KEYS[6], id)
      redis.call('HDEL', KEYS[7], id)
    elseif stored then
      got = got + 1
      out[#out + 1] = id
      out[#out + 1] = redis.call('HINCRBY', KEYS[5], id, 1)
      out[#out + 1] = stored
      redis.call('ZADD', KEYS[4], ARGV[2], id)
    end
  end
end
if got == 0 then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local lease = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  local due = -1
  if #first > 0 then due = tonumber(first[2]) end
  if #lease > 0 and (due < 0 or tonumber(lease[2]) < due) then due = tonumber(lease[2]) end
  out[1] = due
end
return out
"""
)

# The fence shared by ack, release and renew: the delivery count still the receipt's, and the
# message still leased. Returns 1, or what the message's count is now ("" when it is gone).
_FENCE = """
local count = redis.call('HGET', KEYS[5], ARGV[1])
if count ~= ARGV[2] or not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  return count or ''
end
"""

# ARGV: id, count.
ACK = (
    _FENCE
    + """
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
return 1
"""
)

# ARGV: id, count, now, not-before (ms).
RELEASE = (
    _BACK_TO_READY
    + _FENCE
    + """
if tonumber(ARGV[4]) > tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  back_to_ready(KEYS[4], {ARGV[1]})
end
redis.call('LPUSH', KEYS[9], 1)
redis.call('LTRIM', KEYS[9], 0, 0)
return 1
"""
)

# ARGV: id, count, new lease expiry (ms).
RENEW = (
    _FENCE
    + """
redis.call('ZADD', KEYS[4], 'XX', ARGV[3], ARGV[1])
return 1
"""
)

# No ARGV. Returns {stored messages, due now, earliest delayed or -1, earliest lease expiry or -1}.
INSPECT = """
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
local lease = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
return {
  redis.call('HLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]),
  #first > 0 and first[2] or '-1',
  #lease > 0 and lease[2] or '-1',
}
"""

# ARGV: now (ms). Returns {stored messages, leased with the lease not run out}: one snapshot.
STATS = """
return {
  redis.call('HLEN', KEYS[1]),
  redis.call('ZCOUNT', KEYS[4], '(' .. ARGV[1], '+inf'),
}
"""
