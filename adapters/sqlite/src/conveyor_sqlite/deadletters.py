"""``SqliteDeadLetterStore``: dead letters that survive restarts, oldest first.

A record keeps the original body bytes and wire headers exactly, so a message whose type no
longer decodes can still be inspected and replayed. Times are stored as ISO 8601 text, which
keeps a ``datetime`` exactly (microseconds and offset) and reads well in the ``sqlite3`` shell.
Adding a record never replaces one: a taken id gets the first free ``#2``, ``#3``, ... suffix,
probed through the unique index, so the n-th letter costs what the first costs. ``claim``
deletes and returns a letter in one statement, which is what makes replay atomic across
processes.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.core.errors import DeadLetterNotFound
from conveyor.stores.dead_letters import SAMPLE, DeadLetter, next_id, not_found
from conveyor_sqlite.database import Database, Synchronous
from conveyor_sqlite.messages import decode_headers, encode_body, encode_headers

if TYPE_CHECKING:
    import sqlite3

__all__ = ["SqliteDeadLetterStore"]

_COLUMNS = (
    "id, message_id, channel, endpoint_id, message_type, body, headers, reason, "
    "exception_type, exception_message, traceback, attempts, first_failed_at, "
    "last_failed_at, replayed"
)

_INSERT = f"""
    INSERT INTO conveyor_dead_letters ({_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING
"""


class SqliteDeadLetterStore:
    """A :class:`~conveyor.stores.dead_letters.DeadLetterStore` in the ``conveyor_dead_letters``
    table.

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
            owner="SqliteDeadLetterStore",
            busy_timeout=busy_timeout,
            synchronous=synchronous,
        )

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._db.path

    def add(self, letter: DeadLetter) -> str:
        """Keep ``letter`` under its id or the first free suffix of it; returns that id."""
        row = list(_to_row(letter))
        with self._db.transaction(f"adding dead letter {letter.id!r}") as connection:
            n = 1
            while connection.execute(_INSERT, row).rowcount == 0:
                n += 1
                row[0] = next_id(letter.id, n)
        return str(row[0])

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Oldest first (in the order they were first added)."""
        with self._db.read("listing dead letters") as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM conveyor_dead_letters ORDER BY seq LIMIT ? OFFSET ?",
                (-1 if limit is None else limit, offset),
            ).fetchall()
        return [_from_row(row) for row in rows]

    def get(self, letter_id: str) -> DeadLetter:
        with self._db.read(f"reading dead letter {letter_id!r}") as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM conveyor_dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
            if row is None:
                raise _not_found(connection, letter_id)
        return _from_row(row)

    def count(self) -> int:
        with self._db.read("counting dead letters") as connection:
            row = connection.execute("SELECT COUNT(*) FROM conveyor_dead_letters").fetchone()
        return int(row[0])

    def delete(self, letter_id: str) -> None:
        with self._db.transaction(f"deleting dead letter {letter_id!r}") as connection:
            deleted = connection.execute(
                "DELETE FROM conveyor_dead_letters WHERE id = ?", (letter_id,)
            ).rowcount
            if deleted == 0:
                raise _not_found(connection, letter_id)

    def claim(self, letter_id: str) -> DeadLetter:
        """Delete the letter and return it, in one statement; ``DeadLetterNotFound`` if gone."""
        with self._db.transaction(f"claiming dead letter {letter_id!r}") as connection:
            row = connection.execute(
                f"DELETE FROM conveyor_dead_letters WHERE id = ? RETURNING {_COLUMNS}",
                (letter_id,),
            ).fetchone()
            if row is None:
                raise _not_found(connection, letter_id)
        return _from_row(row)

    def close(self) -> None:
        """Close the connection. Closing again is allowed; every other later call raises."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteDeadLetterStore({self.path!r})"


def _not_found(connection: sqlite3.Connection, letter_id: str) -> DeadLetterNotFound:
    """The kernel's not-found error with the oldest few ids and the count, never every id."""
    sample = connection.execute(
        "SELECT id FROM conveyor_dead_letters ORDER BY seq LIMIT ?", (SAMPLE,)
    ).fetchall()
    (total,) = connection.execute("SELECT COUNT(*) FROM conveyor_dead_letters").fetchone()
    return not_found(letter_id, [str(row[0]) for row in sample], total=int(total))


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
        _iso(letter.first_failed_at),
        _iso(letter.last_failed_at),
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
        first_failed_at=_instant(row[12]),
        last_failed_at=_instant(row[13]),
        replayed=row[14],
    )


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
