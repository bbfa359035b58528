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
#: 2: the claim index no longer carries ``lease_until`` (see ``_CLAIM_INDEX``).
SCHEMA_VERSION = 2

# The claim index walks one channel in receive order (priority DESC, id) and carries
# ``available_at``, so messages not yet due are skipped inside the index. It leaves out
# ``lease_until`` on purpose: every receive sets it, and a column in the index would make each
# lease rewrite an index page as well as the row's (a fifth more work per message). Only rows
# leased right now, as many as there are busy consumers, cost a look at the table.
_CLAIM_INDEX = """
    CREATE INDEX IF NOT EXISTS conveyor_messages_claim
        ON conveyor_messages (channel, priority DESC, id, available_at)
"""

_TABLES = (
    # One table for every channel.
    """
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
        enqueued_seq   INTEGER NOT NULL
    )
    """,
    # Dropped first: a file of version 1 (or one whose version was lost) has the old index
    # under the same name, which ``IF NOT EXISTS`` would keep.
    "DROP INDEX IF EXISTS conveyor_messages_claim",
    _CLAIM_INDEX,
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
)


def schema_version(connection: sqlite3.Connection) -> int:
    """The Conveyor schema version stored in the file; 0 for a new or foreign file."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def ensure_schema(connection: sqlite3.Connection) -> int:
    """Create Conveyor's tables and indexes if they are missing, on the caller's connection.

    Runs every statement with ``IF NOT EXISTS``, so several processes may open one file at
    once. It neither begins nor commits a transaction: call it inside your own (the adapters
    use ``BEGIN IMMEDIATE``) so the tables and the version appear together.

    Returns:
        The version found before, so callers can tell a newer file (see ``errors.newer_schema``)
        from one this release can use.
    """
    found = schema_version(connection)
    if found >= SCHEMA_VERSION:
        return found
    for statement in _TABLES:
        connection.execute(statement)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found
