"""Delivery options of one send: when it is due, its priority, when it expires.

Options given at send apply to every copy; a handler's own ``@delayed``, ``@priority`` and
``@time_to_live`` win for its copy. A due time in the past means now. Time to live counts from
when the copy becomes due, so a delayed message is not born expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.core.clock import Clock, ensure_aware
from conveyor.core.errors import RoutingError
from conveyor.core.registry import HandlerSpec

__all__ = ["DeliveryOptions", "NO_OPTIONS"]


class DeliveryOptions:
    """Delivery options of one send: when it is due, its priority, when it expires."""

    __slots__ = ("any", "available_at", "expires_at", "priority", "ttl")

    def __init__(
        self,
        available_at: datetime | None,
        priority: int | None,
        ttl: timedelta | None,
        expires_at: datetime | None,
    ) -> None:
        self.available_at = available_at
        self.priority = priority or 0
        self.ttl = ttl
        self.expires_at = expires_at
        self.any = available_at is not None or priority is not None or ttl is not None

    @staticmethod
    def build(
        clock: Clock,
        delay: timedelta | None,
        at: datetime | None,
        priority: int | None,
        ttl: timedelta | None,
    ) -> DeliveryOptions:
        if delay is None and at is None and priority is None and ttl is None:
            return NO_OPTIONS
        if delay is not None and at is not None:
            raise RoutingError("pass delay= or at=, not both: one says how long, one says when")
        now = clock.now()
        available_at = None
        if delay is not None:
            if delay < timedelta(0):
                raise RoutingError(f"delay= cannot be negative, got {delay}; use at= for a time")
            available_at = now + delay
        elif at is not None:
            available_at = max(ensure_aware(at, what="at="), now)  # a past due time means now
        if ttl is not None and ttl <= timedelta(0):
            raise RoutingError(f"ttl= must be positive, got {ttl}")
        expires_at = (available_at or now) + ttl if ttl is not None else None
        return DeliveryOptions(available_at, priority, ttl, expires_at)

    def for_handler(self, spec: HandlerSpec, clock: Clock) -> DeliveryOptions:
        """Per-handler options (``@delayed``, ``@priority``, ``@time_to_live``) win."""
        if spec.delay is None and spec.priority is None and spec.ttl is None:
            return self
        now = clock.now()
        available_at = now + spec.delay if spec.delay is not None else self.available_at
        priority = spec.priority if spec.priority is not None else self.priority
        ttl = spec.ttl if spec.ttl is not None else self.ttl
        expires_at = (available_at or now) + ttl if ttl is not None else None
        return DeliveryOptions(available_at, priority, ttl, expires_at)


NO_OPTIONS = DeliveryOptions(None, None, None, None)
