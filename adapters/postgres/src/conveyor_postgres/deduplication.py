"""``PostgresDeduplication``: handled (endpoint, key) pairs kept in PostgreSQL until they expire.

Exactly-once effects need the key recorded in the same transaction as the effect. Given the
application's connection (``connection=``, as for an outbox channel), the store reads and writes
through that connection whenever it is in a transaction, so a handler that writes to the same
database and runs inside ``postgres_transaction(conn)`` commits its effect and its key together:
a crash or a rollback keeps both or neither, and a redelivered message finds its key. Outside a
transaction, or without ``connection=``, the store uses its own pool and commits at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conveyor_postgres.application import ApplicationConnection, ConnectionSource
from conveyor_postgres.database import Database
from conveyor_postgres.schema import DEFAULT_SCHEMA

__all__ = ["PostgresDeduplication", "REMOVE_BATCH"]

#: Expired keys are deleted this many per statement, so a large purge never holds locks long.
REMOVE_BATCH = 1000


class PostgresDeduplication:
    """A :class:`~conveyor.stores.deduplication.DeduplicationStore` in ``<schema>.deduplication``.

    Args:
        dsn: a PostgreSQL URL or libpq string.
        schema: the PostgreSQL schema of Conveyor's tables (created on first use).
        create_schema: False to only check the schema.
        connection: the application's connection or session (or a callable returning it): while
            it is in a transaction, keys are read and written inside that transaction.
        max_connections: the store's own small pool.
        connect_timeout: how long to wait for the server.
    """

    __slots__ = ("_application", "_db", "_sql")

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        create_schema: bool = True,
        connection: ConnectionSource | None = None,
        max_connections: int = 2,
        connect_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        self._db = Database(
            dsn,
            owner="PostgresDeduplication",
            schema=schema,
            create_schema=create_schema,
            min_connections=0,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
        )
        self._application = (
            None
            if connection is None
            else ApplicationConnection(
                connection, server=self._db.server, owner="PostgresDeduplication"
            )
        )
        table = f"{self._db.schema}.deduplication"
        self._sql = {
            "contains": f"""SELECT 1 FROM {table}
                WHERE endpoint_id = %s AND key = %s AND expires_at > %s""",
            "add": f"""INSERT INTO {table} (endpoint_id, key, expires_at) VALUES (%s, %s, %s)
                ON CONFLICT (endpoint_id, key) DO UPDATE SET expires_at = excluded.expires_at""",
            "remove": f"""DELETE FROM {table} WHERE (endpoint_id, key) IN (
                SELECT endpoint_id, key FROM {table} WHERE expires_at <= %s
                ORDER BY expires_at LIMIT %s)""",
        }

    def contains(self, endpoint_id: str, key: str, *, now: datetime) -> bool:
        sql, params = self._sql["contains"], (endpoint_id, key, now)
        found = self._execute(
            f"looking up a key of {endpoint_id!r}", lambda c: c.execute(sql, params).fetchone()
        )
        return found is not None

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        """Record the pair until ``expires_at``; adding again moves the expiry."""
        sql, params = self._sql["add"], (endpoint_id, key, expires_at)
        self._execute(f"adding a key of {endpoint_id!r}", lambda c: c.execute(sql, params))

    def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
        """Forget expired entries, at most ``limit`` (all when None), :data:`REMOVE_BATCH` per
        statement; returns how many."""
        sql = self._sql["remove"]
        removed = 0
        while limit is None or removed < limit:
            size = REMOVE_BATCH if limit is None else min(REMOVE_BATCH, limit - removed)
            params = (now, size)
            batch: int = self._db.run(
                "removing expired deduplication keys",
                lambda c: c.execute(sql, params).rowcount,  # noqa: B023 (called at once)
            )
            removed += batch
            if batch < size:
                break
        return removed

    def in_application_transaction(self) -> bool:
        """Whether the next call would run inside the application's open transaction."""
        return self._application is not None and self._application.in_transaction() is not None

    def _execute(self, action: str, call: Any) -> Any:
        if self._application is not None:
            self._db.check_open(action)
            application = self._application.in_transaction()
            if application is not None:
                return self._db.run_on(
                    application,
                    f"{action} in the application's transaction",
                    lambda: call(application),
                )
        return self._db.run(action, call)

    def close(self) -> None:
        """Close the pool. Closing again is allowed; every other later call raises."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresDeduplication({self._db.server}, schema={self._db.schema!r})"
