"""The three buses: routing, return values, headers and propagation (issue 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    Context,
    Message,
    Messaging,
    NoHandlerError,
    Query,
    RecordKind,
    SequentialIds,
    VirtualClock,
    command_handler,
    event_handler,
    query_handler,
)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class ExpressOrderPlaced(OrderPlaced):
    pass


@dataclass(frozen=True)
class OrderCancelled:
    order_id: str


@dataclass(frozen=True)
class CountOrders:
    pass


class Orders:
    def __init__(self) -> None:
        self.placed: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> str:
        self.placed.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id))
        return f"placed {command.order_id}"

    @query_handler
    def count(self, query: CountOrders) -> int:
        return len(self.placed)


def build(*handlers: object) -> Messaging:
    return Messaging(handlers=list(handlers), clock=VirtualClock(START), ids=SequentialIds())


def test_the_issue_example_runs_as_written() -> None:
    seen: list[OrderPlaced] = []

    @event_handler
    def audit(event: OrderPlaced, ctx: Context) -> None:
        seen.append(event)

    messaging = Messaging(handlers=[Orders(), audit])
    messaging.send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    assert messaging.ask(CountOrders()) == 1
    assert seen == [OrderPlaced("o-1")]


def test_send_returns_what_the_command_handler_returns() -> None:
    assert build(Orders()).send(PlaceOrder("o-7")) == "placed o-7"


def test_ask_returns_the_query_handlers_answer() -> None:
    orders = Orders()
    messaging = build(orders)
    messaging.send(PlaceOrder("a"))
    messaging.send(PlaceOrder("b"))
    assert messaging.ask(CountOrders()) == 2


@dataclass(frozen=True)
class OrdersOf(Query[list[str]]):
    customer: str


def test_a_typed_query_is_an_ordinary_message_that_crosses_the_codec() -> None:
    """``Query[T]`` only types ``ask``: it adds no field, so the query encodes as before."""

    @query_handler
    def orders_of(query: OrdersOf, ctx: Context) -> list[str]:
        return [query.customer, ctx.message_id]

    messaging = build(orders_of)
    assert messaging.ask(OrdersOf("c-1")) == ["c-1", "msg-1"]
    body, name = messaging.codec.encode(OrdersOf("c-1"))
    assert (body, name) == (b'{"customer":"c-1"}', "OrdersOf")
    assert messaging.codec.decode(body, name) == OrdersOf("c-1")


def test_publish_reaches_every_handler_in_registration_order() -> None:
    calls: list[str] = []

    @event_handler
    def first(event: OrderPlaced) -> None:
        calls.append("first")

    @event_handler
    def second(event: OrderPlaced) -> None:
        calls.append("second")

    @event_handler
    def third(event: OrderPlaced) -> None:
        calls.append("third")

    build(second, first, third).publish(OrderPlaced("o-1"))
    assert calls == ["second", "first", "third"]


def test_publish_with_no_handler_is_fine() -> None:
    messaging = build(Orders())
    messaging.publish(OrderCancelled("o-1"))
    assert [r.kind for r in messaging.journal] == [RecordKind.PUBLISHED]


def test_events_reach_handlers_of_a_base_class_and_of_a_union_member() -> None:
    calls: list[str] = []

    @event_handler
    def any_placed(event: OrderPlaced) -> None:
        calls.append(f"base:{type(event).__name__}")

    @event_handler
    def placed_or_cancelled(event: OrderCancelled | ExpressOrderPlaced) -> None:
        calls.append(f"union:{type(event).__name__}")

    messaging = build(any_placed, placed_or_cancelled)
    messaging.publish(ExpressOrderPlaced("o-1"))
    messaging.publish(OrderCancelled("o-2"))
    messaging.publish(OrderPlaced("o-3"))
    assert calls == [
        "base:ExpressOrderPlaced",
        "union:ExpressOrderPlaced",
        "union:OrderCancelled",
        "base:OrderPlaced",
    ]


def test_routing_keys_route_commands_and_wildcards_subscribe_events() -> None:
    calls: list[object] = []

    @command_handler(routing_key="order.place")
    def place(command: dict[str, str]) -> str:
        calls.append(command)
        return command["id"]

    @event_handler(routing_key="order.*")
    def any_order_event(event: dict[str, str]) -> None:
        calls.append(("one word", event["id"]))

    @event_handler(routing_key="order.#")
    def deep(event: dict[str, str]) -> None:
        calls.append(("any words", event["id"]))

    messaging = build(place, any_order_event, deep)
    assert messaging.send({"id": "o-1"}, routing_key="order.place") == "o-1"
    messaging.publish({"id": "o-2"}, routing_key="order.placed")
    messaging.publish({"id": "o-3"}, routing_key="order.line.added")
    messaging.publish({"id": "o-4"}, routing_key="invoice.paid")
    assert calls == [
        {"id": "o-1"},
        ("one word", "o-2"),
        ("any words", "o-2"),
        ("any words", "o-3"),
    ]


def test_a_handler_may_take_the_message_envelope_when_routed_by_key() -> None:
    got: list[Message] = []

    @event_handler(routing_key="ping")
    def pinged(message: Message) -> None:
        got.append(message)

    build(pinged).publish({"n": 1}, routing_key="ping", headers={"who": "me"})
    assert got[0].payload == {"n": 1}
    assert got[0].routing_key == "ping"
    assert got[0].headers["who"] == "me"


def test_headers_of_a_top_level_message() -> None:
    seen: list[Context] = []

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        seen.append(ctx)

    build(place).send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    headers = seen[0].headers
    assert headers.id == "msg-1"
    assert headers.correlation_id == "msg-1"  # defaults to its own id
    assert headers.causation_id is None
    assert headers.timestamp == START
    assert headers.timestamp.tzinfo is not None
    assert headers["tenant"] == "acme"
    assert seen[0].message_id == "msg-1"
    assert seen[0].clock.now() == START


def test_user_headers_correlation_and_causation_propagate() -> None:
    seen: dict[str, Context] = {}

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        seen["place"] = ctx
        ctx.publish(OrderPlaced(command.order_id), headers={"step": "2"})

    @event_handler
    def placed(event: OrderPlaced, ctx: Context) -> None:
        seen["placed"] = ctx
        ctx.send(CountOrders())  # a command sent while handling the event

    @command_handler
    def count(command: CountOrders, ctx: Context) -> None:
        seen["count"] = ctx

    build(place, placed, count).send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    place_h, placed_h, count_h = (seen[k].headers for k in ("place", "placed", "count"))
    assert placed_h["tenant"] == "acme"
    assert placed_h["step"] == "2"
    assert count_h["tenant"] == "acme"
    assert count_h["step"] == "2"
    assert {place_h.correlation_id, placed_h.correlation_id, count_h.correlation_id} == {place_h.id}
    assert placed_h.causation_id == place_h.id
    assert count_h.causation_id == placed_h.id


def test_explicit_headers_override_inherited_ones() -> None:
    seen: list[Context] = []

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced("x"), headers={"tenant": "other"})

    @event_handler
    def placed(event: OrderPlaced, ctx: Context) -> None:
        seen.append(ctx)

    build(place, placed).send(PlaceOrder("o"), headers={"tenant": "acme"})
    assert seen[0].headers["tenant"] == "other"


def test_messages_sent_through_messaging_inside_a_handler_also_propagate() -> None:
    seen: list[Context] = []
    holder: list[Messaging] = []

    @command_handler
    def place(command: PlaceOrder) -> None:
        holder[0].publish(OrderPlaced(command.order_id))

    @event_handler
    def placed(event: OrderPlaced, ctx: Context) -> None:
        seen.append(ctx)

    messaging = build(place, placed)
    holder.append(messaging)
    messaging.send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    assert seen[0].headers["tenant"] == "acme"
    assert seen[0].headers.causation_id == "msg-1"


def test_no_command_handler_names_the_type_and_lists_registered_ones() -> None:
    with pytest.raises(NoHandlerError) as caught:
        build(Orders()).send(OrderCancelled("o-1"))
    assert str(caught.value) == (
        "no command handler for OrderCancelled. Registered command handlers handle: "
        "PlaceOrder. Mark a handler with @command_handler and pass it in "
        "Messaging(handlers=[...]), or check the type you send."
    )


def test_no_query_handler_names_the_type() -> None:
    with pytest.raises(NoHandlerError) as caught:
        build().ask(CountOrders())
    assert str(caught.value) == (
        "no query handler for CountOrders. Registered query handlers handle: none. Mark a "
        "handler with @query_handler and pass it in Messaging(handlers=[...]), or check the "
        "type you ask."
    )


def test_handler_exceptions_reach_the_caller_unwrapped() -> None:
    class CardDeclined(Exception):
        pass

    @command_handler
    def place(command: PlaceOrder) -> None:
        raise CardDeclined("insufficient funds")

    messaging = build(place)
    with pytest.raises(CardDeclined, match="insufficient funds"):
        messaging.send(PlaceOrder("o-1"))
    failed = messaging.journal.of_kind(RecordKind.FAILED)[0]
    assert failed.exception is not None
    assert failed.exception.type_name.endswith("CardDeclined")
    assert "insufficient funds" in failed.exception.traceback


def test_a_failing_sync_event_handler_stops_the_publish() -> None:
    calls: list[str] = []

    @event_handler
    def broken(event: OrderPlaced) -> None:
        raise ValueError("boom")

    @event_handler
    def later(event: OrderPlaced) -> None:
        calls.append("later")

    with pytest.raises(ValueError, match="boom"):
        build(broken, later).publish(OrderPlaced("o"))
    assert calls == []


def test_narrow_bus_views_satisfy_the_bus_protocols() -> None:
    from conveyor import CommandBus, EventBus, QueryBus

    messaging = build(Orders())
    commands, events, queries = (
        messaging.command_bus(),
        messaging.event_bus(),
        messaging.query_bus(),
    )
    assert isinstance(commands, CommandBus)
    assert isinstance(events, EventBus)
    assert isinstance(queries, QueryBus)
    assert isinstance(messaging, CommandBus)
    commands.send(PlaceOrder("o-1"))
    assert queries.ask(CountOrders()) == 1


def test_the_same_handler_list_builds_independent_messagings() -> None:
    orders_a, orders_b = Orders(), Orders()
    a, b = build(orders_a), build(orders_b)
    a.send(PlaceOrder("x"))
    assert (a.ask(CountOrders()), b.ask(CountOrders())) == (1, 0)


def test_timestamps_follow_the_injected_clock() -> None:
    clock = VirtualClock(START)
    messaging = Messaging(handlers=[Orders()], clock=clock, ids=SequentialIds())
    clock.advance(timedelta(minutes=5))
    messaging.send(PlaceOrder("o"))
    assert next(r.at for r in messaging.journal) == START + timedelta(minutes=5)


def test_synchronous_subscribers_with_priority_run_first_highest_first() -> None:
    from conveyor import priority

    order: list[str] = []

    @event_handler
    def audit(event: OrderPlaced) -> None:
        order.append("audit")

    @priority(10)
    @event_handler
    def reserve_stock(event: OrderPlaced) -> None:
        order.append("reserve_stock")

    @priority(5)
    @event_handler
    def invoice(event: OrderPlaced) -> None:
        order.append("invoice")

    @event_handler
    def email(event: OrderPlaced) -> None:
        order.append("email")

    messaging = Messaging(
        handlers=[audit, reserve_stock, invoice, email], clock=VirtualClock(START)
    )
    messaging.publish(OrderPlaced("o-1"))
    # priority first, highest first; the others in registration order
    assert order == ["reserve_stock", "invoice", "audit", "email"]
