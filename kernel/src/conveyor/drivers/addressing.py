"""Which handlers a verb reaches and with which delivery options: shared by both drivers.

``send``, ``publish`` and ``ask`` decide the same way in ``Messaging`` and ``AsyncMessaging``: a
command by its exact type first (the common send skips the router's search), a JSON payload
with a routing key by the key alone, delivery options only for asynchronous handlers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.core.delivery import NO_OPTIONS, DeliveryOptions
from conveyor.core.errors import RoutingError
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.core.routing import Router

__all__ = ["Addressing"]


class Addressing:
    """Finds the handlers of a payload and builds its delivery options."""

    __slots__ = ("_clock", "_commands", "router")

    def __init__(self, router: Router, specs: tuple[HandlerSpec, ...], clock: Clock) -> None:
        self.router = router
        self._clock = clock
        self._commands = {t: s for s in specs if s.kind == "command" for t in s.message_types}

    def command(self, command: object, routing_key: str | None) -> HandlerSpec:
        """The one handler of a command."""
        if routing_key is None:
            spec = self._commands.get(type(command))
            if spec is not None:
                return spec
        return self.router.command(_routed_type(command, routing_key), routing_key)

    def events(self, event: object, routing_key: str | None) -> tuple[HandlerSpec, ...]:
        """Every handler of an event, in registration order."""
        return self.router.events(_routed_type(event, routing_key), routing_key)

    def query(self, query: object, routing_key: str | None) -> HandlerSpec:
        """The one handler of a query."""
        return self.router.query(_routed_type(query, routing_key), routing_key)

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
        if options.any:
            raise RoutingError(
                f"send({message.type_name}, delay/at/priority/ttl=...) asks for delivery "
                f"options, but its handler {spec.name} runs synchronously. Make the handler "
                f"@asynchronous(...) or send without delivery options."
            )


def _routed_type(payload: object, routing_key: str | None) -> type | None:
    """The type to route by: None for a JSON payload sent with a routing key (the key routes)."""
    if routing_key and (
        isinstance(payload, dict | list | str | int | float | bool) or payload is None
    ):
        return None
    return type(payload)
