"""``PostgresTransport``: durable channels in one PostgreSQL table, for any number of consumers.

A receive claims due rows with ``FOR UPDATE SKIP LOCKED`` and leases them by moving their
``visible_at`` to the lease's end under a fresh token; an ack deletes the row only while that
token still holds it. A consumer that dies mid-message leaves a lease that runs out, and the
message is received again with a higher delivery count: at least once, nothing lost. Every
instant (now, due times, leases, expiry) is read from the injected clock and stored as
``timestamptz``, so delays keep microsecond precision and tests may drive it on virtual time.

``receive(wait=...)`` is a long poll: it LISTENs on the schema's notification channel before
looking, so a message sent (or released) by anyone is received at once, and it wakes by itself
when the earliest delayed message on the channel becomes due.

Given the application's connection, it is an outbox: a message sent while that connection is in
a transaction is written by it, in that transaction, and committed (or not) with it.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.core.clock import Clock
from conveyor.core.errors import MessageTooLarge, StaleReceipt
from conveyor.core.ids import IdGenerator, UuidV7Ids
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    ChannelStats,
    Delivery,
    WireMessage,
)
from conveyor_postgres.application import ApplicationConnection, ConnectionSource
from conveyor_postgres.database import Database
from conveyor_postgres.schema import DEFAULT_SCHEMA
from conveyor_postgres.statements import (
    Statements,
    check_channel,
    send_params,
    split_receipt,
    to_deliveries,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresTransport", "capabilities_of", "check_receive", "stale"]


def capabilities_of(max_size: int | None) -> Capabilities:
    """What both PostgreSQL transports honour."""
    if max_size is not None and max_size <= 0:
        raise ValueError(f"max_size={max_size} must be positive, or None for no limit.")
    return Capabilities(
        delay=True,
        max_delay=None,
        delay_precision=timedelta(microseconds=1),
        priority=True,
        ttl=False,
        ordering="fifo",
        max_size=max_size,
        durable=True,
        lease="timed",
        visibility="immediate",
        max_batch=None,
    )


def check_receive(channel: str, lease: timedelta, max_messages: int) -> None:
    """Refuse a receive that cannot mean anything, before touching the server."""
    check_channel(channel)
    if lease <= timedelta(0):
        raise ValueError(
            f"lease={lease} must be positive: it is how long the consumer has before the "
            f"message is delivered again."
        )
    if max_messages < 1:
        raise ValueError(f"max_messages={max_messages} must be at least 1.")


def stale(delivery: Delivery, verb: str) -> StaleReceipt:
    """The error for settling a delivery whose lease another delivery (or an ack) replaced."""
    return StaleReceipt(
        f"cannot {verb} delivery {delivery.receipt!r} on channel {delivery.channel!r}: its lease "
        f"ran out and the message was delivered again or settled by another consumer. Make "
        f"the channel's lease longer than the slowest handler, or renew it while handling."
    )


def too_large(size: int, limit: int, owner: str, channel: str) -> MessageTooLarge:
    return MessageTooLarge(
        f"message of {size} bytes (body plus headers) is larger than the {limit} bytes {owner} "
        f"accepts for channel {channel!r}. Send a smaller message (store large payloads "
        f"elsewhere and send a reference), or raise max_size."
    )


class PostgresTransport:
    """An inspectable, renewable, durable transport on PostgreSQL (psycopg 3, a pool).

    Args:
        dsn: a PostgreSQL URL or libpq string; errors name its host, port, database and user,
            never its password.
        clock: where every due time and lease is read from. Hosts sharing a queue need
            synchronized clocks (NTP), as leases are compared across them.
        schema: the PostgreSQL schema of Conveyor's tables (created on first use).
        create_schema: False to only check the schema (see ``python -m conveyor_postgres``).
        ids: makes lease tokens (by default a uuid v7 per transport, numbered per claim).
        max_size: the largest message in bytes (body plus headers), or None for no limit.
        min_connections, max_connections: the pool's size, shared by every channel on it.
        connect_timeout: how long to wait for the server or a free pooled connection.
        connection: makes this an outbox; see :mod:`conveyor_postgres.application`.
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
        self._db = Database(
            dsn,
            owner="PostgresTransport",
            schema=schema,
            create_schema=create_schema,
            min_connections=min_connections,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
        )
        self._application: ApplicationConnection | None = None
        if connection is not None:
            try:
                self._application = ApplicationConnection(
                    connection, server=self._db.server, owner="PostgresTransport outbox"
                )
            except BaseException:
                self._db.close()
                raise

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def server(self) -> str:
        """Where this transport is, without the password."""
        return str(self._db.server)

    def declare(self, options: ChannelOptions) -> None:
        """Check the name. Channels share one table, so every channel exists once named."""
        check_channel(options.name)
        self._db.check_open(f"declaring channel {options.name!r}")

    def send(
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
            raise too_large(message.size, limit, "PostgresTransport", channel)
        params = send_params(
            channel,
            message,
            visible_at=self._clock.now() if available_at is None else available_at,
            priority=priority,
            expires_at=expires_at,
        )
        action = f"sending to channel {channel!r}"
        if self._application is not None:
            self._db.check_open(action)
            application = self._application.in_transaction()
            if application is not None:
                sql = self._sql.send
                self._db.run_on(
                    application,
                    f"{action} in the application's transaction",
                    lambda: application.execute(sql, params),
                )
                return
        sql = self._sql.send
        self._db.run(action, lambda connection: connection.execute(sql, params))

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` due messages in one statement.

        With ``wait`` and nothing due, hold one pooled connection, LISTEN, and claim again on
        each notification for the channel, or when its earliest delayed message is due.
        """
        check_receive(channel, lease, max_messages)
        action = f"receiving from channel {channel!r}"
        found = self._db.run(action, lambda c: self._claim(c, channel, lease, max_messages))
        if found or wait is None or wait <= timedelta(0):
            return found
        deadline = self._clock.now() + wait
        return self._db.run(action, lambda c: self._wait(c, channel, lease, max_messages, deadline))

    def _claim(
        self, connection: psycopg.Connection[Any], channel: str, lease: timedelta, limit: int
    ) -> list[Delivery]:
        now = self._clock.now()
        token = self._new_token()
        rows = connection.execute(
            self._sql.claim, (channel, now, limit, now + lease, token)
        ).fetchall()
        return to_deliveries(channel, rows, token) if rows else []

    def _wait(
        self,
        connection: psycopg.Connection[Any],
        channel: str,
        lease: timedelta,
        limit: int,
        deadline: datetime,
    ) -> list[Delivery]:
        connection.execute(self._sql.listen)
        try:
            while True:
                found = self._claim(connection, channel, lease, limit)
                now = self._clock.now()
                if found or now >= deadline:
                    return found
                row = connection.execute(self._sql.next_due, (channel,)).fetchone()
                due = row[0] if row is not None else None
                until = deadline if due is None else min(deadline, max(due, now))
                timeout = max((until - now).total_seconds(), 0.001)
                for notify in connection.notifies(timeout=timeout):
                    if notify.payload == channel:
                        break
        finally:
            if not connection.broken:
                connection.execute(self._sql.unlisten)

    def ack(self, delivery: Delivery) -> None:
        row_id, token = split_receipt(delivery)
        sql = self._sql.ack
        deleted = self._db.run(
            f"acknowledging a delivery on channel {delivery.channel!r}",
            lambda connection: connection.execute(sql, (row_id, token)).rowcount,
        )
        if deleted != 1:
            raise stale(delivery, "acknowledge")

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        row_id, token = split_receipt(delivery)
        visible_at = self._clock.now() if available_at is None else available_at
        sql = self._sql.release
        released = self._db.run(
            f"releasing a delivery on channel {delivery.channel!r}",
            lambda connection: len(connection.execute(sql, (visible_at, row_id, token)).fetchall()),
        )
        if released != 1:
            raise stale(delivery, "release")

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease to ``lease`` from now, while a long handler runs."""
        row_id, token = split_receipt(delivery)
        until = self._clock.now() + lease
        sql = self._sql.renew
        renewed = self._db.run(
            f"renewing a lease on channel {delivery.channel!r}",
            lambda connection: connection.execute(sql, (until, row_id, token)).rowcount,
        )
        if renewed != 1:
            raise stale(delivery, "renew")

    def pending(self, channel: str) -> int:
        """Messages stored on the channel, due or not, leased or not."""
        check_channel(channel)
        sql = self._sql.pending
        return int(
            self._db.run(
                f"counting messages on channel {channel!r}",
                lambda connection: connection.execute(sql, (channel,)).fetchone()[0],  # type: ignore[index]
            )
        )

    def next_due(self, channel: str) -> datetime | None:
        """The earliest instant a message of the channel is receivable (a lease's end counts)."""
        check_channel(channel)
        sql = self._sql.next_due
        due: datetime | None = self._db.run(
            f"reading the next due time of channel {channel!r}",
            lambda connection: connection.execute(sql, (channel,)).fetchone()[0],  # type: ignore[index]
        )
        return due

    def stats(self, channel: str) -> ChannelStats:
        """Pending, in flight, and how long the oldest waiting message has been receivable."""
        check_channel(channel)
        sql, now = self._sql.stats, self._clock.now()
        row: tuple[int, int, datetime | None] = self._db.run(  # type: ignore[assignment]
            f"reading the load of channel {channel!r}",
            lambda connection: connection.execute(sql, {"now": now, "channel": channel}).fetchone(),
        )
        stored, leased, since = row
        oldest = None if since is None else max(now - since, timedelta(0))
        return ChannelStats(pending=stored - leased, in_flight=leased, oldest_age=oldest)

    def close(self) -> None:
        """Close the pool. Closing twice is allowed; any other later call is refused."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresTransport({self._db.server}, schema={self._db.schema!r})"


def _numbered(prefix: str) -> Any:
    counter = itertools.count(1)
    return lambda: f"{prefix}.{next(counter)}"
