"""``SqliteDeduplication``: handled (endpoint, key) pairs remembered in SQLite until they expire.

Exactly-once effects need the key recorded in the same transaction as the effect, so the
statements are also offered as functions on a caller's connection (:func:`contains_key`,
:func:`add_key`): a handler writing to the same SQLite file checks and records the key inside
its own transaction, and a crash either keeps both or neither.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from conveyor_sqlite.database import Database, Synchronous
from conveyor_sqlite.instants import to_unix_ms

if TYPE_CHECKING:
    import sqlite3

__all__ = ["SqliteDeduplication", "contains_key", "add_key", "REMOVE_BATCH"]

#: Expired keys are deleted this many per transaction, so a large purge never holds the write
#: lock long enough to stall consumers.
REMOVE_BATCH = 1000


class SqliteDeduplication:
    """A :class:`~conveyor.stores.deduplication.DeduplicationStore` in ``conveyor_deduplication``.

    Args:
        path: the database file; it may be the same file as a ``SqliteTransport``.
        busy_timeout: how long to wait for another connection's write lock before failing.
        synchronous: "FULL" or "NORMAL"; see ``SqliteTransport``.
    """

    __slots__ = ("_db",)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: timedelta = timedelta(seconds=5),
        synchronous: Synchronous = "FULL",
    ) -> None:
        self._db = Database(
            path,
            owner="SqliteDeduplication",
            busy_timeout=busy_timeout,
            synchronous=synchronous,
        )

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._db.path

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool:
        with self._db.read(f"looking up key {key!r} of {endpoint_id!r}") as connection:
            return contains_key(connection, endpoint_id, key, now_ms=to_unix_ms(now))

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        expires_ms = to_unix_ms(expires_at, round_up=True)
        with self._db.transaction(f"adding key {key!r} of {endpoint_id!r}") as connection:
            add_key(connection, endpoint_id, key, expires_at_ms=expires_ms)

    def remove_expired(self, *, now: datetime) -> int:
        """Forget expired entries, :data:`REMOVE_BATCH` per transaction; returns how many."""
        now_ms = to_unix_ms(now)
        removed = 0
        while True:
            with self._db.transaction("removing expired deduplication keys") as connection:
                batch = connection.execute(
                    """
                    DELETE FROM conveyor_deduplication
                    WHERE (endpoint_id, key) IN (
                        SELECT endpoint_id, key FROM conveyor_deduplication
                        WHERE expires_at <= ? LIMIT ?
                    )
                    """,
                    (now_ms, REMOVE_BATCH),
                ).rowcount
            removed += batch
            if batch < REMOVE_BATCH:
                return removed

    def close(self) -> None:
        """Close the connection. Closing again is allowed; every other later call raises."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteDeduplication({self.path!r})"


def contains_key(
    connection: sqlite3.Connection, endpoint_id: str, key: str, *, now_ms: int
) -> bool:
    """Whether the pair was handled and is unexpired at ``now_ms``, on the caller's connection."""
    row = connection.execute(
        """
        SELECT 1 FROM conveyor_deduplication
        WHERE endpoint_id = ? AND key = ? AND expires_at > ?
        """,
        (endpoint_id, key, now_ms),
    ).fetchone()
    return row is not None


def add_key(
    connection: sqlite3.Connection, endpoint_id: str, key: str, *, expires_at_ms: int
) -> None:
    """Record the pair until ``expires_at_ms`` without committing; adding again moves the expiry."""
    connection.execute(
        """
        INSERT INTO conveyor_deduplication (endpoint_id, key, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (endpoint_id, key) DO UPDATE SET expires_at = excluded.expires_at
        """,
        (endpoint_id, key, expires_at_ms),
    )
