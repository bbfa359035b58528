"""The optional second parameter of a handler: what it may know and do while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, overload

from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState, ManualAck
from conveyor.core.errors import MessageRejected
from conveyor.core.headers import Headers
from conveyor.core.message import Message
from conveyor.core.queries import Answer, Query

if TYPE_CHECKING:
    from conveyor.drivers.buses import Buses

__all__ = ["Context", "Handling"]


class Handling:
    """What a handler may know about the message it handles: its headers, id, attempt, time.

    The part of ``Context`` and ``AsyncContext`` that does not send.
    """

    __slots__ = ("_attempt", "_clock", "channel", "endpoint_id", "message")

    def __init__(
        self,
        clock: Clock,
        message: Message,
        endpoint_id: str | None,
        channel: str | None,
        attempt: AttemptState | None = None,
    ) -> None:
        self._clock = clock
        self.message = message
        self.endpoint_id = endpoint_id
        self.channel = channel
        self._attempt = attempt

    @property
    def headers(self) -> Headers:
        return self.message.headers

    @property
    def message_id(self) -> str:
        return self.message.headers.id

    @property
    def attempt(self) -> int:
        return self.message.headers.attempt

    @property
    def replayed(self) -> int:
        """How many times this message was replayed from the dead-letter store (0: never).

        A handler can tell a replay of a failed message from its first life, for example to
        skip a side effect that already happened.
        """
        return self.message.headers.replayed

    def ack(self) -> None:
        """Acknowledge this message, on a channel with ``ack="manual"``.

        It takes effect when the handler returns, together with what the handler sent: an
        exception raised after ``ack()`` is a failure as usual (retried by the endpoint's
        policy). A handler on a manually acknowledged channel that returns without ``ack()`` or
        :meth:`reject` gives the message back: it comes again after the channel's lease.
        Elsewhere (the default ``ack="auto"``, synchronous handlers) it changes nothing: the
        message is acknowledged when the handler returns.
        """
        attempt = self._attempt
        if isinstance(attempt, ManualAck):
            attempt.acked = True

    def reject(self, reason: str) -> NoReturn:
        """Refuse this message for good: it is not retried and goes straight to the dead-letter
        store with ``reason`` (raises :class:`~conveyor.MessageRejected`, so the handler stops
        here and what it sent does not leave)."""
        raise MessageRejected(reason)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def now(self) -> datetime:
        return self._clock.now()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message_id={self.message_id!r}, "
            f"endpoint_id={self.endpoint_id!r})"
        )


class Context(Handling):
    """Headers of the message being handled, and the buses, bound to it.

    Messages sent through the context inherit the user headers and correlation id and name this
    message as their cause; they leave only if the handler succeeds (the message collector).
    """

    __slots__ = ("_messaging",)

    def __init__(
        self,
        messaging: Buses,
        clock: Clock,
        message: Message,
        endpoint_id: str | None,
        channel: str | None,
        attempt: AttemptState | None = None,
    ) -> None:
        super().__init__(clock, message, endpoint_id, channel, attempt)
        self._messaging = messaging

    def send(
        self,
        command: object,
        *,
        headers: Mapping[str, str] | None = None,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int | None = None,
        ttl: timedelta | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> object:
        """Send a command caused by this message."""
        return self._messaging.send(
            command,
            headers=headers,
            delay=delay,
            at=at,
            priority=priority,
            ttl=ttl,
            routing_key=routing_key,
            message_id=message_id,
            correlation_id=correlation_id,
            propagate_headers=propagate_headers,
        )

    def publish(
        self,
        event: object,
        *,
        headers: Mapping[str, str] | None = None,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int | None = None,
        ttl: timedelta | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> None:
        """Publish an event caused by this message."""
        self._messaging.publish(
            event,
            headers=headers,
            delay=delay,
            at=at,
            priority=priority,
            ttl=ttl,
            routing_key=routing_key,
            message_id=message_id,
            correlation_id=correlation_id,
            propagate_headers=propagate_headers,
        )

    @overload
    def ask(
        self,
        query: Query[Answer],
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Answer: ...

    @overload
    def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any: ...

    def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any:
        """Ask a query; its answer comes back at once (typed for a ``Query[T]``)."""
        return self._messaging.ask(
            query,
            headers=headers,
            routing_key=routing_key,
            message_id=message_id,
            correlation_id=correlation_id,
            propagate_headers=propagate_headers,
        )
