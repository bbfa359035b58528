"""Consumer lifecycle hooks: on start, on idle and on stop, for resources a consumer holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
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
