"""``PostgresChannel``: a durable channel definition on PostgreSQL, and the outbox."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta

from conveyor.core.clock import Clock
from conveyor.core.errors import ConfigurationError
from conveyor.transports.channels import Channel
from conveyor.transports.seam import AsyncTransport, Transport
from conveyor_postgres.application import ConnectionSource
from conveyor_postgres.schema import DEFAULT_SCHEMA

__all__ = ["PostgresChannel"]


@dataclass(frozen=True, kw_only=True)
class PostgresChannel(Channel):
    """A channel whose messages are rows in PostgreSQL: they survive crashes and restarts.

    Usable wherever ``QueueChannel`` is. Channels naming the same DSN and settings share one
    transport, hence one connection pool, inside a ``Messaging``; several consumer processes can
    consume one channel, each message leased to one of them at a time.

    With ``connection``, the channel is an outbox on the application's database: a message sent
    while the application's connection (psycopg, or a SQLAlchemy session or connection) is in a
    transaction is written in that transaction, so it leaves only if the business change
    commits, and a rollback sends nothing::

        Messaging(
            handlers=[...],
            channels=[
                PostgresChannel("outbox", dsn=DSN, connection=conn),
                PostgresChannel("orders", dsn=DSN),
            ],
            transaction=postgres_transaction(conn),
        )

    Attributes:
        dsn: a PostgreSQL URL or libpq string (its password is never shown in errors).
        schema: the PostgreSQL schema of Conveyor's tables, created on first use.
        create_schema: False to refuse a missing or older schema instead of creating it (run
            ``python -m conveyor_postgres migrate`` at deploy time).
        max_size: the largest message in bytes (body plus headers), or None for no limit.
        min_connections, max_connections: the shared pool's size.
        connect_timeout: how long to wait for the server or a free pooled connection.
        connection: the application's connection or session, or a callable returning it; None
            for a plain channel.
    """

    dsn: str
    schema: str = DEFAULT_SCHEMA
    create_schema: bool = True
    max_size: int | None = None
    min_connections: int = 1
    max_connections: int = 10
    connect_timeout: timedelta = timedelta(seconds=5)
    connection: ConnectionSource | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.dsn, str) or not self.dsn:
            raise ConfigurationError(
                f"channel {self.name!r} needs dsn= as a PostgreSQL URL such as "
                f"'postgresql://user:password@host:5432/dbname'."
            )

    def transport_key(self) -> Hashable:
        """Channels with one DSN, schema, pool and outbox connection share a transport."""
        return (
            PostgresChannel,
            self.dsn,
            self.schema,
            self.create_schema,
            self.max_size,
            self.min_connections,
            self.max_connections,
            self.connect_timeout,
            id(self.connection) if self.connection is not None else None,
        )

    def open(self, clock: Clock) -> Transport:
        from conveyor_postgres.transport import PostgresTransport

        return PostgresTransport(
            self.dsn,
            clock=clock,
            schema=self.schema,
            create_schema=self.create_schema,
            max_size=self.max_size,
            min_connections=self.min_connections,
            max_connections=self.max_connections,
            connect_timeout=self.connect_timeout,
            connection=self.connection,
        )

    def open_async(self, clock: Clock) -> AsyncTransport:
        from conveyor_postgres.async_transport import AsyncPostgresTransport

        return AsyncPostgresTransport(
            self.dsn,
            clock=clock,
            schema=self.schema,
            create_schema=self.create_schema,
            max_size=self.max_size,
            min_connections=self.min_connections,
            max_connections=self.max_connections,
            connect_timeout=self.connect_timeout,
            connection=self.connection,
        )

    def __repr__(self) -> str:
        from conveyor_postgres.errors import describe

        try:
            where = str(describe(self.dsn))
        except ConfigurationError:
            where = "an invalid DSN"
        return f"PostgresChannel({self.name!r}, {where}, schema={self.schema!r})"
