"""One open py-amqp connection of the sync transport, with its two channels and what they hold.

The sync transport speaks AMQP through py-amqp (the ``amqp`` package, the client Celery's kombu
uses) rather than pika: on a machine whose cores are contended the round trip's wall time follows
the client's CPU, and py-amqp spends about a third less per publish-confirm-consume-ack than
pika's ``BlockingConnection`` (bench/bench_rabbitmq.py has both raw clients as rows).

An :class:`AmqpSession` lives from a connect to the first connection error; the transport then
opens a new one. It has a publishing channel in confirm mode (:meth:`AmqpSession.publish` returns
once the broker has the message) and a consuming channel, whose unacknowledged deliveries are the
leases: RabbitMQ holds them while this channel lives and requeues them when it closes. Delivery
tags mean something only on the channel that issued them, so each consuming channel gets a new
``epoch`` and receipts carry it; a receipt of an older epoch is stale.

A queue that is waited on gets push consumers on the consuming channel, one per consumer thread
of the transport, each with the prefetch its first receive asked for: RabbitMQ pushes a message
as it arrives (no ``basic.get`` round trip per message), and the session holds at most the sum of
those prefetches, so prefetch follows the consumer's concurrency. ``held`` counts the pushed
deliveries not yet settled, so a waiting receive knows whether the broker can still push to it.

py-amqp's connection is not thread-safe: the transport calls a session under its lock. py-amqp
is imported when a session opens, never when this module is imported.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.core.wire import Delivery
from conveyor_rabbitmq.address import BrokerAddress
from conveyor_rabbitmq.amqp_message import delivery_count, wire_message

if TYPE_CHECKING:
    import amqp

__all__ = [
    "AmqpSession",
    "Inflight",
    "Pushed",
    "Refused",
    "is_channel_error",
    "is_connection_error",
    "login_refusal",
]

_CONNECT_TIMEOUT = 5.0  # seconds for the TCP connect and the AMQP handshake, per attempt


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
    headers: dict[str, Any] | None
    priority: int | None
    body: bytes


class Refused(Exception):
    """The broker refused a channel operation (reply code and text); the channel is gone."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(f"({reply_code}) {reply_text}")
        self.reply_code = reply_code
        self.reply_text = reply_text


class AmqpSession:
    """A connection, its publishing and consuming channels, and the deliveries they hold."""

    def __init__(
        self, address: BrokerAddress, password: str, *, heartbeat: int, epoch: int
    ) -> None:
        import amqp

        host = f"[{address.host}]" if ":" in address.host else address.host
        self.connection = amqp.Connection(
            f"{host}:{address.port}",
            userid=address.username,
            password=password,
            virtual_host=address.vhost,
            login_method="PLAIN",
            heartbeat=heartbeat,
            connect_timeout=_CONNECT_TIMEOUT,
            ssl=address.scheme == "amqps",
            client_properties={"connection_name": "conveyor"},
        )
        self.returned = False  # the broker returned the message being published: no queue
        try:
            self.connection.connect()
            self.publisher = self._publishing_channel()
            self.consumer: amqp.Channel = self.connection.channel()
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

    @property
    def is_open(self) -> bool:
        """Whether the connection still stands (a channel of it may have been closed)."""
        return bool(self.connection.connected)

    def _publishing_channel(self) -> amqp.Channel:
        # Confirm mode: basic_publish_confirm selects it on its first use, and again after
        # py-amqp reopened the channel the broker closed (a refused declare).
        channel = self.connection.channel()

        def on_return(*_: object) -> None:  # comes before the confirm of the same message
            self.returned = True

        channel.events["basic_return"].add(on_return)
        return channel

    # ------------------------------------------------------------------ channels

    def reopen_consumer(self, epoch: int) -> None:
        """A new consuming channel: the broker requeued what the old one held."""
        with contextlib.suppress(Exception):
            self.consumer.close()
        self.consumer = self.connection.channel()
        self.epoch = epoch
        self.inflight.clear()
        self.pushed.clear()
        self.consumers.clear()
        self.capacity.clear()
        self.held.clear()

    # ------------------------------------------------------------------ declaring and sending

    def declare_queue(self, queue: str, arguments: dict[str, Any]) -> None:
        """A durable queue; :class:`Refused` when the broker refuses it (py-amqp has opened the
        publishing channel again by then, so the session stays usable)."""
        import amqp.exceptions as ae

        try:
            self.publisher.queue_declare(
                queue, durable=True, auto_delete=False, arguments=arguments
            )
        except ae.ChannelError as error:
            if not self.is_open:
                raise
            raise Refused(error.reply_code, str(error.reply_text)) from None

    def ready_count(self, queue: str) -> int:
        """Messages ready on ``queue`` (a passive declare)."""
        return int(self.publisher.queue_declare(queue, passive=True).message_count)

    def declare_exchange(self, exchange: str) -> None:
        self.publisher.exchange_declare(exchange, "topic", durable=True, auto_delete=False)

    def publish(
        self,
        exchange: str,
        key: str,
        body: bytes,
        headers: dict[str, Any],
        priority: int | None,
    ) -> bool:
        """Publish persistently and wait for the broker's confirm; False when the broker
        returned the message (no queue is bound for it). Raises ``MessageNacked``."""
        import amqp

        properties: dict[str, Any] = {"delivery_mode": 2, "application_headers": headers}
        if priority is not None:
            properties["priority"] = priority
        self.returned = False
        self.publisher.basic_publish_confirm(
            amqp.Message(body, **properties), exchange, key, mandatory=True
        )
        return not self.returned

    # ------------------------------------------------------------------ receiving

    def get(self, queue: str, max_messages: int) -> list[Delivery]:
        """Up to ``max_messages`` deliveries: pushed ones first, then ``basic.get`` until empty."""
        if queue in self.consumers:
            # Read what the broker pushed to this queue's consumers first: those deliveries
            # count against their prefetch, and a basic.get on top would hold more than asked.
            self.pump(0)
        found = self.get_pushed(queue, max_messages)
        while len(found) < max_messages:
            message = self.consumer.basic_get(queue, no_ack=False)
            if message is None:
                break
            info, properties = message.delivery_info, message.properties
            found.append(
                self._lease(
                    queue,
                    info["delivery_tag"],
                    info["redelivered"],
                    properties.get("application_headers"),
                    properties.get("priority"),
                    message.body,
                )
            )
        if not found and queue in self.consumers:
            # A delivery pushed before the get-empty reply is read already; hand it out.
            self.pump(0)
            return self.get_pushed(queue, max_messages)
        return found

    def get_pushed(self, queue: str, max_messages: int) -> list[Delivery]:
        pushed = self.pushed.get(queue)
        found: list[Delivery] = []
        while pushed and len(found) < max_messages:
            item = pushed.popleft()
            found.append(
                self._lease(
                    queue, item.tag, item.redelivered, item.headers, item.priority, item.body, True
                )
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

        def on_message(message: amqp.Message) -> None:
            info, properties = message.delivery_info, message.properties
            buffer.append(
                Pushed(
                    info["delivery_tag"],
                    info["redelivered"],
                    properties.get("application_headers"),
                    properties.get("priority"),
                    message.body,
                )
            )
            self.held[queue] = self.held.get(queue, 0) + 1

        def on_cancel(tag: str) -> None:
            # The broker cancelled the consumer (its queue was deleted): the next wait
            # declares the queue again and consumes anew.
            if tag in tags:
                tags.remove(tag)
                self.capacity[queue] -= prefetch
            self.declared.discard(queue)

        prefetch = max(prefetch, 1)
        self.consumer.basic_qos(0, prefetch, False)  # per consumer, for those that follow
        while len(tags) < consumers:
            tags.append(
                self.consumer.basic_consume(queue, callback=on_message, on_cancel=on_cancel)
            )
            self.capacity[queue] = self.capacity.get(queue, 0) + prefetch

    def ack(self, tag: int) -> None:
        self.consumer.basic_ack(tag)

    def requeue(self, tag: int) -> None:
        """Give the delivery back to its queue (the broker counts a redelivery)."""
        self.consumer.basic_reject(tag, requeue=True)

    def settled(self, tag: int) -> None:
        """Forget the lease of ``tag`` (acknowledged or released)."""
        held = self.inflight.pop(tag, None)
        if held is not None and held.pushed:
            self.held[held.queue] -= 1

    def pump(self, seconds: float) -> None:
        """Service the connection (heartbeats, pushed deliveries): with ``seconds`` > 0, wait up
        to that long for one method (a delivery, a confirm); with 0, read all that has arrived.

        A long poll returns as soon as one delivery is in: reading on until the socket is empty
        would cost a timed-out read (an exception through py-amqp) per round trip.
        """
        self.connection.heartbeat_tick()
        drain = self.connection.drain_events
        try:
            if seconds > 0:
                drain(timeout=seconds)
                return
            while True:
                drain(timeout=0)
        except TimeoutError:
            return

    def _lease(
        self,
        queue: str,
        tag: int,
        redelivered: bool,
        headers: dict[str, Any] | None,
        priority: int | None,
        body: bytes,
        pushed: bool = False,
    ) -> Delivery:
        self.inflight[tag] = Inflight(queue, body, headers, priority, pushed)
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
            if self.connection.connected:
                self.connection.close()
            else:
                self.connection.collect()


def is_connection_error(error: BaseException, session: AmqpSession | None) -> bool:
    """Whether ``error`` means the connection is gone (reconnect), not one channel's refusal."""
    import amqp.exceptions as ae

    if isinstance(error, ae.ChannelError | Refused):
        return False
    if type(error) is ae.RecoverableConnectionError and session is not None and session.is_open:
        return False  # a channel of a live connection was closed ("connection already closed")
    return isinstance(error, ae.ConnectionError | OSError)


def is_channel_error(error: BaseException) -> bool:
    """Whether ``error`` closed a channel but not the connection."""
    import amqp.exceptions as ae

    return isinstance(error, ae.ChannelError | Refused | ae.RecoverableConnectionError)


def login_refusal(error: BaseException) -> str | None:
    """ "login" or "vhost" when the broker refused the credentials or the vhost, else None."""
    import amqp.exceptions as ae

    if isinstance(error, ae.AccessRefused):
        return "login"
    if isinstance(error, ae.NotAllowed):
        return "vhost"
    return None
