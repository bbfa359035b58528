"""Conveyor's tables in one PostgreSQL schema: created on first use, versioned, never downgraded.

Created on first use, because a channel that works the moment it is configured is what an
embedded-feeling adapter should give, and because it needs no change to the kernel's CLI; the
same code runs as ``python -m conveyor_postgres migrate --dsn ...`` for deployments whose
application role may not create tables (then pass ``create_schema=False``, and a schema that is
missing or older is a clear error instead of a change).

Every statement is idempotent and runs in one transaction under an advisory lock, so several
processes starting at once create the tables once. The version lives in one row; a schema
written by a newer release is refused rather than changed.

Table design, for the claim (``FOR UPDATE SKIP LOCKED``) to stay cheap:

- one ``messages`` table for every channel, indexed by ``(channel, priority DESC, id)``: the
  receive order (highest priority first, first in first out within a priority);
- a lease is the row's ``visible_at`` moved to the lease's end plus a fresh ``lease_token``, so
  a leased message and a delayed one are the same thing, "not visible yet", and a consumer that
  dies leaves a row that simply becomes visible again;
- ``visible_at`` is outside every index, and the table keeps free space on each page
  (``fillfactor``), so the update a claim makes is a HOT update that touches no index.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from conveyor.core.errors import ConfigurationError
from conveyor_postgres.errors import Server, newer_schema, older_schema

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "SCHEMA_VERSION",
    "DEFAULT_SCHEMA",
    "check_schema_name",
    "ensure_schema",
    "ensure_schema_async",
    "schema_statements",
    "notify_channel",
]

#: The version this release writes. Bump it with a migration step in :func:`schema_statements`.
#: 2: ``schedules`` keeps each schedule's next planned tick (``PostgresScheduleStore``).
SCHEMA_VERSION = 2

#: The PostgreSQL schema that holds Conveyor's tables unless ``schema=`` names another.
DEFAULT_SCHEMA = "conveyor"

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain lower-case identifier (it is written into SQL text)."""
    if not isinstance(schema, str) or not _NAME.fullmatch(schema):
        raise ConfigurationError(
            f"schema={schema!r} is not a plain PostgreSQL identifier; use lower-case letters, "
            f"digits and underscores, starting with a letter (for example 'conveyor')."
        )
    return schema


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of one schema; the payload is the Conveyor channel's name."""
    return f"{schema}_messages"


def schema_statements(schema: str) -> list[str]:
    """Every statement creating version :data:`SCHEMA_VERSION`, each idempotent.

    Being idempotent, they are also the migration from any older version: a table an older
    release did not have is created, the others are left as they are.
    """
    s = check_schema_name(schema)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""
        CREATE TABLE IF NOT EXISTS {s}.schema_version (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            version   integer NOT NULL
        )
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {s}.messages (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            channel        text        NOT NULL,
            body           bytea       NOT NULL,
            headers        text        NOT NULL,
            priority       integer     NOT NULL DEFAULT 0,
            visible_at     timestamptz NOT NULL,
            expires_at     timestamptz,
            lease_token    text,
            delivery_count integer     NOT NULL DEFAULT 0
        ) WITH (fillfactor = 70)
        """,
        f"""
        CREATE INDEX IF NOT EXISTS messages_claim
            ON {s}.messages (channel, priority DESC, id)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {s}.dead_letters (
            seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id                text    NOT NULL UNIQUE,
            message_id        text    NOT NULL,
            channel           text    NOT NULL,
            endpoint_id       text,
            message_type      text    NOT NULL,
            body              bytea   NOT NULL,
            headers           text    NOT NULL,
            reason            text    NOT NULL,
            exception_type    text,
            exception_message text,
            traceback         text,
            attempts          integer NOT NULL,
            first_failed_at   timestamptz,
            last_failed_at    timestamptz,
            replayed          integer NOT NULL DEFAULT 0
        )
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {s}.deduplication (
            endpoint_id text        NOT NULL,
            key         text        NOT NULL,
            expires_at  timestamptz NOT NULL,
            PRIMARY KEY (endpoint_id, key)
        )
        """,
        f"""
        CREATE INDEX IF NOT EXISTS deduplication_expiry ON {s}.deduplication (expires_at)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {s}.schedules (
            endpoint_id text        PRIMARY KEY,
            next_due    timestamptz NOT NULL
        )
        """,
    ]


def _lock_key(schema: str) -> int:
    """A stable advisory-lock key per schema (not Python's salted ``hash``)."""
    value = 0
    for byte in f"conveyor-schema:{schema}".encode():
        value = (value * 131 + byte) % (2**62)
    return value


def _version_query(schema: str) -> str:
    return f"SELECT version FROM {schema}.schema_version"


def _decide(found: int, *, server: Server, schema: str, create: bool) -> bool:
    """Whether the statements must run; raises when the schema cannot be used as it is."""
    if found > SCHEMA_VERSION:
        raise newer_schema(server, schema, found, SCHEMA_VERSION)
    if found == SCHEMA_VERSION:
        return False
    if not create:
        raise older_schema(server, schema, found, SCHEMA_VERSION)
    return True


def _upsert_version(schema: str) -> str:
    return (
        f"INSERT INTO {schema}.schema_version (version) VALUES ({SCHEMA_VERSION}) "
        f"ON CONFLICT (singleton) DO UPDATE SET version = excluded.version"
    )


def _read_version(connection: psycopg.Connection[Any], schema: str) -> int:
    row = connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_version",)
    ).fetchone()
    if row is None or not row[0]:
        return 0
    found = connection.execute(_version_query(schema)).fetchone()
    return 0 if found is None else int(found[0])


def ensure_schema(
    connection: psycopg.Connection[Any], schema: str, *, server: Server, create: bool = True
) -> int:
    """Check the schema's version and create or upgrade it if allowed; returns the version found.

    Runs its own transaction on ``connection`` (which must not be inside one).

    Raises:
        ConfigurationError: the schema is newer than this release, or older and ``create`` is
            False.
    """
    check_schema_name(schema)
    found = _read_version(connection, schema)
    if not _decide(found, server=server, schema=schema, create=create):
        return found
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema),))
        found = _read_version(connection, schema)  # again, under the lock
        if _decide(found, server=server, schema=schema, create=create):
            for statement in schema_statements(schema):
                connection.execute(statement)
            connection.execute(_upsert_version(schema))
    return found


async def _read_version_async(connection: psycopg.AsyncConnection[Any], schema: str) -> int:
    cursor = await connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_version",)
    )
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await connection.execute(_version_query(schema))
    found = await cursor.fetchone()
    return 0 if found is None else int(found[0])


async def ensure_schema_async(
    connection: psycopg.AsyncConnection[Any],
    schema: str,
    *,
    server: Server,
    create: bool = True,
) -> int:
    """The asyncio twin of :func:`ensure_schema`."""
    check_schema_name(schema)
    found = await _read_version_async(connection, schema)
    if not _decide(found, server=server, schema=schema, create=create):
        return found
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema),))
        found = await _read_version_async(connection, schema)
        if _decide(found, server=server, schema=schema, create=create):
            for statement in schema_statements(schema):
                await connection.execute(statement)
            await connection.execute(_upsert_version(schema))
    return found
