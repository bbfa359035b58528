"""Interceptors: before, around and after, selected by type or marker, in explicit order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from conveyor import (
    Marker,
    Message,
    Messaging,
    after,
    around,
    before,
    command_handler,
    event_handler,
)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


audited = Marker("audited")


def test_interceptors_run_in_order_lowest_outermost() -> None:
    calls: list[str] = []

    @command_handler
    def place(command: PlaceOrder) -> str:
        calls.append("handler")
        return "done"

    @around(order=2)
    def inner(proceed: Callable[[], object], message: Message) -> object:
        calls.append("inner>")
        result = proceed()
        calls.append("<inner")
        return result

    @around(order=1)
    def outer(proceed: Callable[[], object], message: Message) -> object:
        calls.append("outer>")
        result = proceed()
        calls.append("<outer")
        return result

    @before(order=3)
    def check(message: Message) -> None:
        calls.append(f"before {message.payload}")

    @after(order=0)
    def log(message: Message, result: object) -> None:
        calls.append(f"after {result}")

    messaging = Messaging(handlers=[place, inner, outer, check, log])
    assert messaging.send(PlaceOrder("o-1")) == "done"
    assert calls == [
        "outer>",
        "inner>",
        "before PlaceOrder(order_id='o-1')",
        "handler",
        "<inner",
        "<outer",
        "after done",
    ]


def test_equal_orders_keep_registration_order() -> None:
    calls: list[str] = []

    @command_handler
    def place(command: PlaceOrder) -> None: ...

    @before()
    def first(message: Message) -> None:
        calls.append("first")

    @before()
    def second(message: Message) -> None:
        calls.append("second")

    Messaging(handlers=[place], interceptors=[second, first]).send(PlaceOrder("o"))
    assert calls == ["second", "first"]


def test_selection_by_message_type_and_by_marker() -> None:
    calls: list[str] = []

    @command_handler
    def place(command: PlaceOrder) -> None: ...

    @audited
    @event_handler
    def placed(event: OrderPlaced) -> None: ...

    @event_handler
    def unaudited(event: OrderPlaced) -> None: ...

    @before(on=PlaceOrder)
    def on_commands(message: Message) -> None:
        calls.append(f"type:{type(message.payload).__name__}")

    @before(on=audited)
    def on_audited(message: Message) -> None:
        calls.append(f"marker:{type(message.payload).__name__}")

    messaging = Messaging(handlers=[place, placed, unaudited, on_commands, on_audited])
    messaging.send(PlaceOrder("o"))
    messaging.publish(OrderPlaced("o"))
    assert calls == ["type:PlaceOrder", "marker:OrderPlaced"]


def test_an_around_interceptor_can_replace_the_result_or_stop_the_call() -> None:
    @command_handler
    def place(command: PlaceOrder) -> str:
        raise AssertionError("not reached")

    @around(on=PlaceOrder)
    def refuse(proceed: Callable[[], object], message: Message) -> object:
        return "refused"

    assert Messaging(handlers=[place, refuse]).send(PlaceOrder("o")) == "refused"


def test_a_before_interceptor_may_take_the_context_and_its_exception_propagates() -> None:
    @command_handler
    def place(command: PlaceOrder) -> None: ...

    @before()
    def require_tenant(message: Message, ctx: object) -> None:
        if "tenant" not in message.headers:
            raise PermissionError("no tenant")

    messaging = Messaging(handlers=[place, require_tenant])
    messaging.send(PlaceOrder("o"), headers={"tenant": "acme"})
    with pytest.raises(PermissionError, match="no tenant"):
        messaging.send(PlaceOrder("o"))


def test_interceptor_methods_on_an_object() -> None:
    class Transactions:
        def __init__(self) -> None:
            self.log: list[str] = []

        @around()
        def in_transaction(self, proceed: Callable[[], object], message: Message) -> object:
            self.log.append("begin")
            try:
                return proceed()
            finally:
                self.log.append("end")

    @command_handler
    def place(command: PlaceOrder) -> None: ...

    tx = Transactions()
    Messaging(handlers=[place, tx]).send(PlaceOrder("o"))
    assert tx.log == ["begin", "end"]
