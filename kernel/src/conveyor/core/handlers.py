"""Decorators that mark handlers. They only attach metadata: nothing registers globally.

A ``Messaging`` is built from an explicit list of functions and objects; it reads these marks
then. The same function can be passed to two ``Messaging`` instances with different channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar, overload

from conveyor.core.errors import ConfigurationError
from conveyor.core.instants import readable
from conveyor.core.retry import RetryPolicy

ErrorHandler = Callable[..., object] | str
"""An error handler: a handler function taking a ``Failure``, or its endpoint id."""

__all__ = [
    "HandlerMark",
    "command_handler",
    "event_handler",
    "query_handler",
    "asynchronous",
    "delayed",
    "DeliveryRule",
    "priority",
    "time_to_live",
    "Marker",
    "handler_mark",
    "options_of",
    "same_marks",
    "set_option",
    "PRIORITY_RANGE",
]

#: Priorities a message may carry: a signed 64-bit integer, what every store and broker header
#: can hold. Brokers with fewer levels map them onto their own.
PRIORITY_RANGE = range(-(2**63), 2**63)

F = TypeVar("F", bound=Callable[..., Any])
HandlerKind = Literal["command", "event", "query", "scheduled"]

_MARK = "__conveyor_handler__"
_OPTIONS = "__conveyor_options__"


@dataclass(frozen=True, slots=True)
class HandlerMark:
    """What a handler decorator records on a function."""

    kind: HandlerKind
    routing_key: str | None = None
    endpoint_id: str | None = None
    retry: RetryPolicy | None = None  # a synchronous handler's own instant retries


def handler_mark(target: object) -> HandlerMark | None:
    """The mark on a function or method, if any."""
    mark = getattr(target, _MARK, None)
    return mark if isinstance(mark, HandlerMark) else None


def options_of(target: object) -> dict[str, object]:
    """Options set on a function or class by ``@asynchronous``, ``@delayed`` and friends."""
    found = getattr(target, "__dict__", {}).get(_OPTIONS)
    return dict(found) if isinstance(found, dict) else {}


def same_marks(target: object, mark: HandlerMark, options: dict[str, object]) -> bool:
    """Whether ``target`` still carries this very ``mark`` and options equal to ``options``.

    The cheap re-check of a handler read before (``conveyor.core.registry``): a mark set
    again, even an equal one, is a change; options are compared by value, without a copy.
    """
    attrs = getattr(target, "__dict__", None)
    return attrs is not None and attrs.get(_MARK) is mark and attrs.get(_OPTIONS, {}) == options


def set_option(name: str, value: object) -> Callable[[F], F]:
    """A decorator that records one option on a function or class, in any decorator order."""

    def apply(target: F) -> F:
        current = target.__dict__.get(_OPTIONS)
        if not isinstance(current, dict):
            current = {}
            setattr(target, _OPTIONS, current)
        if name in current and current[name] != value:
            raise ConfigurationError(
                f"{getattr(target, '__qualname__', target)!r} sets option {name!r} twice "
                f"({current[name]!r} and {value!r}); keep one decorator."
            )
        current[name] = value
        return target

    return apply


def _mark(
    kind: HandlerKind,
    routing_key: str | None,
    endpoint_id: str | None,
    retry: RetryPolicy | None = None,
) -> Callable[[F], F]:
    if retry is not None and (not isinstance(retry, RetryPolicy) or retry.delays is not None):
        raise ConfigurationError(
            f"@{kind}_handler(retry=...) takes RetryPolicy(instant=..., on=...): a synchronous "
            f"call is retried at once, with no channel where a delayed retry could wait; got "
            f"{retry!r}. For delayed retries make the handler @asynchronous(..., retry=...)."
        )

    def apply(function: F) -> F:
        if not callable(function):
            raise ConfigurationError(f"@{kind}_handler decorates a function, got {function!r}")
        existing = handler_mark(function)
        if existing is not None and existing.kind != kind:
            raise ConfigurationError(
                f"{function.__qualname__} is marked both @{existing.kind}_handler and "
                f"@{kind}_handler; a handler has one role. Split it into two functions."
            )
        setattr(function, _MARK, HandlerMark(kind, routing_key, endpoint_id, retry))
        return function

    return apply


@overload
def command_handler(function: F, /) -> F: ...
@overload
def command_handler(
    *,
    routing_key: str | None = None,
    endpoint_id: str | None = None,
    retry: RetryPolicy | None = None,
) -> Callable[[F], F]: ...
def command_handler(
    function: F | None = None,
    /,
    *,
    routing_key: str | None = None,
    endpoint_id: str | None = None,
    retry: RetryPolicy | None = None,
) -> F | Callable[[F], F]:
    """Mark a command handler: exactly one per command type (or routing key); may return a value.

    Routed by the type of the first parameter, or by ``routing_key="order.place"``.
    ``retry=RetryPolicy(instant=3, on=StaleVersion)``: a synchronous handler's own instant
    retries (the optimistic-locking case). Sent from application code, each attempt is a whole
    new call (its own scope and transaction, the same message id), and this setting wins over
    the bus's ``command_bus(retry=...)``; called inside another handler, a failure goes to the
    enclosing work, whose own retry runs it all again.
    """
    decorator = _mark("command", routing_key, endpoint_id, retry)
    return decorator(function) if function is not None else decorator


@overload
def event_handler(function: F, /) -> F: ...
@overload
def event_handler(
    *, routing_key: str | None = None, endpoint_id: str | None = None
) -> Callable[[F], F]: ...
def event_handler(
    function: F | None = None,
    /,
    *,
    routing_key: str | None = None,
    endpoint_id: str | None = None,
) -> F | Callable[[F], F]:
    """Mark an event handler: any number per event, run in registration order.

    Receives events of the first parameter's type, its subclasses and ``Union`` members, or
    events published under a routing key matching ``routing_key`` (``*`` matches one
    dot-separated word, ``#`` any number of words).
    """
    decorator = _mark("event", routing_key, endpoint_id)
    return decorator(function) if function is not None else decorator


@overload
def query_handler(function: F, /) -> F: ...
@overload
def query_handler(
    *,
    routing_key: str | None = None,
    endpoint_id: str | None = None,
    retry: RetryPolicy | None = None,
) -> Callable[[F], F]: ...
def query_handler(
    function: F | None = None,
    /,
    *,
    routing_key: str | None = None,
    endpoint_id: str | None = None,
    retry: RetryPolicy | None = None,
) -> F | Callable[[F], F]:
    """Mark a query handler: exactly one per query type; ``ask`` returns its value.

    ``retry=RetryPolicy(instant=...)``: its own instant retries, as ``command_handler``'s.
    """
    decorator = _mark("query", routing_key, endpoint_id, retry)
    return decorator(function) if function is not None else decorator


@dataclass(frozen=True, slots=True)
class AsyncOptions:
    """What ``@asynchronous`` records: the channel sequence and per-handler failure policy."""

    channels: tuple[str, ...]
    endpoint_id: str | None = None
    retry: RetryPolicy | None = None
    error_handler: ErrorHandler | None = None
    dead_letter: bool | None = None


def asynchronous(
    *channels: str,
    endpoint_id: str | None = None,
    retry: RetryPolicy | None = None,
    error_handler: ErrorHandler | None = None,
    dead_letter: bool | None = None,
) -> Callable[[F], F]:
    """Handle asynchronously: through ``channels`` in sequence, then the handler.

    ``@asynchronous("orders")`` queues the handler's copy on "orders"; a consumer of "orders"
    runs it. ``@asynchronous("outbox", "orders")`` goes through "outbox" first. On a class it
    applies to every handler of the class. ``retry``, ``error_handler`` and ``dead_letter`` set
    this handler's failure policy; they win over the channel's.
    """
    if not channels or any(not isinstance(c, str) or not c for c in channels):
        raise ConfigurationError(
            f"@asynchronous needs one or more channel names, got {channels!r}; "
            f'for example @asynchronous("orders").'
        )
    return set_option(
        "async", AsyncOptions(tuple(channels), endpoint_id, retry, error_handler, dead_letter)
    )


def _duration(value: timedelta | int | float, what: str) -> timedelta:
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            duration = timedelta(milliseconds=value)
        except (OverflowError, ValueError):  # nan, inf, or more than 999,999,999 days
            raise ConfigurationError(
                f"@{what}({value!r}) is not a duration in milliseconds a timedelta can hold; "
                f"pass a timedelta, for example @{what}(timedelta(hours=1))."
            ) from None
    else:
        raise ConfigurationError(
            f"@{what} takes a timedelta or a number of milliseconds, got a "
            f"{type(value).__name__}; for example @{what}(timedelta(seconds=5))."
        )
    if duration < timedelta(0):
        raise ConfigurationError(
            f"@{what} cannot be negative, got {readable(duration)}; pass zero or more."
        )
    return duration


@dataclass(frozen=True, slots=True)
class DeliveryRule:
    """A per-handler delivery option that is computed from the message, or gives way to the
    send's own option (``fallback``).

    Attributes:
        value: the option (a timedelta, or an int for priority), or a function of the message
            payload that returns it (None: the handler sets nothing for this message).
        fallback: the send's own ``delay=``/``at=``, ``priority=`` or ``ttl=`` wins when given.
    """

    value: object
    fallback: bool = False


def _rule(value: object, fallback: bool, what: str, check: Callable[[Any, str], object]) -> object:
    """A constant without fallback stays a plain value (the common, cheapest case)."""
    if callable(value) and not isinstance(value, timedelta | int | float):
        return DeliveryRule(value, fallback)
    checked = check(value, what)
    return DeliveryRule(checked, True) if fallback else checked


def delayed(
    delay: timedelta | int | float | Callable[[Any], timedelta | None], *, fallback: bool = False
) -> Callable[[F], F]:
    """Deliver this handler's copy ``delay`` after it is sent (a timedelta, or milliseconds).

    ``delay`` may be a function of the message (the reminder delay an event carries), and with
    ``fallback=True`` a send's own ``delay=`` or ``at=`` wins over it.
    """
    return set_option("delay", _rule(delay, fallback, "delayed", _duration))


def priority(
    level: int | Callable[[Any], int | None], *, fallback: bool = False
) -> Callable[[F], F]:
    """Give this handler's copy a priority: higher is received first among due messages.

    ``level`` may be a function of the message; with ``fallback=True`` a send's ``priority=``
    wins.
    """
    return set_option("priority", _rule(level, fallback, "priority", _level))


def _level(level: object, what: str) -> int:
    if not isinstance(level, int) or isinstance(level, bool):
        raise ConfigurationError(
            f"@{what} takes an int (higher is received first), got a value of type "
            f"{type(level).__name__}; "
            f"for example @priority(10)."
        )
    if level not in PRIORITY_RANGE:
        raise ConfigurationError(
            f"@{what} must fit in a signed 64-bit integer (from -2**63 to 2**63 - 1), the "
            f"widest priority a broker or store can keep; got a number of {level.bit_length()} "
            f"bits. Use a small range such as 0 to 10."
        )
    return level


def time_to_live(
    ttl: timedelta | int | float | Callable[[Any], timedelta | None], *, fallback: bool = False
) -> Callable[[F], F]:
    """Expire this handler's copy if it is not handled within ``ttl`` of being sent.

    ``ttl`` may be a function of the message; with ``fallback=True`` a send's ``ttl=`` wins.
    """
    return set_option("ttl", _rule(ttl, fallback, "time_to_live", _duration))


class Marker:
    """A named marker for handlers, so interceptors can select them.

    ``audited = Marker("audited")``; ``@audited`` on handlers; ``@around(on=audited)`` on the
    interceptor.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, target: F) -> F:
        current = target.__dict__.get(_OPTIONS)
        if not isinstance(current, dict):
            current = {}
            setattr(target, _OPTIONS, current)
        markers = current.get("markers", frozenset())
        assert isinstance(markers, frozenset)
        current["markers"] = markers | {self.name}
        return target

    def __repr__(self) -> str:
        return f"Marker({self.name!r})"
