"""``RedisScheduleStore``: each schedule's next tick in Redis, claimed by one worker.

One key per scheduled endpoint, ``<prefix>:schedule:<endpoint>``, holding the next planned tick
as ISO 8601 text in UTC (exact, so the comparison is exact). A claim is one Lua script: it sets
the new tick only if the key still holds the one the worker read (or is missing, for the first
tick), atomically on the server, so with several workers exactly one runs each tick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor_redis.store_client import StoreClient

__all__ = ["RedisScheduleStore"]

_CLAIM = """
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2])
    return 1
end
return 0
"""


class RedisScheduleStore:
    """A :class:`~conveyor.stores.schedules.ScheduleStore` on Redis.

    Args:
        url: the server, as for ``RedisChannel``.
        prefix: the first part of the store's keys.
        timeout: how long a connection or reply may take.
    """

    __slots__ = ("_prefix", "_store")

    def __init__(
        self, url: str, *, prefix: str = "conveyor", timeout: timedelta = timedelta(seconds=10)
    ) -> None:
        self._store = StoreClient(url, "RedisScheduleStore", timeout=timeout)
        self._prefix = f"{prefix}:schedule:"

    def next_due(self, endpoint_id: str) -> datetime | None:
        self._store.check_open(f"read the next tick of {endpoint_id!r}")
        try:
            stored = self._store.client.get(self._prefix + endpoint_id)
        except Exception as error:
            raise self._store.failed(error, f"reading the next tick of {endpoint_id!r}") from error
        if stored is None:
            return None
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        return datetime.fromisoformat(text)

    def claim(self, endpoint_id: str, planned: datetime | None, following: datetime) -> bool:
        self._store.check_open(f"claim the tick of {endpoint_id!r}")
        expected = "" if planned is None else _text(planned)
        try:
            claimed = self._store.client.eval(
                _CLAIM, 1, self._prefix + endpoint_id, expected, _text(following)
            )
        except Exception as error:
            raise self._store.failed(error, f"claiming the tick of {endpoint_id!r}") from error
        return bool(claimed)

    def close(self) -> None:
        self._store.close()

    def __repr__(self) -> str:
        return f"RedisScheduleStore({self._store.address.where()!r})"


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
