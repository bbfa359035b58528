"""Deduplication: a redelivered message whose endpoint already succeeded is not handled again.

Keys are (endpoint id, message id), or a key the handler names; only success is recorded, inside
the same scope as the handler, so a failed attempt leaves nothing behind. Entries expire, which
makes this "effectively once within the window", not exactly once forever.

Expired keys are purged by the kernel as it consumes: every ``purge_every`` deduplicated
messages it asks the store to remove at most ``purge_limit`` expired keys, so the cost per
consumed message is bounded and the store never grows beyond the keys of one window. A store
that shares the handler's database can also record keys inside the handler's transaction
(:class:`TransactionalDeduplicationStore`), which closes the window between the effect and the key.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = [
    "DeduplicationStore",
    "InMemoryDeduplicationStore",
    "Deduplication",
    "TransactionalDeduplicationStore",
]


@runtime_checkable
class DeduplicationStore(Protocol):
    """Remembers which (endpoint, key) pairs were handled, until they expire."""

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool: ...

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None: ...

    def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
        """Forget expired entries, at most ``limit`` of them (all when None); returns how many.

        Its cost must grow with the entries removed, not with the entries kept: the kernel
        calls it while consuming.
        """
        ...


@runtime_checkable
class TransactionalDeduplicationStore(DeduplicationStore, Protocol):
    """A store that can record a key inside the handler's transaction.

    When ``Messaging(transaction=...)`` opens a transaction on the database this store writes
    to, the kernel records the key inside it, after the handler and the collector's flush and
    before the commit: the effect, the messages it sent and the key commit together or not at
    all, so a redelivery after a crash finds the key of every committed effect.
    """

    def in_application_transaction(self) -> bool:
        """Whether ``add`` called now would write inside the application's open transaction."""
        ...


class InMemoryDeduplicationStore:
    """A deduplication store in a dict, with a heap of expiries to purge without scanning."""

    __slots__ = ("_entries", "_expiries", "_lock")

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], datetime] = {}
        self._expiries: list[tuple[datetime, str, str]] = []  # may hold outdated expiries
        self._lock = threading.Lock()

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool:
        expires_at = self._entries.get((endpoint_id, key))
        return expires_at is not None and expires_at > now

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        with self._lock:
            self._entries[(endpoint_id, key)] = expires_at
            heapq.heappush(self._expiries, (expires_at, endpoint_id, key))

    def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
        removed = 0
        with self._lock:
            expiries, entries = self._expiries, self._entries
            while expiries and expiries[0][0] <= now and (limit is None or removed < limit):
                expires_at, endpoint_id, key = heapq.heappop(expiries)
                if entries.get((endpoint_id, key)) == expires_at:  # else re-added: kept
                    del entries[(endpoint_id, key)]
                    removed += 1
        return removed

    def __len__(self) -> int:
        """How many keys are held, expired or not."""
        return len(self._entries)


#: The longest a handled key may be remembered: a century, far below any date overflow.
MAX_DEDUPLICATION_EXPIRY = timedelta(days=36525)


@dataclass(frozen=True, slots=True)
class Deduplication:
    """Messaging-wide deduplication of asynchronous endpoints.

    Args:
        store: where handled keys are kept; in memory by default.
        expiry: how long a handled key is remembered (7 days, as Ecotone).
        purge_every: the kernel purges expired keys once per this many deduplicated messages.
        purge_limit: at most this many expired keys are removed per purge. The default removes
            up to 10 keys per message on average, more than the one key a message adds, so the
            purge keeps up while each message pays a bounded share.
    """

    store: DeduplicationStore
    expiry: timedelta = timedelta(days=7)
    purge_every: int = 100
    purge_limit: int = 1000

    def __post_init__(self) -> None:
        from conveyor.core.errors import ConfigurationError

        # A key's expiry is summed with the clock when it is written: bound it here, so a
        # timedelta.max fails when the Messaging is configured, not as an overflow mid-handling.
        if not isinstance(self.expiry, timedelta) or not (
            timedelta(0) < self.expiry <= MAX_DEDUPLICATION_EXPIRY
        ):
            raise ConfigurationError(
                f"Deduplication(expiry=...) takes a positive timedelta of at most "
                f"{MAX_DEDUPLICATION_EXPIRY.days} days (keys are kept that long after handling); "
                f"for example expiry=timedelta(days=7)."
            )
        if self.purge_every < 1 or self.purge_limit < 1:
            raise ConfigurationError(
                f"Deduplication(purge_every={self.purge_every}, purge_limit={self.purge_limit}): "
                f"both must be at least 1."
            )
