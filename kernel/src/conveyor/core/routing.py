"""Routing: which handlers receive a message, decided once per type and cached.

Commands and queries have exactly one handler, found by the payload's class (or a base class)
or by routing key. Events reach every handler of their class, of a base class or of a ``Union``
containing it, and every handler whose routing-key pattern matches, in registration order.
"""

from __future__ import annotations

import re
from typing import TypeVar

from conveyor.core.errors import ConfigurationError, NoHandlerError, RoutingError
from conveyor.core.registry import HandlerSpec

__all__ = ["Router", "matches_pattern", "check_payload", "unrouted_plain_event"]


class Router:
    """Handler lookup for one ``Messaging``; validated when built."""

    __slots__ = ("_by_key", "_by_type", "_cache", "_events", "_queries_by_key", "_queries_by_type")

    def __init__(self, specs: list[HandlerSpec]) -> None:
        self._by_type: dict[type, HandlerSpec] = {}
        self._by_key: dict[str, HandlerSpec] = {}
        self._queries_by_type: dict[type, HandlerSpec] = {}
        self._queries_by_key: dict[str, HandlerSpec] = {}
        # Synchronous subscribers with @priority run first (higher first), the rest in
        # registration order; an asynchronous one's priority is its copy's, on its channel.
        self._events = sorted(
            (s for s in specs if s.kind == "event"),
            key=lambda s: -(s.priority or 0) if not s.is_async else 0,
        )
        self._cache: dict[tuple[str, type | None, str | None], tuple[HandlerSpec, ...]] = {}
        for spec in specs:
            if spec.kind == "command":
                self._add_single(spec, self._by_type, self._by_key, "command")
            elif spec.kind == "query":
                self._add_single(spec, self._queries_by_type, self._queries_by_key, "query")

    @staticmethod
    def _add_single(
        spec: HandlerSpec,
        by_type: dict[type, HandlerSpec],
        by_key: dict[str, HandlerSpec],
        kind: str,
    ) -> None:
        for message_type in spec.message_types:
            _claim(by_type, message_type, spec, kind)
        if spec.routing_key is not None:
            _claim(by_key, spec.routing_key, spec, kind)

    def command(self, payload_type: type | None, routing_key: str | None) -> HandlerSpec:
        return self._single(
            payload_type, routing_key, self._by_type, self._by_key, "command", "send"
        )

    def query(self, payload_type: type | None, routing_key: str | None) -> HandlerSpec:
        return self._single(
            payload_type, routing_key, self._queries_by_type, self._queries_by_key, "query", "ask"
        )

    def has_command(self, payload_type: type) -> bool:
        return any(base in self._by_type for base in payload_type.__mro__)

    def _single(
        self,
        payload_type: type | None,
        routing_key: str | None,
        by_type: dict[type, HandlerSpec],
        by_key: dict[str, HandlerSpec],
        kind: str,
        verb: str,
    ) -> HandlerSpec:
        if routing_key is not None:
            found = by_key.get(routing_key)
            if found is not None:
                return found
        if payload_type is not None:
            found = by_type.get(payload_type)
            if found is not None:
                return found
            for base in payload_type.__mro__[1:]:
                found = by_type.get(base)
                if found is not None:
                    return found
        what = repr(routing_key) if routing_key is not None else _name(payload_type)
        known = sorted({_name(t) for t in by_type} | {repr(k) for k in by_key})
        listed = ", ".join(known) if known else "none"
        raise NoHandlerError(
            f"no {kind} handler for {what}. Registered {kind} handlers handle: {listed}. "
            f"Mark a handler with @{kind}_handler and pass it in Messaging(handlers=[...]), "
            f"or check the type you {verb}."
        )

    def events(self, payload_type: type | None, routing_key: str | None) -> tuple[HandlerSpec, ...]:
        cache_key = ("event", payload_type, routing_key)
        found = self._cache.get(cache_key)
        if found is None:
            mro = payload_type.__mro__ if payload_type is not None else ()
            found = tuple(
                spec
                for spec in self._events
                if any(t in mro for t in spec.message_types)
                or (
                    routing_key is not None
                    and spec.routing_key is not None
                    and matches_pattern(spec.routing_key, routing_key)
                )
            )
            self._cache[cache_key] = found
        return found


K = TypeVar("K", type, str)


def _claim(table: dict[K, HandlerSpec], key: K, spec: HandlerSpec, kind: str) -> None:
    other = table.get(key)
    if other is not None:
        shown = key.__qualname__ if isinstance(key, type) else repr(key)
        raise ConfigurationError(
            f"two {kind} handlers for {shown}: {other.name} and {spec.name}. A {kind} "
            f"has exactly one handler; remove one, or publish an event instead if both "
            f"should react."
        )
    table[key] = spec


def _name(payload_type: type | None) -> str:
    return payload_type.__qualname__ if payload_type is not None else "None"


def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for word in pattern.split("."):
        if word == "*":
            parts.append(r"[^.]+")
        elif word == "#":
            parts.append(r".*")
        else:
            parts.append(re.escape(word))
    return re.compile(r"\.".join(parts).replace(r".*\.", r"(?:.*\.)?") + r"\Z")


def matches_pattern(pattern: str, key: str) -> bool:
    """Whether routing key ``key`` matches ``pattern`` (``*``: one word, ``#``: any words)."""
    if "*" not in pattern and "#" not in pattern:
        return pattern == key
    return _compile(pattern).match(key) is not None


def check_payload(verb: str, payload: object) -> None:
    """Refuse a class where a message goes: ``send(PlaceOrder)`` means ``send(PlaceOrder(...))``.

    Routing by ``type(payload)`` would look for a handler of ``type`` and say that none exists,
    which hides the slip; the error names the fix instead.
    """
    if isinstance(payload, type):
        name = payload.__qualname__
        raise RoutingError(
            f"{verb}() takes a message, got the class {name} itself; create one: "
            f"{verb}({name}(...))."
        )


def unrouted_plain_event(payload: object) -> RoutingError:
    """The error for ``publish({"x": 1})``: plain data without a routing key reaches no one."""
    kind = type(payload).__name__
    return RoutingError(
        f"publish() got a {kind} ({payload!r:.60}) and no routing_key, so no handler can receive "
        f'it: plain data is routed by name. Pass routing_key="order.placed" (handlers subscribe '
        f"with @event_handler(routing_key=...)), or publish a dataclass, routed by its type."
    )
