"""``SqliteTransport``: durable channels in one SQLite file, for one process or several.

Every channel lives in one table. A receive leases the next due message inside
``BEGIN IMMEDIATE``, so two connections (threads, transports or processes) never hold a lease
on the same message at once; an ack deletes the row only while the lease token is still the
one it was given. A consumer that dies mid-message leaves a lease that simply runs out, and
the message is received again with a higher delivery count: at least once, nothing lost.

All times come from the injected clock, stored as unix milliseconds (see ``instants``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from conveyor.clock import Clock
from conveyor.errors import MessageTooLarge, TransportError
from conveyor.ids import IdGenerator, UuidV7Ids
from conveyor.transport import Capabilities, Delivery, WireMessage
from conveyor_sqlite.database import Database, Synchronous
from conveyor_sqlite.instants import duration_ms, from_unix_ms, to_unix_ms
from conveyor_sqlite.messages import (
    claim_next,
    count_messages,
    delete_leased,
    delivery_count_of,
    earliest_due_ms,
    insert_message,
    unlease,
)

__all__ = ["SqliteTransport"]


class SqliteTransport:
    """An inspectable, durable transport on a SQLite file (the embedded default).

    Args:
        path: the database file. It is created if missing; its directory must exist. Several
            transports, in one process or many, may share it.
        clock: where every due time and lease is read from.
        ids: makes lease tokens; they must be unique across every process using the file
            (the default uuid v7 ids are).
        max_size: the largest message in bytes (body plus headers), or None for no limit.
        busy_timeout: how long to wait for another connection's write lock before failing.
        synchronous: "FULL" syncs every commit to disk (survives power loss); "NORMAL" is
            faster and survives a crash of the process but not of the machine.
    """

    __slots__ = ("_capabilities", "_clock", "_db", "_ids")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock,
        ids: IdGenerator | None = None,
        max_size: int | None = None,
        busy_timeout: timedelta = timedelta(seconds=5),
        synchronous: Synchronous = "FULL",
    ) -> None:
        if max_size is not None and max_size <= 0:
            raise ValueError(f"max_size={max_size} must be positive, or None for no limit.")
        self._clock = clock
        self._ids = ids if ids is not None else UuidV7Ids(clock)
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

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._db.path

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def declare(self, channel: str) -> None:
        """Check the name. Channels share one table, so every channel exists once named."""
        _check_channel(channel)
        self._db.check_open(f"declaring channel {channel!r}")

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
        with self._db.transaction(f"sending to channel {channel!r}") as connection:
            insert_message(
                connection, channel, message, due_ms, priority=priority, expires_at_ms=expires_ms
            )

    def receive(self, channel: str, *, lease: timedelta) -> Delivery | None:
        _check_channel(channel)
        if lease <= timedelta(0):
            raise ValueError(
                f"lease={lease} must be positive: it is how long the consumer has before the "
                f"message is delivered again."
            )
        lease_ms = duration_ms(lease)
        with self._db.transaction(f"receiving from channel {channel!r}") as connection:
            # Read "now" under the write lock: time spent waiting for it must not eat the lease.
            now_ms = to_unix_ms(self._clock.now())
            claimed = claim_next(
                connection,
                channel,
                now_ms=now_ms,
                lease_until_ms=now_ms + lease_ms,
                new_token=self._ids.new,
            )
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
        with self._db.transaction(action) as connection:
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

    def pending(self, channel: str) -> int:
        with self._db.read(f"counting channel {channel!r}") as connection:
            return count_messages(connection, channel)

    def next_due(self, channel: str) -> datetime | None:
        with self._db.read(f"reading the next due time of channel {channel!r}") as connection:
            due_ms = earliest_due_ms(connection, channel)
        return None if due_ms is None else from_unix_ms(due_ms)

    def close(self) -> None:
        """Close the connection. Closing again is allowed; every other later call raises."""
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
            return TransportError(
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
        return TransportError(
            f"cannot {verb} {where}: {cause}. If the handler outlived its lease, pass a longer "
            f"lease to receive(); either way keep handlers idempotent (deduplication), since a "
            f"message is handled again whenever a lease expires."
        )

    def __repr__(self) -> str:
        return f"SqliteTransport({self.path!r})"


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
