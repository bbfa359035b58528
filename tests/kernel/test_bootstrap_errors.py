"""Validation at bootstrap: each mistake is a clear error naming what and how to fix (issue 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from conveyor import (
    ConfigurationError,
    Messaging,
    QueueChannel,
    around,
    asynchronous,
    before,
    command_handler,
    delayed,
    event_handler,
    query_handler,
)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


def message_of(*handlers: object, **options: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Messaging(handlers=list(handlers), **options)
    return str(caught.value)


@command_handler
def place(command: PlaceOrder) -> None: ...


@command_handler
def place_again(command: PlaceOrder) -> None: ...


def test_two_command_handlers_for_one_type() -> None:
    assert message_of(place, place_again) == (
        "two command handlers for PlaceOrder: place and place_again. A command has exactly one "
        "handler; remove one, or publish an event instead if both should react."
    )


def test_two_query_handlers_for_one_routing_key() -> None:
    @query_handler(routing_key="orders.count")
    def one(query: dict[str, str]) -> int:
        return 1

    @query_handler(routing_key="orders.count", endpoint_id="two")
    def two(query: dict[str, str]) -> int:
        return 2

    assert message_of(one, two).startswith("two query handlers for 'orders.count': ")


def test_a_handler_whose_message_type_cannot_be_read() -> None:
    @command_handler
    def untyped(command) -> None:  # type: ignore[no-untyped-def]
        ...

    assert message_of(untyped) == (
        "the message type of handler test_a_handler_whose_message_type_cannot_be_read.<locals>"
        ".untyped cannot be read: its first parameter 'command' has no annotation. Annotate it "
        '(for example command: PlaceOrder), or route by name with routing_key="...".'
    )


def test_a_handler_annotated_with_a_name_that_does_not_resolve() -> None:
    @command_handler
    def dangling(command: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    message = message_of(dangling)
    assert "cannot be read: its annotations failed to resolve (NameError" in message
    assert "Import the type at module level." in message


def test_a_handler_without_parameters() -> None:
    @event_handler
    def nothing() -> None: ...

    assert "takes no parameter; its first parameter receives the message" in message_of(nothing)


def test_a_coroutine_handler_on_the_sync_kernel() -> None:
    @command_handler
    async def place_async(command: PlaceOrder) -> None: ...

    assert message_of(place_async) == (
        "handler test_a_coroutine_handler_on_the_sync_kernel.<locals>.place_async is a "
        "coroutine function (async def); the sync Messaging calls handlers directly. Make it "
        "a plain def, or build an AsyncMessaging, which awaits it."
    )


def test_an_interceptor_with_a_bad_signature() -> None:
    @around()
    def wrap(proceed: object) -> object:
        return None

    assert message_of(place, wrap) == (
        "@around interceptor test_an_interceptor_with_a_bad_signature.<locals>.wrap takes 1 "
        "parameter(s); an @around interceptor has the shape def wrap(proceed, message) -> "
        "object, returning proceed()."
    )


def test_an_interceptor_selecting_something_that_is_not_a_type_or_marker() -> None:
    with pytest.raises(ConfigurationError, match="neither a message type nor a Marker"):
        before(on="PlaceOrder")  # type: ignore[arg-type]


def test_an_unknown_async_channel_lists_the_declared_ones() -> None:
    @asynchronous("notifications")
    @event_handler
    def email(event: OrderPlaced) -> None: ...

    assert message_of(email, channels=[QueueChannel("orders")]) == (
        "handler test_an_unknown_async_channel_lists_the_declared_ones.<locals>.email is "
        "asynchronous on channel 'notifications', but no channel 'notifications' was given "
        "(declared channels: 'orders'). Add QueueChannel('notifications') (or a broker "
        "channel) to Messaging(channels=[...])."
    )


def test_delivery_options_on_a_synchronous_handler() -> None:
    @delayed(timedelta(seconds=5))
    @event_handler
    def later(event: OrderPlaced) -> None: ...

    assert "runs synchronously, where they cannot apply. Add @asynchronous(...)" in message_of(
        later
    )


def test_an_asynchronous_query_handler() -> None:
    @asynchronous("q")
    @query_handler
    def count(query: PlaceOrder) -> int:
        return 0

    assert "a query returns its answer to the caller at once" in message_of(count, channels=["q"])


def test_duplicate_endpoint_ids() -> None:
    @event_handler(endpoint_id="mailer")
    def a(event: OrderPlaced) -> None: ...

    @event_handler(endpoint_id="mailer")
    def b(event: OrderPlaced) -> None: ...

    assert "two handlers have endpoint id 'mailer'" in message_of(a, b)


def test_a_class_instead_of_an_instance() -> None:
    class Orders:
        @command_handler
        def place(self, command: PlaceOrder) -> None: ...

    assert "is a class; pass an instance (for example" in message_of(Orders)


def test_an_unmarked_function() -> None:
    def plain(command: PlaceOrder) -> None: ...

    assert "has no handler decorator" in message_of(plain)


def test_a_channel_declared_twice() -> None:
    assert "channel 'orders' is declared twice" in message_of(channels=["orders", "orders"])


def test_two_roles_on_one_function() -> None:
    with pytest.raises(ConfigurationError, match="marked both @command_handler and @event_handler"):

        @event_handler
        @command_handler
        def confused(command: PlaceOrder) -> None: ...
