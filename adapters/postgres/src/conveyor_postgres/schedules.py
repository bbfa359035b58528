"""``PostgresScheduleStore``: each schedule's next tick in PostgreSQL, claimed by one worker.

One row per scheduled endpoint in ``<schema>.schedules``, holding the next planned tick as a
``timestamptz`` (microseconds, as exact as a ``datetime``, so the comparison is exact). A claim
is one statement, atomic on the server: ``UPDATE ... WHERE next_due = <the tick the worker
read>`` moves the tick on, or ``INSERT ... ON CONFLICT DO NOTHING`` stores the first one. Under
concurrent claims PostgreSQL re-checks the ``WHERE`` of a waiting ``UPDATE`` against the row the
winner committed, so exactly one worker's claim changes a row and runs the tick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor_postgres.database import Database
from conveyor_postgres.schema import DEFAULT_SCHEMA

__all__ = ["PostgresScheduleStore"]


class PostgresScheduleStore:
    """A :class:`~conveyor.stores.schedules.ScheduleStore` in ``<schema>.schedules``.

    Args:
        dsn: a PostgreSQL URL or libpq string.
        schema: the PostgreSQL schema of Conveyor's tables (created on first use).
        create_schema: False to only check the schema.
        max_connections: the store's own small pool.
        connect_timeout: how long to wait for the server.
    """

    __slots__ = ("_db", "_sql")

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        create_schema: bool = True,
        max_connections: int = 2,
        connect_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        self._db = Database(
            dsn,
            owner="PostgresScheduleStore",
            schema=schema,
            create_schema=create_schema,
            min_connections=0,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
        )
        table = f"{self._db.schema}.schedules"
        self._sql = {
            "read": f"SELECT next_due FROM {table} WHERE endpoint_id = %s",
            "first": f"""INSERT INTO {table} (endpoint_id, next_due) VALUES (%s, %s)
                ON CONFLICT (endpoint_id) DO NOTHING""",
            "move": f"UPDATE {table} SET next_due = %s WHERE endpoint_id = %s AND next_due = %s",
        }

    def next_due(self, endpoint_id: str) -> datetime | None:
        sql, params = self._sql["read"], (endpoint_id,)
        row = self._db.run(
            f"reading the next tick of {endpoint_id!r}",
            lambda c: c.execute(sql, params).fetchone(),
        )
        return None if row is None else row[0].astimezone(UTC)

    def claim(self, endpoint_id: str, planned: datetime | None, following: datetime) -> bool:
        sql = self._sql["first" if planned is None else "move"]
        params: tuple[object, ...] = (
            (endpoint_id, following) if planned is None else (following, endpoint_id, planned)
        )
        changed: int = self._db.run(
            f"claiming the tick of {endpoint_id!r}", lambda c: c.execute(sql, params).rowcount
        )
        return changed == 1

    def close(self) -> None:
        """Close the pool. Closing again is allowed; every other later call raises."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresScheduleStore({self._db.server}, schema={self._db.schema!r})"
