"""One open pika connection of the sync transport, with its two channels and what they hold.

A :class:`PikaSession` lives from a connect to the first connection error; the transport then
opens a new one. It has a publishing channel in confirm mode (``basic_publish`` returns once the
broker has the message) and a consuming channel, whose unacknowledged deliveries are the leases:
RabbitMQ holds them while this channel lives and requeues them when it closes. Delivery tags mean
something only on the channel that issued them, so each consuming channel gets a new ``epoch``
and receipts carry it; a receipt of an older epoch is stale.

A queue that is waited on gets push consumers on the consuming channel, one per consumer thread
of the transport, each with the prefetch its first receive asked for: RabbitMQ pushes a message
as it arrives (no ``basic.get`` round trip per message), and the session holds at most the sum of
those prefetches, so prefetch follows the consumer's concurrency. ``held`` counts the pushed
deliveries not yet settled, so a waiting receive knows whether the broker can still push to it.

pika's ``BlockingConnection`` is not thread-safe: the transport calls a session under its lock.
pika is imported when a session opens, never when this module is imported.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.core.wire import Delivery
from conveyor_rabbitmq.amqp_message import delivery_count, wire_message

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel

__all__ = ["PikaSession", "Inflight", "Pushed", "is_connection_error", "login_refusal"]


@dataclass(frozen=True, slots=True)
class Inflight:
    """What a lease keeps of its message, to settle it or republish a copy on release."""

    queue: str
    body: bytes
    headers: dict[str, Any] | None
    priority: int | None
    pushed: bool


@dataclass(frozen=True, slots=True)
class Pushed:
    """A delivery the broker pushed to a long-poll consumer, not yet handed out."""

    tag: int
    redelivered: bool
    properties: Any
    body: bytes


class PikaSession:
    """A connection, its publishing and consuming channels, and the deliveries they hold."""

    def __init__(self, parameters: pika.URLParameters, epoch: int) -> None:
        import pika

        self.connection = pika.BlockingConnection(parameters)
        try:
            self.publisher = self._publishing_channel()
            self.consumer: BlockingChannel = self.connection.channel()
        except BaseException:
            self.close()
            raise
        self.epoch = epoch
        self.inflight: dict[int, Inflight] = {}
        self.pushed: dict[str, deque[Pushed]] = {}
        self.consumers: dict[str, list[str]] = {}
        self.capacity: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.declared: set[str] = set()
        self.ladder_declared = False

    def _publishing_channel(self) -> BlockingChannel:
        channel = self.connection.channel()
        channel.confirm_delivery()
        return channel

    # ------------------------------------------------------------------ channels

    def reopen_publisher(self) -> None:
        """A new publishing channel after the broker closed the old one (a refused declare)."""
        self.publisher = self._publishing_channel()

    def reopen_consumer(self, epoch: int) -> None:
        """A new consuming channel: the broker requeued what the old one held."""
        self.consumer = self.connection.channel()
        self.epoch = epoch
        self.inflight.clear()
        self.pushed.clear()
        self.consumers.clear()
        self.capacity.clear()
        self.held.clear()

    # ------------------------------------------------------------------ receiving

    def get(self, queue: str, max_messages: int) -> list[Delivery]:
        """Up to ``max_messages`` deliveries: pushed ones first, then ``basic.get`` until empty."""
        if queue in self.consumers:
            # Read what the broker pushed to this queue's consumers first: those deliveries
            # count against their prefetch, and a basic.get on top would hold more than asked.
            self.connection.process_data_events(time_limit=0)
        found = self.get_pushed(queue, max_messages)
        while len(found) < max_messages:
            method, properties, body = self.consumer.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append(
                self._lease(queue, method.delivery_tag, method.redelivered, properties, body)
            )
        if not found and queue in self.consumers:
            # A delivery pushed before the get-empty reply is read already; hand it out.
            self.connection.process_data_events(time_limit=0)
            return self.get_pushed(queue, max_messages)
        return found

    def get_pushed(self, queue: str, max_messages: int) -> list[Delivery]:
        pushed = self.pushed.get(queue)
        found: list[Delivery] = []
        while pushed and len(found) < max_messages:
            item = pushed.popleft()
            found.append(
                self._lease(queue, item.tag, item.redelivered, item.properties, item.body, True)
            )
        return found

    def can_push(self, queue: str) -> bool:
        """Whether the broker may still push ``queue``'s messages here (a consumer has room)."""
        return self.held.get(queue, 0) < self.capacity.get(queue, 0)

    def consume(self, queue: str, prefetch: int, consumers: int = 1) -> None:
        """Push consumers on ``queue`` for waiting receives: ``consumers`` of them (one per
        consumer thread), each holding at most ``prefetch`` unsettled deliveries."""
        tags = self.consumers.setdefault(queue, [])
        if len(tags) >= consumers:
            return
        buffer = self.pushed.setdefault(queue, deque())

        def on_message(channel: object, method: Any, properties: Any, body: bytes) -> None:
            buffer.append(Pushed(method.delivery_tag, method.redelivered, properties, body))
            self.held[queue] = self.held.get(queue, 0) + 1

        prefetch = max(prefetch, 1)
        self.consumer.basic_qos(prefetch_count=prefetch)  # per consumer, for those that follow
        while len(tags) < consumers:
            tags.append(self.consumer.basic_consume(queue, on_message, auto_ack=False))
            self.capacity[queue] = self.capacity.get(queue, 0) + prefetch

    def settled(self, tag: int) -> None:
        """Forget the lease of ``tag`` (acknowledged or released)."""
        held = self.inflight.pop(tag, None)
        if held is not None and held.pushed:
            self.held[held.queue] -= 1

    def pump(self, seconds: float) -> None:
        """Service the connection (heartbeats, pushed deliveries) for up to ``seconds``."""
        self.connection.process_data_events(time_limit=seconds)

    def _lease(
        self,
        queue: str,
        tag: int,
        redelivered: bool,
        properties: Any,
        body: bytes,
        pushed: bool = False,
    ) -> Delivery:
        headers = properties.headers
        self.inflight[tag] = Inflight(queue, body, headers, properties.priority, pushed)
        return Delivery(
            channel=queue,
            message=wire_message(body, headers),
            receipt=f"{self.epoch}:{tag}",
            delivery_count=delivery_count(headers, redelivered=redelivered),
        )

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the connection; the broker requeues every unacknowledged delivery."""
        with contextlib.suppress(Exception):  # a broken connection has nothing more to release
            if self.connection.is_open:
                self.connection.close()


def is_connection_error(error: BaseException, session: PikaSession | None) -> bool:
    """Whether ``error`` means the connection is gone (reconnect), not one channel's refusal."""
    import pika.exceptions as pe

    if isinstance(error, pe.AMQPConnectionError | ConnectionError | OSError):
        return True
    if isinstance(error, pe.ChannelWrongStateError | pe.ChannelClosed):
        return session is None or not session.connection.is_open
    return False


def login_refusal(error: BaseException) -> str | None:
    """ "login" or "vhost" when the broker refused the credentials or the vhost, else None."""
    import pika.exceptions as pe

    if isinstance(error, pe.ProbableAuthenticationError | pe.AuthenticationError):
        return "login"
    if isinstance(error, pe.ProbableAccessDeniedError):
        return "vhost"
    if isinstance(error, pe.ConnectionClosedByBroker):
        if error.reply_code == 403:
            return "login"
        if error.reply_code == 530:
            return "vhost"
    return None
