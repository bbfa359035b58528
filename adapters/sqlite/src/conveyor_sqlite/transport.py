"""``SqliteTransport``: durable channels in one SQLite file, for one process or several.

Every channel lives in one table. A receive leases the next due message inside
``BEGIN IMMEDIATE``, so two connections (threads, transports or processes) never hold a lease
on the same message at once; an ack deletes the row only while the lease token is still the
one it was given. A consumer that dies mid-message leaves a lease that simply runs out, and
the message is received again with a higher delivery count: at least once, nothing lost.

Given the application's connection, it is an outbox: a message sent while that connection is
in a transaction is written by it, in that transaction, and committed (or not) with it.

All times come from the injected clock, stored as unix milliseconds (see ``instants``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from conveyor.core.clock import Clock
from conveyor.core.errors import MessageTooLarge, StaleReceipt, TransportError
from conveyor.core.ids import IdGenerator, UuidV7Ids
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    ChannelStats,
    Delivery,
    WireMessage,
)
from conveyor_sqlite.application import (
    ApplicationConnection,
    ConnectionSource,
    translate_application,
)
from conveyor_sqlite.database import Database, Synchronous
from conveyor_sqlite.instants import duration_ms, from_unix_ms, to_unix_ms
from conveyor_sqlite.messages import (
    UnclaimableRow,
    claim_next,
    count_messages,
    delete_leased,
    delivery_count_of,
    earliest_due_ms,
    extend_lease,
    insert_message,
    unlease,
)
from conveyor_sqlite.quarantine import move_aside
from conveyor_sqlite.stats import channel_stats

if TYPE_CHECKING:
    import sqlite3

__all__ = ["SqliteTransport"]


class SqliteTransport:
    """An inspectable, durable transport on a SQLite file (the embedded default).

    Args:
        path: the database file. It is created if missing; its directory must exist. Several
            transports, in one process or many, may share it.
        clock: where every due time and lease is read from.
        ids: makes lease tokens; they must be unique across every process using the file.
            By default one uuid v7 per transport, numbered per lease ("<uuid>.1", "<uuid>.2"),
            which is as unique and costs a counter instead of an id per message.
        max_size: the largest message in bytes (body plus headers), or None for no limit.
        busy_timeout: how long to wait for another connection's write lock before failing.
        synchronous: "FULL" syncs every send to disk, so a sent message survives power loss;
            receives and acks are not synced (after a power loss the message may come again,
            never be lost). "NORMAL" is faster and survives a crash of the process but not of
            the machine.
        connection: makes this an outbox. The application's ``sqlite3.Connection`` on the same
            file, or a callable returning it: a message sent while that connection is in a
            transaction is written by it, inside that transaction, and is never committed
            here, so it is stored if and only if the application commits. Sent while it is
            not, the message is stored and committed at once, as without ``connection``.
            Receives, acks and releases always use the transport's own connection.
    """

    __slots__ = (
        "_application",
        "_capabilities",
        "_clock",
        "_db",
        "_new_token",
        "_spare_token",
        "_texts",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock,
        ids: IdGenerator | None = None,
        max_size: int | None = None,
        busy_timeout: timedelta = timedelta(seconds=5),
        synchronous: Synchronous = "FULL",
        connection: ConnectionSource | None = None,
    ) -> None:
        if max_size is not None and max_size <= 0:
            raise ValueError(f"max_size={max_size} must be positive, or None for no limit.")
        self._clock = clock
        self._new_token = ids.new if ids is not None else _numbered(UuidV7Ids(clock).new())
        self._spare_token: str | None = None  # made by a poll that found nothing; used next
        self._texts: dict[str, _Texts] = {}
        self._capabilities = Capabilities(
            delay=True,
            max_delay=None,
            delay_precision=timedelta(milliseconds=1),
            priority=True,
            ttl=False,
            ordering="fifo",
            max_size=max_size,
            durable=True,
        )
        self._db = Database(
            path, owner="SqliteTransport", busy_timeout=busy_timeout, synchronous=synchronous
        )
        self._application: ApplicationConnection | None = None
        if connection is not None:
            try:
                self._application = ApplicationConnection(
                    connection, path=self._db.path, owner=f"SqliteTransport on {self.path!r}"
                )
            except BaseException:
                self._db.close()
                raise

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._db.path

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def declare(self, options: ChannelOptions) -> None:
        """Check the name. Channels share one table, so every channel exists once named."""
        _check_channel(options.name)
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
        _check_channel(channel)
        limit = self._capabilities.max_size
        if limit is not None and message.size > limit:
            raise MessageTooLarge(
                f"message of {message.size} bytes (body plus headers) is larger than the "
                f"{limit} bytes SqliteTransport on {self.path!r} accepts for channel "
                f"{channel!r}. Send a smaller message (store large payloads elsewhere and send "
                f"a reference), or raise max_size."
            )
        now_ms = to_unix_ms(self._clock.now())
        due_ms = now_ms if available_at is None else to_unix_ms(available_at, round_up=True)
        expires_ms = None if expires_at is None else to_unix_ms(expires_at, round_up=True)
        if self._application is not None:
            application = self._application.get()
            if application.in_transaction:
                self._send_in_application(
                    application, channel, message, due_ms, priority, expires_ms
                )
                return
        texts = self._texts.get(channel) or self._texts_of(channel)
        with self._db.statement(texts.sending, locked_hint=texts.locked_hint) as connection:
            insert_message(
                connection,
                channel,
                message,
                due_ms,
                priority=priority,
                expires_at_ms=expires_ms,
                now_ms=now_ms,
            )

    def _send_in_application(
        self,
        application: sqlite3.Connection,
        channel: str,
        message: WireMessage,
        due_ms: int,
        priority: int,
        expires_ms: int | None,
    ) -> None:
        """Write the message inside the application's open transaction, without committing."""
        import sqlite3

        action = f"sending to channel {channel!r} in the application's transaction"
        self._db.check_open(action)
        try:
            insert_message(
                application, channel, message, due_ms, priority=priority, expires_at_ms=expires_ms
            )
        except sqlite3.Error as error:
            raise translate_application(application, error, action) from error

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` due messages, each in its own short transaction.

        With ``wait``, poll every 50 ms (SQLite has no notification) up to ``wait`` for the
        first message; the kernel passes ``wait`` only on a real clock.
        """
        _check_channel(channel)
        if lease <= timedelta(0):
            raise ValueError(
                f"lease={lease} must be positive: it is how long the consumer has before the "
                f"message is delivered again."
            )
        if max_messages < 1:
            raise ValueError(f"max_messages={max_messages} must be at least 1.")
        deliveries: list[Delivery] = []
        deadline = None if wait is None else self._clock.now() + wait
        while True:
            while len(deliveries) < max_messages:
                delivery = self._receive_one(channel, lease)
                if delivery is None:
                    break
                deliveries.append(delivery)
            if deliveries or deadline is None:
                return deliveries
            left = deadline - self._clock.now()
            if left <= timedelta(0):
                return deliveries
            self._clock.sleep(min(left, _POLL).total_seconds())

    def _receive_one(self, channel: str, lease: timedelta) -> Delivery | None:
        lease_ms = duration_ms(lease)
        # Not synced even under "FULL": a lease lost to a power cut only means the message is
        # delivered again, which at least once allows; the send that stored it was synced.
        texts = self._texts.get(channel) or self._texts_of(channel)
        while True:
            try:
                with self._db.statement(texts.receiving, durable=False) as connection:
                    # Read "now" under the lock: time spent waiting for it must not eat the
                    # lease. A token is spent only on a claim, so tokens number deliveries, not
                    # polls (sequential ids in tests stay the same).
                    now_ms = to_unix_ms(self._clock.now())
                    token = self._spare_token or self._new_token()
                    claimed = claim_next(
                        connection,
                        channel,
                        now_ms=now_ms,
                        lease_until_ms=now_ms + lease_ms,
                        token=token,
                    )
                    self._spare_token = token if claimed is None else None
            except UnclaimableRow as bad:
                # Set the row aside in a transaction of its own, then go on.
                with self._db.transaction(texts.receiving) as connection:
                    move_aside(connection, channel, bad.row_id, bad.problem, now_ms=now_ms)
                continue
            break
        if claimed is None:
            return None
        return Delivery(
            channel=channel,
            message=claimed.message,
            receipt=f"{claimed.id}:{claimed.token}",
            delivery_count=claimed.delivery_count,
        )

    def ack(self, delivery: Delivery) -> None:
        row_id, token = _parse_receipt(delivery)
        action = f"acknowledging message {row_id} on channel {delivery.channel!r}"
        # One statement, not synced even under "FULL": an ack lost to a power cut delivers the
        # message again (at least once), it never loses one.
        with self._db.statement(action, durable=False) as connection:
            if not delete_leased(connection, row_id, token):
                raise self._stale(delivery, row_id, delivery_count_of(connection, row_id), "ack")

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        row_id, token = _parse_receipt(delivery)
        due_ms = None if available_at is None else to_unix_ms(available_at, round_up=True)
        action = f"releasing message {row_id} on channel {delivery.channel!r}"
        with self._db.transaction(action) as connection:
            if due_ms is None:
                due_ms = to_unix_ms(self._clock.now())
            if not unlease(connection, row_id, token, due_ms):
                raise self._stale(
                    delivery, row_id, delivery_count_of(connection, row_id), "release"
                )

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease of ``delivery`` to ``lease`` from now, while a long handler runs."""
        if lease <= timedelta(0):
            raise ValueError(f"lease must be positive, not {lease}")
        row_id, token = _parse_receipt(delivery)
        action = f"renewing the lease of message {row_id} on channel {delivery.channel!r}"
        # Not synced: a renewal lost to a power cut only delivers the message again.
        with self._db.statement(action, durable=False) as connection:
            until_ms = to_unix_ms(self._clock.now()) + duration_ms(lease)
            if not extend_lease(connection, row_id, token, until_ms):
                raise self._stale(delivery, row_id, delivery_count_of(connection, row_id), "renew")

    def pending(self, channel: str) -> int:
        with self._db.read(f"counting channel {channel!r}") as connection:
            return count_messages(connection, channel)

    def next_due(self, channel: str) -> datetime | None:
        with self._db.read(f"reading the next due time of channel {channel!r}") as connection:
            due_ms = earliest_due_ms(connection, channel)
        return None if due_ms is None else from_unix_ms(due_ms)

    def stats(self, channel: str) -> ChannelStats:
        """Pending, in flight, and how long the oldest waiting message has been receivable."""
        with self._db.read(f"reading the load of channel {channel!r}") as connection:
            return channel_stats(connection, channel, self._clock.now())

    def _texts_of(self, channel: str) -> _Texts:
        texts = self._texts[channel] = _Texts(channel)
        return texts

    def close(self) -> None:
        """Close the connection. Closing again is allowed; every other later call raises.

        The application's connection is the application's: it is left open.
        """
        if self._application is not None:
            self._application.forget()
        self._db.close()

    def _stale(
        self, delivery: Delivery, row_id: int, current: int | None, verb: str
    ) -> TransportError:
        """Explain why a lease no longer holds, from what the row says now."""
        where = (
            f"message {row_id} on channel {delivery.channel!r} (delivery "
            f"{delivery.delivery_count}) in {self.path!r}"
        )
        if current is not None and current == delivery.delivery_count:
            return StaleReceipt(
                f"cannot {verb} {where}: it was released, so this delivery no longer holds it. "
                f"Ack or release a delivery once."
            )
        if current is None:
            cause = (
                "it is no longer stored: it was already acknowledged, by this consumer or by "
                "another one that received it after this lease expired"
            )
        else:
            cause = f"its lease expired and it was received again (now delivery {current})"
        return StaleReceipt(
            f"cannot {verb} {where}: {cause}. If the handler outlived its lease, pass a longer "
            f"lease to receive(); either way keep handlers idempotent (deduplication), since a "
            f"message is handled again whenever a lease expires."
        )

    def __repr__(self) -> str:
        return f"SqliteTransport({self.path!r})"


class _Texts:
    """A channel's phrases for error messages, made once: they are passed on every call."""

    __slots__ = ("locked_hint", "receiving", "sending")

    def __init__(self, channel: str) -> None:
        self.sending = f"sending to channel {channel!r}"
        self.receiving = f"receiving from channel {channel!r}"
        self.locked_hint = (
            f"If this process holds a transaction on this file (sqlite_transaction, or `with "
            f"conn:` after a write), the send waits for it in vain: give SqliteChannel("
            f"{channel!r}) connection= so the message joins that transaction."
        )


_POLL = timedelta(milliseconds=50)


def _numbered(prefix: str) -> Callable[[], str]:
    """Lease tokens ``<prefix>.1``, ``<prefix>.2``, ...: unique while the prefix is."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}.{next(numbers)}"


def _check_channel(channel: str) -> None:
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"channel name {channel!r} must be a non-empty string.")


def _parse_receipt(delivery: Delivery) -> tuple[int, str]:
    """Split a receipt into the row id and the lease token it was made from."""
    row, _, token = delivery.receipt.partition(":")
    if not row.isdigit() or not token:
        raise TransportError(
            f"receipt {delivery.receipt!r} of a delivery on channel {delivery.channel!r} was "
            f"not made by a SqliteTransport (expected '<row id>:<lease token>'). Ack and "
            f"release a delivery with the transport that received it."
        )
    return int(row), token
