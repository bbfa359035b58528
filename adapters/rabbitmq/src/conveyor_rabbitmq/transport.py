"""``RabbitMQTransport``: the sync transport, on py-amqp, for one broker (one connection).

Sends are persistent and confirmed: ``send`` returns once RabbitMQ has the message on disk.
A received message is leased to this connection's consuming channel until it is acknowledged or
released; if the process dies or the connection drops, RabbitMQ puts it back (a "connection"
lease). A long poll (``wait``) starts push consumers: one per thread that waits on the channel
(a worker's concurrency), each with the batch size asked for as its prefetch, so the transport
holds at most what its consumers can work on, and from then on RabbitMQ pushes each message as
it arrives instead of answering a ``basic.get`` per message. A receive without ``wait`` takes
what was pushed, then asks with ``basic.get`` when nothing was (a message confirmed a moment ago
is visible at once). Delays travel down the delay ladder (:mod:`conveyor_rabbitmq.topology`).

One connection serves every channel and thread of a ``Messaging``: calls take a lock, and a
keep-alive thread services heartbeats while no call is made (a long handler), so the broker
does not drop a connection that is merely busy. When the connection breaks, the next call
reconnects with backoff (up to ``reconnect_timeout``), declares again what it uses, and goes on;
a send in flight is sent again (at least once), and a receipt from the old connection is stale.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from conveyor.core.clock import Clock
from conveyor.core.errors import (
    ConfigurationError,
    StaleReceipt,
    TransportClosed,
    TransportError,
)
from conveyor.core.wire import Delivery, WireMessage
from conveyor.transports.seam import Capabilities, ChannelOptions, ChannelStats
from conveyor_rabbitmq import errors
from conveyor_rabbitmq.address import parse_url
from conveyor_rabbitmq.amqp_message import amqp_headers
from conveyor_rabbitmq.amqp_session import (
    AmqpSession,
    Refused,
    is_channel_error,
    is_connection_error,
    login_refusal,
)
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

__all__ = ["RabbitMQTransport"]

_log = logging.getLogger("conveyor.rabbitmq")
_T = TypeVar("_T")
_SLICE = 0.02  # seconds a long poll holds the connection's lock at a time
_FIRST_BACKOFF, _MAX_BACKOFF = 0.05, 2.0


class RabbitMQTransport:
    """Moves Conveyor messages through durable RabbitMQ queues, one queue per channel.

    Args:
        url: ``amqp://user:password@host:port/vhost``.
        clock: where delays are counted from and how reconnect backoff waits.
        queue_type: "quorum" (default: replicated, counts redeliveries) or "classic".
        max_priority: priority levels of classic queues (``x-max-priority``); None for none.
        max_size: the largest message accepted (body plus headers), in bytes.
        connect_timeout: how long the first connection may take, retries included.
        reconnect_timeout: how long to keep reconnecting after the connection broke.
        heartbeat: the AMQP heartbeat the connection asks for.
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
        self._lock = threading.RLock()
        self._session: AmqpSession | None = None
        self._epochs = 0
        self._connected_once = False
        self._options: dict[str, ChannelOptions] = {}
        self._closed = False
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None
        self._waiters: dict[str, weakref.WeakSet[threading.Thread]] = {}
        self._waiting: dict[str, int] = {}
        self._waiting_idents: dict[str, set[int]] = {}
        self._named: set[str] = set()  # channel names checked already

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def address(self) -> str:
        """The broker, without the password: ``amqp://user@host:port/vhost``."""
        return str(self._address)

    # ------------------------------------------------------------------ the seam

    def declare(self, options: ChannelOptions) -> None:
        check_channel_name(options.name)
        if options.priority and self._max_priority is None:
            raise ConfigurationError(
                f"channel {options.name!r} carries priorities, but this RabbitMQ transport's "
                f"queues have none; use queue_type='classic' with max_priority=N."
            )
        self._options[options.name] = options
        self._call(f"declaring channel {options.name!r}", lambda s: self._declare(s, options.name))

    def send(
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

        def publish(session: AmqpSession) -> None:
            self._ensure_declared(session, channel)
            self._publish(session, channel, message.body, headers, amqp_priority, delay_ms)

        self._call(f"sending to channel {channel!r}", publish)

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        self._check_open()
        if channel not in self._named:
            check_channel_name(channel)
            self._named.add(channel)
        action = f"receiving from channel {channel!r}"

        def take(session: AmqpSession) -> list[Delivery]:
            self._ensure_declared(session, channel)
            return session.get(channel, max_messages)

        if wait is None or wait <= timedelta(0):
            return self._call(action, take)

        def first(session: AmqpSession) -> list[Delivery]:
            self._ensure_declared(session, channel)
            session.consume(channel, max_messages, self._waiting_threads(channel))
            # What the broker pushed while the last send waited for its confirm is read already.
            found = session.get_pushed(channel, max_messages)
            if len(found) == max_messages:
                return found
            if session.can_push(channel):
                # The broker pushes what arrives to a consumer with room: no basic.get needed.
                session.pump(0)
                return found + session.get_pushed(channel, max_messages - len(found))
            return found + session.get(channel, max_messages - len(found))  # consumers full

        found = self._call(action, first)
        if found:
            return found
        deadline = self._clock.now() + wait
        while True:
            left = (deadline - self._clock.now()).total_seconds()

            def poll(session: AmqpSession, left: float = left) -> list[Delivery]:
                # Again after a reconnect: the new session has no consumers yet.
                session.consume(channel, max_messages, self._waiting_threads(channel))
                session.pump(max(0.0, min(left, _SLICE)))
                return session.get_pushed(channel, max_messages)

            found = self._call(action, poll)
            if found or left <= 0:
                return found

    def ack(self, delivery: Delivery) -> None:
        with self._lock:
            session, tag = self._holder(delivery, "acknowledge")
            try:
                session.ack(tag)
            except Exception as error:
                self._settle_failed(error, delivery)
            session.settled(tag)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        delay_ms = self._delay_ms(available_at)
        with self._lock:
            session, tag = self._holder(delivery, "release")
            held = session.inflight[tag]
            try:
                if delay_ms or self._queue_type == "classic":
                    # A copy goes back (down the ladder when delayed) counting the deliveries
                    # so far; only once the broker confirmed it is the original settled.
                    headers = amqp_headers(delivery.message, earlier=delivery.delivery_count)
                    self._publish(session, held.queue, held.body, headers, held.priority, delay_ms)
                    session.ack(tag)
                else:
                    session.requeue(tag)  # the broker counts it
            except Exception as error:
                self._settle_failed(error, delivery)
            session.settled(tag)

    def stats(self, channel: str) -> ChannelStats:
        """Messages ready on the channel's queue, from a passive declare. Not counted: those
        pushed to consumers (leased, or held ahead by their prefetch) and those waiting in the
        delay queues; in flight and the age of the oldest are not told over AMQP: unknown."""

        def count(session: AmqpSession) -> int:
            self._ensure_declared(session, channel)
            return session.ready_count(channel)

        return ChannelStats(pending=self._call(f"counting channel {channel!r}", count))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            if self._session is not None:
                self._session.close()
                self._session = None

    # ------------------------------------------------------------------ broker work

    def _declare(self, session: AmqpSession, queue: str) -> None:
        try:
            session.declare_queue(queue, queue_arguments(self._queue_type, self._max_priority))
        except Refused as error:
            if error.reply_code == 406:
                raise errors.inequivalent_queue(self._address, queue, error.reply_text) from None
            raise TransportError(
                f"RabbitMQ at {self._address.where} refused to declare queue {queue!r}: {error}"
            ) from None
        session.declare_exchange(DELIVER_EXCHANGE)
        session.publisher.queue_bind(queue, DELIVER_EXCHANGE, deliver_binding_key(queue))
        session.declared.add(queue)

    def _ensure_declared(self, session: AmqpSession, queue: str) -> None:
        if queue not in session.declared:
            check_channel_name(queue)
            self._declare(session, queue)

    def _ensure_ladder(self, session: AmqpSession) -> None:
        if session.ladder_declared:
            return
        channel = session.publisher
        session.declare_exchange(DELIVER_EXCHANGE)
        for level in reversed(delay_levels(self._queue_type)):  # bottom up: targets exist first
            session.declare_exchange(level.exchange)
            session.declare_queue(level.exchange, level.arguments)
            channel.queue_bind(level.exchange, level.exchange, level.into_queue)
            channel.exchange_bind(level.next, level.exchange, level.onward)
        session.ladder_declared = True

    def _publish(
        self,
        session: AmqpSession,
        queue: str,
        body: bytes,
        headers: dict[str, Any],
        priority: int | None,
        delay_ms: int,
    ) -> None:
        from amqp.exceptions import MessageNacked

        if delay_ms:
            self._ensure_ladder(session)
            exchange, key = top_exchange(self._queue_type), delay_routing_key(delay_ms, queue)
        else:
            exchange, key = "", queue
        try:
            if not session.publish(exchange, key, body, headers, priority):
                # The queue was deleted behind our back: declare it again and send once more.
                session.declared.discard(queue)
                self._ensure_declared(session, queue)
                session.publish(exchange, key, body, headers, priority)
        except MessageNacked:
            raise TransportError(
                f"RabbitMQ at {self._address.where} refused (nacked) a message for channel "
                f"{queue!r}; see the broker's log (disk or memory alarm, queue limit)."
            ) from None

    def _waiting_threads(self, channel: str) -> int:
        """How many live threads wait on ``channel`` (called under the lock): its consumers.

        Counted again only when a thread waits for the first time, so a worker's threads that
        come and go (a thread per run) keep the consumers they left rather than add more.
        """
        known = self._waiting_idents.setdefault(channel, set())
        ident = threading.get_ident()
        if ident not in known:
            known.add(ident)
            threads = self._waiters.setdefault(channel, weakref.WeakSet())
            threads.add(threading.current_thread())
            self._waiting[channel] = sum(1 for thread in threads if thread.is_alive())
        return self._waiting[channel]

    def _delay_ms(self, available_at: datetime | None) -> int:
        if available_at is None:
            return 0
        return delay_milliseconds(available_at - self._clock.now())

    # ------------------------------------------------------------------ leases

    def _holder(self, delivery: Delivery, verb: str) -> tuple[AmqpSession, int]:
        """The session holding ``delivery`` and its tag, or StaleReceipt."""
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
        return session, tag

    def _settle_failed(self, error: BaseException, delivery: Delivery) -> None:
        session = self._session
        if is_connection_error(error, session) or is_channel_error(error):
            if session is not None and session.is_open:
                self._reopen_consumer(session)
            else:
                self._drop_session()
            raise StaleReceipt(
                f"the connection to RabbitMQ at {self._address.where} broke while settling a "
                f"message of channel {delivery.channel!r}; RabbitMQ puts it back for another "
                f"delivery."
            ) from None
        raise error

    # ------------------------------------------------------------------ connection

    def _call(self, action: str, work: Callable[[AmqpSession], _T]) -> _T:
        """Run ``work`` on a live session under the lock, reconnecting when the connection broke."""
        with self._lock:
            self._check_open()
            started: datetime | None = None  # read only when the connection breaks
            while True:
                session = self._connected(action)
                try:
                    return work(session)
                except Exception as error:
                    if not is_connection_error(error, session):
                        if is_channel_error(error):
                            self._reopen_consumer(session)
                        raise
                    detail = errors.scrub(error, self._password())
                    self._drop_session()
                    if started is None:
                        started = self._clock.now()
                    waited = (self._clock.now() - started).total_seconds()
                    budget = self._reconnect_timeout.total_seconds()
                    if waited >= budget:
                        raise errors.connection_lost(
                            self._address, action, detail, tried_for=waited
                        ) from None
                    _log.warning(
                        "RabbitMQ connection to %s lost while %s (%s); reconnecting",
                        self._address.where,
                        action,
                        detail,
                    )

    def _connected(self, action: str) -> AmqpSession:
        if self._session is not None:
            return self._session
        first = not self._connected_once
        budget = (self._connect_timeout if first else self._reconnect_timeout).total_seconds()
        started, backoff = self._clock.now(), _FIRST_BACKOFF
        while True:
            try:
                self._epochs += 1
                session = AmqpSession(
                    self._address,
                    self._password() or "guest",
                    heartbeat=max(1, int(self._heartbeat.total_seconds())),
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
                self._clock.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            if not first:
                _log.warning("RabbitMQ connection to %s open again", self._address.where)
            self._session, self._connected_once = session, True
            self._start_keepalive()
            return session

    def _password(self) -> str | None:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(self._url).password
        return unquote(password) if password else None

    def _drop_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _reopen_consumer(self, session: AmqpSession) -> None:
        if session.is_open:
            self._epochs += 1
            session.reopen_consumer(self._epochs)

    def _start_keepalive(self) -> None:
        if self._keepalive is None:
            self._keepalive = threading.Thread(
                target=self._keep_alive, name="conveyor-rabbitmq-heartbeat", daemon=True
            )
            self._keepalive.start()

    def _keep_alive(self) -> None:
        """Service heartbeats while no call does: a long handler must not lose its leases."""
        interval = max(0.5, self._heartbeat.total_seconds() / 4)
        while not self._stop.wait(interval):
            if not self._lock.acquire(blocking=False):
                continue  # a call is using the connection, which services it
            try:
                if self._session is not None:
                    self._session.pump(0)
            except Exception:
                self._drop_session()  # the next call reconnects
            finally:
                self._lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(
                f"this RabbitMQ transport ({self._address.where}) is closed; build a new "
                f"Messaging (or transport) to go on."
            )
