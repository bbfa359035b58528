"""What a newcomer gets wrong first: each mistake gets an error that names the fix (issue 20)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from conveyor import (
    ConfigurationError,
    ConveyorError,
    Messaging,
    QueueChannel,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.testing import Setup


@dataclass(frozen=True)
class Cmd:
    x: int


@asynchronous("work")
@command_handler
def handle(command: Cmd) -> None: ...


def messaging() -> Messaging:
    return Messaging(handlers=[handle], channels=[QueueChannel("work")])


def wrong_context() -> Messaging:
    @command_handler
    def takes_int(command: Cmd, ctx: int) -> None: ...

    return Messaging(handlers=[takes_int])


class Billing:
    def __init__(self, gateway: object) -> None:
        self.gateway = gateway

    @event_handler
    def on(self, event: Cmd) -> None: ...


def build_without_keywords(clock: object) -> Messaging:
    return Messaging(handlers=[handle])


CASES: dict[str, tuple[Callable[[], Any], str]] = {
    "a delay without its unit": (
        lambda: messaging().send(Cmd(1), delay=5),
        "delay=timedelta(seconds=5)",
    ),
    "a priority by name": (
        lambda: messaging().send(Cmd(1), priority="high"),
        "for example priority=10",
    ),
    "a negative delay": (
        lambda: messaging().send(Cmd(1), delay=timedelta(seconds=-5)),
        "cannot be negative, got -5 seconds",
    ),
    "handlers not in a list": (
        lambda: Messaging(handlers=handle),  # type: ignore[arg-type]
        "wrap it in one: Messaging(handlers=[handle])",
    ),
    "the class instead of a message": (
        lambda: messaging().send(Cmd),
        "got the class Cmd itself; create one: send(Cmd(...))",
    ),
    "the class published": (
        lambda: messaging().publish(Cmd),
        "publish(Cmd(...))",
    ),
    "the same handler twice": (
        lambda: Messaging(handlers=[handle, handle]),
        "handle is listed twice in Messaging(handlers=[...]); list each handler once",
    ),
    "a retry delay below zero": (
        lambda: RetryPolicy(delays=[timedelta(seconds=-1)]),
        "cannot be negative",
    ),
    "a context parameter of another type": (
        wrong_context,
        "declares ctx: int, but the parameter after the message receives a Context",
    ),
    "plain data published without a routing key": (
        lambda: messaging().publish({"x": 1}),
        'Pass routing_key="order.placed"',
    ),
    "a handler class whose constructor needs arguments": (
        lambda: Setup(handlers=[Billing]).harness(),
        "its constructor needs gateway. Pass an instance instead: handlers=[Billing(gateway=...)]",
    ),
    "a build function without the keywords it is called with": (
        lambda: Setup(build=build_without_keywords).harness(),
        "does not accept ids, seed, mode",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_gets_an_error_naming_the_fix(case: str) -> None:
    action, fix = CASES[case]

    with pytest.raises(ConveyorError) as raised:
        action()

    assert fix in str(raised.value)


def test_the_same_instance_twice_is_named_as_listed_twice() -> None:
    first = Billing(gateway=None)
    with pytest.raises(ConfigurationError, match="Billing instance is listed twice"):
        Messaging(handlers=[first, first])
