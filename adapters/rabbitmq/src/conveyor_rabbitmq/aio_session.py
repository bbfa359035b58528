"""One open aio-pika connection of the asyncio transport: the twin of :mod:`amqp_session`.

A publishing channel with publisher confirms, a consuming channel whose unacknowledged
deliveries are the leases, and an ``epoch`` that receipts carry so a delivery from a closed
channel is recognised as stale. aio-pika is imported when a session opens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

from conveyor.core.wire import Delivery
from conveyor_rabbitmq.amqp_message import delivery_count, wire_message

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractChannel,
        AbstractConnection,
        AbstractExchange,
        AbstractIncomingMessage,
        AbstractQueue,
    )

__all__ = ["AioSession", "is_connection_error", "login_refusal"]


class AioSession:
    """A connection, its two channels, and the deliveries the consuming channel holds."""

    def __init__(
        self, connection: AbstractConnection, publisher: AbstractChannel, epoch: int
    ) -> None:
        self.connection = connection
        self.publisher = publisher
        self.consumer: AbstractChannel | None = None
        self.epoch = epoch
        self.inflight: dict[int, AbstractIncomingMessage] = {}
        self.pushed: dict[str, deque[AbstractIncomingMessage]] = {}
        self.arrived = asyncio.Event()
        self.queues: dict[str, AbstractQueue] = {}
        self.consumers: dict[str, str] = {}
        self.exchanges: dict[str, AbstractExchange] = {}
        self.declared: set[str] = set()
        self.ladder_declared = False

    @classmethod
    async def open(cls, url: str, *, heartbeat: int, timeout: float, epoch: int) -> AioSession:
        import aio_pika

        connection = await aio_pika.connect(
            url,
            heartbeat=heartbeat,
            timeout=timeout,
            client_properties={"connection_name": "conveyor"},
        )
        try:
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            session = cls(connection, publisher, epoch)
            await session.reopen_consumer(epoch)
        except BaseException:
            await connection.close()
            raise
        return session

    async def reopen_publisher(self) -> None:
        self.publisher = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self.exchanges.clear()

    async def reopen_consumer(self, epoch: int) -> None:
        self.consumer = await self.connection.channel(publisher_confirms=False)
        self.epoch = epoch
        self.inflight.clear()
        self.pushed.clear()
        self.queues.clear()
        self.consumers.clear()

    async def queue(self, name: str) -> AbstractQueue:
        """The consuming channel's handle on queue ``name`` (declared already)."""
        found = self.queues.get(name)
        if found is None:
            assert self.consumer is not None
            found = self.queues[name] = await self.consumer.get_queue(name, ensure=False)
        return found

    async def get(self, name: str, max_messages: int) -> list[Delivery]:
        if name in self.consumers:
            # Let the reader hand over what the broker pushed to this queue's consumer first:
            # those count against its prefetch; a basic.get on top would hold more than asked.
            await asyncio.sleep(0)
        found = self.take_pushed(name, max_messages)
        queue = await self.queue(name)
        while len(found) < max_messages:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(self._lease(name, message))
        if not found:
            await asyncio.sleep(0)  # let a delivery pushed before the get-empty be handled
            found = self.take_pushed(name, max_messages)
        return found

    def take_pushed(self, name: str, max_messages: int) -> list[Delivery]:
        pushed = self.pushed.get(name)
        found: list[Delivery] = []
        while pushed and len(found) < max_messages:
            found.append(self._lease(name, pushed.popleft()))
        return found

    async def consume(self, name: str, prefetch: int) -> None:
        """Start a push consumer for long polls on ``name``, holding at most ``prefetch``."""
        if name in self.consumers:
            return
        assert self.consumer is not None
        buffer = self.pushed.setdefault(name, deque())

        async def on_message(message: AbstractIncomingMessage) -> None:
            buffer.append(message)
            self.arrived.set()

        await self.consumer.set_qos(prefetch_count=max(prefetch, 1))
        queue = await self.queue(name)
        self.consumers[name] = await queue.consume(on_message, no_ack=False)

    def _lease(self, name: str, message: AbstractIncomingMessage) -> Delivery:
        tag = message.delivery_tag
        assert tag is not None
        self.inflight[tag] = message
        headers = dict(message.headers) if message.headers else None
        return Delivery(
            channel=name,
            message=wire_message(message.body, headers),
            receipt=f"{self.epoch}:{tag}",
            delivery_count=delivery_count(headers, redelivered=bool(message.redelivered)),
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection has nothing more to release
            await self.connection.close()


def is_connection_error(error: BaseException, session: AioSession | None) -> bool:
    """Whether ``error`` means the connection is gone (reconnect), not one channel's refusal."""
    import aiormq.exceptions as ae

    if isinstance(error, ae.AMQPConnectionError | ConnectionError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(error, ae.ChannelInvalidStateError | ae.AMQPChannelError | RuntimeError):
        return session is None or session.connection.is_closed
    return False


def login_refusal(error: BaseException) -> str | None:
    """ "login" or "vhost" when the broker refused the credentials or the vhost, else None."""
    import aiormq.exceptions as ae

    if isinstance(error, ae.ProbableAuthenticationError | ae.AuthenticationError):
        return "login"
    if isinstance(error, ae.ConnectionNotAllowed):
        return "vhost"
    text = str(error)
    if "ACCESS_REFUSED" in text:
        return "login"
    if "NOT_ALLOWED" in text:
        return "vhost"
    return None
