"""The asyncio twin of ``Context``: what an ``async def`` handler may know and do while it runs.

Its verbs are awaitable, because they may send to a transport (a synchronous handler called
through ``send`` runs to its end before ``send`` returns). Messages sent through it are caused by
the message being handled and leave only if the handler succeeds, as with ``Context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, overload

from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState
from conveyor.core.message import Message
from conveyor.core.queries import Answer, Query
from conveyor.drivers.context import Handling

__all__ = ["AsyncContext", "AsyncBuses"]


class AsyncBuses(Protocol):
    """The three awaitable verbs of an ``AsyncMessaging``; what an ``AsyncContext`` is given."""

    async def send(
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

    async def publish(
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

    async def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
    ) -> Any: ...


class AsyncContext(Handling):
    """Headers of the message being handled, and the awaitable buses, bound to it."""

    __slots__ = ("_messaging",)

    def __init__(
        self,
        messaging: AsyncBuses,
        clock: Clock,
        message: Message,
        endpoint_id: str | None,
        channel: str | None,
        attempt: AttemptState | None = None,
    ) -> None:
        super().__init__(clock, message, endpoint_id, channel, attempt)
        self._messaging = messaging

    async def send(self, command: object, **options: Any) -> object:
        """Send a command caused by this message (the options of ``AsyncMessaging.send``)."""
        return await self._messaging.send(command, **options)

    async def publish(self, event: object, **options: Any) -> None:
        """Publish an event caused by this message (the options of ``AsyncMessaging.publish``)."""
        await self._messaging.publish(event, **options)

    @overload
    async def ask(self, query: Query[Answer], **options: Any) -> Answer: ...

    @overload
    async def ask(self, query: object, **options: Any) -> Any: ...

    async def ask(self, query: object, **options: Any) -> Any:
        """Ask a query; its answer comes back once its handler returns (typed for a
        ``Query[T]``)."""
        return await self._messaging.ask(query, **options)
