"""The statements on the message table, each on a connection the caller owns.

None of these functions begins or commits a transaction. ``SqliteTransport`` wraps each in
``BEGIN IMMEDIATE``; an outbox can call :func:`insert_message` inside the application's own
transaction, so the message is stored if and only if the business change commits.

Receive order is ``priority DESC, id ASC``: the highest priority first, and first in, first out
within a priority. A released message keeps its id, so it keeps its place, as a broker's requeue
does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.transports.seam import WireMessage
from conveyor_sqlite.errors import is_environmental
from conveyor_sqlite.stored import read_body, read_headers

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "insert_message",
    "ClaimedRow",
    "claim_next",
    "UnclaimableRow",
    "delete_leased",
    "unlease",
    "delivery_count_of",
    "count_messages",
    "earliest_due_ms",
    "encode_body",
    "encode_headers",
    "decode_headers",
]

# ``enqueued_seq`` records the order of sends as the id SQLite assigns to the new row (the
# largest id plus one): receive order uses ``id`` itself, and the sequence stays on the row
# for inspection and for any later requeue policy that moves a message without renumbering it.
# ``ready`` says which index holds the row (see ``schema``): 1 when it is due as it is sent.
_INSERT = """
    INSERT INTO conveyor_messages
        (channel, body, headers, priority, available_at, expires_at, delivery_count,
         enqueued_seq, ready)
    VALUES (?, ?, ?, ?, ?, ?, 0,
            (SELECT IFNULL(MAX(id), 0) + 1 FROM conveyor_messages), ?)
"""

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# Delayed messages that have come due join the ready ones: a range of the delayed index,
# empty on most receives. A row whose due time is not a number never comes due here (SQLite
# orders text after every number); it stays stored, counted by ``pending``, blocking nothing.
_PROMOTE = """
    UPDATE conveyor_messages SET ready = 1
    WHERE channel = ? AND ready = 0 AND available_at <= ?
"""

# The first ready row in receive order whose lease, if any, has run out; a lease that is not a
# number (a row written by hand) counts as run out.
_FIRST_DUE = """
    SELECT id FROM conveyor_messages
    WHERE channel = ?
      AND ready = 1
      AND available_at <= ?
      AND (lease_until IS NULL OR lease_until <= ?
           OR typeof(lease_until) NOT IN ('integer', 'real'))
    ORDER BY priority DESC, id ASC
    LIMIT 1
"""

# Lease that row and read it, in one statement: a write statement takes the write lock before
# it reads (see ``Database.statement``), so no two connections lease one row, and it needs no
# BEGIN and COMMIT around it (a consume runs three statements, not six). The delivery count is
# read as ``stored.read_count`` reads a count (what is not an integer counts as 0; clamped to
# 2**62 so that adding one never overflows), plus one. Body and headers are read as bytes: a
# CAST to BLOB never fails, whatever the column holds, and ``stored`` makes what it can of them.
_CLAIM = f"""
    UPDATE conveyor_messages
    SET lease_until = ?,
        lease_token = ?,
        delivery_count = MIN(MAX(IFNULL(CAST(delivery_count AS INTEGER), 0), 0), {2**62}) + 1
    WHERE id = ({_FIRST_DUE})
    RETURNING id, CAST(body AS BLOB), CAST(headers AS BLOB), delivery_count
"""


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A row just leased by :func:`claim_next`, with its new delivery count and lease token."""

    id: int
    message: WireMessage
    delivery_count: int
    token: str


def insert_message(
    connection: sqlite3.Connection,
    channel: str,
    message: WireMessage,
    available_at_ms: int,
    *,
    priority: int = 0,
    expires_at_ms: int | None = None,
    now_ms: int | None = None,
) -> int:
    """Store ``message`` on ``channel`` without committing; returns the new row's id.

    Args:
        connection: any connection to a file with Conveyor's schema (see ``ensure_schema``),
            in autocommit or inside the caller's open transaction.
        channel: the channel name.
        message: body and string headers, stored as a BLOB and a JSON object.
        available_at_ms: unix milliseconds before which the message is not received.
        priority: higher is received first among due messages.
        expires_at_ms: unix milliseconds after which the kernel treats it as expired; stored
            for the kernel, never acted on here (the transport declares ``ttl=False``).
        now_ms: the current unix milliseconds, if known: a message due by then goes straight
            to the ready index. Without it the message waits in the delayed index until the
            next receive of its channel marks it ready, which costs that receive one more write.
    """
    ready = 1 if now_ms is not None and available_at_ms <= now_ms else 0
    cursor = connection.execute(
        _INSERT,
        (
            channel,
            encode_body(message.body),
            encode_headers(message.headers),
            priority,
            available_at_ms,
            expires_at_ms,
            ready,
        ),
    )
    row_id = cursor.lastrowid
    assert row_id is not None  # an INSERT always sets it
    return row_id


def claim_next(
    connection: sqlite3.Connection,
    channel: str,
    *,
    now_ms: int,
    lease_until_ms: int,
    token: str,
) -> ClaimedRow | None:
    """Lease the first due, unleased message of ``channel`` under ``token``, or return None.

    Runs in autocommit, two statements each atomic on its own: mark ready the delayed messages
    that came due, then lease and read the first due one. A lease that has run out counts as no
    lease. Whatever the row holds, it is delivered (see ``conveyor_sqlite.stored``).

    Raises:
        UnclaimableRow: the row could not be leased or read at all; the caller moves it aside
            (``conveyor_sqlite.quarantine``), so it never blocks the channel.
    """
    connection.execute(_PROMOTE, (channel, now_ms))
    try:
        # fetchall: the statement runs to its end, so its autocommit transaction commits now
        rows = connection.execute(
            _CLAIM, (lease_until_ms, token, channel, now_ms, now_ms)
        ).fetchall()
    except Exception as error:
        if is_environmental(error):  # the file, not the row: nothing to move aside
            raise
        first = connection.execute(_FIRST_DUE, (channel, now_ms, now_ms)).fetchone()
        if first is None:
            raise
        raise UnclaimableRow(first[0], _problem(error)) from error
    if not rows:
        return None
    row_id, body, headers, count = rows[0]
    try:
        message = WireMessage(body=read_body(body), headers=read_headers(headers))
    except Exception as error:
        raise UnclaimableRow(row_id, _problem(error)) from error
    return ClaimedRow(id=row_id, message=message, delivery_count=count, token=token)


def _problem(error: Exception) -> str:
    """Why a row could not be leased, naming no stored value.

    SQLite's own messages name constraints and columns, never values, so they are kept; any
    other exception is named by its type only.
    """
    name = type(error).__name__
    if hasattr(error, "sqlite_errorcode"):
        return f"SQLite refused to lease it ({name}: {error})"
    return f"{name} while leasing it"


class UnclaimableRow(Exception):
    """A row a receive could not lease; the caller moves it aside in its own transaction."""

    def __init__(self, row_id: int, problem: str) -> None:
        super().__init__(f"message {row_id}: {problem}")
        self.row_id = row_id
        self.problem = problem


def delete_leased(connection: sqlite3.Connection, row_id: int, token: str) -> bool:
    """Delete the row if ``token`` still holds its lease; False when another lease replaced it.

    A lease that ran out but was not taken by anyone else still matches, so a slow handler's
    ack is kept rather than causing a needless redelivery.
    """
    cursor = connection.execute(
        "DELETE FROM conveyor_messages WHERE id = ? AND lease_token = ?", (row_id, token)
    )
    return cursor.rowcount == 1


def extend_lease(
    connection: sqlite3.Connection, row_id: int, token: str, lease_until_ms: int
) -> bool:
    """Move the lease's end to ``lease_until_ms`` if ``token`` still holds it (a renewal)."""
    cursor = connection.execute(
        "UPDATE conveyor_messages SET lease_until = ? WHERE id = ? AND lease_token = ?",
        (lease_until_ms, row_id, token),
    )
    return cursor.rowcount == 1


def unlease(connection: sqlite3.Connection, row_id: int, token: str, available_at_ms: int) -> bool:
    """Give the row back, receivable from ``available_at_ms``; False if the lease is not ours.

    The row goes to the delayed index; the first receive from ``available_at_ms`` on marks it
    ready again, in its old place (it keeps its id).
    """
    cursor = connection.execute(
        """
        UPDATE conveyor_messages
        SET lease_until = NULL, lease_token = NULL, available_at = ?, ready = 0
        WHERE id = ? AND lease_token = ?
        """,
        (available_at_ms, row_id, token),
    )
    return cursor.rowcount == 1


def delivery_count_of(connection: sqlite3.Connection, row_id: int) -> int | None:
    """How many times the row was leased, or None if it is gone; used to explain stale acks."""
    row = connection.execute(
        "SELECT delivery_count FROM conveyor_messages WHERE id = ?", (row_id,)
    ).fetchone()
    return None if row is None else int(row[0])


def count_messages(connection: sqlite3.Connection, channel: str) -> int:
    """Messages stored on ``channel``, due or not, leased or not."""
    row = connection.execute(
        "SELECT COUNT(*) FROM conveyor_messages WHERE channel = ?", (channel,)
    ).fetchone()
    return int(row[0])


def earliest_due_ms(connection: sqlite3.Connection, channel: str) -> float | None:
    """The earliest millisecond a message of ``channel`` becomes receivable, or None if empty.

    A leased message counts from the end of its lease, which is when it could come back. The
    delayed messages cost one step of their index; the ready ones are read, which the consumer
    is about to do anyway. A due time or lease that is not a number is left out; one written
    by hand can be any number, a REAL or an integer past what a datetime holds, so it is
    returned as stored (see ``instants.from_unix_ms``).
    """
    row = connection.execute(
        """
        SELECT MIN(due) FROM (
            SELECT MIN(available_at) AS due FROM conveyor_messages
            WHERE channel = ? AND ready = 0 AND typeof(available_at) IN ('integer', 'real')
            UNION ALL
            SELECT MIN(MAX(available_at, IFNULL(lease_until, available_at))) FROM (
                SELECT available_at,
                       CASE WHEN typeof(lease_until) IN ('integer', 'real')
                            THEN lease_until END AS lease_until
                FROM conveyor_messages
                WHERE channel = ? AND ready = 1
                  AND typeof(available_at) IN ('integer', 'real')
            )
        )
        """,
        (channel, channel),
    ).fetchone()
    due: float | None = row[0]
    return due


def encode_body(body: object) -> bytes:
    """The body as immutable bytes; anything but bytes-like is refused, as every broker does."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(
        f"WireMessage.body must be bytes, not {type(body).__name__}; encode it with the codec "
        f"first."
    )


def encode_headers(headers: Mapping[str, str]) -> str:
    """Headers as a JSON object of strings; anything else would not survive other brokers."""
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str:
            wrong = {k: v for k, v in headers.items() if type(k) is not str or type(v) is not str}
            raise TypeError(
                f"WireMessage headers must map strings to strings, which every broker takes; "
                f"got {wrong!r}. Convert the values with str() before sending."
            )
    return _dumps(headers if type(headers) is dict else dict(headers))


def decode_headers(text: object) -> dict[str, str]:
    """The headers stored by :func:`encode_headers`; unreadable ones as ``{"cv-unreadable": why}``.

    Never raises (see ``conveyor_sqlite.stored``).
    """
    return read_headers(text)
