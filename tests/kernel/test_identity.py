"""Headers and identity a user sets at send: explicit ids, replays a handler can see, propagation.

A flow that started elsewhere (an HTTP request id) continues under its own correlation id; a
message can carry an id chosen by the caller (an idempotency key); a handler can tell that it is
handling a replayed dead letter, and how many times it was replayed; a send can leave the user
headers of the message being handled behind.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from conveyor import (
    AsyncMessaging,
    ConfigurationError,
    Context,
    Messaging,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
    query_handler,
)
from conveyor.core.headers import Headers

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


def build(handlers: list[object], channels: list[str] = ()) -> Messaging:  # type: ignore[assignment]
    return Messaging(
        handlers=handlers, channels=channels, clock=VirtualClock(START), ids=SequentialIds()
    )


class Recorder:
    """Handlers that keep the headers they saw."""

    def __init__(self) -> None:
        self.seen: dict[str, Headers] = {}

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.seen["place"] = ctx.headers
        ctx.publish(OrderPlaced(command.order_id), headers={"step": "placed"})

    @event_handler
    def placed(self, event: OrderPlaced, ctx: Context) -> None:
        self.seen["placed"] = ctx.headers

    @query_handler
    def count(self, query: CountOrders, ctx: Context) -> int:
        self.seen["count"] = ctx.headers
        return 1


def test_a_send_continues_a_flow_under_an_explicit_correlation_id() -> None:
    recorder = Recorder()
    messaging = build([recorder])
    messaging.send(PlaceOrder("o-1"), correlation_id="http-req-42")
    assert recorder.seen["place"].correlation_id == "http-req-42"
    assert recorder.seen["place"].id == "msg-1"  # the id is still new
    # what the handler caused shares the flow's correlation id
    assert recorder.seen["placed"].correlation_id == "http-req-42"
    assert recorder.seen["placed"].causation_id == "msg-1"
    [sent] = messaging.journal.of_kind(RecordKind.SENT)
    assert sent.headers is not None
    assert sent.headers.correlation_id == "http-req-42"


def test_a_send_carries_an_explicit_message_id() -> None:
    recorder = Recorder()
    messaging = build([recorder])
    messaging.send(PlaceOrder("o-1"), message_id="order-o-1")
    assert recorder.seen["place"].id == "order-o-1"
    assert recorder.seen["place"].correlation_id == "order-o-1"  # defaults to the id
    assert messaging.ask(CountOrders(), message_id="q-1", correlation_id="c-9") == 1
    assert (recorder.seen["count"].id, recorder.seen["count"].correlation_id) == ("q-1", "c-9")
    messaging.publish(OrderPlaced("o-2"), message_id="evt-1")
    assert recorder.seen["placed"].id == "evt-1"


def test_an_explicit_message_id_crosses_a_channel() -> None:
    seen: list[Headers] = []

    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        seen.append(ctx.headers)

    messaging = build([place], ["orders"])
    messaging.send(PlaceOrder("o-1"), message_id="order-o-1", correlation_id="http-req-42")
    messaging.run_until_idle()
    assert [(h.id, h.correlation_id) for h in seen] == [("order-o-1", "http-req-42")]


@pytest.mark.parametrize("bad", ["", " padded ", "two\nlines", 42])
def test_an_unusable_explicit_id_is_refused_at_send(bad: object) -> None:
    messaging = build([Recorder()])
    with pytest.raises(ConfigurationError, match="message_id= takes a non-empty string"):
        messaging.send(PlaceOrder("o-1"), message_id=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="correlation_id= takes a non-empty string"):
        messaging.publish(OrderPlaced("o-1"), correlation_id=bad)  # type: ignore[arg-type]


def test_a_send_can_leave_the_handled_messages_user_headers_behind() -> None:
    seen: dict[str, Headers] = {}

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced("inherits"))
        ctx.publish(OrderPlaced("fresh"), headers={"own": "yes"}, propagate_headers=False)

    @event_handler
    def placed(event: OrderPlaced, ctx: Context) -> None:
        seen[event.order_id] = ctx.headers

    messaging = build([place, placed])
    messaging.send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    assert dict(seen["inherits"].user) == {"tenant": "acme"}
    assert dict(seen["fresh"].user) == {"own": "yes"}
    # identity still links the flow: same correlation, caused by the command
    assert seen["fresh"].correlation_id == seen["inherits"].correlation_id == "msg-1"
    assert seen["fresh"].causation_id == "msg-1"


def test_a_handler_can_tell_it_handles_a_replayed_dead_letter_and_how_many_times() -> None:
    replays: list[int] = []

    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        replays.append(ctx.replayed)
        if len(replays) < 3:
            raise RuntimeError("the warehouse is down")

    messaging = build([place], ["orders"])
    messaging.send(PlaceOrder("o-1"))
    messaging.run_until_idle()
    [letter] = messaging.dead_letters.list()
    messaging.dead_letters.replay(letter.id)
    messaging.run_until_idle()
    [letter] = messaging.dead_letters.list()
    messaging.dead_letters.replay(letter.id)
    messaging.run_until_idle()
    assert replays == [0, 1, 2]
    assert messaging.dead_letters.count() == 0


def test_an_async_root_takes_the_same_identity_options() -> None:
    seen: list[Headers] = []

    @command_handler
    async def place(command: PlaceOrder, ctx: object) -> None:
        seen.append(ctx.headers)  # type: ignore[attr-defined]

    async def main() -> None:
        async with AsyncMessaging(
            handlers=[place], clock=VirtualClock(START), ids=SequentialIds()
        ) as messaging:
            await messaging.send(PlaceOrder("o-1"), message_id="m-7", correlation_id="c-7")

    asyncio.run(main())
    assert [(h.id, h.correlation_id) for h in seen] == [("m-7", "c-7")]
