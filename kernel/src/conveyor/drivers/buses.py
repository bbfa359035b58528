"""Narrow bus interfaces for application code.

Application services depend on ``CommandBus`` (or ``EventBus``, ``QueryBus``) rather than on
``Messaging``, so a test can hand them any object with the same verbs, and the composition root
decides whether a bus is synchronous or goes through a channel first
(``messaging.command_bus("outbox")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, overload, runtime_checkable

from conveyor.core.queries import Answer, Query
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT

__all__ = ["CommandBus", "EventBus", "QueryBus", "Buses", "BusView"]


# The verbs take the keywords of ``Messaging``'s, so a ``Messaging``, a ``Harness`` and a
# ``BusView`` are each a ``CommandBus``, an ``EventBus`` and a ``QueryBus`` to a type checker.


@runtime_checkable
class CommandBus(Protocol):
    """Sends commands (``Messaging``, ``messaging.command_bus(...)``, a test harness)."""

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
    ) -> object: ...


@runtime_checkable
class EventBus(Protocol):
    """Publishes events (``Messaging``, ``messaging.event_bus(...)``, a test harness)."""

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
    ) -> None: ...


@runtime_checkable
class QueryBus(Protocol):
    """Asks queries; the answer is typed for a query class derived from ``Query[T]``."""

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


class Buses(Protocol):
    """The three verbs of a ``Messaging``, and sending through a channel for an async bus.

    What a ``Context`` and a ``BusView`` are given instead of the ``Messaging`` itself.
    """

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
    ) -> object: ...

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
    ) -> None: ...

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

    def send_through(
        self,
        channel: str,
        payload: object,
        *,
        bus: str,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> None: ...


class BusView:
    """A narrow bus for application code (``CommandBus``, ``EventBus``, ``QueryBus``).

    With a channel, it is an asynchronous bus: every message goes through the channel first,
    and its consumer routes it as the plain bus would.
    """

    __slots__ = ("_bus", "_channel", "_messaging")

    def __init__(self, messaging: Buses, channel: str | None, bus: str) -> None:
        self._messaging = messaging
        self._channel = channel
        self._bus = bus

    def send(self, command: object, **options: Any) -> object:
        if self._channel is None:
            return self._messaging.send(command, **options)
        self._messaging.send_through(self._channel, command, bus=BUS_COMMAND, **options)
        return None

    def publish(self, event: object, **options: Any) -> None:
        if self._channel is None:
            self._messaging.publish(event, **options)
        else:
            self._messaging.send_through(self._channel, event, bus=BUS_EVENT, **options)

    @overload
    def ask(self, query: Query[Answer], **options: Any) -> Answer: ...

    @overload
    def ask(self, query: object, **options: Any) -> Any: ...

    def ask(self, query: object, **options: Any) -> Any:
        return self._messaging.ask(query, **options)
