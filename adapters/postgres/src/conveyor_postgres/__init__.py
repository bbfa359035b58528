"""PostgreSQL for Conveyor: a durable channel, an outbox, dead letters, deduplication, schedules.

On psycopg 3, sync and asyncio. Channels on one DSN share a connection pool; consumers claim
messages with ``FOR UPDATE SKIP LOCKED`` under a lease and wake at once through LISTEN/NOTIFY.
``PostgresChannel(..., connection=conn)`` is an outbox: a message sent inside the application's
transaction on ``conn`` is written in it and leaves only if it commits.
``Messaging(transaction=postgres_transaction(conn))`` puts every handling attempt in such a
transaction, and ``PostgresDeduplication(..., connection=conn)`` records keys inside it.

Importing this package imports no psycopg: the client is loaded when a transport or store is
opened. The schema is created on first use, or by ``python -m conveyor_postgres migrate``.
"""

from __future__ import annotations

from conveyor_postgres.async_transport import AsyncPostgresTransport
from conveyor_postgres.channel import PostgresChannel
from conveyor_postgres.deadletters import PostgresDeadLetterStore
from conveyor_postgres.deduplication import PostgresDeduplication
from conveyor_postgres.schedules import PostgresScheduleStore
from conveyor_postgres.schema import DEFAULT_SCHEMA, SCHEMA_VERSION, schema_statements
from conveyor_postgres.transaction import PostgresTransaction, postgres_transaction
from conveyor_postgres.transport import PostgresTransport

__all__ = [
    # the channel definition, the transports and the stores
    "PostgresChannel",
    "PostgresTransport",
    "AsyncPostgresTransport",
    "PostgresDeadLetterStore",
    "PostgresDeduplication",
    "PostgresScheduleStore",
    # the application's transaction, which outbox channels and deduplication join
    "postgres_transaction",
    "PostgresTransaction",
    # the schema
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "schema_statements",
]
