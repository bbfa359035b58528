"""Dynamic channel strategies: which concrete channel a message goes to, and which is polled next.

A dynamic channel is one name in business code (``@asynchronous("orders")``) over several concrete
channels (one per tenant, say). Two decisions make it work, and both are made here, by small
functions over values (DESIGN rule 1): a *sending* strategy picks the concrete channel of each
message, and a *receiving* strategy picks the channel a consumer polls next. The classic use is
fairness: one queue per tenant, polled round robin, so a busy tenant cannot starve a quiet one.

Strategies are declared as frozen values (:class:`RoundRobin`, :class:`ByHeader`,
:class:`Throttled`) or as plain functions, and *bound* to the dynamic channel's internal channels
when a ``Messaging`` is built; binding makes the chooser that holds per-process state (a round
robin's cursor, guarded by a lock, since many threads may send and poll at once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from conveyor.core.errors import ConfigurationError, RoutingError

__all__ = [
    "Outbound",
    "Sender",
    "Receiver",
    "SendingStrategy",
    "ReceivingStrategy",
    "RoundRobin",
    "ByHeader",
    "Throttled",
    "round_robin",
    "by_header",
    "throttled",
    "bind_sending",
    "bind_receiving",
]


@dataclass(frozen=True, slots=True)
class Outbound:
    """What a sending strategy sees of a message on its way to a dynamic channel.

    Attributes:
        channel: the dynamic channel's name.
        message_type: the payload's type name (or its routing key).
        endpoint_id: the endpoint the copy is for.
        headers: the message's user headers (``tenant`` and the like).
    """

    channel: str
    message_type: str
    endpoint_id: str
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


Sender = Callable[[Outbound], str]
"""A bound sending strategy: the concrete channel a message goes to."""

Receiver = Callable[[datetime], "str | None"]
"""A bound receiving strategy: the concrete channel to poll now, or None to skip this poll."""


@dataclass(frozen=True, slots=True)
class RoundRobin:
    """One channel after the other, wrapping around (on send and on receive).

    Attributes:
        channels: the channels to rotate over, in order; empty means every internal channel.
    """

    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ByHeader:
    """On send: a header's value chooses the channel.

    Attributes:
        header: the user header to read (``"tenant"``).
        mapping: header value to channel name; None means the value *is* the channel name.
        default: the channel for a message without the header, or whose value is not mapped;
            None means such a send fails with a ``RoutingError`` naming what is mapped.
    """

    header: str
    mapping: Mapping[str, str] | None = None
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Throttled:
    """On receive: round robin, but ``allow(channel, now)`` decides whether a channel is polled.

    A channel it refuses is skipped: nothing is taken from it, nothing is delayed or moved; its
    messages wait until ``allow`` says yes (a rate limit per tenant, business hours, a tenant
    being migrated).

    Attributes:
        allow: called with the channel's name and the clock's time; True polls it now.
        channels: the channels to rotate over; empty means every internal channel.
    """

    allow: Callable[[str, datetime], bool]
    channels: tuple[str, ...] = ()


SendingStrategy = RoundRobin | ByHeader | Callable[[Outbound], str]
"""How a dynamic channel is declared to send: a strategy value, or a plain function that
takes an :class:`Outbound` and returns a channel name."""

ReceivingStrategy = RoundRobin | Throttled | Callable[[], "str | None"]
"""How a dynamic channel is declared to receive: a strategy value, or a plain function that
returns the channel to poll next (None skips the poll)."""


def round_robin(*channels: str) -> RoundRobin:
    """Round robin over ``channels`` (every internal channel when none are named)."""
    return RoundRobin(tuple(channels))


def by_header(
    header: str, mapping: Mapping[str, str] | None = None, *, default: str | None = None
) -> ByHeader:
    """Send by the value of ``header``: through ``mapping``, or as the channel's own name."""
    return ByHeader(
        header, MappingProxyType(dict(mapping)) if mapping is not None else None, default
    )


def throttled(allow: Callable[[str, datetime], bool], *channels: str) -> Throttled:
    """Receive round robin, polling a channel only when ``allow(channel, now)`` says so."""
    return Throttled(allow, tuple(channels))


# ---------------------------------------------------------------------- binding


class _Cursor:
    """A round robin's position: per process, from the first channel, safe across threads."""

    __slots__ = ("_channels", "_lock", "_next")

    def __init__(self, channels: Sequence[str]) -> None:
        self._channels = tuple(channels)
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            chosen = self._channels[self._next]
            self._next = (self._next + 1) % len(self._channels)
            return chosen


def bind_sending(owner: str, strategy: SendingStrategy, internal: Sequence[str]) -> Sender:
    """The sender of dynamic channel ``owner`` over its ``internal`` channels.

    Raises:
        ConfigurationError: the strategy names a channel that is not internal to ``owner``.
    """
    if isinstance(strategy, RoundRobin):
        take = _Cursor(_rotation(owner, strategy.channels, internal, "round_robin")).take
        return lambda outbound: take()
    if isinstance(strategy, ByHeader):
        return _header_sender(owner, strategy, internal)
    if callable(strategy):
        return _checked_sender(owner, strategy, internal)
    raise ConfigurationError(
        f"dynamic channel {owner!r} has sending={strategy!r}; use round_robin(), "
        f"by_header(...) or a function taking an Outbound and returning a channel name."
    )


def bind_receiving(owner: str, strategy: ReceivingStrategy, internal: Sequence[str]) -> Receiver:
    """The receiver of dynamic channel ``owner`` over its ``internal`` channels.

    Raises:
        ConfigurationError: the strategy names a channel that is not internal to ``owner``.
    """
    if isinstance(strategy, RoundRobin):
        take = _Cursor(_rotation(owner, strategy.channels, internal, "round_robin")).take
        return lambda now: take()
    if isinstance(strategy, Throttled):
        allow = strategy.allow
        take = _Cursor(_rotation(owner, strategy.channels, internal, "throttled")).take

        def poll_if_allowed(now: datetime) -> str | None:
            channel = take()
            return channel if allow(channel, now) else None

        return poll_if_allowed
    if callable(strategy):
        custom = strategy
        known = frozenset(internal)

        def poll_custom(now: datetime) -> str | None:
            chosen = custom()
            if chosen is not None and chosen not in known:
                raise ConfigurationError(
                    f"the receiving strategy of dynamic channel {owner!r} chose {chosen!r}, "
                    f"which is not one of its channels ({', '.join(internal)}); return one of "
                    f"them, or None to skip this poll."
                )
            return chosen

        return poll_custom
    raise ConfigurationError(
        f"dynamic channel {owner!r} has receiving={strategy!r}; use round_robin(), "
        f"throttled(...) or a function returning the channel to poll (None to skip)."
    )


def _rotation(
    owner: str, named: tuple[str, ...], internal: Sequence[str], what: str
) -> tuple[str, ...]:
    channels = named or tuple(internal)
    unknown = [c for c in channels if c not in internal]
    if unknown:
        raise ConfigurationError(
            f"dynamic channel {owner!r} has {what}({', '.join(map(repr, named))}), but "
            f"{', '.join(map(repr, unknown))} is not one of its channels "
            f"({', '.join(internal)}); add it to channels=[...] or leave it out."
        )
    return channels


def _header_sender(owner: str, strategy: ByHeader, internal: Sequence[str]) -> Sender:
    mapping, default, header = strategy.mapping, strategy.default, strategy.header
    targets = [*(mapping.values() if mapping is not None else ()), *([default] if default else [])]
    unknown = sorted({t for t in targets if t not in internal})
    if unknown:
        raise ConfigurationError(
            f"dynamic channel {owner!r} sends by header {header!r} to "
            f"{', '.join(map(repr, unknown))}, which is not one of its channels "
            f"({', '.join(internal)}); add it to channels=[...] or fix the mapping."
        )
    known = frozenset(internal)

    def by_value(outbound: Outbound) -> str:
        value = outbound.headers.get(header)
        if value is not None:
            chosen = mapping.get(value) if mapping is not None else value
            if chosen is not None and chosen in known:
                return chosen
        if default is not None:
            return default
        accepted = (
            f"mapped values: {', '.join(map(repr, mapping))}"
            if mapping is not None
            else f"its channels: {', '.join(internal)}"
        )
        got = "no such header" if value is None else f"{header}={value!r}"
        raise RoutingError(
            f"{outbound.message_type} cannot go to dynamic channel {owner!r}: it sends by "
            f"header {header!r} and the message has {got} ({accepted}), and no default is "
            f"declared. Send it with one of those values, or declare "
            f"by_header({header!r}, ..., default=...)."
        )

    return by_value


def _checked_sender(
    owner: str, strategy: Callable[[Outbound], str], internal: Sequence[str]
) -> Sender:
    known = frozenset(internal)

    def send_custom(outbound: Outbound) -> str:
        chosen = strategy(outbound)
        if chosen not in known:
            raise RoutingError(
                f"the sending strategy of dynamic channel {owner!r} chose {chosen!r} for "
                f"{outbound.message_type}, which is not one of its channels "
                f"({', '.join(internal)}); return one of them."
            )
        return chosen

    return send_custom
