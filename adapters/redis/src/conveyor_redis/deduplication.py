"""``RedisDeduplication``: handled (endpoint, key) pairs as Redis keys that expire on their own.

One key per pair, ``<prefix>:dedup:<length of endpoint>:<endpoint>:<key>`` (the length keeps
``a:b`` + ``c`` apart from ``a`` + ``b:c``), holding its expiry in unix ms and set to expire then.
``contains`` compares that stored expiry with the ``now`` it is given, so a virtual clock is
honoured exactly; Redis deletes the key on its own clock soon after, so ``remove_expired`` has
nothing left to do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.core.clock import Clock, SystemClock
from conveyor_redis.instants import to_ms
from conveyor_redis.store_client import StoreClient

__all__ = ["RedisDeduplication"]


class RedisDeduplication:
    """A :class:`~conveyor.stores.deduplication.DeduplicationStore` on Redis.

    Args:
        url: the server, as for ``RedisChannel``.
        clock: the kernel's clock, to turn an ``expires_at`` into the key's time to live.
        prefix: the first part of the store's keys.
        timeout: how long a connection or reply may take.
    """

    __slots__ = ("_clock", "_prefix", "_store")

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        prefix: str = "conveyor",
        timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self._store = StoreClient(url, "RedisDeduplication", timeout=timeout)
        self._clock = clock or SystemClock()
        self._prefix = f"{prefix}:dedup:"

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool:
        self._store.check_open(f"look up key {key!r} of {endpoint_id!r}")
        try:
            stored = self._store.client.get(self._key(endpoint_id, key))
        except Exception as error:
            raise self._store.failed(error, f"looking up key {key!r} of {endpoint_id!r}") from error
        return stored is not None and int(stored) > to_ms(now)

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        self._store.check_open(f"add key {key!r} of {endpoint_id!r}")
        expires_ms = to_ms(expires_at, round_up=True)
        keep_ms = expires_ms - to_ms(self._clock.now())
        if keep_ms <= 0:
            return  # already expired: contains() would say no anyway
        try:
            self._store.client.set(self._key(endpoint_id, key), expires_ms, px=keep_ms)
        except Exception as error:
            raise self._store.failed(error, f"adding key {key!r} of {endpoint_id!r}") from error

    def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
        """Nothing to do: Redis removes each key when its time to live runs out. Returns 0."""
        self._store.check_open("remove expired keys")
        return 0

    def close(self) -> None:
        self._store.close()

    def _key(self, endpoint_id: str, key: str) -> str:
        return f"{self._prefix}{len(endpoint_id)}:{endpoint_id}:{key}"

    def __repr__(self) -> str:
        return f"RedisDeduplication({self._store.address.where()!r})"
