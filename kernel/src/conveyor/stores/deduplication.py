"""Deduplication: a redelivered message whose endpoint already succeeded is not handled again.

Keys are (endpoint id, message id), or a key the handler names; only success is recorded, inside
the same scope as the handler, so a failed attempt leaves nothing behind. Entries expire, which
makes this "effectively once within the window", not exactly once forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["DeduplicationStore", "InMemoryDeduplicationStore", "Deduplication"]


@runtime_checkable
class DeduplicationStore(Protocol):
    """Remembers which (endpoint, key) pairs were handled, until they expire."""

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool: ...

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None: ...

    def remove_expired(self, *, now: datetime) -> int:
        """Forget expired entries; returns how many were removed."""
        ...


class InMemoryDeduplicationStore:
    """A deduplication store in a dict."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], datetime] = {}

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool:
        expires_at = self._entries.get((endpoint_id, key))
        return expires_at is not None and expires_at > now

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        self._entries[(endpoint_id, key)] = expires_at

    def remove_expired(self, *, now: datetime) -> int:
        expired = [k for k, at in self._entries.items() if at <= now]
        for k in expired:
            del self._entries[k]
        return len(expired)


@dataclass(frozen=True, slots=True)
class Deduplication:
    """Messaging-wide deduplication of asynchronous endpoints.

    Args:
        store: where handled keys are kept; in memory by default.
        expiry: how long a handled key is remembered (7 days, as Ecotone).
    """

    store: DeduplicationStore
    expiry: timedelta = timedelta(days=7)
