"""``AsyncRabbitMQTransport``: the asyncio twin of :class:`RabbitMQTransport`, on aio-pika.

Same semantics: persistent, confirmed sends; leases held by the consuming channel; ``basic.get``
for what is ready and a push consumer (prefetch = the batch asked for) for long polls; the delay
ladder; reconnect with backoff, declare again, go on; stale receipts after a reconnect. One
connection serves every channel and task; a lock orders reconnects. Reconnect backoff waits
with ``asyncio.sleep`` (the event loop is the asyncio driver's clock); delays are counted from
the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.core.clock import Clock
from conveyor.core.errors import (
    ConfigurationError,
    StaleReceipt,
    TransportClosed,
    TransportError,
)
from conveyor.core.wire import Delivery, WireMessage
from conveyor.transports.seam import Capabilities, ChannelOptions
from conveyor_rabbitmq import errors
from conveyor_rabbitmq.address import parse_url
from conveyor_rabbitmq.aio_session import AioSession, is_connection_error, login_refusal
from conveyor_rabbitmq.amqp_message import amqp_headers
from conveyor_rabbitmq.capabilities import (
    DEFAULT_MAX_SIZE,
    capabilities_for,
    check_options,
    check_priority,
    check_size,
)
from conveyor_rabbitmq.topology import (
    DELIVER_EXCHANGE,
    QueueType,
    check_channel_name,
    delay_levels,
    delay_milliseconds,
    delay_routing_key,
    deliver_binding_key,
    queue_arguments,
    top_exchange,
)

if TYPE_CHECKING:
    from aio_pika.abc import AbstractExchange

__all__ = ["AsyncRabbitMQTransport"]

_log = logging.getLogger("conveyor.rabbitmq")
_T = TypeVar("_T")
_FIRST_BACKOFF, _MAX_BACKOFF = 0.05, 2.0


class AsyncRabbitMQTransport:
    """Moves Conveyor messages through durable RabbitMQ queues from asyncio code.

    Takes the same arguments as :class:`~conveyor_rabbitmq.transport.RabbitMQTransport`.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        queue_type: QueueType = "quorum",
        max_priority: int | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        connect_timeout: timedelta = timedelta(seconds=10),
        reconnect_timeout: timedelta = timedelta(seconds=60),
        heartbeat: timedelta = timedelta(seconds=60),
    ) -> None:
        check_options(queue_type, max_priority, max_size)
        self._address = parse_url(url)
        self._url = url
        self._clock = clock
        self._queue_type: QueueType = queue_type
        self._max_priority = max_priority if queue_type == "classic" else None
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._heartbeat = heartbeat
        self._capabilities = capabilities_for(queue_type, self._max_priority, max_size)
        self._lock: asyncio.Lock | None = None
        self._session: AioSession | None = None
        self._epochs = 0
        self._connected_once = False
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def address(self) -> str:
        return str(self._address)

    # ------------------------------------------------------------------ the seam

    async def declare(self, options: ChannelOptions) -> None:
        check_channel_name(options.name)
        if options.priority and self._max_priority is None:
            raise ConfigurationError(
                f"channel {options.name!r} carries priorities, but this RabbitMQ transport's "
                f"queues have none; use queue_type='classic' with max_priority=N."
            )

        async def declare(session: AioSession) -> None:
            await self._declare(session, options.name)

        await self._call(f"declaring channel {options.name!r}", declare)

    async def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self._check_open()
        check_size(message, channel, self._max_size)
        amqp_priority = check_priority(priority, channel, self._max_priority)
        headers = amqp_headers(message)
        delay_ms = self._delay_ms(available_at)

        async def publish(session: AioSession) -> None:
            await self._ensure_declared(session, channel)
            await self._publish(session, channel, message.body, headers, amqp_priority, delay_ms)

        await self._call(f"sending to channel {channel!r}", publish)

    async def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        self._check_open()
        check_channel_name(channel)
        action = f"receiving from channel {channel!r}"

        async def take(session: AioSession) -> list[Delivery]:
            await self._ensure_declared(session, channel)
            return await session.get(channel, max_messages)

        found = await self._call(action, take)
        if found or wait is None or wait <= timedelta(0):
            return found
        deadline = self._clock.now() + wait
        while True:
            left = (deadline - self._clock.now()).total_seconds()

            async def poll(session: AioSession, left: float = left) -> list[Delivery]:
                await session.consume(channel, max_messages)
                found = session.take_pushed(channel, max_messages)
                if not found and left > 0:
                    session.arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(session.arrived.wait(), timeout=min(left, 1.0))
                    found = session.take_pushed(channel, max_messages)
                return found

            found = await self._call(action, poll, locked=False)
            if found or left <= 0:
                return found

    async def ack(self, delivery: Delivery) -> None:
        session, message = self._holder(delivery, "acknowledge")
        try:
            await message.ack()
        except Exception as error:
            await self._settle_failed(error, delivery)
        session.inflight.pop(message.delivery_tag or -1, None)

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        delay_ms = self._delay_ms(available_at)
        session, message = self._holder(delivery, "release")
        try:
            if delay_ms or self._queue_type == "classic":
                headers = amqp_headers(delivery.message, earlier=delivery.delivery_count)
                await self._publish(
                    session, delivery.channel, message.body, headers, message.priority, delay_ms
                )
                await message.ack()
            else:
                await message.nack(requeue=True)  # the broker counts it
        except Exception as error:
            await self._settle_failed(error, delivery)
        session.inflight.pop(message.delivery_tag or -1, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ------------------------------------------------------------------ broker work

    async def _declare(self, session: AioSession, queue: str) -> None:
        import aiormq.exceptions as ae

        try:
            await session.publisher.declare_queue(
                queue,
                durable=True,
                arguments=queue_arguments(self._queue_type, self._max_priority),  # type: ignore[arg-type]
            )
        except ae.ChannelPreconditionFailed as error:
            await session.reopen_publisher()
            raise errors.inequivalent_queue(self._address, queue, str(error)) from None
        deliver = await self._exchange(session, DELIVER_EXCHANGE)
        queue_handle = await session.publisher.get_queue(queue, ensure=False)
        await queue_handle.bind(deliver, deliver_binding_key(queue))
        session.declared.add(queue)

    async def _ensure_declared(self, session: AioSession, queue: str) -> None:
        if queue not in session.declared:
            check_channel_name(queue)
            await self._declare(session, queue)

    async def _exchange(self, session: AioSession, name: str) -> AbstractExchange:
        found = session.exchanges.get(name)
        if found is None:
            found = await session.publisher.declare_exchange(name, "topic", durable=True)
            session.exchanges[name] = found
        return found

    async def _ensure_ladder(self, session: AioSession) -> None:
        if session.ladder_declared:
            return
        await self._exchange(session, DELIVER_EXCHANGE)
        for level in reversed(delay_levels(self._queue_type)):  # bottom up: targets exist first
            exchange = await self._exchange(session, level.exchange)
            below = await self._exchange(session, level.next)
            queue = await session.publisher.declare_queue(
                level.exchange,
                durable=True,
                arguments=level.arguments,  # type: ignore[arg-type]
            )
            await queue.bind(exchange, level.into_queue)
            await below.bind(exchange, level.onward)
        session.ladder_declared = True

    async def _publish(
        self,
        session: AioSession,
        queue: str,
        body: bytes,
        headers: dict[str, Any],
        priority: int | None,
        delay_ms: int,
    ) -> None:
        import aio_pika
        import aiormq.exceptions as ae
        from pamqp.commands import Basic

        message = aio_pika.Message(
            body,
            headers=headers,
            priority=priority,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        if delay_ms:
            await self._ensure_ladder(session)
            exchange = await self._exchange(session, top_exchange(self._queue_type))
            key = delay_routing_key(delay_ms, queue)
        else:
            exchange, key = session.publisher.default_exchange, queue
        try:
            confirmation = await exchange.publish(message, routing_key=key, mandatory=True)
        except ae.DeliveryError:
            session.declared.discard(queue)  # deleted behind our back: declare, send again
            await self._ensure_declared(session, queue)
            confirmation = await exchange.publish(message, routing_key=key, mandatory=True)
        if not isinstance(confirmation, Basic.Ack):
            raise TransportError(
                f"RabbitMQ at {self._address.where} refused (nacked) a message for channel "
                f"{queue!r}; see the broker's log (disk or memory alarm, queue limit)."
            )

    def _delay_ms(self, available_at: datetime | None) -> int:
        if available_at is None:
            return 0
        return delay_milliseconds(available_at - self._clock.now())

    # ------------------------------------------------------------------ leases

    def _holder(self, delivery: Delivery, verb: str) -> tuple[AioSession, Any]:
        self._check_open()
        epoch, _, tag_text = delivery.receipt.partition(":")
        session = self._session
        tag = int(tag_text) if tag_text.isdigit() else -1
        if session is None or str(session.epoch) != epoch or tag not in session.inflight:
            raise StaleReceipt(
                f"cannot {verb} a message of channel {delivery.channel!r}: the connection or "
                f"channel that received it closed (or it was settled already), so RabbitMQ has "
                f"put it back for another delivery."
            )
        return session, session.inflight[tag]

    async def _settle_failed(self, error: BaseException, delivery: Delivery) -> None:
        import aiormq.exceptions as ae

        session = self._session
        # A closed channel (ChannelInvalidStateError) means its deliveries went back already,
        # also when the connection has not yet noticed it died (a broker restart).
        if is_connection_error(error, session) or isinstance(
            error, ae.AMQPChannelError | ae.ChannelInvalidStateError
        ):
            reopened = False
            if session is not None and not session.connection.is_closed:
                self._epochs += 1
                with contextlib.suppress(Exception):  # a dead connection: reconnect instead
                    await session.reopen_consumer(self._epochs)
                    reopened = True
            if not reopened:
                await self._drop_session()
            raise StaleReceipt(
                f"the connection to RabbitMQ at {self._address.where} broke while settling a "
                f"message of channel {delivery.channel!r}; RabbitMQ puts it back for another "
                f"delivery."
            ) from None
        raise error

    # ------------------------------------------------------------------ connection

    async def _call(
        self, action: str, work: Callable[[AioSession], Awaitable[_T]], *, locked: bool = True
    ) -> _T:
        self._check_open()
        started = self._clock.now()
        while True:
            session = await self._connected(action)
            try:
                if not locked:
                    return await work(session)
                async with self._guard():
                    return await work(session)
            except Exception as error:
                if not is_connection_error(error, session):
                    raise
                detail = errors.scrub(error, self._password())
                if self._session is session:
                    await self._drop_session()
                waited = (self._clock.now() - started).total_seconds()
                if waited >= self._reconnect_timeout.total_seconds():
                    raise errors.connection_lost(
                        self._address, action, detail, tried_for=waited
                    ) from None
                _log.warning(
                    "RabbitMQ connection to %s lost while %s (%s); reconnecting",
                    self._address.where,
                    action,
                    detail,
                )

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _connected(self, action: str) -> AioSession:
        if self._session is not None:
            return self._session
        async with self._guard():
            session: AioSession | None = self._session  # another task may have connected
            if session is not None:
                return session
            return await self._connect(action)

    async def _connect(self, action: str) -> AioSession:
        first = not self._connected_once
        budget = (self._connect_timeout if first else self._reconnect_timeout).total_seconds()
        started, backoff = self._clock.now(), _FIRST_BACKOFF
        while True:
            self._check_open()
            try:
                self._epochs += 1
                session = await AioSession.open(
                    self._url,
                    heartbeat=max(1, int(self._heartbeat.total_seconds())),
                    timeout=5.0,
                    epoch=self._epochs,
                )
            except Exception as error:
                detail = errors.scrub(error, self._password())
                refusal = login_refusal(error)
                if refusal == "login":
                    raise errors.refused_login(self._address, detail) from None
                if refusal == "vhost":
                    raise errors.refused_vhost(self._address, detail) from None
                if not is_connection_error(error, None):
                    raise TransportError(
                        f"cannot open a connection to RabbitMQ at {self._address.where}: {detail}"
                    ) from None
                waited = (self._clock.now() - started).total_seconds()
                if waited + backoff > budget:
                    if first:
                        raise errors.unreachable(self._address, detail, tried_for=waited) from None
                    raise errors.connection_lost(
                        self._address, action, detail, tried_for=waited
                    ) from None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            if not first:
                _log.warning("RabbitMQ connection to %s open again", self._address.where)
            self._session, self._connected_once = session, True
            return session

    def _password(self) -> str | None:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(self._url).password
        return unquote(password) if password else None

    async def _drop_session(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(
                f"this RabbitMQ transport ({self._address.where}) is closed; build a new "
                f"AsyncMessaging (or transport) to go on."
            )
