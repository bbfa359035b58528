"""The asyncio driver (issue 12): ``async def`` handlers, awaitable verbs, the same plans.

Each test drives its own event loop with ``asyncio.run`` so the kernel's tests need no plugin;
``tests/plugin`` covers the pytest-asyncio and anyio fixtures.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    ConfigurationError,
    Context,
    Failure,
    Messaging,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    SystemClock,
    VirtualClock,
    after,
    around,
    asynchronous,
    before,
    command_handler,
    delayed,
    event_handler,
    query_handler,
    scheduled,
)
from conveyor.core.message import Message

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class CountOrders:
    pass


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())  # type: ignore[arg-type]


def test_the_issue_example_runs_as_written() -> None:
    sent: list[str] = []

    @command_handler
    async def place(command: PlaceOrder, ctx: AsyncContext) -> None:
        await ctx.publish(OrderPlaced(command.order_id))

    @asynchronous("notifications")
    @delayed(timedelta(seconds=5))
    @event_handler
    async def email(event: OrderPlaced) -> None:
        await asyncio.sleep(0)  # a real await: the handler is a coroutine
        sent.append(event.order_id)

    async def main() -> None:
        clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
        messaging = AsyncMessaging(
            handlers=[place, email], channels=[QueueChannel("notifications")], clock=clock
        )
        async with messaging:
            await messaging.send(PlaceOrder("o-1"))
            await messaging.run_until_idle(advance_time=True)
        assert sent == ["o-1"]
        assert clock.now() == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)

    asyncio.run(main())


def test_async_and_plain_handlers_mix_and_a_query_answers() -> None:
    placed: list[str] = []

    @command_handler
    def place(command: PlaceOrder) -> str:  # plain def: called in the sending task
        placed.append(command.order_id)
        return f"placed {command.order_id}"

    @query_handler
    async def count(query: CountOrders) -> int:
        await asyncio.sleep(0)
        return len(placed)

    async def main() -> None:
        async with AsyncMessaging(handlers=[place, count], clock=VirtualClock(START)) as messaging:
            assert await messaging.send(PlaceOrder("a")) == "placed a"
            assert await messaging.ask(CountOrders()) == 1

    run(main)


def build(handlers: list[object], **options: Any) -> AsyncMessaging:
    return AsyncMessaging(
        handlers=handlers,
        channels=[QueueChannel("orders")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,
    )


def test_delayed_retries_then_a_dead_letter_that_replays() -> None:
    attempts: list[int] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(seconds=1)], attempts=3))
    @command_handler
    async def place(command: PlaceOrder, ctx: AsyncContext) -> None:
        attempts.append(ctx.attempt)
        if len(attempts) < 4:
            raise ValueError("warehouse down")

    async def main() -> None:
        async with build([place]) as messaging:
            await messaging.send(PlaceOrder("o-1"))
            await messaging.run_until_idle(advance_time=True)
            assert attempts == [1, 2, 3]
            assert messaging.dead_letters.count() == 1
            letter = messaging.dead_letters.list()[0]
            assert letter.exception_type == "ValueError"
            await messaging.dead_letters.replay(letter.id)
            await messaging.run_until_idle()
            assert attempts == [1, 2, 3, 1]
            assert messaging.dead_letters.count() == 0

    run(main)


def scenario_handlers(asyncio_driver: bool) -> list[object]:
    """One scenario's handlers, plain for ``Messaging`` and ``async def`` for ``AsyncMessaging``."""
    retry = RetryPolicy(delays=[timedelta(seconds=2)], attempts=2)

    def check(command: PlaceOrder) -> None:
        if command.order_id == "bad":
            raise ValueError("no")

    if asyncio_driver:

        @asynchronous("orders", retry=retry)
        @command_handler
        async def place(command: PlaceOrder, ctx: AsyncContext) -> None:
            check(command)
            await ctx.publish(OrderPlaced(command.order_id))

    else:

        @asynchronous("orders", retry=retry)
        @command_handler
        def place(command: PlaceOrder, ctx: Context) -> None:  # type: ignore[misc]
            check(command)
            ctx.publish(OrderPlaced(command.order_id))

    @asynchronous("orders")
    @delayed(timedelta(seconds=3))
    @event_handler
    def note(event: OrderPlaced) -> None:
        pass

    return [place, note]


def test_both_drivers_write_the_same_journal_for_the_same_scenario() -> None:
    """The same plans: a sync and an asyncio run of one scenario agree record for record."""

    def shape(records: Any) -> list[tuple[object, ...]]:
        return [
            (r.at, r.kind, r.message_type, r.message_id, r.channel, r.endpoint_id, r.attempt)
            for r in records
        ]

    sync = Messaging(
        handlers=scenario_handlers(False), channels=[QueueChannel("orders")],
        clock=VirtualClock(START), ids=SequentialIds(),
    )  # fmt: skip
    sync.send(PlaceOrder("good"))
    sync.send(PlaceOrder("bad"))
    sync.run_until_idle(advance_time=True)

    async def main() -> AsyncMessaging:
        async with build(scenario_handlers(True)) as messaging:
            await messaging.send(PlaceOrder("good"))
            await messaging.send(PlaceOrder("bad"))
            await messaging.run_until_idle(advance_time=True)
        return messaging

    asynchronous_run = run(main)
    assert shape(asynchronous_run.journal.records) == shape(sync.journal.records)
    assert RecordKind.DEAD_LETTERED in {r.kind for r in asynchronous_run.journal.records}


def test_async_interceptors_and_a_plain_around_wrap_async_handlers() -> None:
    calls: list[str] = []

    @before()
    async def check(message: Message) -> None:
        calls.append("before")

    @around()
    def wrap(proceed: Callable[[], object], message: Message) -> object:
        calls.append("around")
        return proceed()  # a coroutine: the driver awaits it

    @after()
    async def log(message: Message, result: object) -> None:
        calls.append(f"after {result}")

    @asynchronous("orders")
    @command_handler
    async def place(command: PlaceOrder) -> str:
        calls.append("handler")
        return "ok"

    async def main() -> None:
        async with build([place, check, wrap, log]) as messaging:
            await messaging.send(PlaceOrder("o-1"))
            await messaging.run_until_idle()

    run(main)
    assert calls == ["before", "around", "handler", "after ok"]


def test_an_async_error_handler_takes_the_failure() -> None:
    failures: list[str] = []

    @command_handler
    async def on_failure(failure: Failure) -> None:
        failures.append(failure.exception_message)

    @asynchronous("orders", error_handler=on_failure)
    @command_handler
    async def place(command: PlaceOrder) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        async with build([place, on_failure]) as messaging:
            await messaging.send(PlaceOrder("o-1"))
            await messaging.run_until_idle()
            assert messaging.dead_letters.count() == 0

    run(main)
    assert failures == ["boom"]


def test_a_failed_async_handler_sends_nothing_it_published() -> None:
    @asynchronous("orders")
    @command_handler
    async def place(command: PlaceOrder, ctx: AsyncContext) -> None:
        await ctx.publish(OrderPlaced(command.order_id))
        raise ValueError("after publishing")

    @asynchronous("orders")
    @event_handler
    async def note(event: OrderPlaced) -> None: ...

    async def main() -> AsyncMessaging:
        async with build([place, note], dead_letter=True) as messaging:
            await messaging.send(PlaceOrder("o-1"))
            await messaging.run_until_idle()
        return messaging

    messaging = run(main)
    assert [r.message_type for r in messaging.journal.of_kind(RecordKind.QUEUED)] == ["PlaceOrder"]


def test_advance_steps_virtual_time_and_runs_schedules() -> None:
    ticks: list[datetime] = []

    @scheduled(every=timedelta(minutes=1))
    async def heartbeat(ctx: AsyncContext) -> None:
        ticks.append(ctx.now)

    async def main() -> None:
        async with build([heartbeat]) as messaging:
            await messaging.advance(timedelta(minutes=3))

    run(main)
    assert ticks == [START + timedelta(minutes=n) for n in range(4)]  # as Messaging ticks


def test_inline_mode_handles_at_send() -> None:
    handled: list[str] = []

    @asynchronous("orders")
    @command_handler
    async def place(command: PlaceOrder) -> None:
        handled.append(command.order_id)

    async def main() -> None:
        async with build([place], mode="inline") as messaging:
            await messaging.send(PlaceOrder("o-1"))
            assert handled == ["o-1"]

    run(main)


def test_run_keeps_up_to_concurrency_messages_in_flight() -> None:
    """Ten handlers that each wait for all ten to have started: only concurrent ones finish."""
    started = 0
    most = 0
    everyone: asyncio.Event | None = None

    @asynchronous("orders")
    @command_handler
    async def place(command: PlaceOrder) -> None:
        nonlocal started, most
        assert everyone is not None
        started += 1
        most = max(most, started)
        if started == 10:
            everyone.set()
        await everyone.wait()

    async def main() -> None:
        nonlocal everyone
        everyone = asyncio.Event()
        async with build([place]) as messaging:
            for n in range(25):
                await messaging.send(PlaceOrder(str(n)))
            result = await asyncio.wait_for(messaging.run("orders", concurrency=10, limit=10), 30)
            assert (result.processed, result.stopped_because) == (10, "limit")

    run(main)
    assert most == 10


def test_sigterm_stops_taking_messages_and_finishes_those_in_flight() -> None:
    finished: list[str] = []

    @asynchronous("orders")
    @command_handler
    async def place(command: PlaceOrder) -> None:
        if command.order_id == "0":
            os.kill(os.getpid(), signal.SIGTERM)  # the process manager asks us to stop
        await asyncio.sleep(0)
        finished.append(command.order_id)

    async def main() -> None:
        messaging = AsyncMessaging(handlers=[place], channels=["orders"], clock=SystemClock())
        async with messaging:
            for n in range(20):
                await messaging.send(PlaceOrder(str(n)))
            result = await messaging.run("orders", concurrency=4)  # a worker: no limits
            assert result.stopped_because == "signal"
            assert len(finished) == result.processed < 20  # each one taken was finished
            rest = await messaging.run("orders", finish_when_empty=True)
            assert rest.processed == 20 - result.processed

    previous = signal.getsignal(signal.SIGTERM)
    run(main)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_stop_on_failure_re_raises_after_those_in_flight_finish() -> None:
    @asynchronous("orders")
    @command_handler
    async def place(command: PlaceOrder) -> None:
        raise ValueError(command.order_id)

    async def main() -> None:
        async with build([place]) as messaging:
            await messaging.send(PlaceOrder("o-1"))
            with pytest.raises(ValueError, match="o-1"):
                await messaging.run("orders", concurrency=3, stop_on_failure=True)

    run(main)


def test_the_sync_kernel_names_the_asyncio_root_for_coroutines() -> None:
    @command_handler
    async def place(command: PlaceOrder) -> None: ...

    with pytest.raises(ConfigurationError, match="AsyncMessaging"):
        Messaging(handlers=[place])


def test_a_bootstrap_error_names_the_asyncio_root() -> None:
    with pytest.raises(ConfigurationError, match=r"AsyncMessaging\(handlers=\.\.\.\) takes a list"):
        AsyncMessaging(handlers="not a list")


def test_consumers_lists_channels_then_schedules() -> None:
    @scheduled(every=timedelta(minutes=1))
    def heartbeat() -> None: ...

    assert build([heartbeat]).consumers() == ["orders", "heartbeat"]
