"""``SqliteScheduleStore``: each schedule's next tick in the SQLite file, claimed once.

Several workers on one file (one machine, or a shared volume) each run a schedule's consumer;
the one whose claim moves the stored tick on runs it, the others see the new tick and wait for
it. The claim is one ``UPDATE ... WHERE next_due = ?`` (or an ``INSERT ... ON CONFLICT DO
NOTHING`` for the first tick), atomic under SQLite's write lock. Instants are stored as ISO 8601
text in UTC, which keeps a ``datetime`` exactly, so the comparison is exact too.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from conveyor_sqlite.database import Database, Synchronous

__all__ = ["SqliteScheduleStore"]


class SqliteScheduleStore:
    """A :class:`~conveyor.stores.schedules.ScheduleStore` in the ``conveyor_schedules`` table.

    Args:
        path: the database file; it may be the same file as the channels and dead letters.
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
            path, owner="SqliteScheduleStore", busy_timeout=busy_timeout, synchronous=synchronous
        )

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._db.path

    def next_due(self, endpoint_id: str) -> datetime | None:
        with self._db.read(f"reading the next tick of {endpoint_id!r}") as connection:
            row = connection.execute(
                "SELECT next_due FROM conveyor_schedules WHERE endpoint_id = ?", (endpoint_id,)
            ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def claim(self, endpoint_id: str, planned: datetime | None, following: datetime) -> bool:
        action = f"claiming the tick of {endpoint_id!r}"
        with self._db.statement(action) as connection:
            if planned is None:
                cursor = connection.execute(
                    "INSERT INTO conveyor_schedules (endpoint_id, next_due) VALUES (?, ?) "
                    "ON CONFLICT (endpoint_id) DO NOTHING",
                    (endpoint_id, _text(following)),
                )
            else:
                cursor = connection.execute(
                    "UPDATE conveyor_schedules SET next_due = ? "
                    "WHERE endpoint_id = ? AND next_due = ?",
                    (_text(following), endpoint_id, _text(planned)),
                )
            return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteScheduleStore({self._db.path!r})"


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
