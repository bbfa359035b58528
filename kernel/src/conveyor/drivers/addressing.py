"""Which handlers a verb reaches and with which delivery options: shared by both drivers.

``send``, ``publish`` and ``ask`` decide the same way in ``Messaging`` and ``AsyncMessaging``,
because both call this module and decide nothing themselves: a class where a message goes is
refused, a command is routed by its exact type first (the common send skips the router's
search), a JSON payload with a routing key by the key alone, plain data published without a
key is refused (it would reach no one), delivery options apply only to asynchronous handlers,
and an asynchronous bus sends only through a declared bus channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from conveyor.core.clock import Clock
from conveyor.core.delivery import NO_OPTIONS, DeliveryOptions
from conveyor.core.errors import ConfigurationError, ConveyorError, RoutingError
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.routing import Router, check_payload, unrouted_plain_event
from conveyor.transports.dynamic import internal_channel_error

__all__ = ["Addressing", "check_bus_channel"]


class _BusFlag(Protocol):
    @property
    def bus(self) -> bool: ...


class Addressing:
    """Finds the handlers of a payload and builds its delivery options."""

    __slots__ = ("_clock", "_events", "commands", "queries", "router")

    def __init__(self, router: Router, specs: tuple[HandlerSpec, ...], clock: Clock) -> None:
        self.router = router
        self._clock = clock
        # The common verb names a handled type exactly and no routing key: one lookup each
        # (the bus verbs look ``commands`` and ``queries`` up themselves, before any call).
        self.commands = {t: s for s in specs if s.kind == "command" for t in s.message_types}
        self.queries = {t: s for s in specs if s.kind == "query" for t in s.message_types}
        self._events = {
            t: router.events(t, None) for s in specs if s.kind == "event" for t in s.message_types
        }

    def command(self, command: object, routing_key: str | None) -> HandlerSpec:
        """The one handler of a command."""
        if routing_key is None:
            spec = self.commands.get(type(command))
            if spec is not None:
                return spec
        check_payload("send", command)
        return self.router.command(_routed_type(command, routing_key), routing_key)

    def events(self, event: object, routing_key: str | None) -> tuple[HandlerSpec, ...]:
        """Every handler of an event, in registration order (none is fine for a typed event)."""
        if routing_key is None:
            specs = self._events.get(type(event))
            if specs is not None:
                return specs
        check_payload("publish", event)
        specs = self.router.events(_routed_type(event, routing_key), routing_key)
        if not specs and routing_key is None and isinstance(event, dict | list):
            raise unrouted_plain_event(event)
        return specs

    def query(self, query: object, routing_key: str | None) -> HandlerSpec:
        """The one handler of a query."""
        if routing_key is None:
            spec = self.queries.get(type(query))
            if spec is not None:
                return spec
        check_payload("ask", query)
        return self.router.query(_routed_type(query, routing_key), routing_key)

    def own_retry(self, verb: str, message: object, routing_key: str | None) -> RetryPolicy | None:
        """The instant retries of the synchronous handler ``verb`` would call, if it has its own
        (``@command_handler(retry=...)``); None for none, an event, or no such handler."""
        try:
            if verb == "send":
                spec = self.command(message, routing_key)
            elif verb == "ask":
                spec = self.query(message, routing_key)
            else:
                return None
        except ConveyorError:
            return None
        return None if spec.is_async else spec.retry

    def options(
        self,
        delay: timedelta | None,
        at: datetime | None,
        priority: int | None,
        ttl: timedelta | None,
    ) -> DeliveryOptions:
        if delay is None and at is None and priority is None and ttl is None:
            return NO_OPTIONS
        return DeliveryOptions.build(self._clock, delay, at, priority, ttl)

    @staticmethod
    def refuse_options(spec: HandlerSpec, message: Message, options: DeliveryOptions) -> None:
        """Delivery options cannot apply to a command whose handler runs synchronously."""
        if options.any and not spec.is_async:
            raise RoutingError(
                f"send({message.type_name}, delay/at/priority/ttl=...) asks for delivery "
                f"options, but its handler {spec.name} runs synchronously. Make the handler "
                f"@asynchronous(...) or send without delivery options."
            )


def check_bus_channel(
    channel: str, channels: Mapping[str, _BusFlag], internal: Mapping[str, str]
) -> None:
    """An asynchronous bus sends only through a declared channel that carries bus messages."""
    if channel in internal:
        raise internal_channel_error(channel, internal[channel], "an asynchronous bus uses")
    runtime = channels.get(channel)
    if runtime is None:
        raise ConfigurationError(
            f"asynchronous bus channel {channel!r} is not declared; declared: "
            f"{', '.join(channels) or 'none'}."
        )
    if not runtime.bus:
        raise ConfigurationError(
            f"channel {channel!r} does not carry an asynchronous bus's messages: "
            f"asynchronous handlers are bound to it, and its consumer routes a bus message "
            f"only on a bus channel (so a forged one cannot reach every handler). Use a "
            f"channel of its own for the bus, or declare this one with bus=True, for "
            f"example QueueChannel({channel!r}, bus=True)."
        )


def _routed_type(payload: object, routing_key: str | None) -> type | None:
    """The type to route by: None for a JSON payload sent with a routing key (the key routes)."""
    if routing_key and (
        isinstance(payload, dict | list | str | int | float | bool) or payload is None
    ):
        return None
    return type(payload)
