"""A channel whose transport cannot say what it holds, as a networked broker may not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from conveyor import Messaging, SequentialIds, SystemClock
from conveyor.core.clock import Clock
from conveyor.transports.channels import Channel
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, Transport, WireMessage


class OpaqueTransport:
    """The in-memory transport without ``pending`` and ``next_due``."""

    def __init__(self, inner: MemoryTransport) -> None:
        self._inner = inner

    @property
    def capabilities(self) -> Capabilities:
        return self._inner.capabilities

    def declare(self, options: ChannelOptions) -> None:
        self._inner.declare(options)

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self._inner.send(
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
        return self._inner.receive(channel, lease=lease, max_messages=max_messages, wait=wait)

    def ack(self, delivery: Delivery) -> None:
        self._inner.ack(delivery)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self._inner.release(delivery, available_at=available_at)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True, kw_only=True)
class OpaqueChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return OpaqueTransport(MemoryTransport(clock))


def build() -> Messaging:
    return Messaging([], [OpaqueChannel("remote")], clock=SystemClock(), ids=SequentialIds())
