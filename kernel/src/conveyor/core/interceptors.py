"""Interceptors: code that runs before, around or after handlers, selected and ordered explicitly.

``@before``, ``@around`` and ``@after`` only mark functions (or methods); pass them, or the
object that holds them, in ``Messaging(handlers=[...])`` or ``interceptors=[...]``. Lower
``order`` runs further outside; equal orders keep registration order. Interceptors run inside
the kernel's own stack (retries, transaction, collector, deduplication), next to the handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from conveyor.core.errors import ConfigurationError
from conveyor.core.handlers import Marker
from conveyor.core.message import Message

__all__ = ["before", "around", "after", "InterceptorMark", "Interceptor", "interceptor_mark"]

F = TypeVar("F", bound=Callable[..., Any])
InterceptorKind = Literal["before", "around", "after"]
Selector = type | Marker
_MARK = "__conveyor_interceptor__"


@dataclass(frozen=True, slots=True)
class InterceptorMark:
    kind: InterceptorKind
    on: tuple[Selector, ...]
    order: int


def interceptor_mark(target: object) -> InterceptorMark | None:
    mark = getattr(target, _MARK, None)
    return mark if isinstance(mark, InterceptorMark) else None


def _selectors(on: Selector | tuple[Selector, ...] | None) -> tuple[Selector, ...]:
    if on is None:
        return ()
    selectors = on if isinstance(on, tuple) else (on,)
    for selector in selectors:
        if not isinstance(selector, type | Marker):
            raise ConfigurationError(
                f"interceptor on={selector!r} is neither a message type nor a Marker; "
                f'pass a class (matched with isinstance) or a Marker("name").'
            )
    return selectors


def _marker(kind: InterceptorKind) -> Callable[..., Callable[[F], F]]:
    def decorator(
        on: Selector | tuple[Selector, ...] | None = None, *, order: int = 0
    ) -> Callable[[F], F]:
        selectors = _selectors(on)

        def apply(function: F) -> F:
            setattr(function, _MARK, InterceptorMark(kind, selectors, order))
            return function

        return apply

    return decorator


before = _marker("before")
before.__doc__ = """Run ``fn(message)`` or ``fn(message, ctx)`` before selected handlers."""
around = _marker("around")
around.__doc__ = """Run ``fn(proceed, message)`` around selected handlers; return ``proceed()``."""
after = _marker("after")
after.__doc__ = """Run ``fn(message, result)`` after selected handlers return."""

_ARITY: dict[InterceptorKind, tuple[int, ...]] = {"before": (1, 2), "around": (2,), "after": (2,)}
_SHAPE = {
    "before": "def check(message) or def check(message, ctx)",
    "around": "def wrap(proceed, message) -> object, returning proceed()",
    "after": "def log(message, result)",
}


@dataclass(frozen=True, slots=True)
class Interceptor:
    """A validated interceptor, bound and ready to select handlers."""

    kind: InterceptorKind
    function: Callable[..., Any]
    on: tuple[Selector, ...]
    order: int
    position: int
    name: str
    wants_context: bool

    @classmethod
    def build(
        cls,
        function: Callable[..., Any],
        mark: InterceptorMark,
        position: int,
        *,
        coroutines: bool = False,
    ) -> Interceptor:
        name = getattr(function, "__qualname__", repr(function))
        if inspect.iscoroutinefunction(function) and not coroutines:
            raise ConfigurationError(
                f"interceptor {name} is a coroutine function; the sync Messaging calls it "
                f"directly. Make it a plain def, or build an AsyncMessaging, which awaits it."
            )
        params = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(params) not in _ARITY[mark.kind]:
            raise ConfigurationError(
                f"@{mark.kind} interceptor {name} takes {len(params)} parameter(s); an "
                f"@{mark.kind} interceptor has the shape {_SHAPE[mark.kind]}."
            )
        return cls(mark.kind, function, mark.on, mark.order, position, name, len(params) == 2)

    def selects(self, message_types: tuple[type, ...], markers: frozenset[str]) -> bool:
        if not self.on:
            return True
        for selector in self.on:
            if isinstance(selector, Marker):
                if selector.name in markers:
                    return True
            elif any(issubclass(t, selector) for t in message_types):
                return True
        return False


def wrap_with(
    interceptors: list[Interceptor],
    call: Callable[[Message, object], object],
) -> Callable[[Message, object], object]:
    """Compose ``call(message, ctx)`` with interceptors, outermost (lowest order) first."""
    wrapped = call
    for interceptor in sorted(interceptors, key=lambda i: (i.order, i.position), reverse=True):
        wrapped = _wrap_one(interceptor, wrapped)
    return wrapped


def _wrap_one(
    interceptor: Interceptor, inner: Callable[[Message, object], object]
) -> Callable[[Message, object], object]:
    function = interceptor.function
    if interceptor.kind == "before":
        if interceptor.wants_context:

            def before_call(message: Message, ctx: object) -> object:
                function(message, ctx)
                return inner(message, ctx)

        else:

            def before_call(message: Message, ctx: object) -> object:
                function(message)
                return inner(message, ctx)

        return before_call
    if interceptor.kind == "after":

        def after_call(message: Message, ctx: object) -> object:
            result = inner(message, ctx)
            function(message, result)
            return result

        return after_call

    def around_call(message: Message, ctx: object) -> object:
        return function(lambda: inner(message, ctx), message)

    return around_call
