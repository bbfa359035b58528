"""``RedisDeadLetterStore``: dead letters on Redis, oldest first, each expiring on its own.

A letter is one JSON string key (the body in base64, so the original bytes come back exactly;
no pickle) with a Redis expiry, listed in a sorted set scored by that expiry. Letters are kept
``keep`` long (30 days by default) and Redis removes them on its own; the index drops entries
whose time passed whenever it is read. Retention runs on the server's clock (``TIME`` in the
scripts), because Redis expires keys by it: it is housekeeping, not message timing.

``claim`` takes a letter out atomically (read and delete in one script), so two operators
replaying at once never replay one letter twice. ``add`` never overwrites: a taken id gets the
first free ``#2``, ``#3``, ... suffix, probed key by key inside the script.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from conveyor.core.errors import DeadLetterNotFound
from conveyor.stores.dead_letters import SAMPLE, DeadLetter, not_found
from conveyor_redis.store_client import StoreClient

__all__ = ["RedisDeadLetterStore"]

# KEYS: index. ARGV: letter key prefix, proposed id, the JSON after its "id" field, keep ms.
# Keeps the letter under the proposed id or its first free "#n" suffix (probed key by key, never
# overwriting) and returns the id used. The keys it probes are derived from the prefix, which is
# fine on one server (the store does not support Redis Cluster).
_ADD = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local id = ARGV[2]
local n = 1
while redis.call('EXISTS', ARGV[1] .. id) == 1 do
  n = n + 1
  id = ARGV[2] .. '#' .. n
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), id)
redis.call('SET', ARGV[1] .. id, '{"id":' .. cjson.encode(id) .. ',' .. ARGV[3], 'PX', ARGV[4])
return id
"""

# KEYS: index. Drops index entries whose letters expired; returns the index size.
_PRUNE = """
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t[1] * 1000 + math.floor(t[2] / 1000))
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: index, letter key. ARGV: id. Returns the letter and forgets it, or nil.
_CLAIM = """
local letter = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return letter
"""


class RedisDeadLetterStore:
    """A :class:`~conveyor.stores.dead_letters.DeadLetterStore` on Redis.

    Args:
        url: the server, as for ``RedisChannel``.
        prefix: the first part of the store's keys.
        keep: how long a letter is kept before Redis removes it.
        timeout: how long a connection or reply may take.
    """

    __slots__ = ("_add", "_claim", "_index", "_keep_ms", "_letter_prefix", "_prune", "_store")

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "conveyor",
        keep: timedelta = timedelta(days=30),
        timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        if keep <= timedelta(0):
            raise ValueError(f"keep={keep} must be positive: it is how long letters are kept.")
        self._store = StoreClient(url, "RedisDeadLetterStore", timeout=timeout)
        self._keep_ms = -(-keep // timedelta(milliseconds=1))
        self._index = f"{prefix}:dead-letters"
        self._letter_prefix = f"{prefix}:dead-letter:"
        register = self._store.client.register_script
        self._add, self._prune, self._claim = register(_ADD), register(_PRUNE), register(_CLAIM)

    def add(self, letter: DeadLetter) -> str:
        """Keep ``letter`` under its id or the first free suffix of it; returns that id."""
        self._store.check_open(f"add dead letter {letter.id!r}")
        try:
            stored = self._add(
                [self._index],
                [self._letter_prefix, letter.id, _encode_after_id(letter), self._keep_ms],
            )
        except Exception as error:
            raise self._store.failed(error, f"adding dead letter {letter.id!r}") from error
        return stored.decode() if isinstance(stored, bytes) else str(stored)

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Oldest first."""
        self._store.check_open("list dead letters")
        stop = -1 if limit is None else offset + limit - 1
        if limit == 0:
            return []
        try:
            self._prune([self._index], [])
            ids = _texts(self._store.client.zrange(self._index, offset, stop))
            stored = self._store.client.mget([self._key(i) for i in ids]) if ids else []
        except Exception as error:
            raise self._store.failed(error, "listing dead letters") from error
        return [_decode(raw) for raw in stored if raw is not None]

    def get(self, letter_id: str) -> DeadLetter:
        self._store.check_open(f"read dead letter {letter_id!r}")
        try:
            raw = self._store.client.get(self._key(letter_id))
        except Exception as error:
            raise self._store.failed(error, f"reading dead letter {letter_id!r}") from error
        if raw is None:
            raise self._not_found(letter_id)
        return _decode(raw)

    def claim(self, letter_id: str) -> DeadLetter:
        """Remove the letter and return it, atomically; ``DeadLetterNotFound`` if it is gone."""
        self._store.check_open(f"claim dead letter {letter_id!r}")
        try:
            raw = self._claim([self._index, self._key(letter_id)], [letter_id])
        except Exception as error:
            raise self._store.failed(error, f"claiming dead letter {letter_id!r}") from error
        if raw is None:
            raise self._not_found(letter_id)
        return _decode(raw)

    def count(self) -> int:
        self._store.check_open("count dead letters")
        try:
            return int(self._prune([self._index], []))
        except Exception as error:
            raise self._store.failed(error, "counting dead letters") from error

    def delete(self, letter_id: str) -> None:
        self._store.check_open(f"delete dead letter {letter_id!r}")
        try:
            pipe = self._store.client.pipeline(transaction=True)
            pipe.delete(self._key(letter_id))
            pipe.zrem(self._index, letter_id)
            deleted, _ = pipe.execute()
        except Exception as error:
            raise self._store.failed(error, f"deleting dead letter {letter_id!r}") from error
        if not deleted:
            raise self._not_found(letter_id)

    def close(self) -> None:
        """Close the connection pool. Closing again is allowed; every other later call raises."""
        self._store.close()

    def _key(self, letter_id: str) -> str:
        return self._letter_prefix + letter_id

    def _not_found(self, letter_id: str) -> DeadLetterNotFound:
        try:
            total = int(self._prune([self._index], []))
            sample = _texts(self._store.client.zrange(self._index, 0, SAMPLE - 1))
        except Exception as error:
            raise self._store.failed(error, "listing dead letters") from error
        return not_found(letter_id, sample, total=total)

    def __repr__(self) -> str:
        return f"RedisDeadLetterStore({self._store.address.where()!r})"


def _encode_after_id(letter: DeadLetter) -> str:
    """The letter's JSON object without its leading ``{"id": ...,``: the add script puts the id
    it chose in front."""
    fields: dict[str, Any] = {
        "message_id": letter.message_id,
        "channel": letter.channel,
        "endpoint_id": letter.endpoint_id,
        "message_type": letter.message_type,
        "body": base64.b64encode(letter.body).decode("ascii"),
        "headers": dict(letter.headers),
        "reason": letter.reason,
        "exception_type": letter.exception_type,
        "exception_message": letter.exception_message,
        "traceback": letter.traceback,
        "attempts": letter.attempts,
        "first_failed_at": _iso(letter.first_failed_at),
        "last_failed_at": _iso(letter.last_failed_at),
        "replayed": letter.replayed,
    }
    return json.dumps(fields, separators=(",", ":"))[1:]


def _texts(reply: object) -> list[str]:
    assert isinstance(reply, list)
    return [item.decode() if isinstance(item, bytes) else str(item) for item in reply]


def _decode(raw: object) -> DeadLetter:
    assert isinstance(raw, bytes | str)
    fields = json.loads(raw)
    fields["body"] = base64.b64decode(fields["body"])
    for name in ("first_failed_at", "last_failed_at"):
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return DeadLetter(**fields)


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()
