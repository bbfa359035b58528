"""Synchronous calls get failure tools: instant retries and an error handler on a bus, and
interceptors around the buses (before routing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from conveyor import (
    BusCall,
    ConfigurationError,
    Context,
    Failure,
    Messaging,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    command_handler,
    event_handler,
    query_handler,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RenameProduct:
    sku: str
    name: str


@dataclass(frozen=True)
class ProductRenamed:
    sku: str


@dataclass(frozen=True)
class ProductName:
    sku: str


class StaleVersion(Exception):
    """Another writer saved the product first (optimistic locking)."""


class Catalogue:
    """A store that rejects the first ``conflicts`` writes as stale."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.writes = 0
        self.names: dict[str, str] = {}
        self.failures: list[Failure] = []

    @command_handler
    def rename(self, command: RenameProduct, ctx: Context) -> None:
        self.writes += 1
        ctx.publish(ProductRenamed(command.sku))
        if self.writes <= self.conflicts:
            raise StaleVersion(f"write {self.writes} lost the race")
        self.names[command.sku] = command.name

    @query_handler
    def name(self, query: ProductName) -> str:
        return self.names[query.sku]

    @event_handler
    def on_failure(self, failure: Failure) -> None:
        self.failures.append(failure)


def build(handlers: list[object], **options: object) -> Messaging:
    return Messaging(
        handlers=handlers,
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,  # type: ignore[arg-type]
    )


def test_a_command_bus_retries_a_synchronous_handler_at_once() -> None:
    catalogue = Catalogue(conflicts=2)
    messaging = build([catalogue])
    bus = messaging.command_bus(retry=RetryPolicy(instant=2, on=StaleVersion))
    bus.send(RenameProduct("p-1", "Blue mug"))
    assert catalogue.writes == 3
    assert messaging.ask(ProductName("p-1")) == "Blue mug"
    # every attempt is the same message; what failed attempts published never left
    sent = messaging.journal.of_kind(RecordKind.SENT)
    assert len({r.message_id for r in sent}) == 1
    assert len(sent) == 3
    assert len(messaging.journal.of_kind(RecordKind.FAILED)) == 2


def test_retries_stop_at_the_count_and_at_exceptions_the_policy_does_not_name() -> None:
    catalogue = Catalogue(conflicts=5)
    messaging = build([catalogue])
    bus = messaging.command_bus(retry=RetryPolicy(instant=2, on=StaleVersion))
    with pytest.raises(StaleVersion, match="write 3"):
        bus.send(RenameProduct("p-1", "Blue mug"))
    other = messaging.command_bus(retry=RetryPolicy(instant=2, on=KeyError))
    with pytest.raises(StaleVersion, match="write 4"):
        other.send(RenameProduct("p-1", "Blue mug"))


def test_a_bus_error_handler_receives_the_failure_instead_of_the_caller() -> None:
    catalogue = Catalogue(conflicts=5)
    messaging = build([catalogue])
    bus = messaging.command_bus(retry=RetryPolicy(instant=1), error_handler=catalogue.on_failure)
    assert bus.send(RenameProduct("p-1", "Blue mug"), headers={"user": "ann"}) is None
    [failure] = catalogue.failures
    assert failure.endpoint_id == "command_bus"
    assert failure.payload == RenameProduct("p-1", "Blue mug")
    assert failure.attempt == 2
    assert failure.headers == {"user": "ann"}
    assert isinstance(failure.error, StaleVersion)


def test_a_bus_refuses_delayed_retries_and_unknown_error_handlers() -> None:
    from datetime import timedelta

    messaging = build([Catalogue(conflicts=0)])
    with pytest.raises(ConfigurationError, match="retries a synchronous call at once"):
        messaging.command_bus(retry=RetryPolicy(delays=[timedelta(seconds=1)]))
    with pytest.raises(ConfigurationError, match="not a registered handler"):
        messaging.command_bus(error_handler="nobody")


def test_bus_interceptors_run_before_routing_around_every_verb() -> None:
    seen: list[tuple[str, str]] = []
    headers: list[str] = []

    def audit(call: BusCall, proceed: object) -> object:
        seen.append((call.verb, type(call.message).__name__))
        return proceed(call.with_headers({"tenant": "acme"}))  # type: ignore[operator]

    @command_handler
    def rename(command: RenameProduct, ctx: Context) -> None:
        headers.append(ctx.headers["tenant"])  # type: ignore[arg-type]
        ctx.publish(ProductRenamed(command.sku))

    @event_handler
    def renamed(event: ProductRenamed, ctx: Context) -> None:
        headers.append(ctx.headers["tenant"])  # type: ignore[arg-type]

    @query_handler
    def name(query: ProductName) -> str:
        return "Blue mug"

    messaging = build([rename, renamed, name], bus_interceptors=[audit])
    messaging.send(RenameProduct("p-1", "Blue mug"))
    assert messaging.ask(ProductName("p-1")) == "Blue mug"
    assert seen == [
        ("send", "RenameProduct"),
        ("publish", "ProductRenamed"),  # a handler's publish goes through the bus too
        ("ask", "ProductName"),
    ]
    assert headers == ["acme", "acme"]


def test_a_bus_interceptor_can_refuse_a_call_before_any_handler_runs() -> None:
    catalogue = Catalogue(conflicts=0)

    def read_only(call: BusCall, proceed: object) -> object:
        if call.verb == "send":
            raise PermissionError("the catalogue is read-only during the migration")
        return proceed(call)  # type: ignore[operator]

    messaging = build([catalogue], bus_interceptors=[read_only])
    with pytest.raises(PermissionError):
        messaging.send(RenameProduct("p-1", "Blue mug"))
    assert catalogue.writes == 0
    assert messaging.journal.of_kind(RecordKind.SENT) == []


def test_async_bus_interceptors_are_awaited_around_every_verb() -> None:
    import asyncio

    from conveyor import AsyncMessaging

    seen: list[str] = []

    async def audit(call: BusCall, proceed: object) -> object:
        seen.append(call.verb)
        return await proceed(call.with_headers({"tenant": "acme"}))  # type: ignore[operator]

    @query_handler
    async def name(query: ProductName, ctx: object) -> str:
        return str(ctx.headers["tenant"])  # type: ignore[attr-defined]

    async def main() -> object:
        async with AsyncMessaging(
            handlers=[name], clock=VirtualClock(START), bus_interceptors=[audit]
        ) as messaging:
            return await messaging.ask(ProductName("p-1"))

    assert asyncio.run(main()) == "acme"
    assert seen == ["ask"]
