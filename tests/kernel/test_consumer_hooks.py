"""Consumer lifecycle hooks: on start, on idle and on stop, for resources a consumer holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    AsyncMessaging,
    ConfigurationError,
    ConsumerHooks,
    Messaging,
    RunResult,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Resize:
    image: str


def test_hooks_open_and_close_a_resource_around_a_run() -> None:
    events: list[str] = []

    @asynchronous("images")
    @command_handler
    def resize(command: Resize) -> None:
        if command.image == "broken.png":
            raise OSError("unreadable")
        events.append(f"resize {command.image}")

    def stopped(name: str, result: RunResult | None) -> None:
        events.append(f"stop {name} {result.processed if result else 'raised'}")

    hooks = ConsumerHooks(
        on_start=lambda name: events.append(f"start {name}"),
        on_idle=lambda name: events.append(f"idle {name}"),
        on_stop=stopped,
    )
    messaging = Messaging(
        handlers=[resize], channels=["images"], clock=VirtualClock(START), ids=SequentialIds()
    )
    messaging.send(Resize("a.png"))
    messaging.send(Resize("b.png"))
    messaging.run("images", hooks=hooks)
    assert events == [
        "start images",
        "resize a.png",
        "resize b.png",
        "idle images",
        "stop images 2",
    ]
    events.clear()
    messaging.send(Resize("broken.png"))
    with pytest.raises(OSError, match="unreadable"):
        messaging.run("images", stop_on_failure=True, hooks=hooks)
    assert events == ["start images", "stop images raised"]  # closed even when it raised


def test_a_waiting_consumer_is_idle_each_time_it_finds_nothing() -> None:
    idle: list[datetime] = []
    clock = VirtualClock(START)

    @asynchronous("images")
    @command_handler
    def resize(command: Resize) -> None: ...

    messaging = Messaging(handlers=[resize], channels=["images"], clock=clock)
    messaging.send(Resize("later.png"), delay=timedelta(minutes=5))
    messaging.run(
        "images", limit=1, hooks=ConsumerHooks(on_idle=lambda name: idle.append(clock.now()))
    )
    assert idle == [START]  # idle once, then it waited (virtual time) for the delayed message


def test_asyncio_hooks_may_be_async_and_bracket_the_run() -> None:
    events: list[str] = []

    @asynchronous("images")
    @command_handler
    async def resize(command: Resize) -> None:
        if command.image == "broken.png":
            raise OSError("unreadable")
        events.append(f"resize {command.image}")

    async def open_pool(name: str) -> None:
        await asyncio.sleep(0)
        events.append(f"start {name}")

    async def close_pool(name: str, result: RunResult | None) -> None:
        events.append(f"stop {name} {result.processed if result else 'raised'}")

    hooks = ConsumerHooks(
        on_start=open_pool, on_idle=lambda name: events.append(f"idle {name}"), on_stop=close_pool
    )

    async def scenario() -> None:
        async with AsyncMessaging(
            handlers=[resize], channels=["images"], clock=VirtualClock(START), ids=SequentialIds()
        ) as messaging:
            await messaging.send(Resize("a.png"))
            await messaging.send(Resize("b.png"))
            await messaging.run("images", hooks=hooks)
            assert events == [
                "start images",
                "resize a.png",
                "resize b.png",
                "idle images",
                "stop images 2",
            ]
            events.clear()
            await messaging.send(Resize("broken.png"))
            with pytest.raises(OSError, match="unreadable"):
                await messaging.run("images", stop_on_failure=True, hooks=hooks)
            assert events == ["start images", "stop images raised"]

    asyncio.run(scenario())


def test_asyncio_a_waiting_consumer_is_idle_each_time_it_finds_nothing() -> None:
    idle: list[datetime] = []
    clock = VirtualClock(START)

    @asynchronous("images")
    @command_handler
    async def resize(command: Resize) -> None: ...

    async def scenario() -> None:
        async with AsyncMessaging(handlers=[resize], channels=["images"], clock=clock) as messaging:
            await messaging.send(Resize("later.png"), delay=timedelta(minutes=5))
            await messaging.run(
                "images",
                limit=1,
                hooks=ConsumerHooks(on_idle=lambda name: idle.append(clock.now())),
            )
        assert idle == [START]  # idle once, then it waited (virtual time) for the delayed one

    asyncio.run(scenario())


def test_an_async_hook_under_the_sync_driver_is_a_clear_error() -> None:
    @asynchronous("images")
    @command_handler
    def resize(command: Resize) -> None: ...

    async def open_pool(name: str) -> None: ...

    messaging = Messaging(handlers=[resize], channels=["images"], clock=VirtualClock(START))
    with pytest.raises(ConfigurationError, match=r"ConsumerHooks\(on_start=\.\.\.\) returned an"):
        messaging.run("images", hooks=ConsumerHooks(on_start=open_pool))
