"""The transport conformance suite: one set of tests every transport passes.

DESIGN section 5: the in-memory transport and every adapter run the same suite, so "works on
memory" means "works on the broker". It ships inside the plugin so third-party adapters can run it
too. An adapter's test module subclasses :class:`TransportConformance` and provides a ``harness``
fixture::

    import pytest
    from pytest_conveyor.conformance import TransportConformance, TransportHarness

    class TestMyTransport(TransportConformance):
        @pytest.fixture
        def harness(self):
            clock = VirtualClock()
            transport = MyTransport(clock=clock)
            names = itertools.count()
            yield TransportHarness(
                transport=transport,
                clock=clock,
                advance=clock.advance,
                make_channel=lambda: f"conformance-{next(names)}",
            )
            transport.close()

Tests of a capability the transport does not declare are skipped, naming the capability, because a
missing capability is the kernel's to provide (or to refuse at bootstrap), never the transport's to
fake. Tests that close the transport or reopen it leave the original closed: the fixture's
teardown must tolerate closing a closed transport.

The class is deliberately not named ``Test...``, so pytest collects only its subclasses. The
durations it uses are class attributes; a harness on real time (a networked broker without a
virtual clock) can shorten them in its subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from conveyor.clock import Clock
from conveyor.errors import MessageTooLarge, TransportClosed
from conveyor.transport import Delivery, InspectableTransport, Transport, WireMessage

__all__ = ["TransportConformance", "TransportHarness"]


@dataclass(frozen=True, slots=True)
class TransportHarness:
    """What the suite needs to drive one transport.

    Attributes:
        transport: the transport under test, fresh for each test.
        clock: the transport's notion of now; the suite computes ``available_at`` from it.
        advance: moves that clock forward by a duration (a ``VirtualClock``'s ``advance`` for
            memory and SQLite; a real wait for a broker on the system clock).
        make_channel: a fresh, unique channel name, so tests sharing one broker never meet.
        reopen: a new transport on the same storage, for durability tests; None skips them.
    """

    transport: Transport
    clock: Clock
    advance: Callable[[timedelta], object]
    make_channel: Callable[[], str]
    reopen: Callable[[], Transport] | None = None


_CLOSED_OPERATIONS = ["declare", "send", "receive", "ack", "release"]


class TransportConformance:
    """The shared conformance tests. Subclass it as ``Test<YourTransport>`` with a ``harness``."""

    lease: timedelta = timedelta(seconds=30)
    """The lease every test receives with."""

    delay: timedelta = timedelta(seconds=5)
    """How far ahead delayed messages are held; keep it under ``capabilities.max_delay``."""

    many: int = 200
    """How many messages the exactly-once test pushes through."""

    @pytest.fixture
    def harness(self) -> TransportHarness:
        """Override me: yield a :class:`TransportHarness` around a fresh transport."""
        raise NotImplementedError(
            f"{type(self).__name__} subclasses TransportConformance without a `harness` fixture; "
            f"define `@pytest.fixture def harness(self): yield TransportHarness(...)` on it."
        )

    # Round trip ----------------------------------------------------------------------------

    def test_round_trip_keeps_body_bytes(self, harness: TransportHarness) -> None:
        body = bytes(range(256))  # every byte value, most of them not valid UTF-8
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(body))

        assert _body(harness.transport.receive(channel, lease=self.lease)) == body

    def test_round_trip_keeps_unicode_headers(self, harness: TransportHarness) -> None:
        headers = {"x-greeting": "grüß dich ✓ 日本語", "x-emoji": "🚚📦", "x-empty": ""}
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"with headers", headers))

        delivery = _received(harness.transport.receive(channel, lease=self.lease))
        assert dict(delivery.message.headers) == headers

    def test_first_delivery_names_its_channel_and_counts_one(
        self, harness: TransportHarness
    ) -> None:
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"first"))

        delivery = _received(harness.transport.receive(channel, lease=self.lease))
        assert (delivery.channel, delivery.delivery_count) == (channel, 1)

    def test_empty_channel_receives_none(self, harness: TransportHarness) -> None:
        channel = harness.make_channel()
        harness.transport.declare(channel)

        assert harness.transport.receive(channel, lease=self.lease) is None

    # Ack, leases and redelivery --------------------------------------------------------------

    def test_ack_removes_message(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"done"))
        transport.ack(_received(transport.receive(channel, lease=self.lease)))

        harness.advance(self.lease + _precision(harness))
        assert transport.receive(channel, lease=self.lease) is None

    def test_unacked_message_is_redelivered_after_lease_and_not_before(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"slow"))
        transport.receive(channel, lease=self.lease)

        harness.advance(self.lease - _precision(harness))
        assert transport.receive(channel, lease=self.lease) is None
        harness.advance(_precision(harness))
        again = _received(transport.receive(channel, lease=self.lease))
        assert (again.message.body, again.delivery_count) == (b"slow", 2)

    def test_delivery_count_grows_with_each_redelivery(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"flaky"))

        counts = []
        for _ in range(3):
            counts.append(_received(transport.receive(channel, lease=self.lease)).delivery_count)
            harness.advance(self.lease)
        assert counts == [1, 2, 3]

    def test_consumer_killed_mid_message_loses_nothing(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"survivor"))
        transport.receive(channel, lease=self.lease)  # the consumer dies holding the lease

        harness.advance(self.lease)
        second = _received(transport.receive(channel, lease=self.lease))
        transport.ack(second)
        harness.advance(self.lease)
        assert second.message.body == b"survivor"
        assert transport.receive(channel, lease=self.lease) is None

    def test_competing_receives_never_share_a_lease(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        sent = {f"job-{n}".encode() for n in range(10)}
        for body in sorted(sent):
            transport.send(channel, WireMessage(body))

        leased = [_received(transport.receive(channel, lease=self.lease)) for _ in sent]
        assert {d.message.body for d in leased} == sent
        assert len({d.receipt for d in leased}) == len(sent)
        assert transport.receive(channel, lease=self.lease) is None

    def test_many_messages_are_each_delivered_exactly_once(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        sent = [f"message-{n}".encode() for n in range(self.many)]
        for body in sent:
            transport.send(channel, WireMessage(body))

        received = _drain(transport, channel, self.lease, at_most=2 * self.many)
        harness.advance(self.lease + _precision(harness))
        assert sorted(received) == sorted(sent)
        assert transport.receive(channel, lease=self.lease) is None

    # Release ---------------------------------------------------------------------------------

    def test_release_puts_message_back_at_once(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"again"))
        transport.release(_received(transport.receive(channel, lease=self.lease)))

        again = _received(transport.receive(channel, lease=self.lease))
        assert (again.message.body, again.delivery_count) == (b"again", 2)

    def test_release_with_available_at_holds_message_until_then(
        self, harness: TransportHarness
    ) -> None:
        _require(harness.transport.capabilities.delay, "capabilities.delay")
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"later"))
        delivery = _received(transport.receive(channel, lease=self.lease))
        transport.release(delivery, available_at=harness.clock.now() + self.delay)

        harness.advance(self.delay - _precision(harness))
        assert transport.receive(channel, lease=self.lease) is None
        harness.advance(_precision(harness))
        assert _body(transport.receive(channel, lease=self.lease)) == b"later"

    # Delay and expiry ------------------------------------------------------------------------

    def test_delayed_message_is_not_received_before_available_at(
        self, harness: TransportHarness
    ) -> None:
        _require(harness.transport.capabilities.delay, "capabilities.delay")
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"wait"), available_at=harness.clock.now() + self.delay)

        assert transport.receive(channel, lease=self.lease) is None
        harness.advance(self.delay - _precision(harness))
        assert transport.receive(channel, lease=self.lease) is None

    def test_delayed_message_is_received_at_available_at(self, harness: TransportHarness) -> None:
        _require(harness.transport.capabilities.delay, "capabilities.delay")
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"now"), available_at=harness.clock.now() + self.delay)

        harness.advance(self.delay)
        assert _body(transport.receive(channel, lease=self.lease)) == b"now"

    def test_delayed_message_does_not_block_due_message_behind_it(
        self, harness: TransportHarness
    ) -> None:
        _require(harness.transport.capabilities.delay, "capabilities.delay")
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"held"), available_at=harness.clock.now() + self.delay)
        transport.send(channel, WireMessage(b"due"))

        assert _body(transport.receive(channel, lease=self.lease)) == b"due"
        assert transport.receive(channel, lease=self.lease) is None

    def test_expired_message_is_not_received(self, harness: TransportHarness) -> None:
        _require(harness.transport.capabilities.ttl, "capabilities.ttl")
        transport, channel = harness.transport, harness.make_channel()
        expires_at = harness.clock.now() + self.delay
        transport.send(channel, WireMessage(b"stale"), expires_at=expires_at)

        harness.advance(self.delay + _precision(harness))
        assert transport.receive(channel, lease=self.lease) is None

    # Priority and ordering -------------------------------------------------------------------

    def test_higher_priority_is_received_first(self, harness: TransportHarness) -> None:
        _require(harness.transport.capabilities.priority, "capabilities.priority")
        transport, channel = harness.transport, harness.make_channel()
        for body, priority in [(b"low", 0), (b"high", 9), (b"middle", 4)]:
            transport.send(channel, WireMessage(body), priority=priority)

        assert _drain(transport, channel, self.lease) == [b"high", b"middle", b"low"]

    def test_equal_priority_is_fifo(self, harness: TransportHarness) -> None:
        capabilities = harness.transport.capabilities
        _require(capabilities.priority, "capabilities.priority")
        _require(capabilities.ordering == "fifo", 'capabilities.ordering == "fifo"')
        transport, channel = harness.transport, harness.make_channel()
        for body, priority in [(b"a", 5), (b"x", 0), (b"b", 5), (b"y", 0), (b"c", 5)]:
            transport.send(channel, WireMessage(body), priority=priority)

        assert _drain(transport, channel, self.lease) == [b"a", b"b", b"c", b"x", b"y"]

    def test_fifo_ordering_keeps_send_order(self, harness: TransportHarness) -> None:
        _require(
            harness.transport.capabilities.ordering == "fifo", 'capabilities.ordering == "fifo"'
        )
        transport, channel = harness.transport, harness.make_channel()
        sent = [f"step-{n:02}".encode() for n in range(20)]
        for body in sent:
            transport.send(channel, WireMessage(body))

        assert _drain(transport, channel, self.lease) == sent

    # Channels --------------------------------------------------------------------------------

    def test_declare_is_idempotent(self, harness: TransportHarness) -> None:
        channel = harness.make_channel()
        harness.transport.declare(channel)
        harness.transport.declare(channel)

        assert harness.transport.receive(channel, lease=self.lease) is None

    def test_declare_again_keeps_messages(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.declare(channel)
        transport.send(channel, WireMessage(b"kept"))
        transport.declare(channel)

        assert _body(transport.receive(channel, lease=self.lease)) == b"kept"

    def test_channels_are_isolated(self, harness: TransportHarness) -> None:
        transport = harness.transport
        first, second = harness.make_channel(), harness.make_channel()
        transport.declare(second)
        transport.send(first, WireMessage(b"mine"))

        assert transport.receive(second, lease=self.lease) is None
        assert _body(transport.receive(first, lease=self.lease)) == b"mine"

    # Size limit ------------------------------------------------------------------------------

    def test_message_over_max_size_raises_message_too_large(
        self, harness: TransportHarness
    ) -> None:
        limit = harness.transport.capabilities.max_size
        if limit is None:
            pytest.skip("the transport declares no capabilities.max_size")
        transport, channel = harness.transport, harness.make_channel()

        with pytest.raises(MessageTooLarge):
            transport.send(channel, WireMessage(b"x" * (limit + 1)))
        assert transport.receive(channel, lease=self.lease) is None

    def test_message_of_exactly_max_size_is_accepted(self, harness: TransportHarness) -> None:
        limit = harness.transport.capabilities.max_size
        if limit is None:
            pytest.skip("the transport declares no capabilities.max_size")
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"x" * limit))

        assert _body(transport.receive(channel, lease=self.lease)) == b"x" * limit

    # Close -----------------------------------------------------------------------------------

    @pytest.mark.parametrize("operation", _CLOSED_OPERATIONS)
    def test_operation_after_close_raises_transport_closed(
        self, harness: TransportHarness, operation: str
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"before close"))
        delivery = _received(transport.receive(channel, lease=self.lease))
        calls: dict[str, Callable[[], object]] = {
            "declare": lambda: transport.declare(channel),
            "send": lambda: transport.send(channel, WireMessage(b"after close")),
            "receive": lambda: transport.receive(channel, lease=self.lease),
            "ack": lambda: transport.ack(delivery),
            "release": lambda: transport.release(delivery),
        }
        transport.close()

        with pytest.raises(TransportClosed):
            calls[operation]()

    # Durability ------------------------------------------------------------------------------

    def test_sent_message_survives_reopen(self, harness: TransportHarness) -> None:
        reopen = _reopener(harness)
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"persistent"))
        harness.transport.close()

        reopened = reopen()
        try:
            assert _body(reopened.receive(channel, lease=self.lease)) == b"persistent"
        finally:
            reopened.close()

    def test_acked_message_stays_gone_after_reopen(self, harness: TransportHarness) -> None:
        reopen = _reopener(harness)
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"finished"))
        transport.ack(_received(transport.receive(channel, lease=self.lease)))
        transport.close()

        reopened = reopen()
        try:
            harness.advance(self.lease)
            assert reopened.receive(channel, lease=self.lease) is None
        finally:
            reopened.close()

    def test_unacked_message_survives_reopen(self, harness: TransportHarness) -> None:
        reopen = _reopener(harness)
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"in flight"))
        transport.receive(channel, lease=self.lease)  # the process dies holding the lease
        transport.close()

        reopened = reopen()
        try:
            harness.advance(self.lease)
            assert _body(reopened.receive(channel, lease=self.lease)) == b"in flight"
        finally:
            reopened.close()

    # Inspection (InspectableTransport only) --------------------------------------------------

    def test_pending_counts_due_and_leased_messages(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        transport.declare(channel)
        assert transport.pending(channel) == 0
        transport.send(channel, WireMessage(b"one"))
        transport.send(channel, WireMessage(b"two"))
        delivery = _received(transport.receive(channel, lease=self.lease))

        assert transport.pending(channel) == 2
        transport.ack(delivery)
        assert transport.pending(channel) == 1

    def test_pending_counts_delayed_messages(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        _require(transport.capabilities.delay, "capabilities.delay")
        transport.send(channel, WireMessage(b"held"), available_at=harness.clock.now() + self.delay)

        assert transport.pending(channel) == 1

    def test_next_due_of_empty_channel_is_none(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        transport.declare(channel)

        assert transport.next_due(channel) is None

    def test_next_due_of_due_message_is_not_after_now(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        transport.send(channel, WireMessage(b"due"))

        next_due = transport.next_due(channel)
        assert next_due is not None
        assert next_due <= harness.clock.now()

    def test_next_due_of_delayed_message_is_its_available_at(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        _require(transport.capabilities.delay, "capabilities.delay")
        available_at = harness.clock.now() + self.delay
        transport.send(channel, WireMessage(b"held"), available_at=available_at)

        next_due = transport.next_due(channel)
        assert next_due is not None
        assert available_at <= next_due < available_at + _precision(harness)

    def test_next_due_of_leased_message_is_its_lease_expiry(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        transport.send(channel, WireMessage(b"leased"))
        expiry = harness.clock.now() + self.lease
        transport.receive(channel, lease=self.lease)

        next_due = transport.next_due(channel)
        assert next_due is not None
        assert expiry <= next_due < expiry + _precision(harness)


def _require(declared: bool, capability: str) -> None:
    """Skip a test of a capability the transport does not declare, naming it."""
    if not declared:
        pytest.skip(f"the transport does not declare {capability}")


def _precision(harness: TransportHarness) -> timedelta:
    return harness.transport.capabilities.delay_precision


def _reopener(harness: TransportHarness) -> Callable[[], Transport]:
    if not harness.transport.capabilities.durable:
        pytest.skip("the transport does not declare capabilities.durable")
    if harness.reopen is None:
        pytest.skip("the harness gives no `reopen`, so durability cannot be checked")
    return harness.reopen


def _inspectable(harness: TransportHarness) -> InspectableTransport:
    transport = harness.transport
    if not isinstance(transport, InspectableTransport):
        pytest.skip("the transport is not an InspectableTransport (no pending / next_due)")
    return transport


def _received(delivery: Delivery | None) -> Delivery:
    """The delivery, failing with a readable message when the transport gave none."""
    if delivery is None:
        pytest.fail("receive() returned None where a message was due")
    return delivery


def _body(delivery: Delivery | None) -> bytes:
    return _received(delivery).message.body


def _drain(
    transport: Transport, channel: str, lease: timedelta, *, at_most: int = 1_000
) -> list[bytes]:
    """Receive and ack until nothing is due; the bodies in the order they came.

    Gives up after ``at_most`` messages, so a transport that never forgets acked messages
    fails the test instead of hanging it.
    """
    bodies = []
    while (delivery := transport.receive(channel, lease=lease)) is not None:
        bodies.append(delivery.message.body)
        transport.ack(delivery)
        if len(bodies) > at_most:
            pytest.fail(f"receive() still returned messages after {at_most} were acked")
    return bodies
