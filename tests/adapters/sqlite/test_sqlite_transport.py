"""SqliteTransport behaviour, checked through the transport and at the SQL level."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.core.errors import MessageTooLarge, TransportClosed, TransportError
from conveyor.core.ids import SequentialIds
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    Delivery,
    InspectableTransport,
    WireMessage,
)
from conveyor_sqlite import SCHEMA_VERSION, SqliteTransport, to_unix_ms
from pytest_conveyor.conformance import receive_one

LEASE = timedelta(seconds=30)


def message(n: int, **headers: str) -> WireMessage:
    return WireMessage(body=f"body-{n}".encode(), headers={"id": f"m-{n}", **headers})


def bodies(transport: SqliteTransport, channel: str) -> list[bytes]:
    """Receive and ack everything due on the channel, in receive order."""
    received = []
    while (delivery := receive_one(transport, channel, lease=LEASE)) is not None:
        received.append(delivery.message.body)
        transport.ack(delivery)
    return received


def rows(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Look at the file with a connection of its own, as an operator would."""
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, params).fetchall()


# --- the protocol -----------------------------------------------------------------------------


def test_is_an_inspectable_transport_with_its_declared_capabilities(
    transport: SqliteTransport,
) -> None:
    assert isinstance(transport, InspectableTransport)
    assert transport.capabilities == Capabilities(
        delay=True,
        max_delay=None,
        delay_precision=timedelta(milliseconds=1),
        priority=True,
        ttl=False,
        ordering="fifo",
        max_size=None,
        durable=True,
    )


def test_round_trips_body_bytes_and_headers_exactly(transport: SqliteTransport) -> None:
    body = bytes(range(256)) + b"\x00end"
    headers = {"id": "m-1", "unicode": "zaż\u00f3\u0142\u0107 \U0001f680", "empty": "", "q": '"{}'}
    transport.send("orders", WireMessage(body, headers))

    delivery = receive_one(transport, "orders", lease=LEASE)

    assert delivery is not None
    assert delivery.message == WireMessage(body, headers)
    assert type(delivery.message.body) is bytes
    assert delivery.channel == "orders"
    assert delivery.delivery_count == 1


def test_receive_returns_none_at_once_when_nothing_is_due(transport: SqliteTransport) -> None:
    assert receive_one(transport, "orders", lease=LEASE) is None


def test_channels_share_one_table_but_not_their_messages(
    transport: SqliteTransport, db_path: Path
) -> None:
    transport.declare(ChannelOptions("a"))
    transport.declare(ChannelOptions("a"))  # idempotent
    transport.send("a", message(1))
    transport.send("b", message(2))

    assert bodies(transport, "b") == [b"body-2"]
    assert bodies(transport, "a") == [b"body-1"]
    assert rows(db_path, "SELECT name FROM sqlite_master WHERE name LIKE 'conveyor_%' ORDER BY 1")
    assert rows(db_path, "SELECT COUNT(*) FROM conveyor_messages") == [(0,)]


def test_receives_fifo_within_a_priority_and_higher_priority_first(
    transport: SqliteTransport,
) -> None:
    for n, priority in [(1, 0), (2, 5), (3, 0), (4, 5), (5, -1), (6, 9)]:
        transport.send("orders", message(n), priority=priority)

    assert bodies(transport, "orders") == [
        b"body-6",
        b"body-2",
        b"body-4",
        b"body-1",
        b"body-3",
        b"body-5",
    ]


def test_a_delayed_message_is_not_received_before_its_time_to_the_millisecond(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1), available_at=clock.now() + timedelta(milliseconds=250))

    clock.advance(timedelta(milliseconds=249))
    assert receive_one(transport, "orders", lease=LEASE) is None
    clock.advance(timedelta(milliseconds=1))
    assert bodies(transport, "orders") == [b"body-1"]


def test_a_sub_millisecond_due_time_rounds_up_so_it_is_never_early(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1), available_at=clock.now() + timedelta(microseconds=1_500))

    clock.advance(timedelta(microseconds=1_999))
    assert receive_one(transport, "orders", lease=LEASE) is None
    clock.advance(timedelta(microseconds=1))
    assert bodies(transport, "orders") == [b"body-1"]


def test_a_due_time_in_the_past_is_due_now(transport: SqliteTransport, clock: VirtualClock) -> None:
    clock.advance(timedelta(hours=1))
    transport.send("orders", message(1), available_at=clock.now() - timedelta(minutes=5))

    assert bodies(transport, "orders") == [b"body-1"]


def test_a_delayed_high_priority_message_does_not_block_due_ones(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1), priority=9, available_at=clock.now() + timedelta(1))
    transport.send("orders", message(2))

    assert bodies(transport, "orders") == [b"body-2"]
    clock.advance(timedelta(days=1))
    assert bodies(transport, "orders") == [b"body-1"]


def test_an_unacked_message_comes_back_after_its_lease_with_a_higher_count(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1))
    first = receive_one(transport, "orders", lease=timedelta(seconds=10))
    assert first is not None

    clock.advance(timedelta(seconds=9, milliseconds=999))
    assert receive_one(transport, "orders", lease=LEASE) is None
    clock.advance(timedelta(milliseconds=1))
    second = receive_one(transport, "orders", lease=LEASE)

    assert second is not None
    assert second.message == first.message
    assert (first.delivery_count, second.delivery_count) == (1, 2)
    assert second.receipt != first.receipt


def test_an_ack_with_a_stale_lease_names_the_message_and_the_expired_lease(
    transport: SqliteTransport, clock: VirtualClock, db_path: Path
) -> None:
    transport.send("orders", message(1))
    stale = receive_one(transport, "orders", lease=timedelta(seconds=10))
    assert stale is not None
    clock.advance(timedelta(seconds=10))
    fresh = receive_one(transport, "orders", lease=LEASE)
    assert fresh is not None

    with pytest.raises(TransportError) as raised:
        transport.ack(stale)

    assert str(raised.value) == (
        f"cannot ack message 1 on channel 'orders' (delivery 1) in {str(db_path)!r}: its lease "
        f"expired and it was received again (now delivery 2). If the handler outlived its "
        f"lease, pass a longer lease to receive(); either way keep handlers idempotent "
        f"(deduplication), since a message is handled again whenever a lease expires."
    )
    transport.ack(fresh)
    assert transport.pending("orders") == 0


def test_an_ack_after_the_lease_ran_out_still_counts_while_nobody_took_it(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1))
    slow = receive_one(transport, "orders", lease=timedelta(seconds=1))
    assert slow is not None
    clock.advance(timedelta(minutes=5))

    transport.ack(slow)

    assert transport.pending("orders") == 0


def test_acking_twice_says_the_message_is_gone(transport: SqliteTransport) -> None:
    transport.send("orders", message(1))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None
    transport.ack(delivery)

    with pytest.raises(TransportError, match="it is no longer stored: it was already acknowledged"):
        transport.ack(delivery)


def test_a_released_delivery_cannot_be_acked(transport: SqliteTransport) -> None:
    transport.send("orders", message(1))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None
    transport.release(delivery)

    with pytest.raises(TransportError, match="it was released, so this delivery no longer holds"):
        transport.ack(delivery)


def test_a_receipt_from_another_transport_is_refused(transport: SqliteTransport) -> None:
    foreign = Delivery("orders", message(1), receipt="orders:1:1")

    with pytest.raises(TransportError, match="was not made by a SqliteTransport"):
        transport.ack(foreign)


def test_release_keeps_the_message_s_place_and_its_delivery_count(
    transport: SqliteTransport,
) -> None:
    for n in (1, 2, 3):
        transport.send("orders", message(n))
    first = receive_one(transport, "orders", lease=LEASE)
    assert first is not None

    transport.release(first)
    again = receive_one(transport, "orders", lease=LEASE)

    assert again is not None
    assert again.message.body == b"body-1"
    assert again.delivery_count == 2


def test_release_with_a_due_time_holds_the_message_until_then(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None

    transport.release(delivery, available_at=clock.now() + timedelta(seconds=3))

    assert receive_one(transport, "orders", lease=LEASE) is None
    assert transport.next_due("orders") == clock.now() + timedelta(seconds=3)
    clock.advance(timedelta(seconds=3))
    assert bodies(transport, "orders") == [b"body-1"]


def test_pending_counts_due_delayed_and_leased_messages(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", message(1))
    transport.send("orders", message(2), available_at=clock.now() + timedelta(minutes=1))
    transport.send("other", message(3))
    assert receive_one(transport, "orders", lease=LEASE) is not None

    assert transport.pending("orders") == 2
    assert transport.pending("other") == 1
    assert transport.pending("never-used") == 0


def test_next_due_is_the_earliest_of_due_times_and_lease_expiries(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    start = clock.now()
    assert transport.next_due("orders") is None
    transport.send("orders", message(1), available_at=start + timedelta(seconds=50))
    transport.send("orders", message(2), available_at=start + timedelta(seconds=20))
    assert transport.next_due("orders") == start + timedelta(seconds=20)

    transport.send("orders", message(3))
    assert transport.next_due("orders") == start
    assert receive_one(transport, "orders", lease=timedelta(seconds=5)) is not None
    assert transport.next_due("orders") == start + timedelta(seconds=5)


def test_max_size_refuses_a_larger_message_and_stores_nothing(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock, max_size=20)
    fits = WireMessage(b"x" * 10, {"k": "v"})
    assert fits.size == 12
    transport.send("orders", fits)

    with pytest.raises(MessageTooLarge) as raised:
        transport.send("orders", WireMessage(b"x" * 19, {"k": "v"}))

    assert str(raised.value) == (
        f"message of 21 bytes (body plus headers) is larger than the 20 bytes SqliteTransport "
        f"on {str(db_path)!r} accepts for channel 'orders'. Send a smaller message (store "
        f"large payloads elsewhere and send a reference), or raise max_size."
    )
    assert transport.pending("orders") == 1
    assert transport.capabilities.max_size == 20
    transport.close()


def test_wrong_argument_types_are_refused_before_anything_is_stored(
    transport: SqliteTransport,
) -> None:
    with pytest.raises(TypeError, match="headers must map strings to strings"):
        transport.send("orders", WireMessage(b"x", {"n": 1}))  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="body must be bytes, not str"):
        transport.send("orders", WireMessage("text"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease=0:00:00 must be positive"):
        receive_one(transport, "orders", lease=timedelta(0))
    with pytest.raises(ValueError, match="channel name '' must be a non-empty string"):
        transport.send("", message(1))
    assert transport.pending("orders") == 0


def test_every_call_after_close_raises_transport_closed(
    transport: SqliteTransport, db_path: Path
) -> None:
    transport.send("orders", message(1))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None
    transport.close()
    transport.close()  # closing again is allowed

    calls: list[Callable[[], object]] = [
        lambda: transport.declare(ChannelOptions("orders")),
        lambda: transport.send("orders", message(2)),
        lambda: receive_one(transport, "orders", lease=LEASE),
        lambda: transport.ack(delivery),
        lambda: transport.release(delivery),
        lambda: transport.pending("orders"),
        lambda: transport.next_due("orders"),
    ]
    for call in calls:
        with pytest.raises(
            TransportClosed, match=re.escape(f"SqliteTransport on {str(db_path)!r} is closed")
        ):
            call()
    assert transport.capabilities.durable


def test_messages_and_leases_survive_reopening_the_file(db_path: Path, clock: VirtualClock) -> None:
    first = SqliteTransport(db_path, clock=clock)
    first.send("orders", message(1))
    first.send("orders", message(2), available_at=clock.now() + timedelta(seconds=5))
    leased = receive_one(first, "orders", lease=timedelta(seconds=10))
    assert leased is not None
    first.close()

    second = SqliteTransport(db_path, clock=clock)
    assert second.pending("orders") == 2
    assert receive_one(second, "orders", lease=LEASE) is None  # one is leased, one is delayed
    clock.advance(timedelta(seconds=10))
    assert bodies(second, "orders") == [b"body-1", b"body-2"]
    second.close()


# --- at the SQL level -------------------------------------------------------------------------


def test_a_claim_writes_the_lease_into_the_row(
    transport: SqliteTransport, clock: VirtualClock, db_path: Path
) -> None:
    now_ms = to_unix_ms(clock.now())
    transport.send("orders", message(1), priority=3, expires_at=clock.now() + timedelta(hours=1))
    assert rows(
        db_path,
        "SELECT id, channel, priority, available_at, expires_at, lease_until, lease_token, "
        "delivery_count, enqueued_seq FROM conveyor_messages",
    ) == [(1, "orders", 3, now_ms, now_ms + 3_600_000, None, None, 0, 1)]

    delivery = receive_one(transport, "orders", lease=timedelta(milliseconds=1500))

    assert delivery is not None
    assert delivery.receipt == "1:lease-1"
    assert rows(
        db_path, "SELECT lease_until, lease_token, delivery_count FROM conveyor_messages"
    ) == [(now_ms + 1500, "lease-1", 1)]
    assert rows(db_path, "SELECT headers FROM conveyor_messages") == [('{"id":"m-1"}',)]


def test_release_clears_the_lease_and_sets_the_due_time(
    transport: SqliteTransport, clock: VirtualClock, db_path: Path
) -> None:
    transport.send("orders", message(1))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None

    transport.release(delivery, available_at=clock.now() + timedelta(milliseconds=7))

    assert rows(
        db_path,
        "SELECT available_at, lease_until, lease_token, delivery_count FROM conveyor_messages",
    ) == [(to_unix_ms(clock.now()) + 7, None, None, 1)]


def test_the_file_is_in_wal_mode_with_a_versioned_schema(
    transport: SqliteTransport, db_path: Path
) -> None:
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_schema_creation_is_idempotent_and_keeps_existing_messages(
    db_path: Path, clock: VirtualClock
) -> None:
    SqliteTransport(db_path, clock=clock).send("orders", message(1))
    with sqlite3.connect(db_path) as connection:  # an old file: version not yet recorded
        connection.execute("PRAGMA user_version = 0")

    reopened = SqliteTransport(db_path, clock=clock)

    assert bodies(reopened, "orders") == [b"body-1"]
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    reopened.close()


# --- several transports, threads and connections on one file ---------------------------------


def test_two_transports_on_one_file_never_lease_the_same_message_twice(
    db_path: Path, clock: VirtualClock
) -> None:
    a = SqliteTransport(db_path, clock=clock, ids=SequentialIds("a-"))
    b = SqliteTransport(db_path, clock=clock, ids=SequentialIds("b-"))
    for n in range(10):
        a.send("orders", message(n))

    leased: list[Delivery] = []
    for turn in range(12):
        delivery = receive_one(a if turn % 2 else b, "orders", lease=LEASE)
        if delivery is not None:
            leased.append(delivery)

    assert sorted(d.message.body for d in leased) == sorted(f"body-{n}".encode() for n in range(10))
    assert {d.delivery_count for d in leased} == {1}

    clock.advance(LEASE)  # every lease runs out: each message comes back exactly once
    again = [d for t in (a, b, a) if (d := receive_one(t, "orders", lease=LEASE)) is not None]
    assert [d.message.body for d in again] == [b"body-0", b"body-1", b"body-2"]
    assert {d.delivery_count for d in again} == {2}
    a.close()
    b.close()


def test_threads_on_many_connections_never_lease_the_same_message_twice(
    db_path: Path, clock: VirtualClock
) -> None:
    total = 300
    feeder = SqliteTransport(db_path, clock=clock, synchronous="NORMAL")
    for n in range(total):
        feeder.send("orders", message(n))
    consumers = [
        SqliteTransport(db_path, clock=clock, ids=SequentialIds(f"c{i}-"), synchronous="NORMAL")
        for i in range(4)
    ]
    shared = consumers[0]  # two threads also share one transport (one connection, a lock)
    received: list[bytes] = []
    guard = threading.Lock()
    start = threading.Barrier(5)

    def consume(transport: SqliteTransport) -> None:
        start.wait()
        while (delivery := receive_one(transport, "orders", lease=LEASE)) is not None:
            with guard:
                received.append(delivery.message.body)

    threads = [threading.Thread(target=consume, args=(t,)) for t in [*consumers, shared]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert len(received) == total
    assert len(set(received)) == total
    assert feeder.pending("orders") == total  # all leased, none acked
    for transport in [feeder, *consumers]:
        transport.close()
