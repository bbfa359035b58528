"""The tables Conveyor keeps in a SQLite file, created idempotently and versioned.

One file can hold the channel table, the dead letters and the deduplication keys together, and
the application's own tables for an outbox, so the whole schema is created at once and carries
one version number in ``PRAGMA user_version``. A file written by a newer release is
refused rather than changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

__all__ = ["SCHEMA_VERSION", "ensure_schema", "schema_version"]

#: The version this release writes. Bump it with a migration step in :func:`ensure_schema`.
#: 2: the claim index no longer carries ``lease_until``.
#: 3: messages carry ``ready``; due messages and delayed ones have an index each, so a receive
#: reaches the first due message directly however many delayed ones are stored ahead of it;
#: rows that cannot be claimed at all are moved to ``conveyor_quarantine``.
#: 4: ``conveyor_schedules`` keeps each schedule's next planned tick (``SqliteScheduleStore``).
SCHEMA_VERSION = 4

# Why two partial indexes. Receive order is (priority DESC, id) among due messages; no single
# index over (priority, id) can skip messages that are not due yet except one by one, so with
# 50,000 delayed messages ahead a receive stepped over 50,000 index entries under the write lock.
# Instead a message is either ready (``ready = 1``: due, in receive order in ``_READY_INDEX``) or
# delayed (``ready = 0``: in due-time order in ``_DELAYED_INDEX``). A receive first marks ready
# the delayed messages that have come due (a range of ``_DELAYED_INDEX``, usually empty), then
# takes the first entry of ``_READY_INDEX``: O(log n) in the delayed messages, and each message
# moves from one index to the other at most once per delay.
#
# ``_READY_INDEX`` leaves out ``lease_until`` on purpose: every receive sets it, and a column in
# the index would make each lease rewrite an index page as well as the row's. Only rows leased
# right now, as many as there are busy consumers, cost a look at the table. It keeps
# ``available_at`` so a row marked ready by a clock that later stepped back is still skipped.
_READY_INDEX = """
    CREATE INDEX IF NOT EXISTS conveyor_messages_ready
        ON conveyor_messages (channel, priority DESC, id, available_at) WHERE ready = 1
"""
_DELAYED_INDEX = """
    CREATE INDEX IF NOT EXISTS conveyor_messages_delayed
        ON conveyor_messages (channel, available_at) WHERE ready = 0
"""

_MESSAGES = """
    CREATE TABLE IF NOT EXISTS conveyor_messages (
        id             INTEGER PRIMARY KEY,
        channel        TEXT    NOT NULL,
        body           BLOB    NOT NULL,
        headers        TEXT    NOT NULL,
        priority       INTEGER NOT NULL DEFAULT 0,
        available_at   INTEGER NOT NULL,
        expires_at     INTEGER,
        lease_until    INTEGER,
        lease_token    TEXT,
        delivery_count INTEGER NOT NULL DEFAULT 0,
        enqueued_seq   INTEGER NOT NULL,
        ready          INTEGER NOT NULL DEFAULT 0
    )
"""

# A row a receive could not lease at all (see ``conveyor_sqlite.quarantine``), kept verbatim:
# the columns have no declared type, so whatever was stored is copied without conversion.
_QUARANTINE = """
    CREATE TABLE IF NOT EXISTS conveyor_quarantine (
        seq            INTEGER PRIMARY KEY,
        message_row    INTEGER NOT NULL,
        channel,
        body,
        headers,
        priority,
        available_at,
        expires_at,
        delivery_count,
        enqueued_seq,
        quarantined_at INTEGER NOT NULL,
        problem        TEXT    NOT NULL
    )
"""

_OTHER_TABLES = (
    # ``seq`` keeps insertion order for "oldest first"; ``id`` is the kernel's own id.
    """
    CREATE TABLE IF NOT EXISTS conveyor_dead_letters (
        seq               INTEGER PRIMARY KEY,
        id                TEXT    NOT NULL UNIQUE,
        message_id        TEXT    NOT NULL,
        channel           TEXT    NOT NULL,
        endpoint_id       TEXT,
        message_type      TEXT    NOT NULL,
        body              BLOB    NOT NULL,
        headers           TEXT    NOT NULL,
        reason            TEXT    NOT NULL,
        exception_type    TEXT,
        exception_message TEXT,
        traceback         TEXT,
        attempts          INTEGER NOT NULL,
        first_failed_at   TEXT,
        last_failed_at    TEXT,
        replayed          INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS conveyor_deduplication (
        endpoint_id TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        expires_at  INTEGER NOT NULL,
        PRIMARY KEY (endpoint_id, key)
    ) WITHOUT ROWID
    """,
    """
    CREATE INDEX IF NOT EXISTS conveyor_deduplication_expiry
        ON conveyor_deduplication (expires_at)
    """,
    _QUARANTINE,
    # One row per scheduled endpoint: its next planned tick as exact ISO 8601 text in UTC,
    # compared and set in one statement when a worker claims a tick.
    """
    CREATE TABLE IF NOT EXISTS conveyor_schedules (
        endpoint_id TEXT PRIMARY KEY,
        next_due    TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)


def schema_version(connection: sqlite3.Connection) -> int:
    """The Conveyor schema version stored in the file; 0 for a new or foreign file."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def ensure_schema(connection: sqlite3.Connection) -> int:
    """Create or migrate Conveyor's tables and indexes, on the caller's connection.

    Runs every statement with ``IF NOT EXISTS`` (or after checking), so several processes may
    open one file at once, and a file of any earlier version (or one whose version was lost)
    ends at :data:`SCHEMA_VERSION` with its messages kept. It neither begins nor commits a
    transaction: call it inside your own (the adapters use ``BEGIN IMMEDIATE``) so the tables
    and the version appear together.

    Returns:
        The version found before, so callers can tell a newer file (see ``errors.newer_schema``)
        from one this release can use.
    """
    found = schema_version(connection)
    if found >= SCHEMA_VERSION:
        return found
    connection.execute(_MESSAGES)
    columns = {row[1] for row in connection.execute("PRAGMA table_info(conveyor_messages)")}
    if "ready" not in columns:
        # Versions 1 and 2: every stored message starts delayed, and the first receive of its
        # channel marks the due ones ready, so none is lost or received early.
        connection.execute(
            "ALTER TABLE conveyor_messages ADD COLUMN ready INTEGER NOT NULL DEFAULT 0"
        )
    # The claim index of versions 1 and 2, which the ready index replaces.
    connection.execute("DROP INDEX IF EXISTS conveyor_messages_claim")
    connection.execute(_READY_INDEX)
    connection.execute(_DELAYED_INDEX)
    for statement in _OTHER_TABLES:
        connection.execute(statement)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found
