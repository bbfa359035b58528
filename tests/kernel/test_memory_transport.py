"""MemoryTransport: the shared conformance suite, then what only the memory transport promises."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.core.clock import SystemClock, VirtualClock
from conveyor.core.errors import ClockError, MessageTooLarge, TransportClosed, TransportError
from conveyor.core.timers import TimerQueue
from conveyor.transports.async_memory import AsyncMemoryTransport
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Delivery, InspectableTransport, WireMessage
from pytest_conveyor.conformance import (
    AsyncTransportConformance,
    AsyncTransportHarness,
    TransportConformance,
    TransportHarness,
    receive_one,
)

LEASE = timedelta(seconds=30)
MS = timedelta(milliseconds=1)
NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)


class TestMemoryTransport(TransportConformance):
    """Virtual time: every boundary stepped exactly."""

    @pytest.fixture
    def harness(self) -> Iterator[TransportHarness]:
        clock = VirtualClock()
        with TransportHarness(MemoryTransport(clock), clock) as harness:
            yield harness


class TestMemoryTransportWithMaxSize(TransportConformance):
    """A size limit, so the limit's own checks apply too."""

    @pytest.fixture
    def harness(self) -> Iterator[TransportHarness]:
        clock = VirtualClock()
        with TransportHarness(MemoryTransport(clock, max_size=1024), clock) as harness:
            yield harness


class TestMemoryTransportOnRealTime(TransportConformance):
    """The system clock: the real-time runner polls deadlines, as it does for a broker."""

    @pytest.fixture
    def harness(self) -> Iterator[TransportHarness]:
        clock = SystemClock()
        with TransportHarness(MemoryTransport(clock), clock) as harness:
            yield harness


class TestAsyncMemoryTransport(AsyncTransportConformance):
    """The asyncio twin, through the async runner, on virtual time."""

    @pytest.fixture
    def harness(self) -> Iterator[AsyncTransportHarness]:
        clock = VirtualClock()
        with AsyncTransportHarness(AsyncMemoryTransport(clock), clock) as harness:
            yield harness


class TestAsyncMemoryTransportOnRealTime(AsyncTransportConformance):
    """The asyncio twin on the system clock."""

    @pytest.fixture
    def harness(self) -> Iterator[AsyncTransportHarness]:
        clock = SystemClock()
        with AsyncTransportHarness(AsyncMemoryTransport(clock), clock) as harness:
            yield harness


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOON)


@pytest.fixture
def transport(clock: VirtualClock) -> Iterator[MemoryTransport]:
    transport = MemoryTransport(clock)
    yield transport
    transport.close()


def _receive(transport: MemoryTransport, channel: str = "orders") -> Delivery:
    delivery = receive_one(transport, channel, lease=LEASE)
    assert delivery is not None
    return delivery


def _drain(transport: MemoryTransport, channel: str = "orders") -> list[bytes]:
    bodies = []
    while (delivery := receive_one(transport, channel, lease=LEASE)) is not None:
        bodies.append(delivery.message.body)
        transport.ack(delivery)
    return bodies


# TimerQueue ------------------------------------------------------------------------------------


def test_timer_queue_pops_earliest_due_first() -> None:
    queue: TimerQueue[str] = TimerQueue()
    queue.push(NOON + timedelta(seconds=3), "third")
    queue.push(NOON + timedelta(seconds=1), "first")
    queue.push(NOON + timedelta(seconds=2), "second")

    later = NOON + timedelta(hours=1)
    assert [queue.pop_due(later) for _ in range(4)] == ["first", "second", "third", None]


def test_timer_queue_is_fifo_among_equal_due_times() -> None:
    queue: TimerQueue[int] = TimerQueue()
    for n in range(50):
        queue.push(NOON, n)

    assert [queue.pop_due(NOON) for _ in range(50)] == list(range(50))


def test_timer_queue_pops_nothing_before_due() -> None:
    queue: TimerQueue[str] = TimerQueue()
    queue.push(NOON, "noon")

    assert queue.pop_due(NOON - MS) is None
    assert queue.pop_due(NOON) == "noon"


def test_timer_queue_peek_due_is_earliest_pending_instant() -> None:
    queue: TimerQueue[str] = TimerQueue()
    assert queue.peek_due() is None
    early = queue.push(NOON, "early")
    queue.push(NOON + MS, "late")
    assert queue.peek_due() == NOON

    queue.cancel(early)
    assert queue.peek_due() == NOON + MS


def test_timer_queue_cancel_skips_the_item_and_shrinks_len() -> None:
    queue: TimerQueue[str] = TimerQueue()
    keep = queue.push(NOON, "keep")
    drop = queue.push(NOON, "drop")

    assert queue.cancel(drop) is True
    assert len(queue) == 1
    assert keep.pending
    assert not drop.pending
    assert queue.pop_due(NOON) == "keep"
    assert queue.pop_due(NOON) is None
    assert len(queue) == 0


def test_timer_queue_cancel_of_fired_or_cancelled_timer_is_a_no_op() -> None:
    queue: TimerQueue[str] = TimerQueue()
    fired = queue.push(NOON, "fired")
    queue.pop_due(NOON)
    cancelled = queue.push(NOON, "cancelled")
    queue.cancel(cancelled)

    assert queue.cancel(fired) is False
    assert queue.cancel(cancelled) is False
    assert len(queue) == 0


def test_timer_queue_refuses_a_handle_from_another_queue() -> None:
    first: TimerQueue[str] = TimerQueue()
    second: TimerQueue[str] = TimerQueue()
    timer = first.push(NOON, "mine")

    with pytest.raises(ValueError, match="another TimerQueue"):
        second.cancel(timer)
    assert len(first) == 1


def test_timer_queue_stays_correct_when_most_timers_are_cancelled() -> None:
    queue: TimerQueue[int] = TimerQueue()
    timers = [queue.push(NOON + n * MS, n) for n in range(1_000)]
    for timer in timers:
        if timer.item % 10:
            queue.cancel(timer)

    assert len(queue) == 100
    later = NOON + timedelta(hours=1)
    assert [queue.pop_due(later) for _ in range(100)] == list(range(0, 1_000, 10))
    assert queue.pop_due(later) is None


# Capabilities and construction -----------------------------------------------------------------


def test_capabilities_declare_delay_priority_and_fifo(transport: MemoryTransport) -> None:
    capabilities = transport.capabilities

    assert (capabilities.delay, capabilities.priority, capabilities.ordering) == (
        True,
        True,
        "fifo",
    )
    assert (capabilities.ttl, capabilities.durable, capabilities.max_size) == (False, False, None)
    assert (capabilities.delay_precision, capabilities.max_delay) == (MS, None)


def test_is_an_inspectable_transport(transport: MemoryTransport) -> None:
    assert isinstance(transport, InspectableTransport)


def test_max_size_must_be_positive(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match="max_size"):
        MemoryTransport(clock, max_size=0)


def test_message_too_large_names_size_and_limit(clock: VirtualClock) -> None:
    transport = MemoryTransport(clock, max_size=10)

    with pytest.raises(MessageTooLarge, match=r"message of 13 bytes .* max_size of 10 bytes"):
        transport.send("orders", WireMessage(b"1234567890", {"a": "bc"}))


# Priority, delay and order ---------------------------------------------------------------------


def test_delayed_high_priority_overtakes_due_low_priority_once_due(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"low"), priority=0)
    transport.send("orders", WireMessage(b"urgent"), priority=9, available_at=NOON + LEASE)
    transport.send("orders", WireMessage(b"low 2"), priority=0)

    first = _receive(transport)
    transport.ack(first)
    clock.advance(LEASE)
    assert (first.message.body, _drain(transport)) == (b"low", [b"urgent", b"low 2"])


def test_delayed_message_takes_its_send_order_place_once_due(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"sent first, held"), available_at=NOON + MS)
    transport.send("orders", WireMessage(b"sent second"))
    clock.advance(MS)

    assert _drain(transport) == [b"sent first, held", b"sent second"]


def test_redelivered_message_keeps_its_fifo_place_and_priority(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    for body in (b"a", b"b", b"c"):
        transport.send("orders", WireMessage(body), priority=2)
    transport.send("orders", WireMessage(b"low"), priority=1)
    _receive(transport)  # "a" is leased and never acked

    clock.advance(LEASE)
    assert _drain(transport) == [b"a", b"b", b"c", b"low"]


def test_release_keeps_fifo_place(transport: MemoryTransport) -> None:
    transport.send("orders", WireMessage(b"a"))
    transport.send("orders", WireMessage(b"b"))
    transport.release(_receive(transport))

    assert _drain(transport) == [b"a", b"b"]


def test_negative_priorities_come_after_zero(transport: MemoryTransport) -> None:
    transport.send("orders", WireMessage(b"minus"), priority=-3)
    transport.send("orders", WireMessage(b"zero"))

    assert _drain(transport) == [b"zero", b"minus"]


def test_available_at_in_the_past_is_due_at_once(transport: MemoryTransport) -> None:
    transport.send("orders", WireMessage(b"overdue"), available_at=NOON - timedelta(days=1))

    assert _receive(transport).message.body == b"overdue"


def test_naive_available_at_is_refused(transport: MemoryTransport) -> None:
    with pytest.raises(ClockError, match="no timezone"):
        transport.send("orders", WireMessage(b"x"), available_at=datetime(2026, 1, 2))


def test_naive_available_at_on_release_loses_nothing(transport: MemoryTransport) -> None:
    transport.send("orders", WireMessage(b"x"))
    delivery = _receive(transport)

    with pytest.raises(ClockError):
        transport.release(delivery, available_at=datetime(2026, 1, 2))
    transport.release(delivery)
    assert _receive(transport).delivery_count == 2


def test_refused_send_stores_nothing(transport: MemoryTransport) -> None:
    with pytest.raises(ClockError):
        transport.send("orders", WireMessage(b"x"), available_at=datetime(2026, 1, 2))

    assert transport.pending("orders") == 0


def test_lease_must_be_positive(transport: MemoryTransport) -> None:
    with pytest.raises(ValueError, match="lease must be positive"):
        receive_one(transport, "orders", lease=timedelta(0))


# Receipts --------------------------------------------------------------------------------------


def test_receipts_are_unique_per_lease(transport: MemoryTransport, clock: VirtualClock) -> None:
    transport.send("orders", WireMessage(b"a"))
    first = _receive(transport)
    clock.advance(LEASE)
    second = _receive(transport)

    assert first.receipt != second.receipt


def test_ack_twice_raises(transport: MemoryTransport) -> None:
    transport.send("orders", WireMessage(b"a"))
    delivery = _receive(transport)
    transport.ack(delivery)

    with pytest.raises(TransportError, match="acknowledged or released already"):
        transport.ack(delivery)


def test_ack_of_stale_receipt_raises_and_names_the_current_delivery(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"a"))
    stale = _receive(transport)
    clock.advance(LEASE)
    current = _receive(transport)

    with pytest.raises(TransportError, match=rf"stale.*delivery 2, receipt '{current.receipt}'"):
        transport.ack(stale)
    transport.ack(current)
    assert transport.pending("orders") == 0


def test_release_of_stale_receipt_raises(transport: MemoryTransport, clock: VirtualClock) -> None:
    transport.send("orders", WireMessage(b"a"))
    stale = _receive(transport)
    clock.advance(LEASE)
    _receive(transport)

    with pytest.raises(TransportError, match="stale"):
        transport.release(stale)


def test_unknown_receipt_raises(transport: MemoryTransport) -> None:
    forged = Delivery("orders", WireMessage(b"a"), receipt="not-a-receipt")

    with pytest.raises(TransportError, match="holds no lease"):
        transport.ack(forged)


def test_expired_lease_can_still_be_acked_until_redelivered(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"a"))
    delivery = _receive(transport)
    clock.advance(LEASE * 2)
    assert transport.next_due("orders") == NOON + LEASE

    transport.ack(delivery)
    assert receive_one(transport, "orders", lease=LEASE) is None
    assert transport.pending("orders") == 0


def test_expired_lease_released_with_delay_is_held(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"a"))
    transport.send("orders", WireMessage(b"b"))
    delivery = _receive(transport)
    clock.advance(LEASE)
    assert transport.next_due("orders") is not None  # sweeps the expired lease in

    transport.release(delivery, available_at=clock.now() + LEASE)
    assert _drain(transport) == [b"b"]
    clock.advance(LEASE)
    again = _receive(transport)
    assert (again.message.body, again.delivery_count) == (b"a", 2)


# Copies ----------------------------------------------------------------------------------------


def test_send_stores_a_copy_of_headers_and_body(transport: MemoryTransport) -> None:
    headers = {"k": "before"}
    body = bytearray(b"before")
    transport.send("orders", WireMessage(body, headers))  # type: ignore[arg-type]
    headers["k"] = "after"
    body[:] = b"after!"

    message = _receive(transport).message
    assert (message.body, dict(message.headers)) == (b"before", {"k": "before"})


def test_received_headers_can_be_changed_without_touching_the_stored_message(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"a", {"k": "v"}))
    first = _receive(transport)
    first.message.headers["k"] = "changed"  # type: ignore[index]
    clock.advance(LEASE)

    assert dict(_receive(transport).message.headers) == {"k": "v"}


def test_non_string_header_is_refused(transport: MemoryTransport) -> None:
    with pytest.raises(TypeError, match="strings to strings"):
        transport.send("orders", WireMessage(b"a", {"attempt": 2}))  # type: ignore[dict-item]


def test_text_body_is_refused(transport: MemoryTransport) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        transport.send("orders", WireMessage("text"))  # type: ignore[arg-type]


# Channels, inspection and close ----------------------------------------------------------------


def test_send_and_receive_declare_the_channel(transport: MemoryTransport) -> None:
    assert receive_one(transport, "inbox", lease=LEASE) is None
    transport.send("outbox", WireMessage(b"a"))

    assert repr(transport) == "MemoryTransport(channels=2, pending=1)"


def test_inspection_of_unknown_channel_declares_nothing(transport: MemoryTransport) -> None:
    assert (transport.pending("nowhere"), transport.next_due("nowhere")) == (0, None)
    assert repr(transport) == "MemoryTransport(channels=0, pending=0)"


def test_next_due_is_the_earliest_of_delays_and_leases(
    transport: MemoryTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"leased"))
    transport.send("orders", WireMessage(b"held"), available_at=NOON + timedelta(seconds=10))
    _receive(transport)

    assert transport.next_due("orders") == NOON + timedelta(seconds=10)
    clock.advance(timedelta(seconds=10))
    assert transport.next_due("orders") == NOON + timedelta(seconds=10)


def test_close_is_idempotent_and_capabilities_stay_readable(transport: MemoryTransport) -> None:
    transport.close()
    transport.close()

    assert transport.capabilities.priority is True
    with pytest.raises(TransportClosed, match="cannot count pending messages"):
        transport.pending("orders")
    with pytest.raises(TransportClosed):
        transport.next_due("orders")


# Scale -----------------------------------------------------------------------------------------


def test_ten_thousand_messages_flow_in_priority_then_send_order(
    transport: MemoryTransport,
) -> None:
    for n in range(10_000):
        transport.send("bulk", WireMessage(b"%d" % n), priority=n % 3)

    bodies = _drain(transport, "bulk")
    expected = [b"%d" % n for p in (2, 1, 0) for n in range(10_000) if n % 3 == p]
    assert bodies == expected
    assert transport.pending("bulk") == 0


def test_acked_leases_do_not_accumulate(transport: MemoryTransport) -> None:
    for n in range(5_000):
        transport.send("bulk", WireMessage(b"%d" % n))
        transport.ack(_receive(transport, "bulk"))

    channel = transport._channels["bulk"]
    assert len(channel.lease_timers._heap) < 200
    assert not channel.timers._heap
    assert not channel.leases


def test_queued_message_costs_under_300_bytes(clock: VirtualClock) -> None:
    """A regression guard for the benchmark's memory budget (about 200 bytes measured)."""
    transport = MemoryTransport(clock)
    messages = [WireMessage(b"%d" % n, {"type": "Ping"}) for n in range(20_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for message in messages:
            transport.send("bulk", message)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert used / len(messages) < 300
