"""``SqliteChannel``: a durable channel definition on a SQLite file, and the outbox."""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta

from conveyor.core.clock import Clock
from conveyor.core.errors import ConfigurationError
from conveyor.transports.channels import Channel
from conveyor.transports.seam import AsyncTransport, Transport
from conveyor_sqlite.application import ConnectionSource
from conveyor_sqlite.database import Synchronous
from conveyor_sqlite.transport import SqliteTransport

__all__ = ["SqliteChannel"]


@dataclass(frozen=True, kw_only=True)
class SqliteChannel(Channel):
    """A channel whose messages are rows in a SQLite file: they survive a crash or a restart.

    Several channels, the dead-letter store and the deduplication store can share one file, and
    several consumer processes can consume one channel: a received message is leased, and comes
    back if its consumer dies before acknowledging it.

    With ``connection``, the channel is an outbox on the application's own database: a message
    sent while the application's connection is in a transaction is written in that transaction,
    so it leaves only if the business change commits, and a rollback sends nothing. Put the
    outbox first in a channel sequence, ``@asynchronous("outbox", "orders")``, and run its
    consumer (``conveyor run outbox``) to move committed messages on to the next channel::

        conn = sqlite3.connect("shop.db")
        Messaging(
            handlers=[...],
            channels=[SqliteChannel("outbox", path="shop.db", connection=conn), ...],
            transaction=sqlite_transaction(conn),
        )

    A message sent while no transaction is open is stored and committed at once. Python's
    ``sqlite3`` (default ``isolation_level``) opens a transaction at the first write, even inside
    ``with conn:``: to include a message sent before any write, execute ``BEGIN`` first.

    Every channel on that file that receives messages sent inside the application's
    transactions needs ``connection`` too: the transaction holds the file's write lock, so a
    channel writing through a connection of its own would wait for it until ``busy_timeout``.

    Attributes:
        path: the database file; created if missing, its directory must exist.
        busy_timeout: how long to wait for another process's write lock before failing.
        synchronous: "FULL": a sent message survives power loss (after one, a message received
            or acknowledged just before may be delivered again); "NORMAL" survives a crash of
            the process, not of the machine, and is faster.
        connection: the application's ``sqlite3.Connection`` on ``path``, or a callable
            returning the one to use now (per thread, per request); None for a plain channel.
    """

    path: str | os.PathLike[str]
    busy_timeout: timedelta = timedelta(seconds=5)
    synchronous: Synchronous = "FULL"
    connection: ConnectionSource | None = None

    def transport_key(self) -> Hashable:
        """Channels on one file, with the same settings and outbox connection, share a transport."""
        return (
            SqliteChannel,
            os.fspath(self.path),
            self.busy_timeout,
            self.synchronous,
            id(self.connection) if self.connection is not None else None,
        )

    def open_async(self, clock: Clock) -> AsyncTransport:
        """The asyncio twin (``AsyncSqliteTransport``, one worker thread); not for an outbox."""
        if self.connection is not None:
            raise ConfigurationError(
                f"channel {self.name!r} is an outbox on the application's connection, which "
                f"AsyncMessaging cannot join (its transaction lives on the application's "
                f"thread). Use it with Messaging, or drop connection= for a plain channel."
            )
        from conveyor_sqlite.aio import AsyncSqliteTransport

        return AsyncSqliteTransport(
            self.path, clock=clock, busy_timeout=self.busy_timeout, synchronous=self.synchronous
        )

    def open(self, clock: Clock) -> Transport:
        return SqliteTransport(
            self.path,
            clock=clock,
            busy_timeout=self.busy_timeout,
            synchronous=self.synchronous,
            connection=self.connection,
        )
