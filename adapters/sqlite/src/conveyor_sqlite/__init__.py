"""SQLite for Conveyor: a durable channel, an outbox, dead letters, deduplication, schedules.

Standard library only. One file can hold them all, next to the application's own tables;
several processes can share it. Nothing a row holds can stop a consumer: a damaged row is
delivered as far as it can be read (the kernel dead-letters what it cannot handle), and a row
SQLite refuses to lease is moved aside, to ``SqliteQuarantine``.

``SqliteChannel(..., connection=conn)`` is an outbox: messages sent inside the application's
transaction on ``conn`` are written in it, and leave only if it commits.
``Messaging(transaction=sqlite_transaction(conn))`` puts every handling attempt in such a
transaction.

The connection-level functions (``insert_message``, ``contains_key``, ``add_key``,
``ensure_schema``) run on a connection the caller owns and never commit, so a message or a
deduplication key can be written inside the application's own transaction.
"""

from __future__ import annotations

from conveyor_sqlite.aio import AsyncSqliteTransport
from conveyor_sqlite.channel import SqliteChannel
from conveyor_sqlite.database import Synchronous
from conveyor_sqlite.deadletters import SqliteDeadLetterStore
from conveyor_sqlite.deduplication import SqliteDeduplication, add_key, contains_key
from conveyor_sqlite.instants import from_unix_ms, to_unix_ms
from conveyor_sqlite.messages import insert_message
from conveyor_sqlite.quarantine import QuarantinedRow, SqliteQuarantine
from conveyor_sqlite.schedules import SqliteScheduleStore
from conveyor_sqlite.schema import SCHEMA_VERSION, ensure_schema
from conveyor_sqlite.transaction import sqlite_transaction
from conveyor_sqlite.transport import SqliteTransport

__all__ = [
    # the channel definition, the transport and the stores
    "SqliteChannel",
    "SqliteTransport",
    "AsyncSqliteTransport",
    "SqliteDeadLetterStore",
    "SqliteDeduplication",
    "SqliteScheduleStore",
    "SqliteQuarantine",
    "QuarantinedRow",
    "Synchronous",
    # the application's transaction, which outbox channels join
    "sqlite_transaction",
    # on a connection the caller owns, without committing
    "insert_message",
    "contains_key",
    "add_key",
    "ensure_schema",
    "SCHEMA_VERSION",
    # how instants are stored
    "to_unix_ms",
    "from_unix_ms",
]
