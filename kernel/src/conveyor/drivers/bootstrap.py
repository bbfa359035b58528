"""Bootstrap: checking handlers and channels, and preparing what dispatch calls.

Everything here runs once, when a ``Messaging`` is built (DESIGN rule 7): a mistake is an error
then, naming what is wrong, what exists instead and the fix, never a surprise at send time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet

from conveyor.core.clock import Clock
from conveyor.core.codec.serialization import Codec
from conveyor.core.errors import ConfigurationError
from conveyor.core.failure import Failure
from conveyor.core.lifecycle import ResolvedPolicy
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers import stack
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.stack import Layer
from conveyor.stores.deduplication import Deduplication, TransactionalDeduplicationStore
from conveyor.transports.channels import Channel, Mode, QueueChannel
from conveyor.transports.seam import Transport

__all__ = [
    "Invoke",
    "check_channels",
    "check_handlers",
    "open_channels",
    "check_capabilities",
    "resolve_error_handler",
    "unused_layers",
    "base_call",
]

Invoke = Callable[[Message, object], object]


def check_channels(
    definitions: Iterable[Channel | str], endpoints: Mapping[str, HandlerSpec]
) -> dict[str, Channel]:
    """Channel definitions by name, checked before any transport is opened."""
    checked: dict[str, Channel] = {}
    for given in definitions:
        definition = QueueChannel(given) if isinstance(given, str) else given
        if not isinstance(definition, Channel):
            raise ConfigurationError(
                f'channels=[...] takes channel definitions such as QueueChannel("orders"), '
                f"got {definition!r}"
            )
        if definition.name in checked:
            raise ConfigurationError(
                f"channel {definition.name!r} is declared twice; declare each channel once."
            )
        if definition.name in endpoints:
            raise ConfigurationError(
                f"channel {definition.name!r} has the same name as the endpoint of "
                f"{endpoints[definition.name].name}; consumer names must be unique. "
                f'Rename the channel or give the handler endpoint_id="...".'
            )
        checked[definition.name] = definition
    return checked


def check_handlers(
    specs: list[HandlerSpec],
    channels: Mapping[str, Channel],
    deduplication: Deduplication | None,
) -> None:
    """Refuse handlers whose options this Messaging cannot honour, before opening anything."""
    for spec in specs:
        if spec.deduplication is not None and not spec.channels:
            raise ConfigurationError(
                f"handler {spec.name} is @deduplicated, but it runs synchronously, where a "
                f"consumer never sees a redelivery; deduplication applies to "
                f"@asynchronous(...) handlers."
            )
        if spec.deduplication is not None and deduplication is None:
            raise ConfigurationError(
                f"handler {spec.name} is @deduplicated, but this Messaging has no "
                f"deduplication store; pass Messaging(deduplication=Deduplication("
                f"store=InMemoryDeduplicationStore())) or a durable store."
            )
        for channel in spec.channels:
            if channel not in channels:
                declared = ", ".join(repr(c) for c in channels) or "none"
                raise ConfigurationError(
                    f"handler {spec.name} is asynchronous on channel {channel!r}, but no "
                    f"channel {channel!r} was given (declared channels: {declared}). Add "
                    f"QueueChannel({channel!r}) (or a broker channel) to "
                    f"Messaging(channels=[...])."
                )
        if not spec.channels and (spec.delay or spec.priority is not None or spec.ttl):
            raise ConfigurationError(
                f"handler {spec.name} has @delayed, @priority or @time_to_live but "
                f"runs synchronously, where they cannot apply. Add @asynchronous(...)."
            )


def open_channels(
    definitions: Mapping[str, Channel],
    *,
    clock: Clock,
    mode: Mode,
    codec: Codec,
    transports: dict[Hashable, Transport],
    handler_channels: AbstractSet[str] = frozenset(),
) -> dict[str, ChannelRuntime]:
    """Open (and declare) each channel's transport; definitions with equal
    ``transport_key()`` share the transport opened for the first.

    ``transports`` receives every transport opened, so the caller can close them all if this
    or a later step of construction fails. A channel carries an asynchronous bus's messages when
    its definition says so (``bus=True``) or, by default, when no asynchronous handler is bound
    to it (``handler_channels`` names those that are).
    """
    runtimes: dict[str, ChannelRuntime] = {}
    for name, definition in definitions.items():
        transport = definition.open_shared(clock, transports)
        transport.declare(definition.channel_options())
        runtimes[name] = ChannelRuntime(
            definition,
            transport,
            (definition.mode or mode) == "inline",
            definition.codec if definition.codec is not None else codec,
            bus=definition.bus if definition.bus is not None else name not in handler_channels,
        )
    return runtimes


def check_capabilities(
    specs: list[HandlerSpec],
    channels: Mapping[str, ChannelRuntime],
    *,
    steps_time: bool,
) -> None:
    """Refuse what an open channel's transport cannot honour (its declared capabilities)."""
    for spec in specs:
        if not spec.channels:
            continue
        final = channels[spec.channels[-1]]
        capabilities = final.transport.capabilities
        if spec.delay and not capabilities.delay:
            raise ConfigurationError(
                f"handler {spec.name} is @delayed, but channel {final.name!r} cannot hold "
                f"delayed messages ({type(final.transport).__qualname__}). Use a channel "
                f"whose transport supports delay."
            )
        if spec.priority is not None and not capabilities.priority:
            raise ConfigurationError(
                f"handler {spec.name} has @priority, but channel {final.name!r} "
                f"({type(final.transport).__qualname__}) does not honour priority; "
                f"remove @priority or use a channel that declares it."
            )
    if steps_time:
        for runtime in channels.values():
            if runtime.inspectable is None:
                raise ConfigurationError(
                    f"this Messaging steps virtual time (its clock is a VirtualClock), but "
                    f"channel {runtime.name!r} ({type(runtime.transport).__qualname__}) cannot "
                    f"say what it holds or when it is next due, so advance() and "
                    f"run_until_idle() could not find its work. Use a SystemClock with this "
                    f"channel, or a transport that implements InspectableTransport (the "
                    f"in-memory and SQLite ones do)."
                )


def resolve_error_handler(
    target: object,
    owner: str,
    endpoints: Mapping[str, HandlerSpec],
    handlers: Iterable[HandlerSpec],
) -> HandlerSpec | None:
    """The registered handler an ``error_handler=`` option names, checked to take a Failure."""
    if target is None:
        return None
    if isinstance(target, str):
        spec = endpoints.get(target)
    else:
        spec = next((s for s in handlers if _same_function(s.function, target)), None)
    if spec is None:
        known = ", ".join(sorted(endpoints)) or "none"
        raise ConfigurationError(
            f"{owner} names error handler {target!r}, which is not a registered handler "
            f"(endpoint ids: {known}). Pass the handler in Messaging(handlers=[...]) and "
            f"refer to it by function or endpoint id."
        )
    if spec.kind == "scheduled" or (
        spec.message_types and not any(issubclass(Failure, t) for t in spec.message_types)
    ):
        takes = " | ".join(t.__qualname__ for t in spec.message_types) or "no message"
        raise ConfigurationError(
            f"{owner} names error handler {spec.name}, which takes {takes}; an error "
            f"handler receives a conveyor.Failure. Give it a first parameter annotated "
            f"Failure, for example def on_failure(failure: Failure) -> None."
        )
    return spec


def unused_layers(
    policy: ResolvedPolicy | None,
    *,
    deduplication: Deduplication | None,
    transaction: object | None,
) -> frozenset[Layer]:
    """Built-in layers that would do nothing for a handler with this policy on its channel."""
    unused: set[Layer] = set()
    if policy is None or policy.retry is None or policy.retry.instant == 0:
        unused.add(stack.instant_retry)
    if deduplication is None:
        unused.add(stack.deduplication)
    if transaction is None:
        unused.add(stack.transaction)
    if (
        deduplication is None
        or transaction is None
        or not isinstance(deduplication.store, TransactionalDeduplicationStore)
    ):
        unused.add(stack.deduplication_in_transaction)
    return frozenset(unused)


def base_call(spec: HandlerSpec) -> Invoke:
    """Call a handler's function with what its signature asks for."""
    function = spec.function
    if spec.kind == "scheduled":
        if spec.context_param:
            base: Invoke = lambda message, ctx: function(ctx)  # noqa: E731
        else:
            base = lambda message, ctx: function()  # noqa: E731
    elif spec.message_param:
        base = function if spec.arity == 2 else (lambda m, c: function(m))
    elif spec.arity == 2:
        base = lambda message, ctx: function(message.payload, ctx)  # noqa: E731
    else:
        base = lambda message, ctx: function(message.payload)  # noqa: E731
    return base


def _same_function(a: object, b: object) -> bool:
    return a == b or getattr(a, "__func__", a) is getattr(b, "__func__", b)
