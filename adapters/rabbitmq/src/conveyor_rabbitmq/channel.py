"""``RabbitMQChannel``: a durable channel on a RabbitMQ queue, used wherever ``QueueChannel`` is."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta

from conveyor.core.clock import Clock
from conveyor.transports.channels import Channel
from conveyor.transports.seam import AsyncTransport, ChannelOptions, Transport
from conveyor_rabbitmq.address import parse_url
from conveyor_rabbitmq.capabilities import DEFAULT_MAX_SIZE, check_options
from conveyor_rabbitmq.topology import QueueType, check_channel_name

__all__ = ["RabbitMQChannel"]


@dataclass(frozen=True, kw_only=True)
class RabbitMQChannel(Channel):
    """A channel whose messages live in a durable RabbitMQ queue named after the channel.

    Channels with the same ``url`` and settings share one connection in a ``Messaging``. Sends
    are persistent and confirmed by the broker; a message received and not yet acknowledged is
    held for this process until it acknowledges it or its connection closes (a crash included),
    then delivered again. Delays use a ladder of TTL queues (no plugin needed); priorities need
    ``queue_type="classic"`` with ``max_priority``.

    Attributes:
        url: ``amqp://user:password@host:port/vhost``; the password never appears in errors.
        queue_type: "quorum" (the default: replicated, and RabbitMQ counts redeliveries, so a
            message that keeps killing its consumer is seen to) or "classic" (needed for
            priorities on RabbitMQ 3.x).
        max_priority: ``x-max-priority`` of classic queues (1 to 255; RabbitMQ advises at most
            10); None for no priorities.
        max_size: the largest message accepted, body plus headers, in bytes (RabbitMQ's own
            default limit is 128 MiB).
        connect_timeout: how long the first connection may take, retries included.
        reconnect_timeout: how long to keep reconnecting, with backoff, after the connection
            broke, before calls fail with ``ConnectionFailed``.
        heartbeat: the AMQP heartbeat interval; a keep-alive thread answers it during long
            handlers.
    """

    url: str
    queue_type: QueueType = "quorum"
    max_priority: int | None = None
    max_size: int = DEFAULT_MAX_SIZE
    connect_timeout: timedelta = timedelta(seconds=10)
    reconnect_timeout: timedelta = timedelta(seconds=60)
    heartbeat: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        Channel.__post_init__(self)
        parse_url(self.url)
        check_options(self.queue_type, self.max_priority, self.max_size)
        check_channel_name(self.name)

    def transport_key(self) -> Hashable:
        """Channels naming one broker with the same settings share a connection."""
        return (
            RabbitMQChannel,
            self.url,
            self.queue_type,
            self.max_priority,
            self.max_size,
            self.connect_timeout,
            self.reconnect_timeout,
            self.heartbeat,
        )

    def channel_options(self) -> ChannelOptions:
        return ChannelOptions(self.name, lease=self.lease, priority=self.max_priority is not None)

    def open(self, clock: Clock) -> Transport:
        from conveyor_rabbitmq.transport import RabbitMQTransport

        return RabbitMQTransport(
            self.url,
            clock=clock,
            queue_type=self.queue_type,
            max_priority=self.max_priority,
            max_size=self.max_size,
            connect_timeout=self.connect_timeout,
            reconnect_timeout=self.reconnect_timeout,
            heartbeat=self.heartbeat,
        )

    def open_async(self, clock: Clock) -> AsyncTransport:
        from conveyor_rabbitmq.async_transport import AsyncRabbitMQTransport

        return AsyncRabbitMQTransport(
            self.url,
            clock=clock,
            queue_type=self.queue_type,
            max_priority=self.max_priority,
            max_size=self.max_size,
            connect_timeout=self.connect_timeout,
            reconnect_timeout=self.reconnect_timeout,
            heartbeat=self.heartbeat,
        )
