"""Bootstrap: checking handlers and channels, and preparing what dispatch calls.

Everything here runs once, when a ``Messaging`` is built (DESIGN rule 7): a mistake is an error
then, naming what is wrong, what exists instead and the fix, never a surprise at send time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from conveyor.core.clock import Clock, SteppableClock, SystemClock
from conveyor.core.codec.serialization import Codec, JsonCodec, TypeRegistry
from conveyor.core.errors import ConfigurationError
from conveyor.core.failure import Failure
from conveyor.core.ids import IdGenerator, UuidV7Ids
from conveyor.core.interceptors import Interceptor, interceptor_mark
from conveyor.core.journal import Journal
from conveyor.core.lifecycle import ResolvedPolicy
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec, read_handlers
from conveyor.core.routing import Router
from conveyor.core.spec_cache import Catalogue, catalogue
from conveyor.drivers import stack
from conveyor.drivers.channel_runtime import AnyRuntime, AsyncChannelRuntime, ChannelRuntime
from conveyor.drivers.stack import Layer, StackOrder
from conveyor.stores.dead_letters import DeadLetterStore, InMemoryDeadLetterStore
from conveyor.stores.deduplication import Deduplication, TransactionalDeduplicationStore
from conveyor.transports.channels import Channel, ChannelAlias, Mode, QueueChannel
from conveyor.transports.seam import AsyncTransport, Transport

__all__ = [
    "Invoke",
    "Basics",
    "basics",
    "Prepared",
    "prepare",
    "compose_stacks",
    "check_channels",
    "split_aliases",
    "aliased",
    "check_handlers",
    "open_channels",
    "open_async_channels",
    "check_capabilities",
    "check_retry_delays",
    "resolve_error_handler",
    "unused_layers",
    "base_call",
    "registered_types",
]

Invoke = Callable[[Message, object], object]
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything a composition root reads from its arguments before opening any transport."""

    handlers: tuple[HandlerSpec, ...]
    interceptors: tuple[Interceptor, ...]
    router: Router
    endpoints: dict[str, HandlerSpec]
    definitions: dict[str, Channel]
    error_handler: HandlerSpec | None
    channel_error_handlers: dict[str, HandlerSpec | None]
    endpoint_error_handlers: dict[str, HandlerSpec | None]
    types: TypeRegistry
    codec: Codec
    aliases: dict[str, str]


@dataclass(frozen=True, slots=True)
class Basics:
    """A root's clock, ids, journal and dead-letter store, with the defaults filled in."""

    clock: Clock
    steps_time: bool  # the clock is stepped by its owner (a VirtualClock)
    ids: IdGenerator
    journal: Journal
    dead_letters: DeadLetterStore


def basics(
    clock: Clock | None,
    ids: IdGenerator | None,
    journal: Journal | None,
    dead_letters: DeadLetterStore | None,
) -> Basics:
    """Defaults: a SystemClock, uuid v7 ids, a journal bounded on real time, in-memory letters."""
    clock = clock if clock is not None else SystemClock()
    steps_time = isinstance(clock, SteppableClock)
    return Basics(
        clock,
        steps_time,
        ids if ids is not None else UuidV7Ids(clock),
        journal if journal is not None else Journal(max_records=None if steps_time else 10_000),
        dead_letters if dead_letters is not None else InMemoryDeadLetterStore(),
    )


def prepare(
    handlers: Iterable[object],
    channels: Iterable[Channel | ChannelAlias | str],
    interceptors: Iterable[object],
    *,
    deduplication: Deduplication | None,
    error_handler: object | None,
    types: Iterable[type],
    codec: Codec | None,
    root: str,
) -> Prepared:
    """Read and check handlers, interceptors and channels (DESIGN rule 7), for either root.

    ``root`` is ``"Messaging"`` or ``"AsyncMessaging"``: the asyncio root takes ``async def``
    handlers and interceptors, and errors name the root the user built.
    """
    given = [*_iterable(handlers, "handlers", root), *_checked(interceptors)]
    specs, found = read_handlers(given, coroutines=root == "AsyncMessaging")
    channel_list, aliases = split_aliases(_iterable(channels, "channels", root))
    specs = aliased(specs, aliases)
    shared = catalogue(tuple(specs))
    router = shared.router
    endpoints = dict(shared.endpoints)
    definitions = check_channels(channel_list, endpoints)
    check_handlers(specs, definitions, deduplication)

    def error_handler_of(target: object, owner: str) -> HandlerSpec | None:
        return resolve_error_handler(target, owner, endpoints, specs)

    registry = registered_types(types, specs, shared)
    return Prepared(
        handlers=tuple(specs),
        interceptors=tuple(found),
        router=router,
        endpoints=endpoints,
        definitions=definitions,
        error_handler=error_handler_of(error_handler, root),
        channel_error_handlers={
            name: error_handler_of(d.error_handler, f"channel {name!r}")
            for name, d in definitions.items()
        },
        endpoint_error_handlers={
            s.endpoint_id: error_handler_of(s.error_handler, s.name) for s in specs
        },
        types=registry,
        codec=codec if codec is not None else JsonCodec(registry, plans=shared.plans),
        aliases=aliases,
    )


def compose_stacks(
    prepared: Prepared,
    policies: Mapping[tuple[str, str], ResolvedPolicy],
    *,
    deduplication: Deduplication | None,
    transaction: object | None,
    build: Callable[[list[Interceptor], frozenset[Layer]], S],
) -> dict[str, S]:
    """Each asynchronous handler's consumption stack, composed once by ``build``.

    Interceptors ordered below ``StackOrder.HANDLER`` sit among the built-in layers; layers
    that would do nothing for a handler (no instant retries, no deduplication, no
    transaction) are left out. Handlers that need the same layers share one stack.
    """
    stacks: dict[str, S] = {}
    shared: dict[frozenset[Layer], S] = {}
    for spec in prepared.handlers:
        if not spec.channels:
            continue
        policy = policies.get((spec.endpoint_id, spec.channels[-1]))
        unused = unused_layers(policy, deduplication=deduplication, transaction=transaction)
        outer = [
            i
            for i in prepared.interceptors
            if i.order < StackOrder.HANDLER and i.selects(spec.message_types, spec.markers)
        ]
        if outer:
            stacks[spec.endpoint_id] = build(outer, unused)
            continue
        if unused not in shared:
            shared[unused] = build([], unused)
        stacks[spec.endpoint_id] = shared[unused]
    return stacks


def _iterable(values: object, what: str, root: str) -> list[Any]:
    """``values`` as a list, or a clear error for a single object passed where a list goes."""
    if (isinstance(values, str | bytes) and what == "handlers") or not isinstance(values, Iterable):
        raise ConfigurationError(
            f"{root}({what}=...) takes a list, got {values!r}; wrap it: "
            f"{root}({what}=[{values!r}])."
        )
    return list(values)


def _checked(interceptors: Iterable[object]) -> list[object]:
    found = list(interceptors)
    for item in found:
        if (
            callable(item)
            and not isinstance(item, type)
            and interceptor_mark(item) is None
            and not hasattr(item, "__dict__")
        ):
            raise ConfigurationError(
                f"{item!r} is not an interceptor; mark it @before/@around/@after"
            )
    return found


def split_aliases(
    given: Iterable[Channel | str | ChannelAlias],
) -> tuple[list[Channel | str], dict[str, str]]:
    """The channel definitions, and each ``ChannelAlias`` resolved to the channel it names.

    An alias may name another alias; it must end at a declared channel, without a cycle, and
    its own name must not be a channel's.
    """
    definitions: list[Channel | str] = []
    targets: dict[str, str] = {}
    for item in given:
        if isinstance(item, ChannelAlias):
            if item.name in targets:
                raise ConfigurationError(
                    f"channel alias {item.name!r} is declared twice; declare each alias once."
                )
            targets[item.name] = item.to
        else:
            definitions.append(item)
    names = {d if isinstance(d, str) else getattr(d, "name", None) for d in definitions}
    resolved: dict[str, str] = {}
    for alias, named in targets.items():
        if alias in names:
            raise ConfigurationError(
                f"channel alias {alias!r} has the name of a declared channel; an alias is a "
                f"second name for a channel, so give it a name of its own."
            )
        chain = [alias]
        target = named
        while target in targets:
            if target in chain:
                raise ConfigurationError(
                    f"channel aliases form a cycle: {' -> '.join([*chain, target])}; end the "
                    f"chain at a declared channel."
                )
            chain.append(target)
            target = targets[target]
        if target not in names:
            declared = ", ".join(sorted(repr(n) for n in names if n)) or "none"
            raise ConfigurationError(
                f"channel alias {alias!r} names {named!r}"
                f"{f' (through {target!r})' if target != named else ''}, but no "
                f"channel {target!r} was declared (declared channels: {declared}). Add the "
                f"channel, or point the alias at one of these."
            )
        resolved[alias] = target
    return definitions, resolved


def aliased(specs: list[HandlerSpec], aliases: Mapping[str, str]) -> list[HandlerSpec]:
    """Handlers bound to an alias, bound to the channel it names instead."""
    if not aliases:
        return specs
    return [
        replace(s, channels=tuple(aliases.get(c, c) for c in s.channels))
        if any(c in aliases for c in s.channels)
        else s
        for s in specs
    ]


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
    endpoint_ids = {s.endpoint_id for s in specs}
    for spec in specs:
        tracking = spec.deduplication.tracking if spec.deduplication is not None else None
        if tracking is not None and tracking in endpoint_ids and tracking != spec.endpoint_id:
            raise ConfigurationError(
                f"handler {spec.name} is @deduplicated(tracking={tracking!r}), the endpoint id "
                f"of another handler, whose own keys it would share without saying so; choose "
                f"a tracking name that is no endpoint's id, and give it to every endpoint that "
                f"shares the keys."
            )
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
        if not spec.channels and (
            spec.delay
            or (spec.priority is not None and spec.kind != "event")  # orders sync subscribers
            or spec.ttl
            or spec.delivery_rules
        ):
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


def open_async_channels(
    definitions: Mapping[str, Channel],
    *,
    clock: Clock,
    mode: Mode,
    codec: Codec,
    transports: dict[Hashable, AsyncTransport],
    handler_channels: AbstractSet[str] = frozenset(),
) -> dict[str, AsyncChannelRuntime]:
    """The asyncio twin of :func:`open_channels`; channels are declared later, awaited."""
    runtimes: dict[str, AsyncChannelRuntime] = {}
    for name, definition in definitions.items():
        key = definition.transport_key()
        transport = transports.get(key)
        if transport is None:
            transport = transports[key] = definition.open_async(clock)
        runtimes[name] = AsyncChannelRuntime(
            definition,
            transport,
            (definition.mode or mode) == "inline",
            definition.codec if definition.codec is not None else codec,
            bus=definition.bus if definition.bus is not None else name not in handler_channels,
        )
    return runtimes


def check_capabilities(
    specs: list[HandlerSpec],
    channels: Mapping[str, AnyRuntime],
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


def check_retry_delays(
    policies: Mapping[tuple[str, str], ResolvedPolicy], channels: Mapping[str, AnyRuntime]
) -> None:
    """Refuse delayed retries on a channel whose transport cannot hold a message until due.

    The copy would come back at once, retried with no delay at all (a capability is never
    silently ignored, DESIGN section 5).
    """
    for (endpoint_id, name), policy in policies.items():
        transport = channels[name].transport
        delayed = policy.retry is not None and policy.retry.delays is not None
        if delayed and not transport.capabilities.delay:
            raise ConfigurationError(
                f"endpoint {endpoint_id!r} retries with delays on channel {name!r}, but its "
                f"transport ({type(transport).__qualname__}) cannot hold delayed messages. "
                f"Use instant retries only (RetryPolicy(instant=...)) or a channel whose "
                f"transport declares delay."
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


def registered_types(
    types: Iterable[type], specs: Iterable[HandlerSpec], shared: Catalogue
) -> TypeRegistry:
    """The kernel's payload names: ``types`` first, then the handlers' message types.

    Without extra ``types`` (the usual case) it is a copy of the registry the handlers'
    catalogue composed once; with them, registered in that order as always.
    """
    given = tuple(types)
    if not given:
        return shared.registry()
    registry = TypeRegistry(given)
    for spec in specs:
        for message_type in spec.message_types:
            registry.register(message_type)
    return registry


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
