"""Delivery options of one send: when it is due, its priority, when it expires.

Options given at send apply to every copy; a handler's own ``@delayed``, ``@priority`` and
``@time_to_live`` win for its copy. A due time in the past means now. Time to live counts from
when the copy becomes due, so a delayed message is not born expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conveyor.core.clock import Clock, ensure_aware
from conveyor.core.errors import RoutingError
from conveyor.core.handlers import PRIORITY_RANGE, DeliveryRule
from conveyor.core.instants import before_latest, later, readable
from conveyor.core.registry import HandlerSpec

__all__ = ["DeliveryOptions", "NO_OPTIONS", "check_priority"]


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
        if priority is not None:
            check_priority(priority, "priority=")
        now = clock.now()
        available_at = None
        if delay is not None:
            _check_duration(delay, "delay")
            if delay < timedelta(0):
                raise RoutingError(
                    f"delay= cannot be negative, got {readable(delay)}; pass a duration of zero "
                    f"or more, or at= for a point in time."
                )
            available_at = later(now, delay, what="delay=")
        elif at is not None:
            at = before_latest(ensure_aware(at, what="at="), what="at=")
            available_at = max(at, now)  # a past due time means now
        if ttl is not None:
            _check_duration(ttl, "ttl")
            if ttl <= timedelta(0):
                raise RoutingError(
                    f"ttl= must be positive, got {readable(ttl)}; leave it out for no expiry."
                )
        expires_at = later(available_at or now, ttl, what="ttl=") if ttl is not None else None
        return DeliveryOptions(available_at, priority, ttl, expires_at)

    def for_handler(
        self, spec: HandlerSpec, clock: Clock, payload: object = None
    ) -> DeliveryOptions:
        """Per-handler options (``@delayed``, ``@priority``, ``@time_to_live``) win, unless
        declared ``fallback=True`` and the send gave its own; a rule that is a function of the
        message is called with ``payload``."""
        if spec.delivery_rules:
            return self._by_rules(spec, clock, payload)
        if spec.delay is None and spec.priority is None and spec.ttl is None:
            return self
        now = clock.now()
        available_at = (
            later(now, spec.delay, what=f"@delayed on {spec.name}")
            if spec.delay is not None
            else self.available_at
        )
        priority = spec.priority if spec.priority is not None else self.priority
        ttl = spec.ttl if spec.ttl is not None else self.ttl
        expires_at = (
            later(available_at or now, ttl, what=f"time to live of {spec.name}")
            if ttl is not None
            else None
        )
        return DeliveryOptions(available_at, priority, ttl, expires_at)

    def _by_rules(self, spec: HandlerSpec, clock: Clock, payload: object) -> DeliveryOptions:
        rules = dict(spec.delivery_rules)
        now = clock.now()
        delay = _ruled(rules.get("delay"), spec.delay, self.available_at, payload)
        available_at: datetime | None
        if delay is not None:
            _check_duration(delay, f"@delayed on {spec.name}")
            if delay < timedelta(0):
                raise RoutingError(
                    f"@delayed on {spec.name} computed a negative delay ({readable(delay)}) "
                    f"for {type(payload).__qualname__}; return zero or more, or None."
                )
            available_at = later(now, delay, what=f"@delayed on {spec.name}")
        else:
            available_at = self.available_at
        level = _ruled(rules.get("priority"), spec.priority, self.priority or None, payload)
        priority = (
            check_priority(level, f"@priority on {spec.name}")
            if level is not None
            else self.priority
        )
        ttl = _ruled(rules.get("ttl"), spec.ttl, self.ttl, payload)
        if ttl is not None:
            _check_duration(ttl, f"@time_to_live on {spec.name}")
            if ttl <= timedelta(0):
                raise RoutingError(
                    f"@time_to_live on {spec.name} computed {readable(ttl)} for "
                    f"{type(payload).__qualname__}; return a positive duration, or None."
                )
        else:
            ttl = self.ttl
        expires_at = (
            later(available_at or now, ttl, what=f"time to live of {spec.name}")
            if ttl is not None
            else None
        )
        return DeliveryOptions(available_at, priority, ttl, expires_at)


def _ruled(rule: DeliveryRule | None, constant: object, sent: object, payload: object) -> Any:
    """The handler's value of one option for this message; None when it sets none.

    A fallback rule gives way to what the send asked for (``sent`` not None).
    """
    if rule is None:
        return constant
    if rule.fallback and sent is not None:
        return None
    value = rule.value
    return value(payload) if callable(value) and not isinstance(value, timedelta | int) else value


def check_priority(level: object, what: str) -> int:
    """``level`` if it is a priority a message can carry; a clear error naming ``what`` if not."""
    if not isinstance(level, int) or isinstance(level, bool):
        raise RoutingError(
            f"{what} takes an int (higher is received first), got a value of type "
            f"{type(level).__name__}; "
            f"for example priority=10. Map names such as 'high' to numbers in your own code."
        )
    if level not in PRIORITY_RANGE:
        raise RoutingError(
            f"{what} must fit in a signed 64-bit integer (from -2**63 to 2**63 - 1), the widest "
            f"priority a broker or store can keep; got a number of {level.bit_length()} bits. "
            f"Use a small range such as 0 to 10."
        )
    return level


def _check_duration(value: object, name: str) -> None:
    if isinstance(value, timedelta):
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise RoutingError(
            f"{name}= takes a timedelta, got the number {value!r}: say the unit, for example "
            f"{name}=timedelta(seconds={value!r})."
        )
    raise RoutingError(
        f"{name}= takes a timedelta, got a value of type {type(value).__name__}; for example "
        f"{name}=timedelta(seconds=5)."
    )


NO_OPTIONS = DeliveryOptions(None, None, None, None)
