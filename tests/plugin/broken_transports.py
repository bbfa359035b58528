"""Transports that each break one promise of the seam, for the tests of the conformance suite.

Each wraps an honest MemoryTransport (or several wrappers share one, to play a durable store or
connections to one broker) and breaks exactly one thing. The breakers of optional promises
(renewal, inspection, long poll, restarts, connection leases) and ``async_of``, which turns any
of them into an AsyncTransport, are in :mod:`broken_capabilities`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.core.errors import MessageTooLarge, TransportClosed
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    Delivery,
    WireMessage,
)

EXPIRES_AT = "x-test-expires-at"


class Wrapper:
    """Delegates every Transport call to a MemoryTransport; subclasses break one of them.

    A plain Transport: neither renewable nor inspectable, so the checks of those do not apply
    and each broken wrapper fails only the checks about the promise it breaks.
    """

    def __init__(self, inner: MemoryTransport, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def declare(self, options: ChannelOptions) -> None:
        self.inner.declare(options)

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self.inner.send(
            channel, message, available_at=available_at, priority=priority, expires_at=expires_at
        )

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        return self.inner.receive(channel, lease=lease, max_messages=max_messages, wait=wait)

    def ack(self, delivery: Delivery) -> None:
        self.inner.ack(delivery)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self.inner.release(delivery, available_at=available_at)

    def close(self) -> None:
        self.inner.close()


class FullWrapper(Wrapper):
    """A wrapper that is renewable and inspectable too."""

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        self.inner.renew(delivery, lease=lease)

    def pending(self, channel: str) -> int:
        return self.inner.pending(channel)

    def next_due(self, channel: str) -> datetime | None:
        return self.inner.next_due(channel)


class HonestWrapper(Wrapper):
    """Breaks nothing: proves the wrapper alone fails no check."""


class HonestFullWrapper(FullWrapper):
    """Breaks nothing, renewable and inspectable."""


# Send and receive --------------------------------------------------------------------------


class DropsHeaders(Wrapper):
    """Sends the body and forgets the headers."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        super().send(channel, WireMessage(message.body), **options)  # type: ignore[arg-type]


class MangleBinaryBodies(Wrapper):
    """Treats bodies as text: bytes that are not UTF-8 come back as replacement characters."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        body = message.body.decode("utf-8", "replace").encode()
        super().send(channel, WireMessage(body, message.headers), **options)  # type: ignore[arg-type]


class RefusesLargeMessages(Wrapper):
    """Refuses messages over 64 KiB though it declares no ``max_size``."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if message.size > 64 * 1024:
            raise MessageTooLarge(f"{message.size} bytes is over an undeclared limit")
        super().send(channel, message, **options)  # type: ignore[arg-type]


class NamesAnotherChannel(Wrapper):
    """Deliveries name a channel they did not come from (settling them still works)."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        found = super().receive(channel, **options)  # type: ignore[arg-type]
        return [dataclasses.replace(d, channel=f"{channel}-elsewhere") for d in found]

    def ack(self, delivery: Delivery) -> None:
        super().ack(_home(delivery))

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        super().release(_home(delivery), available_at=available_at)


def _home(delivery: Delivery) -> Delivery:
    return dataclasses.replace(delivery, channel=delivery.channel.removesuffix("-elsewhere"))


class SharesOneQueue(Wrapper):
    """Every channel is the same queue underneath."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        super().send("shared", message, **options)  # type: ignore[arg-type]

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        found = super().receive("shared", **options)  # type: ignore[arg-type]
        return [dataclasses.replace(d, channel=channel) for d in found]

    def ack(self, delivery: Delivery) -> None:
        super().ack(dataclasses.replace(delivery, channel="shared"))

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        super().release(dataclasses.replace(delivery, channel="shared"), available_at=available_at)


class ReturnsOneAtATime(Wrapper):
    """Ignores ``max_messages``: every receive returns at most one message."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        options["max_messages"] = 1
        return super().receive(channel, **options)  # type: ignore[arg-type]


# Leases, ack and release --------------------------------------------------------------------


class NeverRedelivers(Wrapper):
    """Leases forever: an unacked message is lost to every other consumer."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        options["lease"] = timedelta(days=3650)
        return super().receive(channel, **options)  # type: ignore[arg-type]


class IgnoresAck(Wrapper):
    """``ack`` does nothing: acknowledged messages come back when the lease runs out."""

    def ack(self, delivery: Delivery) -> None:
        pass


class IgnoresRelease(Wrapper):
    """``release`` does nothing: the message waits for its lease to run out."""

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        pass


class CountsEveryDeliveryAsFirst(Wrapper):
    """``delivery_count`` is always 1, so the kernel never sees a redelivery."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        found = super().receive(channel, **options)  # type: ignore[arg-type]
        return [dataclasses.replace(d, delivery_count=1) for d in found]


class LeasesNothing(Wrapper):
    """Hands a message out without leasing it: the next receive gets it again."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        options["lease"] = timedelta(microseconds=1)
        found = super().receive(channel, **options)  # type: ignore[arg-type]
        self.clock.sleep(0.001)  # a virtual clock steps past the lease; no real wait
        return found


# Delays, priority, ordering, expiry ---------------------------------------------------------


class IgnoresDelay(Wrapper):
    """Delivers at once whatever ``available_at`` says."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        options.pop("available_at", None)
        super().send(channel, message, **options)  # type: ignore[arg-type]

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        super().release(delivery)


class IgnoresPriority(Wrapper):
    """Declares priority, and stores every message at priority 0."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        options["priority"] = 0
        super().send(channel, message, **options)  # type: ignore[arg-type]


class ReversesOrder(Wrapper):
    """Declares FIFO, and serves the newest message first."""

    def __init__(self, inner: MemoryTransport, clock: Clock) -> None:
        super().__init__(inner, clock)
        self.sent = 0

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        self.sent += 1
        priority = options.get("priority") or 0
        options["priority"] = int(priority) * 1_000_000 + self.sent  # type: ignore[call-overload]
        super().send(channel, message, **options)  # type: ignore[arg-type]


class DropsExpired(Wrapper):
    """Drops messages past their ``expires_at`` though it declares no native TTL."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        expires_at = options.get("expires_at")
        if isinstance(expires_at, datetime):
            message = WireMessage(message.body, {**message.headers, EXPIRES_AT: str(expires_at)})
        super().send(channel, message, **options)  # type: ignore[arg-type]

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        while found := super().receive(channel, **options):  # type: ignore[arg-type]
            fresh = []
            for delivery in found:
                expires_at = delivery.message.headers.get(EXPIRES_AT)
                if expires_at is None or datetime.fromisoformat(expires_at) > self.clock.now():
                    fresh.append(delivery)
                else:
                    self.ack(delivery)
            if fresh:
                return fresh
        return []


class DropsAnythingThatExpires(Wrapper):
    """Declares native TTL, and drops every message with an ``expires_at``, expired or not."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, ttl=True)

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if options.get("expires_at") is None:
            super().send(channel, message, **options)  # type: ignore[arg-type]


class HoldsTwiceTheDelay(Wrapper):
    """Holds a delayed message for twice its delay."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        available_at = options.get("available_at")
        if isinstance(available_at, datetime):
            options["available_at"] = available_at + (available_at - self.clock.now())
        super().send(channel, message, **options)  # type: ignore[arg-type]

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        if available_at is not None:
            available_at += available_at - self.clock.now()
        super().release(delivery, available_at=available_at)


class ClaimsNativeTtl(Wrapper):
    """Declares native TTL, yet delivers expired messages, which the kernel trusts it to drop."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, ttl=True)


# Size limits --------------------------------------------------------------------------------


class MeasuresBodyOnly(Wrapper):
    """Declares a 1 KiB limit and measures the body alone, so headers slip past it."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, max_size=1024)

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if len(message.body) > 1024:
            raise MessageTooLarge("over 1 KiB")
        super().send(channel, message, **options)  # type: ignore[arg-type]


class LimitOffByOne(MeasuresBodyOnly):
    """Declares a 1 KiB limit and refuses a message of exactly 1 KiB."""

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if message.size >= 1024:
            raise MessageTooLarge("1 KiB or more")
        Wrapper.send(self, channel, message, **options)


# Declare and close --------------------------------------------------------------------------


class DeclareEmptiesTheChannel(Wrapper):
    """Declaring a channel again throws away what it holds."""

    def declare(self, options: ChannelOptions) -> None:
        super().declare(options)
        while found := self.inner.receive(options.name, lease=timedelta(seconds=1)):
            self.inner.ack(found[0])


class DeclarePutsAMessageThere(Wrapper):
    """Declaring a channel leaves a stray message on it."""

    def declare(self, options: ChannelOptions) -> None:
        super().declare(options)
        self.inner.send(options.name, WireMessage(b"stray"))


class RefusesChannelOptions(Wrapper):
    """``declare`` works with a bare name only, and refuses any option."""

    def declare(self, options: ChannelOptions) -> None:
        if options != ChannelOptions(options.name):
            raise ValueError(f"unsupported channel options {options}")
        super().declare(options)


class IgnoresClose(Wrapper):
    """``close`` does nothing: the transport goes on working."""

    def close(self) -> None:
        pass


class ClosingTwiceRaises(Wrapper):
    """A second ``close`` raises."""

    def close(self) -> None:
        if getattr(self, "closed", False):
            raise TransportClosed("closed already")
        self.closed = True
        super().close()
