"""``AsyncPostgresTransport``: the asyncio twin of ``PostgresTransport``, the same statements.

Everything said in :mod:`conveyor_postgres.transport` holds: claims with ``FOR UPDATE SKIP
LOCKED`` under a timed lease, acks that only delete while the lease token holds, a long poll on
LISTEN/NOTIFY, instants from the injected clock, and an outbox through the application's
``AsyncConnection`` (or a callable returning it) while it is in a transaction.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.core.clock import Clock
from conveyor.core.ids import IdGenerator, UuidV7Ids
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage
from conveyor_postgres.application import ApplicationConnection, ConnectionSource
from conveyor_postgres.async_database import AsyncDatabase
from conveyor_postgres.schema import DEFAULT_SCHEMA
from conveyor_postgres.statements import (
    Statements,
    check_channel,
    send_params,
    split_receipt,
    to_deliveries,
)
from conveyor_postgres.transport import capabilities_of, check_receive, stale, too_large

if TYPE_CHECKING:
    import psycopg

__all__ = ["AsyncPostgresTransport"]


class AsyncPostgresTransport:
    """An asyncio, inspectable, renewable, durable transport on PostgreSQL.

    Takes the arguments of :class:`conveyor_postgres.transport.PostgresTransport`; the
    connection is opened on the first call.
    """

    __slots__ = ("_application", "_capabilities", "_clock", "_db", "_new_token", "_sql")

    def __init__(
        self,
        dsn: str,
        *,
        clock: Clock,
        schema: str = DEFAULT_SCHEMA,
        create_schema: bool = True,
        ids: IdGenerator | None = None,
        max_size: int | None = None,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: timedelta = timedelta(seconds=5),
        connection: ConnectionSource | None = None,
    ) -> None:
        self._capabilities = capabilities_of(max_size)
        self._clock = clock
        self._new_token = ids.new if ids is not None else _numbered(UuidV7Ids(clock).new())
        self._sql = Statements.of(schema)
        self._db = AsyncDatabase(
            dsn,
            owner="AsyncPostgresTransport",
            schema=schema,
            create_schema=create_schema,
            min_connections=min_connections,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
        )
        self._application = (
            None
            if connection is None
            else ApplicationConnection(
                connection, server=self._db.server, owner="AsyncPostgresTransport outbox"
            )
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def declare(self, options: ChannelOptions) -> None:
        """Check the name (and open the pool, so a wrong DSN fails at declaration)."""
        check_channel(options.name)
        await self._db.pool(f"declaring channel {options.name!r}")

    async def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        check_channel(channel)
        limit = self._capabilities.max_size
        if limit is not None and message.size > limit:
            raise too_large(message.size, limit, "AsyncPostgresTransport", channel)
        params = send_params(
            channel,
            message,
            visible_at=self._clock.now() if available_at is None else available_at,
            priority=priority,
            expires_at=expires_at,
        )
        sql = self._sql.send
        action = f"sending to channel {channel!r}"
        if self._application is not None:
            self._db.check_open(action)
            application = self._application.in_transaction()
            if application is not None:

                async def in_application() -> None:
                    await application.execute(sql, params)

                await self._db.run_on(
                    application, f"{action} in the application's transaction", in_application
                )
                return

        async def on_pool(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(sql, params)

        await self._db.run(action, on_pool)

    async def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """As ``PostgresTransport.receive``: one claim, then a LISTEN-based wait if asked."""
        check_receive(channel, lease, max_messages)
        action = f"receiving from channel {channel!r}"

        async def claim(connection: psycopg.AsyncConnection[Any]) -> list[Delivery]:
            return await self._claim(connection, channel, lease, max_messages)

        found = await self._db.run(action, claim)
        if found or wait is None or wait <= timedelta(0):
            return found
        deadline = self._clock.now() + wait

        async def waiting(connection: psycopg.AsyncConnection[Any]) -> list[Delivery]:
            return await self._wait(connection, channel, lease, max_messages, deadline)

        return await self._db.run(action, waiting)

    async def _claim(
        self, connection: psycopg.AsyncConnection[Any], channel: str, lease: timedelta, limit: int
    ) -> list[Delivery]:
        now = self._clock.now()
        token = self._new_token()
        cursor = await connection.execute(
            self._sql.claim, (channel, now, limit, now + lease, token)
        )
        rows = await cursor.fetchall()
        return to_deliveries(channel, rows, token) if rows else []

    async def _wait(
        self,
        connection: psycopg.AsyncConnection[Any],
        channel: str,
        lease: timedelta,
        limit: int,
        deadline: datetime,
    ) -> list[Delivery]:
        await connection.execute(self._sql.listen)
        try:
            while True:
                found = await self._claim(connection, channel, lease, limit)
                now = self._clock.now()
                if found or now >= deadline:
                    return found
                cursor = await connection.execute(self._sql.next_due, (channel,))
                row = await cursor.fetchone()
                due = row[0] if row is not None else None
                until = deadline if due is None else min(deadline, max(due, now))
                timeout = max((until - now).total_seconds(), 0.001)
                async for notify in connection.notifies(timeout=timeout):
                    if notify.payload == channel:
                        break
        finally:
            if not connection.broken:
                await connection.execute(self._sql.unlisten)

    async def ack(self, delivery: Delivery) -> None:
        row_id, token = split_receipt(delivery)
        sql = self._sql.ack

        async def delete(connection: psycopg.AsyncConnection[Any]) -> int:
            return (await connection.execute(sql, (row_id, token))).rowcount

        deleted = await self._db.run(
            f"acknowledging a delivery on channel {delivery.channel!r}", delete
        )
        if deleted != 1:
            raise stale(delivery, "acknowledge")

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        row_id, token = split_receipt(delivery)
        visible_at = self._clock.now() if available_at is None else available_at
        sql = self._sql.release

        async def unlease(connection: psycopg.AsyncConnection[Any]) -> int:
            cursor = await connection.execute(sql, (visible_at, row_id, token))
            return len(await cursor.fetchall())

        released = await self._db.run(
            f"releasing a delivery on channel {delivery.channel!r}", unlease
        )
        if released != 1:
            raise stale(delivery, "release")

    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        row_id, token = split_receipt(delivery)
        until = self._clock.now() + lease
        sql = self._sql.renew

        async def extend(connection: psycopg.AsyncConnection[Any]) -> int:
            return (await connection.execute(sql, (until, row_id, token))).rowcount

        renewed = await self._db.run(f"renewing a lease on channel {delivery.channel!r}", extend)
        if renewed != 1:
            raise stale(delivery, "renew")

    async def pending(self, channel: str) -> int:
        check_channel(channel)
        sql = self._sql.pending

        async def count(connection: psycopg.AsyncConnection[Any]) -> int:
            row = await (await connection.execute(sql, (channel,))).fetchone()
            return int(row[0]) if row is not None else 0

        return await self._db.run(f"counting messages on channel {channel!r}", count)

    async def next_due(self, channel: str) -> datetime | None:
        check_channel(channel)
        sql = self._sql.next_due

        async def earliest(connection: psycopg.AsyncConnection[Any]) -> datetime | None:
            row = await (await connection.execute(sql, (channel,))).fetchone()
            return None if row is None else row[0]

        return await self._db.run(f"reading the next due time of channel {channel!r}", earliest)

    async def close(self) -> None:
        await self._db.close()

    def __repr__(self) -> str:
        return f"AsyncPostgresTransport({self._db.server}, schema={self._db.schema!r})"


def _numbered(prefix: str) -> Any:
    counter = itertools.count(1)
    return lambda: f"{prefix}.{next(counter)}"
