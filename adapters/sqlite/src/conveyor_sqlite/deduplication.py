"""``SqliteDeduplication``: handled (endpoint, key) pairs remembered in SQLite until they expire.

Exactly-once effects need the key recorded in the same transaction as the effect. Given the
application's connection (``connection=``, the one ``sqlite_transaction`` wraps), the store
writes through that connection whenever it is in a transaction, so the kernel records the key
of a handled message inside the handler's transaction: a crash or a rollback keeps the effect
and the key together or neither. Outside a transaction, or without ``connection=``, the store
uses its own connection and commits at once. The statements are also offered as functions on a
caller's connection (:func:`contains_key`, :func:`add_key`) for handlers that do it by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from conveyor_sqlite.application import (
    ApplicationConnection,
    ConnectionSource,
    translate_application,
)
from conveyor_sqlite.database import Database, Synchronous
from conveyor_sqlite.instants import to_unix_ms

if TYPE_CHECKING:
    import sqlite3

__all__ = ["SqliteDeduplication", "contains_key", "add_key", "REMOVE_BATCH"]

T = TypeVar("T")

#: Expired keys are deleted this many per transaction, so a large purge never holds the write
#: lock long enough to stall consumers.
REMOVE_BATCH = 1000


class SqliteDeduplication:
    """A :class:`~conveyor.stores.deduplication.DeduplicationStore` in ``conveyor_deduplication``.

    Args:
        path: the database file; it may be the same file as a ``SqliteTransport``.
        busy_timeout: how long to wait for another connection's write lock before failing.
        synchronous: "FULL" or "NORMAL"; see ``SqliteTransport``.
        connection: the application's connection (or a callable returning it), on the same
            file: while it is in a transaction, keys are read and written inside it.
    """

    __slots__ = ("_application", "_db")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: timedelta = timedelta(seconds=5),
        synchronous: Synchronous = "FULL",
        connection: ConnectionSource | None = None,
    ) -> None:
        self._db = Database(
            path,
            owner="SqliteDeduplication",
            busy_timeout=busy_timeout,
            synchronous=synchronous,
        )
        self._application = (
            None
            if connection is None
            else ApplicationConnection(connection, path=self._db.path, owner="SqliteDeduplication")
        )

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._db.path

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool:
        application = self._in_transaction()
        if application is not None:
            return _on_application(
                application,
                f"looking up key {key!r} of {endpoint_id!r}",
                lambda: contains_key(application, endpoint_id, key, now_ms=to_unix_ms(now)),
            )
        with self._db.read(f"looking up key {key!r} of {endpoint_id!r}") as connection:
            return contains_key(connection, endpoint_id, key, now_ms=to_unix_ms(now))

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        """Record the pair; inside the application's open transaction when there is one."""
        expires_ms = to_unix_ms(expires_at, round_up=True)
        application = self._in_transaction()
        if application is not None:
            _on_application(
                application,
                f"adding key {key!r} of {endpoint_id!r} in the application's transaction",
                lambda: add_key(application, endpoint_id, key, expires_at_ms=expires_ms),
            )
            return
        with self._db.transaction(f"adding key {key!r} of {endpoint_id!r}") as connection:
            add_key(connection, endpoint_id, key, expires_at_ms=expires_ms)

    def in_application_transaction(self) -> bool:
        """Whether ``add`` called now would write inside the application's open transaction."""
        return self._in_transaction() is not None

    def _in_transaction(self) -> sqlite3.Connection | None:
        if self._application is None:
            return None
        connection = self._application.get()
        return connection if connection.in_transaction else None

    def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
        """Forget expired entries, at most ``limit`` (all when None), :data:`REMOVE_BATCH` per
        transaction; returns how many. The expiry index finds them without a scan."""
        now_ms = to_unix_ms(now)
        removed = 0
        while limit is None or removed < limit:
            size = REMOVE_BATCH if limit is None else min(REMOVE_BATCH, limit - removed)
            with self._db.transaction("removing expired deduplication keys") as connection:
                batch = connection.execute(
                    """
                    DELETE FROM conveyor_deduplication
                    WHERE (endpoint_id, key) IN (
                        SELECT endpoint_id, key FROM conveyor_deduplication
                        WHERE expires_at <= ? ORDER BY expires_at LIMIT ?
                    )
                    """,
                    (now_ms, size),
                ).rowcount
            removed += batch
            if batch < size:
                break
        return removed

    def close(self) -> None:
        """Close the connection. Closing again is allowed; every other later call raises."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteDeduplication({self.path!r})"


def _on_application(connection: sqlite3.Connection, action: str, call: Callable[[], T]) -> T:
    """``call`` on the application's connection, with ``sqlite3`` errors as Conveyor's."""
    import sqlite3

    try:
        return call()
    except sqlite3.Error as error:
        raise translate_application(connection, error, action) from error


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
