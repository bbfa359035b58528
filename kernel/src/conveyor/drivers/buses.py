"""Narrow bus interfaces for application code.

Application services depend on ``CommandBus`` (or ``EventBus``, ``QueryBus``) rather than on
``Messaging``, so a test can hand them any object with the same verbs, and the composition root
decides whether a bus is synchronous or goes through a channel first
(``messaging.command_bus("outbox")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from conveyor.core.wire import BUS_COMMAND, BUS_EVENT

__all__ = ["CommandBus", "EventBus", "QueryBus", "Buses", "BusView"]


@runtime_checkable
class CommandBus(Protocol):
    def send(self, command: object, **options: Any) -> object: ...


@runtime_checkable
class EventBus(Protocol):
    def publish(self, event: object, **options: Any) -> None: ...


@runtime_checkable
class QueryBus(Protocol):
    def ask(self, query: object, **options: Any) -> Any: ...


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

    def ask(self, query: object, **options: Any) -> Any:
        return self._messaging.ask(query, **options)
