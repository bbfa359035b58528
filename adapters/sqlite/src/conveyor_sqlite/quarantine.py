"""Rows a receive could not lease at all, moved aside so they never block their channel.

Almost every damaged row is still delivered (``conveyor_sqlite.stored`` reads whatever a row
holds) and the kernel dead-letters it with its raw bytes. What is left is a row SQLite itself
refuses to lease: the lease ``UPDATE`` fails on that row alone (a trigger or constraint the
application added, a value SQLite cannot convert). Such a row used to be picked first on every
receive, forever. Now the receive rolls back, moves the row verbatim into
``conveyor_quarantine`` in a transaction of its own (with why and when), logs a warning naming
the row and the channel (never its contents), and goes on to the next message.

The kernel's dead-letter store is not used on purpose: the transport has none, and a row that
cannot be leased cannot be acknowledged either. Read the quarantine with
:class:`SqliteQuarantine`, or in the ``sqlite3`` shell: ``SELECT * FROM conveyor_quarantine``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from conveyor_sqlite.database import Database
from conveyor_sqlite.instants import from_unix_ms
from conveyor_sqlite.stored import read_body, read_headers

if TYPE_CHECKING:
    import sqlite3

__all__ = ["move_aside", "QuarantinedRow", "SqliteQuarantine"]

_log = logging.getLogger("conveyor_sqlite")

_MOVE = """
    INSERT INTO conveyor_quarantine
        (message_row, channel, body, headers, priority, available_at, expires_at,
         delivery_count, enqueued_seq, quarantined_at, problem)
    SELECT id, channel, body, headers, priority, available_at, expires_at, delivery_count,
           enqueued_seq, ?, ?
    FROM conveyor_messages WHERE id = ?
"""


def move_aside(
    connection: sqlite3.Connection, channel: str, row_id: int, problem: str, *, now_ms: int
) -> bool:
    """Move message row ``row_id`` into the quarantine, without committing; False if it is gone.

    Runs inside the caller's ``BEGIN IMMEDIATE``, a transaction of its own: the claim that
    failed was rolled back, so the row is copied exactly as it was stored.
    """
    moved = connection.execute(_MOVE, (now_ms, problem, row_id)).rowcount
    connection.execute("DELETE FROM conveyor_messages WHERE id = ?", (row_id,))
    if moved:
        _log.warning(
            "moved message %d of channel %r aside into conveyor_quarantine: %s",
            row_id,
            channel,
            problem,
        )
    return moved == 1


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """A message row moved aside, as far as it can be read.

    Attributes:
        seq: its place in the quarantine, oldest first.
        message_row: its id in ``conveyor_messages``.
        channel: the channel it was stored on.
        body: the body as bytes.
        headers: the headers, or ``{"cv-unreadable": why}``.
        quarantined_at: when it was moved aside.
        problem: why it could not be leased.
    """

    seq: int
    message_row: int
    channel: str
    body: bytes
    headers: dict[str, str]
    quarantined_at: datetime
    problem: str


class SqliteQuarantine:
    """The quarantined rows of a SQLite file: list, count and delete them.

    Args:
        path: the database file the channels use.
        busy_timeout: how long to wait for another connection's write lock before failing.
    """

    __slots__ = ("_db",)

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: timedelta = timedelta(seconds=5)
    ) -> None:
        self._db = Database(path, owner="SqliteQuarantine", busy_timeout=busy_timeout)

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[QuarantinedRow]:
        """Oldest first."""
        with self._db.read("listing quarantined messages") as connection:
            rows = connection.execute(
                """
                SELECT seq, message_row, CAST(channel AS TEXT), CAST(body AS BLOB),
                       CAST(headers AS BLOB), quarantined_at, problem
                FROM conveyor_quarantine ORDER BY seq LIMIT ? OFFSET ?
                """,
                (-1 if limit is None else limit, offset),
            ).fetchall()
        return [
            QuarantinedRow(
                seq=row[0],
                message_row=row[1],
                channel=str(row[2]),
                body=read_body(row[3]),
                headers=read_headers(row[4]),
                quarantined_at=from_unix_ms(row[5]),
                problem=row[6],
            )
            for row in rows
        ]

    def count(self) -> int:
        with self._db.read("counting quarantined messages") as connection:
            return int(connection.execute("SELECT COUNT(*) FROM conveyor_quarantine").fetchone()[0])

    def delete(self, seq: int) -> bool:
        """Forget one quarantined row; False if there is none with that ``seq``."""
        with self._db.statement(f"deleting quarantined message {seq}") as connection:
            return (
                connection.execute("DELETE FROM conveyor_quarantine WHERE seq = ?", (seq,)).rowcount
                == 1
            )

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteQuarantine({self._db.path!r})"
