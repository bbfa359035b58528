"""What the failure-handling tests share: message types, a flaky handler, a builder, journal views.

Message types live at module level because the codec resolves a dataclass's annotations in its
module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor import Channel, Messaging, RecordKind, SequentialIds, VirtualClock
from conveyor.core.clock import Clock
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Delivery, Transport, WireMessage

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ChargeCard:
    order_id: str


@dataclass(frozen=True)
class RefundCard:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class ReceiptIssued:
    order_id: str


class PaymentDeclined(Exception):
    """A business failure: retrying it changes nothing."""


class GatewayTimeout(TimeoutError):
    """A transient failure: worth retrying."""


def build(handlers: list[object], channels: list[Channel | str], **options: Any) -> Messaging:
    """A Messaging on a virtual clock with sequential ids and seeded jitter."""
    options.setdefault("clock", VirtualClock(START))
    options.setdefault("ids", SequentialIds())
    options.setdefault("seed", 7)
    return Messaging(handlers=handlers, channels=channels, **options)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def since_start(messaging: Messaging) -> timedelta:
    return messaging.clock.now() - START


def timeline(messaging: Messaging, *kinds: RecordKind) -> list[tuple[str, str | None, int]]:
    """(kind, endpoint, attempt) of the journal's records of these kinds (all when none)."""
    return [
        (r.kind.value, r.endpoint_id, r.attempt)
        for r in messaging.journal
        if not kinds or r.kind in kinds
    ]


def pending(messaging: Messaging, channel: str) -> int:
    transport = messaging.channels[channel].transport
    assert isinstance(transport, MemoryTransport)
    return transport.pending(channel)


@dataclass
class Flaky:
    """Fails its first ``failures`` calls with ``error`` (every call when None), then succeeds."""

    failures: int | None = 0
    error: type[Exception] = GatewayTimeout
    calls: list[object] = field(default_factory=list)

    def __call__(self, payload: object) -> None:
        self.calls.append(payload)
        if self.failures is None or len(self.calls) <= self.failures:
            raise self.error(f"call {len(self.calls)} failed")


@dataclass
class RecordingTransaction:
    """A transaction factory that writes begin, commit and rollback into a shared log."""

    log: list[str]
    fail_commits: int = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.log.append("begin")
        try:
            yield
        except BaseException:
            self.log.append("rollback")
            raise
        if self.fail_commits > 0:
            self.fail_commits -= 1
            self.log.append("commit failed")
            raise ConnectionError("commit failed: the database went away")
        self.log.append("commit")


@dataclass(frozen=True, kw_only=True)
class RecordingChannel(Channel):
    """An in-memory channel whose transport writes each send into ``log``."""

    log: list[str] = field(default_factory=list, compare=False)
    max_size: int | None = None

    def open(self, clock: Clock) -> Transport:
        return LoggingTransport(clock, self.log, max_size=self.max_size)


class LoggingTransport(MemoryTransport):
    """A memory transport that logs each send and keeps each message sent, to deliver again."""

    __slots__ = ("log", "sent")

    def __init__(self, clock: Clock, log: list[str], **options: Any) -> None:
        super().__init__(clock, **options)
        self.log = log
        self.sent: list[WireMessage] = []

    def send(self, channel: str, message: WireMessage, **options: Any) -> None:
        super().send(channel, message, **options)
        self.sent.append(message)
        self.log.append(f"send {message.headers.get('cv-type')} to {channel}")

    def ack(self, delivery: Delivery) -> None:
        super().ack(delivery)
        self.log.append(f"ack {delivery.message.headers.get('cv-type')} on {delivery.channel}")

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        super().release(delivery, available_at=available_at)
        self.log.append(f"release {delivery.message.headers.get('cv-type')} on {delivery.channel}")
