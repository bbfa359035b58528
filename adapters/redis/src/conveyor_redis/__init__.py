"""Redis for Conveyor: durable channels (sync and asyncio), dead letters, deduplication, schedules.

On redis-py (``redis.asyncio`` for the asyncio transport), imported only when a transport or a
store is opened. Each channel is a few keys worked on by atomic Lua scripts: delays and
priorities in sorted sets, timed leases that a dead consumer's message comes back from, acks
fenced by the delivery count. See the package README for URLs, capabilities and durability.
"""

from __future__ import annotations

from conveyor_redis.address import RedisAddress, parse_url
from conveyor_redis.aio import AsyncRedisTransport
from conveyor_redis.channel import RedisChannel
from conveyor_redis.deadletters import RedisDeadLetterStore
from conveyor_redis.deduplication import RedisDeduplication
from conveyor_redis.reconnect import Reconnect
from conveyor_redis.schedules import RedisScheduleStore
from conveyor_redis.transport import RedisTransport

__all__ = [
    # the channel definition and its transports
    "RedisChannel",
    "RedisTransport",
    "AsyncRedisTransport",
    "Reconnect",
    # the stores
    "RedisDeadLetterStore",
    "RedisDeduplication",
    "RedisScheduleStore",
    # where a server is
    "RedisAddress",
    "parse_url",
]
