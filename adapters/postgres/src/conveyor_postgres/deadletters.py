"""``PostgresDeadLetterStore``: dead letters in PostgreSQL, oldest first, surviving restarts.

A record keeps the original body bytes and wire headers exactly, so a message whose type no
longer decodes can still be inspected and replayed. Adding a record never replaces one: a taken
id gets the first free ``#2``, ``#3``, ... suffix, probed through the primary key, so the n-th
letter costs what the first costs. ``claim`` is one ``DELETE ... RETURNING``, which is what makes
replay atomic across processes.
"""

from __future__ import annotations

import builtins
from datetime import timedelta
from typing import Any

from conveyor.core.errors import DeadLetterNotFound
from conveyor.stores.dead_letters import SAMPLE, DeadLetter, next_id, not_found
from conveyor_postgres.database import Database
from conveyor_postgres.schema import DEFAULT_SCHEMA
from conveyor_postgres.statements import decode_headers, encode_body, encode_headers

__all__ = ["PostgresDeadLetterStore"]

_COLUMNS = (
    "id, message_id, channel, endpoint_id, message_type, body, headers, reason, "
    "exception_type, exception_message, traceback, attempts, first_failed_at, "
    "last_failed_at, replayed"
)


class PostgresDeadLetterStore:
    """A :class:`~conveyor.stores.dead_letters.DeadLetterStore` in ``<schema>.dead_letters``.

    Args:
        dsn: a PostgreSQL URL or libpq string; the same database as the channels, or another.
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
            owner="PostgresDeadLetterStore",
            schema=schema,
            create_schema=create_schema,
            min_connections=0,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
        )
        table = f"{self._db.schema}.dead_letters"
        self._sql = {
            "add": f"""INSERT INTO {table} ({_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (id) DO NOTHING""",
            "list": f"SELECT {_COLUMNS} FROM {table} ORDER BY seq LIMIT %s OFFSET %s",
            "get": f"SELECT {_COLUMNS} FROM {table} WHERE id = %s",
            "count": f"SELECT count(*) FROM {table}",
            "delete": f"DELETE FROM {table} WHERE id = %s",
            "claim": f"DELETE FROM {table} WHERE id = %s RETURNING {_COLUMNS}",
            "sample": f"SELECT id FROM {table} ORDER BY seq LIMIT {SAMPLE}",
        }

    def add(self, letter: DeadLetter) -> str:
        """Keep ``letter`` under its id or the first free suffix of it; returns that id."""
        sql = self._sql["add"]

        def insert(connection: Any) -> str:
            row = list(_to_row(letter))
            n = 1
            while connection.execute(sql, row).rowcount == 0:
                n += 1
                row[0] = next_id(letter.id, n)
            return str(row[0])

        return self._db.run(f"adding dead letter {letter.id!r}", insert)

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Oldest first (in the order they were first added)."""
        sql = self._sql["list"]
        rows = self._db.run(
            "listing dead letters", lambda c: c.execute(sql, (limit, offset)).fetchall()
        )
        return [_from_row(row) for row in rows]

    def get(self, letter_id: str) -> DeadLetter:
        sql = self._sql["get"]
        row = self._db.run(
            f"reading dead letter {letter_id!r}", lambda c: c.execute(sql, (letter_id,)).fetchone()
        )
        if row is None:
            raise self._not_found(letter_id)
        return _from_row(row)

    def count(self) -> int:
        sql = self._sql["count"]
        row = self._db.run("counting dead letters", lambda c: c.execute(sql).fetchone())
        return int(row[0]) if row is not None else 0

    def delete(self, letter_id: str) -> None:
        sql = self._sql["delete"]
        deleted = self._db.run(
            f"deleting dead letter {letter_id!r}", lambda c: c.execute(sql, (letter_id,)).rowcount
        )
        if deleted == 0:
            raise self._not_found(letter_id)

    def claim(self, letter_id: str) -> DeadLetter:
        """Delete the letter and return it, in one statement; ``DeadLetterNotFound`` if gone."""
        sql = self._sql["claim"]
        row = self._db.run(
            f"claiming dead letter {letter_id!r}",
            lambda c: c.execute(sql, (letter_id,)).fetchone(),
        )
        if row is None:
            raise self._not_found(letter_id)
        return _from_row(row)

    def close(self) -> None:
        """Close the pool. Closing again is allowed; every other later call raises."""
        self._db.close()

    def _not_found(self, letter_id: str) -> DeadLetterNotFound:
        """The kernel's not-found error with the oldest few ids and the count, never every id."""
        sample_sql, count_sql = self._sql["sample"], self._sql["count"]

        def read(connection: Any) -> tuple[builtins.list[str], int]:
            sample = [str(row[0]) for row in connection.execute(sample_sql).fetchall()]
            (total,) = connection.execute(count_sql).fetchone()
            return sample, int(total)

        sample, total = self._db.run("listing dead-letter ids", read)
        return not_found(letter_id, sample, total=total)

    def __repr__(self) -> str:
        return f"PostgresDeadLetterStore({self._db.server}, schema={self._db.schema!r})"


def _to_row(letter: DeadLetter) -> tuple[object, ...]:
    return (
        letter.id,
        letter.message_id,
        letter.channel,
        letter.endpoint_id,
        letter.message_type,
        encode_body(letter.body),
        encode_headers(letter.headers),
        letter.reason,
        letter.exception_type,
        letter.exception_message,
        letter.traceback,
        letter.attempts,
        letter.first_failed_at,
        letter.last_failed_at,
        letter.replayed,
    )


def _from_row(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        id=row[0],
        message_id=row[1],
        channel=row[2],
        endpoint_id=row[3],
        message_type=row[4],
        body=bytes(row[5]),
        headers=decode_headers(row[6]),
        reason=row[7],
        exception_type=row[8],
        exception_message=row[9],
        traceback=row[10],
        attempts=row[11],
        first_failed_at=row[12],
        last_failed_at=row[13],
        replayed=row[14],
    )
