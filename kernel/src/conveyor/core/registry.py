"""Reading handlers: from the explicit list given to ``Messaging`` to validated handler specs.

Bootstrap is where mistakes are cheap (DESIGN rule 7): a handler whose message type cannot be
read, a coroutine on the sync kernel, two endpoints with one id. Each error names the handler,
what was found and how to fix it.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Union

from conveyor.core.deduplication import DeduplicationKey
from conveyor.core.errors import ConfigurationError
from conveyor.core.handlers import (
    AsyncOptions,
    DeliveryRule,
    HandlerKind,
    HandlerMark,
    handler_mark,
    options_of,
    same_marks,
)
from conveyor.core.interceptors import Interceptor, interceptor_mark
from conveyor.core.message import Message
from conveyor.core.retry import RetryPolicy
from conveyor.core.scheduling import Schedule

__all__ = ["HandlerSpec", "read_handlers"]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """One handler, as the kernel runs it."""

    kind: HandlerKind
    endpoint_id: str
    function: Callable[..., Any]
    name: str
    message_types: tuple[type, ...]
    routing_key: str | None
    arity: int  # positional parameters: payload (0 for scheduled without one), then context
    context_param: bool
    message_param: bool  # first parameter annotated as Message: gets the envelope
    position: int
    channels: tuple[str, ...] = ()
    delay: timedelta | None = None
    priority: int | None = None
    ttl: timedelta | None = None
    retry: RetryPolicy | None = None
    error_handler: object | None = None
    dead_letter: bool | None = None
    deduplication: DeduplicationKey | None = None
    markers: frozenset[str] = field(default_factory=frozenset)
    schedule: Schedule | None = None
    #: ``@delayed``, ``@priority`` or ``@time_to_live`` computed from the message or giving
    #: way to the send's option: (option name, rule); empty for plain constants.
    delivery_rules: tuple[tuple[str, DeliveryRule], ...] = ()

    @property
    def is_async(self) -> bool:
        return bool(self.channels)

    @property
    def dedup_scope(self) -> str:
        """Whose deduplication keys this handler shares: its ``@deduplicated(tracking=...)``
        name, else its own endpoint id."""
        rule = self.deduplication
        return rule.tracking if rule is not None and rule.tracking else self.endpoint_id

    def describe(self) -> str:
        target = self.routing_key or " | ".join(t.__qualname__ for t in self.message_types)
        where = f" on {' -> '.join(self.channels)}" if self.channels else ""
        return f"{self.name} ({self.kind} {target}{where})"


def read_handlers(
    targets: Iterable[object], *, coroutines: bool = False
) -> tuple[list[HandlerSpec], list[Interceptor]]:
    """Find handler and interceptor marks on functions, objects' methods, and classes.

    ``coroutines``: ``async def`` handlers and interceptors are welcome (the asyncio driver
    awaits them); the sync driver refuses them, naming the fix.
    """
    specs: list[HandlerSpec] = []
    interceptors: list[Interceptor] = []
    listed: list[object] = []  # keeps each target alive, so the ids in ``seen`` stay unique
    seen: set[tuple[int, int]] = set()
    for target in targets:
        plain = target if type(target) is types.FunctionType else None
        key = (id(target), 0) if plain is not None else _listing_key(target)
        if key in seen:
            name = getattr(target, "__qualname__", None) or f"{type(target).__qualname__} instance"
            raise ConfigurationError(
                f"{name} is listed twice in Messaging(handlers=[...]); list each handler once."
            )
        seen.add(key)
        listed.append(target)
        if plain is not None and (kept := _kept(plain, len(specs), coroutines)) is not None:
            specs.append(kept)
            continue
        for function, class_options in _candidates(target):
            if interceptor_mark(function) is not None:
                mark = interceptor_mark(function)
                assert mark is not None
                interceptors.append(
                    Interceptor.build(function, mark, len(interceptors), coroutines=coroutines)
                )
                continue
            spec = _read_one(function, class_options, len(specs))
            if spec is not None:
                if not coroutines and inspect.iscoroutinefunction(spec.function):
                    raise ConfigurationError(
                        f"handler {spec.name} is a coroutine function (async def); the sync "
                        f"Messaging calls handlers directly. Make it a plain def, or build an "
                        f"AsyncMessaging, which awaits it."
                    )
                specs.append(spec)
    _check_unique_endpoints(specs)
    return specs, interceptors


def _listing_key(target: object) -> tuple[int, int]:
    """What two listings of one handler share: the object, or a method's function and instance.

    A bound method is a new object on each attribute access (``billing.charge`` twice gives two
    objects that compare equal), so a method is known by its function and its instance. A set of
    keys finds a repeat in one pass, where comparing each target with every earlier one cost a
    quadratic number of comparisons (a tenth of building a 50-handler ``Messaging``).
    """
    if inspect.ismethod(target):
        return id(target.__func__), id(target.__self__)
    return id(target), 0


def _candidates(target: object) -> list[tuple[Callable[..., Any], dict[str, object]]]:
    if isinstance(target, type):
        raise ConfigurationError(
            f"{target.__qualname__} is a class; pass an instance (for example "
            f"{target.__qualname__}()) so its handler methods have an object to run on."
        )
    if inspect.isfunction(target) or inspect.ismethod(target):
        if handler_mark(target) is None and interceptor_mark(target) is None:
            raise ConfigurationError(
                f"{target.__qualname__} was passed as a handler but has no handler decorator; "
                f"mark it with @command_handler, @event_handler, @query_handler or @scheduled."
            )
        return [(target, {})]
    found: list[tuple[Callable[..., Any], dict[str, object]]] = []
    cls = type(target)
    class_options = options_of(cls)
    for name in _ordered_members(cls):
        raw = inspect.getattr_static(cls, name, None)
        if isinstance(raw, staticmethod | classmethod):
            raw = raw.__func__
        if handler_mark(raw) is None and interceptor_mark(raw) is None:
            continue
        found.append((getattr(target, name), class_options))
    if not found:
        raise ConfigurationError(
            f"{cls.__qualname__} instance was passed as a handler but none of its methods is "
            f"marked; mark methods with @command_handler, @event_handler or @query_handler."
        )
    return found


def _ordered_members(cls: type) -> list[str]:
    """Member names in definition order, base classes first."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        for name in vars(klass):
            if name not in names:
                names.append(name)
    return names


_READ = "__conveyor_read__"


@dataclass(frozen=True, slots=True)
class _Reading:
    """What reading a handler found, kept on its function for the next ``Messaging``.

    ``key`` is what the reading depends on (the marks and options); ``coroutine`` whether the
    function is ``async def`` (asking ``inspect`` costs more than the rest of a reused reading).
    """

    key: tuple[HandlerMark, bool, dict[str, object], dict[str, object]]
    spec: HandlerSpec
    coroutine: bool


def _kept(function: types.FunctionType, position: int, coroutines: bool) -> HandlerSpec | None:
    """The very spec an earlier reading of a plain function kept, if it still holds as it is.

    The common case of a test suite: the same module-level handlers in the same places, unmarked
    and unchanged since the last ``Messaging``. Anything else (a new place, a changed option, an
    interceptor mark, a coroutine the sync kernel refuses) takes the full path.
    """
    kept = function.__dict__.get(_READ)
    if not isinstance(kept, _Reading) or (kept.coroutine and not coroutines):
        return None
    mark, bound, class_options, options = kept.key
    spec = kept.spec
    if (
        spec.function is not function
        or spec.position != position
        or bound
        or class_options
        or not same_marks(function, mark, options)  # a new mark, even an equal one: read again
        or interceptor_mark(function) is not None
    ):
        return None
    return spec


def _read_one(
    function: Callable[..., Any], class_options: dict[str, object], position: int
) -> HandlerSpec | None:
    """Read one handler, reusing what an earlier ``Messaging`` read from the same function.

    Signatures and type hints cost tens of microseconds per handler, and a test suite builds a
    ``Messaging`` per test; the reading is kept on the function itself (next to its marks) and
    reused while its marks and options are unchanged.
    """
    mark = handler_mark(function)
    if mark is None:
        return None
    target = getattr(function, "__func__", function)
    key = (mark, function is not target, class_options, options_of(target))
    kept = getattr(target, _READ, None)
    if isinstance(kept, _Reading) and kept.key == key:
        spec: HandlerSpec = kept.spec
        if spec.function is function and spec.position == position:
            return spec  # the same function in the same place: the very same spec
        return replace(spec, function=function, position=position)
    spec_read = _read_fresh(function, mark, class_options, position)
    kept_spec = spec_read if function is target else replace(spec_read, function=target)
    reading = _Reading(key, kept_spec, inspect.iscoroutinefunction(target))
    with suppress(AttributeError, TypeError):  # a callable without attributes: read each time
        setattr(target, _READ, reading)
    return spec_read


def _read_fresh(
    function: Callable[..., Any],
    mark: HandlerMark,
    class_options: dict[str, object],
    position: int,
) -> HandlerSpec:
    name = getattr(function, "__qualname__", repr(function))
    options = {**class_options, **options_of(getattr(function, "__func__", function))}
    params = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    schedule = options.get("schedule")
    if mark.kind == "scheduled":
        if len(params) > 1:
            raise ConfigurationError(
                f"scheduled handler {name} takes {len(params)} parameters; it takes none or "
                f"one Context."
            )
        message_types: tuple[type, ...] = ()
        message_param = False
    else:
        if not params:
            raise ConfigurationError(
                f"handler {name} takes no parameter; its first parameter receives the "
                f"message, for example def {function.__name__}(command: PlaceOrder)."
            )
        if len(params) > 2:
            raise ConfigurationError(
                f"handler {name} takes {len(params)} parameters; a handler takes the message "
                f"and optionally a Context."
            )
        message_types = _message_types(function, params[0], name, mark.routing_key)
        message_param = message_types == (Message,)
        if message_param and mark.routing_key is None:
            raise ConfigurationError(
                f"handler {name} receives a Message envelope, so its payload type cannot be "
                f"read; add routing_key=... or annotate the first parameter with the payload "
                f"type."
            )
        if message_param:
            message_types = ()
    if len(params) == 2 or (mark.kind == "scheduled" and params):
        _check_context(function, params[-1], name)
    async_options = options.get("async")
    if async_options is not None and mark.kind == "query":
        raise ConfigurationError(
            f"query handler {name} is marked @asynchronous, but a query returns its answer to "
            f"the caller at once; remove @asynchronous or make it a command."
        )
    assert async_options is None or isinstance(async_options, AsyncOptions)
    endpoint_id = (
        mark.endpoint_id
        or (async_options.endpoint_id if async_options else None)
        or name.rsplit("<locals>.", 1)[-1]  # a function defined inside another: its own name
    )
    failure = async_options or options.get("tick_failure")  # a scheduled tick's own settings
    assert failure is None or isinstance(failure, AsyncOptions)
    if mark.retry is not None and async_options is not None:
        raise ConfigurationError(
            f"handler {name} sets retry= on @{mark.kind}_handler and is @asynchronous; the "
            f"handler decorator's retry is for synchronous calls. Set it on "
            f"@asynchronous(..., retry=...) instead."
        )
    retry = failure.retry if failure else mark.retry
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"@asynchronous(retry=...) on {name} takes a RetryPolicy")
    return HandlerSpec(
        kind=mark.kind,
        endpoint_id=endpoint_id,
        function=function,
        name=name,
        message_types=message_types,
        routing_key=mark.routing_key,
        arity=len(params),
        context_param=len(params) == 2 or (mark.kind == "scheduled" and len(params) == 1),
        message_param=message_param,
        position=position,
        channels=async_options.channels if async_options else (),
        delay=_typed(options.get("delay"), timedelta),
        priority=_typed(options.get("priority"), int),
        ttl=_typed(options.get("ttl"), timedelta),
        retry=retry,
        error_handler=failure.error_handler if failure else None,
        dead_letter=failure.dead_letter if failure else None,
        deduplication=_typed(options.get("deduplication"), DeduplicationKey),
        markers=_typed(options.get("markers"), frozenset) or frozenset(),
        schedule=schedule if isinstance(schedule, Schedule) else None,
        delivery_rules=tuple(
            (name, rule)
            for name in ("delay", "priority", "ttl")
            if isinstance(rule := options.get(name), DeliveryRule)
        ),
    )


T = typing.TypeVar("T")


def _typed(value: object, kind: type[T]) -> T | None:
    return value if isinstance(value, kind) else None


def _message_types(
    function: Callable[..., Any], param: inspect.Parameter, name: str, routing_key: str | None
) -> tuple[type, ...]:
    try:
        hints = typing.get_type_hints(function)
    except Exception as error:
        raise ConfigurationError(
            f"the message type of handler {name} cannot be read: its annotations failed to "
            f"resolve ({type(error).__name__}: {error}). Import the type at module level."
        ) from None
    annotation = hints.get(param.name)
    if annotation is None:
        if routing_key is not None:
            return ()
        raise ConfigurationError(
            f"the message type of handler {name} cannot be read: its first parameter "
            f"{param.name!r} has no annotation. Annotate it (for example "
            f'{param.name}: PlaceOrder), or route by name with routing_key="...".'
        )
    if annotation is typing.Any or annotation is object:
        if routing_key is not None:
            return ()
        raise ConfigurationError(
            f"the message type of handler {name} cannot be read: {param.name!r} is annotated "
            f"{annotation!r}, which matches every message. Use a concrete type or routing_key=."
        )
    origin = typing.get_origin(annotation)
    if (
        routing_key is not None
        and not isinstance(annotation, type)
        and origin
        not in (
            Union,
            types.UnionType,
        )
    ):
        return ()  # routed by name; the annotation (dict[str, str], ...) only documents it
    members = typing.get_args(annotation) if origin in (Union, types.UnionType) else (annotation,)
    found: list[type] = []
    for member in members:
        if member is type(None):
            continue
        if not isinstance(member, type):
            raise ConfigurationError(
                f"the message type of handler {name} cannot be read: {member!r} is not a class. "
                f"Handlers route by class; use a dataclass for the message."
            )
        found.append(member)
    return tuple(found)


def _check_context(function: Callable[..., Any], param: inspect.Parameter, name: str) -> None:
    """The parameter after the message receives a ``Context``; another annotation is a mistake.

    The ``Context`` class lives in the drivers, which the core does not import: any class of
    Conveyor's own is accepted (``Context``, an asynchronous twin), and so is no annotation.
    """
    try:
        annotation = typing.get_type_hints(function).get(param.name)
    except Exception:  # unresolvable annotations are reported with the message type
        return
    if annotation is None or annotation is typing.Any or annotation is object:
        return
    module = getattr(annotation, "__module__", "") or ""
    if isinstance(annotation, type) and (module == "conveyor" or module.startswith("conveyor.")):
        return
    shown = getattr(annotation, "__qualname__", None) or repr(annotation)
    raise ConfigurationError(
        f"handler {name} declares {param.name}: {shown}, but the parameter after the message "
        f"receives a Context (headers, send, publish, ask, the clock). Annotate it "
        f"{param.name}: Context (from conveyor import Context), or remove it."
    )


def _check_unique_endpoints(specs: list[HandlerSpec]) -> None:
    seen: dict[str, HandlerSpec] = {}
    for spec in specs:
        other = seen.get(spec.endpoint_id)
        if other is not None and other.function != spec.function:
            raise ConfigurationError(
                f"two handlers have endpoint id {spec.endpoint_id!r}: {other.describe()} and "
                f"{spec.describe()}. Endpoint ids name handlers on the wire and in dead "
                f'letters; give one of them endpoint_id="...".'
            )
        seen[spec.endpoint_id] = spec
