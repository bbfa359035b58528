"""TEMPORARY: the previous, class-based conformance suite, kept while the broker adapters move.

The suite is now the package :mod:`pytest_conveyor.conformance` (pytest-free checks, sync and
async runners). This module keeps the broker adapters' conformance tests running until each is
switched to the package; it goes once none imports it. What follows is its original docstring.

The transport conformance suite: one set of tests every transport passes.

DESIGN section 5: the in-memory transport and every adapter run the same suite, so "works on
memory" means "works on the broker". It ships inside the plugin so third-party adapters can run it
too. An adapter's test module subclasses :class:`TransportConformance`, adds one mixin for each
optional promise its transport makes, and provides a ``harness`` fixture::

    import pytest
    from pytest_conveyor.legacy_conformance import (
        DelayTransportConformance,
        FifoTransportConformance,
        TransportHarness,
    )

    class TestMyTransport(DelayTransportConformance, FifoTransportConformance):
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

No test is ever skipped: a skipped test proves nothing, and a missing capability is the kernel's to
provide (or to refuse at bootstrap), never the transport's to fake. Instead every test checks
something the transport does promise:

- :class:`TransportConformance` holds what every transport promises, including the documented
  behaviour where a capability is absent: without ``max_size`` a large message (1 MiB of body plus
  headers) round-trips intact, and without native ``ttl`` a message past its ``expires_at`` is
  still delivered, because the kernel checks expiry on receipt. A test branches on a capability
  only where its two values are two sides of one promise, as ``ttl`` is.
- A promise that exists only when declared has its own mixin, each a subclass of
  :class:`TransportConformance`: :class:`DelayTransportConformance` (``capabilities.delay``),
  :class:`PriorityTransportConformance` (``priority``), :class:`FifoTransportConformance`
  (``ordering == "fifo"``), :class:`MaxSizeTransportConformance` (``max_size``),
  :class:`DurableTransportConformance` (``durable``; its harness must give ``reopen``) and
  :class:`InspectableTransportConformance` (an ``InspectableTransport``).
- So that no declared promise goes untested, the base class's
  ``test_declared_capability_is_tested_by_its_suite`` fails, naming the mixin to add, when the
  transport declares a capability its test class leaves out, and the other way round.

Tests that close the transport or reopen it leave the original closed: the fixture's teardown
must tolerate closing a closed transport.

The classes are deliberately not named ``Test...``, so pytest collects only their subclasses. The
durations the suite uses are class attributes; a harness on real time (a networked broker without
a virtual clock) can shorten them in its subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from conveyor.core.clock import Clock
from conveyor.core.errors import MessageTooLarge, TransportClosed
from conveyor.transports.seam import (
    ChannelOptions,
    Delivery,
    InspectableTransport,
    Transport,
    WireMessage,
)

__all__ = [
    "receive_one",
    "TransportConformance",
    "TransportHarness",
    "DelayTransportConformance",
    "PriorityTransportConformance",
    "FifoTransportConformance",
    "MaxSizeTransportConformance",
    "DurableTransportConformance",
    "InspectableTransportConformance",
]


@dataclass(frozen=True, slots=True)
class TransportHarness:
    """What the suite needs to drive one transport.

    Attributes:
        transport: the transport under test, fresh for each test.
        clock: the transport's notion of now; the suite computes ``available_at`` from it.
        advance: moves that clock forward by a duration (a ``VirtualClock``'s ``advance`` for
            memory and SQLite; a real wait for a broker on the system clock).
        make_channel: a fresh, unique channel name, so tests sharing one broker never meet.
        reopen: a new transport on the same storage, what a restarted process would open.
            :class:`DurableTransportConformance` requires it; other suites never call it.
    """

    transport: Transport
    clock: Clock
    advance: Callable[[timedelta], object]
    make_channel: Callable[[], str]
    reopen: Callable[[], Transport] | None = None


def receive_one(transport: Transport, channel: str, *, lease: timedelta) -> Delivery | None:
    """One due delivery, or None: ``receive`` with ``max_messages=1`` and no wait."""
    found = transport.receive(channel, lease=lease, max_messages=1)
    return found[0] if found else None


_CLOSED_OPERATIONS = ["declare", "send", "receive", "ack", "release"]

_CAPABILITY_SUITES = ["delay", "priority", "fifo", "max_size", "durable", "inspectable"]
"""The optional promises, each tested by its own mixin (see :func:`_suite_for`)."""

_LARGE_BODY = bytes(range(256)) * 4096  # 1 MiB, every byte value
_LARGE_HEADERS = {"x-large": "größer als groß ✓ " * 32, "x-part": "1/1"}


class TransportConformance:
    """What every transport promises. Subclass it, or its mixins, as ``Test<YourTransport>``.

    Optional promises live in the mixins named in the module docstring; this class's
    ``test_declared_capability_is_tested_by_its_suite`` checks the subclass includes exactly the
    mixins its transport's declarations call for.
    """

    lease: timedelta = timedelta(seconds=30)
    """The lease every test receives with."""

    delay: timedelta = timedelta(seconds=5)
    """How far ahead delayed or expiring messages are set; keep it under ``max_delay``."""

    many: int = 200
    """How many messages the exactly-once test pushes through."""

    @pytest.fixture
    def harness(self) -> TransportHarness:
        """Override me: yield a :class:`TransportHarness` around a fresh transport."""
        raise NotImplementedError(
            f"{type(self).__name__} subclasses TransportConformance without a `harness` fixture; "
            f"define `@pytest.fixture def harness(self): yield TransportHarness(...)` on it."
        )

    # Declared capabilities -------------------------------------------------------------------

    @pytest.mark.parametrize("capability", _CAPABILITY_SUITES)
    def test_declared_capability_is_tested_by_its_suite(
        self, harness: TransportHarness, capability: str
    ) -> None:
        """A declared promise with no mixin would go untested, silently; one without is a lie.

        The kernel trusts ``capabilities`` (and the InspectableTransport protocol) to decide what
        it provides itself, so the test class must test exactly what the transport declares.
        """
        suite, declared, state = _suite_for(capability, harness.transport)
        tested, name = isinstance(self, suite), type(self).__name__
        transport = type(harness.transport).__qualname__
        if declared and not tested:
            extra = (
                ", and pass `reopen=` (a new transport on the same storage) to its TransportHarness"
                if suite is DurableTransportConformance
                else ""
            )
            pytest.fail(
                f"{transport} {state}, but {name} does not subclass {suite.__name__}, so that "
                f"promise goes untested. Add {suite.__name__} to the bases of {name}{extra}."
            )
        if tested and not declared:
            pytest.fail(
                f"{name} subclasses {suite.__name__}, but {transport} {state}. The kernel goes "
                f"by the declaration, not by the tests: declare the capability, or take "
                f"{suite.__name__} out of the bases of {name}."
            )

    # Round trip ----------------------------------------------------------------------------

    def test_round_trip_keeps_body_bytes(self, harness: TransportHarness) -> None:
        body = bytes(range(256))  # every byte value, most of them not valid UTF-8
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(body))

        assert _body(receive_one(harness.transport, channel, lease=self.lease)) == body

    def test_round_trip_keeps_unicode_headers(self, harness: TransportHarness) -> None:
        headers = {"x-greeting": "grüß dich ✓ 日本語", "x-emoji": "🚚📦", "x-empty": ""}
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"with headers", headers))

        delivery = _received(receive_one(harness.transport, channel, lease=self.lease))
        assert dict(delivery.message.headers) == headers

    def test_large_message_round_trips_intact(self, harness: TransportHarness) -> None:
        """1 MiB of body plus headers, or a message of exactly ``max_size`` if that is smaller.

        Without ``max_size`` the transport promises no limit, so a large message must neither be
        refused nor cut; under a limit, everything up to it must come back whole.
        """
        limit = harness.transport.capabilities.max_size
        message = WireMessage(_LARGE_BODY, _LARGE_HEADERS)
        if limit is not None and limit < message.size:
            message = _message_of_size(limit)
        channel = harness.make_channel()
        harness.transport.send(channel, message)

        received = _received(receive_one(harness.transport, channel, lease=self.lease)).message
        _assert_same_body(received.body, message.body)
        assert dict(received.headers) == dict(message.headers)

    def test_first_delivery_names_its_channel_and_counts_one(
        self, harness: TransportHarness
    ) -> None:
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"first"))

        delivery = _received(receive_one(harness.transport, channel, lease=self.lease))
        assert (delivery.channel, delivery.delivery_count) == (channel, 1)

    def test_empty_channel_receives_none(self, harness: TransportHarness) -> None:
        channel = harness.make_channel()
        harness.transport.declare(ChannelOptions(channel))

        assert receive_one(harness.transport, channel, lease=self.lease) is None

    # Ack, leases and redelivery --------------------------------------------------------------

    def test_ack_removes_message(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"done"))
        transport.ack(_received(receive_one(transport, channel, lease=self.lease)))

        harness.advance(self.lease + _precision(harness))
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_unacked_message_is_redelivered_after_lease_and_not_before(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"slow"))
        receive_one(transport, channel, lease=self.lease)

        harness.advance(self.lease - _precision(harness))
        assert receive_one(transport, channel, lease=self.lease) is None
        harness.advance(_precision(harness))
        again = _received(receive_one(transport, channel, lease=self.lease))
        assert (again.message.body, again.delivery_count) == (b"slow", 2)

    def test_delivery_count_grows_with_each_redelivery(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"flaky"))

        counts = []
        for _ in range(3):
            counts.append(
                _received(receive_one(transport, channel, lease=self.lease)).delivery_count
            )
            harness.advance(self.lease)
        assert counts == [1, 2, 3]

    def test_consumer_killed_mid_message_loses_nothing(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"survivor"))
        receive_one(transport, channel, lease=self.lease)  # the consumer dies holding the lease

        harness.advance(self.lease)
        second = _received(receive_one(transport, channel, lease=self.lease))
        transport.ack(second)
        harness.advance(self.lease)
        assert second.message.body == b"survivor"
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_competing_receives_never_share_a_lease(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        sent = {f"job-{n}".encode() for n in range(10)}
        for body in sorted(sent):
            transport.send(channel, WireMessage(body))

        leased = [_received(receive_one(transport, channel, lease=self.lease)) for _ in sent]
        assert {d.message.body for d in leased} == sent
        assert len({d.receipt for d in leased}) == len(sent)
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_many_messages_are_each_delivered_exactly_once(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        sent = [f"message-{n}".encode() for n in range(self.many)]
        for body in sent:
            transport.send(channel, WireMessage(body))

        received = _drain(transport, channel, self.lease, at_most=2 * self.many)
        harness.advance(self.lease + _precision(harness))
        assert sorted(received) == sorted(sent)
        assert receive_one(transport, channel, lease=self.lease) is None

    # Release ---------------------------------------------------------------------------------

    def test_release_puts_message_back_at_once(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"again"))
        transport.release(_received(receive_one(transport, channel, lease=self.lease)))

        again = _received(receive_one(transport, channel, lease=self.lease))
        assert (again.message.body, again.delivery_count) == (b"again", 2)

    # Expiry ----------------------------------------------------------------------------------

    def test_message_is_received_before_its_expires_at(self, harness: TransportHarness) -> None:
        """``expires_at`` never hides a message early, native TTL or not."""
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"fresh"), expires_at=harness.clock.now() + self.delay)

        harness.advance(self.delay - _precision(harness))
        assert _body(receive_one(transport, channel, lease=self.lease)) == b"fresh"

    def test_expired_message_is_dropped_only_with_native_ttl(
        self, harness: TransportHarness
    ) -> None:
        """Both sides of ``capabilities.ttl``, one promise: who decides that a message expired.

        With native TTL the broker drops (or dead-letters) an expired message itself. Without
        it the transport must still deliver the message: the kernel checks ``expires_at`` on
        receipt and dead-letters it, so a transport that dropped it would lose it silently.
        """
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"stale"), expires_at=harness.clock.now() + self.delay)

        harness.advance(self.delay + _precision(harness))
        delivery = receive_one(transport, channel, lease=self.lease)
        if transport.capabilities.ttl:
            assert delivery is None, "declares capabilities.ttl, yet delivered an expired message"
        else:
            assert delivery is not None, (
                "declares no capabilities.ttl, yet dropped a message past its expires_at; the "
                "kernel decides expiry, so it must be delivered (or declare ttl=True)"
            )
            assert delivery.message.body == b"stale"

    # Channels --------------------------------------------------------------------------------

    def test_declare_is_idempotent(self, harness: TransportHarness) -> None:
        channel = harness.make_channel()
        harness.transport.declare(ChannelOptions(channel))
        harness.transport.declare(ChannelOptions(channel))

        assert receive_one(harness.transport, channel, lease=self.lease) is None

    def test_declare_again_keeps_messages(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.declare(ChannelOptions(channel))
        transport.send(channel, WireMessage(b"kept"))
        transport.declare(ChannelOptions(channel))

        assert _body(receive_one(transport, channel, lease=self.lease)) == b"kept"

    def test_channels_are_isolated(self, harness: TransportHarness) -> None:
        transport = harness.transport
        first, second = harness.make_channel(), harness.make_channel()
        transport.declare(ChannelOptions(second))
        transport.send(first, WireMessage(b"mine"))

        assert receive_one(transport, second, lease=self.lease) is None
        assert _body(receive_one(transport, first, lease=self.lease)) == b"mine"

    # Close -----------------------------------------------------------------------------------

    @pytest.mark.parametrize("operation", _CLOSED_OPERATIONS)
    def test_operation_after_close_raises_transport_closed(
        self, harness: TransportHarness, operation: str
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"before close"))
        delivery = _received(receive_one(transport, channel, lease=self.lease))
        calls: dict[str, Callable[[], object]] = {
            "declare": lambda: transport.declare(ChannelOptions(channel)),
            "send": lambda: transport.send(channel, WireMessage(b"after close")),
            "receive": lambda: receive_one(transport, channel, lease=self.lease),
            "ack": lambda: transport.ack(delivery),
            "release": lambda: transport.release(delivery),
        }
        transport.close()

        with pytest.raises(TransportClosed):
            calls[operation]()


class DelayTransportConformance(TransportConformance):
    """For a transport declaring ``capabilities.delay``: it holds messages until ``available_at``.

    A separate class because a transport without delay makes no promise about ``available_at``
    at all: the kernel holds such delays itself or refuses ``@delayed`` at bootstrap.
    """

    def test_delayed_message_is_not_received_before_available_at(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"wait"), available_at=harness.clock.now() + self.delay)

        assert receive_one(transport, channel, lease=self.lease) is None
        harness.advance(self.delay - _precision(harness))
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_delayed_message_is_received_at_available_at(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"now"), available_at=harness.clock.now() + self.delay)

        harness.advance(self.delay)
        assert _body(receive_one(transport, channel, lease=self.lease)) == b"now"

    def test_delayed_message_does_not_block_due_message_behind_it(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"held"), available_at=harness.clock.now() + self.delay)
        transport.send(channel, WireMessage(b"due"))

        assert _body(receive_one(transport, channel, lease=self.lease)) == b"due"
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_release_with_available_at_holds_message_until_then(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"later"))
        delivery = _received(receive_one(transport, channel, lease=self.lease))
        transport.release(delivery, available_at=harness.clock.now() + self.delay)

        harness.advance(self.delay - _precision(harness))
        assert receive_one(transport, channel, lease=self.lease) is None
        harness.advance(_precision(harness))
        assert _body(receive_one(transport, channel, lease=self.lease)) == b"later"


class PriorityTransportConformance(TransportConformance):
    """For a transport declaring ``capabilities.priority``: higher priority is received first.

    A separate class because without it the kernel refuses ``priority`` before it reaches the
    transport, which then promises nothing about it.
    """

    def test_higher_priority_is_received_first(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        for body, priority in [(b"low", 0), (b"high", 9), (b"middle", 4)]:
            transport.send(channel, WireMessage(body), priority=priority)

        assert _drain(transport, channel, self.lease) == [b"high", b"middle", b"low"]

    def test_equal_priority_keeps_declared_ordering(self, harness: TransportHarness) -> None:
        """Within one priority level, messages come in ``capabilities.ordering``.

        It branches on ordering because "fifo" and "none" are the two sides of that promise:
        send order within a level, or any order within a level (levels still in priority order).
        """
        transport, channel = harness.transport, harness.make_channel()
        for body, priority in [(b"a", 5), (b"x", 0), (b"b", 5), (b"y", 0), (b"c", 5)]:
            transport.send(channel, WireMessage(body), priority=priority)

        received = _drain(transport, channel, self.lease)
        if transport.capabilities.ordering == "fifo":
            assert received == [b"a", b"b", b"c", b"x", b"y"]
        else:
            assert (sorted(received[:3]), sorted(received[3:])) == (
                [b"a", b"b", b"c"],
                [b"x", b"y"],
            )


class FifoTransportConformance(TransportConformance):
    """For a transport declaring ``capabilities.ordering == "fifo"``: send order is kept.

    A separate class because ``ordering="none"`` promises no order, only what the base class
    already tests: every message is delivered, each exactly once.
    """

    def test_fifo_ordering_keeps_send_order(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        sent = [f"step-{n:02}".encode() for n in range(20)]
        for body in sent:
            transport.send(channel, WireMessage(body))

        assert _drain(transport, channel, self.lease) == sent


class MaxSizeTransportConformance(TransportConformance):
    """For a transport declaring ``capabilities.max_size``: the limit holds, to the byte.

    A separate class because without a limit there is no boundary to test; the base class's
    ``test_large_message_round_trips_intact`` holds such a transport to carrying large messages.
    """

    def test_message_over_max_size_raises_message_too_large(
        self, harness: TransportHarness
    ) -> None:
        """One byte over, counting headers: a transport measuring the body alone fails."""
        transport, channel = harness.transport, harness.make_channel()
        message = _message_of_size(_max_size(harness) + 1)

        with pytest.raises(MessageTooLarge):
            transport.send(channel, message)
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_message_of_exactly_max_size_is_accepted(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        message = _message_of_size(_max_size(harness))
        transport.send(channel, message)

        received = _received(receive_one(transport, channel, lease=self.lease)).message
        _assert_same_body(received.body, message.body)
        assert dict(received.headers) == dict(message.headers)


class DurableTransportConformance(TransportConformance):
    """For a transport declaring ``capabilities.durable``: messages survive a restart.

    A separate class because durability needs what other transports cannot give: a harness
    whose ``reopen`` opens a new transport on the same storage. A non-durable transport makes
    no promise across a restart, so it has nothing here to pass.
    """

    def test_sent_message_survives_reopen(self, harness: TransportHarness) -> None:
        reopen = _reopener(harness)
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"persistent"))
        harness.transport.close()

        reopened = reopen()
        try:
            assert _body(receive_one(reopened, channel, lease=self.lease)) == b"persistent"
        finally:
            reopened.close()

    def test_acked_message_stays_gone_after_reopen(self, harness: TransportHarness) -> None:
        reopen = _reopener(harness)
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"finished"))
        transport.ack(_received(receive_one(transport, channel, lease=self.lease)))
        transport.close()

        reopened = reopen()
        try:
            harness.advance(self.lease)
            assert receive_one(reopened, channel, lease=self.lease) is None
        finally:
            reopened.close()

    def test_unacked_message_survives_reopen(self, harness: TransportHarness) -> None:
        reopen = _reopener(harness)
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"in flight"))
        receive_one(transport, channel, lease=self.lease)  # the process dies holding the lease
        transport.close()

        reopened = reopen()
        try:
            harness.advance(self.lease)
            assert _body(receive_one(reopened, channel, lease=self.lease)) == b"in flight"
        finally:
            reopened.close()


class InspectableTransportConformance(TransportConformance):
    """For an :class:`~conveyor.transports.seam.InspectableTransport`: ``pending`` and ``next_due``.

    A separate class because the methods exist only on that protocol; the kernel steps virtual
    time with them, so an inspectable transport must report exactly. Two tests inspect delayed
    messages and so need ``capabilities.delay``, which every inspectable transport declares so
    far; one without delay fails them, saying so, rather than passing untested.
    """

    def test_pending_counts_due_and_leased_messages(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        transport.declare(ChannelOptions(channel))
        assert transport.pending(channel) == 0
        transport.send(channel, WireMessage(b"one"))
        transport.send(channel, WireMessage(b"two"))
        delivery = _received(receive_one(transport, channel, lease=self.lease))

        assert transport.pending(channel) == 2
        transport.ack(delivery)
        assert transport.pending(channel) == 1

    def test_pending_counts_delayed_messages(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        _require_delay_for_inspection(harness)
        transport.send(channel, WireMessage(b"held"), available_at=harness.clock.now() + self.delay)

        assert transport.pending(channel) == 1

    def test_next_due_of_empty_channel_is_none(self, harness: TransportHarness) -> None:
        transport, channel = _inspectable(harness), harness.make_channel()
        transport.declare(ChannelOptions(channel))

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
        _require_delay_for_inspection(harness)
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
        receive_one(transport, channel, lease=self.lease)

        next_due = transport.next_due(channel)
        assert next_due is not None
        assert expiry <= next_due < expiry + _precision(harness)


def _suite_for(
    capability: str, transport: Transport
) -> tuple[type[TransportConformance], bool, str]:
    """The mixin testing ``capability``, whether ``transport`` declares it, and what it declares."""
    capabilities = transport.capabilities
    match capability:
        case "delay":
            return (
                DelayTransportConformance,
                capabilities.delay,
                _declares("delay", capabilities.delay),
            )
        case "priority":
            return (
                PriorityTransportConformance,
                capabilities.priority,
                _declares("priority", capabilities.priority),
            )
        case "fifo":
            return (
                FifoTransportConformance,
                capabilities.ordering == "fifo",
                _declares("ordering", capabilities.ordering),
            )
        case "max_size":
            return (
                MaxSizeTransportConformance,
                capabilities.max_size is not None,
                _declares("max_size", capabilities.max_size),
            )
        case "durable":
            return (
                DurableTransportConformance,
                capabilities.durable,
                _declares("durable", capabilities.durable),
            )
        case "inspectable":
            inspectable = isinstance(transport, InspectableTransport)
            state = (
                "is an InspectableTransport (it has pending and next_due)"
                if inspectable
                else "is not an InspectableTransport (it lacks pending or next_due)"
            )
            return InspectableTransportConformance, inspectable, state
    raise AssertionError(f"no conformance mixin for capability {capability!r}")


def _declares(name: str, value: object) -> str:
    return f"declares capabilities.{name}={value!r}"


def _precision(harness: TransportHarness) -> timedelta:
    return harness.transport.capabilities.delay_precision


def _max_size(harness: TransportHarness) -> int:
    limit = harness.transport.capabilities.max_size
    if limit is None:
        pytest.fail(
            "MaxSizeTransportConformance tests a size limit, but the transport declares no "
            "capabilities.max_size; test it with TransportConformance's large-message test alone."
        )
    return limit


def _reopener(harness: TransportHarness) -> Callable[[], Transport]:
    if harness.reopen is None:
        pytest.fail(
            "DurableTransportConformance needs `reopen` on the TransportHarness: a callable "
            "that opens a new transport on the same storage, as a restarted process would."
        )
    return harness.reopen


def _inspectable(harness: TransportHarness) -> InspectableTransport:
    transport = harness.transport
    if not isinstance(transport, InspectableTransport):
        pytest.fail(
            f"InspectableTransportConformance tests pending and next_due, but "
            f"{type(transport).__qualname__} is not an InspectableTransport."
        )
    return transport


def _require_delay_for_inspection(harness: TransportHarness) -> None:
    if not harness.transport.capabilities.delay:
        pytest.fail(
            "this inspection test holds a message with available_at, which needs "
            "capabilities.delay; the suite has no test of an inspectable transport without "
            "delay yet. Split the delayed-message inspection tests into their own mixin."
        )


def _message_of_size(size: int) -> WireMessage:
    """A message of exactly ``size`` bytes, body plus headers, with a header when it fits."""
    headers = {"x-size": "✓"}  # 6 + 3 bytes in UTF-8
    header_size = WireMessage(b"", headers).size
    if size < 2 * header_size:
        headers, header_size = {}, 0
    body = (bytes(range(256)) * (size // 256 + 1))[: size - header_size]
    return WireMessage(body, headers)


def _assert_same_body(received: bytes, sent: bytes) -> None:
    """Compare large bodies without asking pytest to diff a megabyte of bytes."""
    if received == sent:
        return
    if len(received) != len(sent):
        pytest.fail(f"the body came back with {len(received)} bytes, not {len(sent)}")
    first = next(i for i, (a, b) in enumerate(zip(received, sent, strict=True)) if a != b)
    pytest.fail(f"the body of {len(sent)} bytes came back changed from byte {first} on")


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
    while (delivery := receive_one(transport, channel, lease=lease)) is not None:
        bodies.append(delivery.message.body)
        transport.ack(delivery)
        if len(bodies) > at_most:
            pytest.fail(f"receive() still returned messages after {at_most} were acked")
    return bodies
