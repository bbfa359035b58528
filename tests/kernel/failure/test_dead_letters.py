"""The dead-letter store: what a record keeps, and list, get, count, replay, replay_all, delete."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from failure_kit import (
    START,
    ChargeCard,
    Flaky,
    OrderPlaced,
    PaymentDeclined,
    build,
    pending,
    seconds,
)

from conveyor import (
    ConfigurationError,
    Context,
    DeadLetter,
    DeadLetterStore,
    InMemoryDeadLetterStore,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.errors import DeadLetterNotFound
from conveyor.core.wire import H
from conveyor.transports.seam import WireMessage
from pytest_conveyor.conformance import receive_one


def charge_handler(flaky: Flaky, **options: object) -> object:
    @asynchronous("orders", **options)  # type: ignore[arg-type]
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    return charge


def test_a_record_keeps_the_original_message_where_it_was_and_why_it_failed() -> None:
    flaky = Flaky(failures=None, error=PaymentDeclined)
    handler = charge_handler(flaky, retry=RetryPolicy(delays=[seconds(2)], attempts=3))
    messaging = build([handler], ["orders"])
    messaging.send(ChargeCard("o-1"), headers={"tenant": "acme"})
    messaging.run_until_idle(advance_time=True)

    [letter] = messaging.dead_letters.list()
    assert letter.id == "msg-1@charge"
    assert letter.message_id == "msg-1"
    assert letter.channel == "orders"
    assert letter.endpoint_id == "charge"
    assert letter.message_type == "ChargeCard"
    assert json.loads(letter.body) == {"order_id": "o-1"}
    assert letter.headers["tenant"] == "acme"
    assert letter.headers[H.ID] == "msg-1"
    assert letter.headers[H.ENDPOINT] == "charge"
    assert letter.headers[H.TIMESTAMP] == START.isoformat()
    assert letter.reason == "failed"
    assert letter.exception_type == "failure_kit.PaymentDeclined"
    assert letter.exception_message == "call 3 failed"
    assert letter.traceback is not None
    assert "in __call__" in letter.traceback
    assert letter.traceback.rstrip().endswith("failure_kit.PaymentDeclined: call 3 failed")
    assert letter.attempts == 3
    assert letter.first_failed_at == START
    assert letter.last_failed_at == START + seconds(4)
    assert letter.replayed == 0


def test_dead_lettering_is_in_the_journal() -> None:
    messaging = build([charge_handler(Flaky(None, PaymentDeclined))], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    [record] = messaging.journal.of_kind(RecordKind.DEAD_LETTERED)
    assert (record.message_id, record.endpoint_id, record.channel, record.detail) == (
        "msg-1",
        "charge",
        "orders",
        "failed; dead letter msg-1@charge",
    )
    assert str(record.exception) == "PaymentDeclined: call 1 failed"


def test_each_failed_copy_of_an_event_gets_its_own_record() -> None:
    @asynchronous("orders")
    @event_handler(endpoint_id="reserve_stock")
    def reserve_stock(event: OrderPlaced) -> None:
        raise PaymentDeclined("no stock")

    @asynchronous("orders")
    @event_handler(endpoint_id="send_email")
    def send_email(event: OrderPlaced) -> None:
        raise PaymentDeclined("no smtp")

    messaging = build([reserve_stock, send_email], ["orders"])
    messaging.publish(OrderPlaced("o-1"))
    messaging.run_until_idle()
    assert [(d.id, d.message_id, d.exception_message) for d in messaging.dead_letters.list()] == [
        ("msg-1@reserve_stock", "msg-1", "no stock"),
        ("msg-1@send_email", "msg-1", "no smtp"),
    ]


def test_two_letters_of_one_copy_get_distinct_ids() -> None:
    messaging = build([charge_handler(Flaky(None, PaymentDeclined))], ["orders"])
    messaging.send(ChargeCard("o-1"))
    wire = receive_one(messaging.channels["orders"].transport, "orders", lease=seconds(1))
    assert wire is not None
    messaging.channels["orders"].transport.release(wire)
    messaging.channels["orders"].transport.send("orders", wire.message)  # a duplicate delivery
    messaging.run_until_idle()
    assert [d.id for d in messaging.dead_letters.list()] == ["msg-1@charge", "msg-1@charge#2"]


def test_list_is_oldest_first_with_limit_and_offset_and_count_agrees() -> None:
    messaging = build([charge_handler(Flaky(None, PaymentDeclined))], ["orders"])
    for n in range(1, 6):
        messaging.send(ChargeCard(f"o-{n}"))
    messaging.run_until_idle()
    assert messaging.dead_letters.count() == 5
    assert [d.message_id for d in messaging.dead_letters.list()] == [
        f"msg-{n}" for n in range(1, 6)
    ]
    assert [d.message_id for d in messaging.dead_letters.list(limit=2, offset=1)] == [
        "msg-2",
        "msg-3",
    ]
    assert messaging.dead_letters.get("msg-4@charge").message_id == "msg-4"


def test_delete_removes_one_record() -> None:
    messaging = build([charge_handler(Flaky(None, PaymentDeclined))], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.send(ChargeCard("o-2"))
    messaging.run_until_idle()
    messaging.dead_letters.delete("msg-1@charge")
    assert [d.id for d in messaging.dead_letters.list()] == ["msg-2@charge"]
    assert pending(messaging, "orders") == 0


def test_an_unknown_id_is_refused_with_the_ids_that_exist() -> None:
    messaging = build([charge_handler(Flaky(None, PaymentDeclined))], ["orders"])
    with pytest.raises(DeadLetterNotFound) as raised:
        messaging.dead_letters.get("nope")
    assert str(raised.value) == (
        "no dead letter with id 'nope'; the store is empty. List them with "
        "messaging.dead_letters.list() or `conveyor dead-letter list`."
    )
    for n in range(1, 8):
        messaging.send(ChargeCard(f"o-{n}"))
    messaging.run_until_idle()
    for verb in (
        messaging.dead_letters.get,
        messaging.dead_letters.replay,
        messaging.dead_letters.delete,
    ):
        with pytest.raises(DeadLetterNotFound) as raised:
            verb("msg-9@charge")
        assert str(raised.value) == (
            "no dead letter with id 'msg-9@charge'; the store holds 7: msg-1@charge, "
            "msg-2@charge, msg-3@charge, msg-4@charge, msg-5@charge and 2 more. List them with "
            "messaging.dead_letters.list() or `conveyor dead-letter list`."
        )
    assert messaging.dead_letters.count() == 7


def test_replay_sends_the_message_back_for_its_endpoint_only() -> None:
    stock_calls: list[int] = []
    emails: list[str] = []
    broken = True

    @asynchronous("orders")
    @event_handler(endpoint_id="reserve_stock")
    def reserve_stock(event: OrderPlaced, ctx: Context) -> None:
        stock_calls.append(ctx.attempt)
        if broken:
            raise PaymentDeclined("stock service down")

    @asynchronous("orders")
    @event_handler(endpoint_id="send_email")
    def send_email(event: OrderPlaced) -> None:
        emails.append(event.order_id)

    messaging = build([reserve_stock, send_email], ["orders"])
    messaging.publish(OrderPlaced("o-1"))
    messaging.run_until_idle()
    [letter] = messaging.dead_letters.list()
    assert letter.endpoint_id == "reserve_stock"

    broken = False
    messaging.advance(timedelta(hours=1))
    messaging.dead_letters.replay(letter.id)
    assert messaging.dead_letters.count() == 0
    [replayed] = messaging.journal.of_kind(RecordKind.REPLAYED)
    assert (
        replayed.message_id,
        replayed.endpoint_id,
        replayed.channel,
        replayed.detail,
        replayed.at,
    ) == (
        "msg-1",
        "reserve_stock",
        "orders",
        "dead letter msg-1@reserve_stock",
        START + timedelta(hours=1),
    )

    messaging.run_until_idle()
    assert stock_calls == [1, 1]  # a replay starts counting attempts afresh
    assert emails == ["o-1"]  # the other handler of the same event did not run again
    handled = messaging.journal.of_kind(RecordKind.HANDLED)
    assert [(r.message_id, r.endpoint_id) for r in handled] == [
        ("msg-1", "send_email"),
        ("msg-1", "reserve_stock"),
    ]


def test_a_replayed_message_carries_the_replay_count_and_keeps_its_identity() -> None:
    seen: list[tuple[str, str | None, str]] = []

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard, ctx: Context) -> None:
        seen.append((ctx.message_id, ctx.headers.get("tenant"), command.order_id))  # type: ignore[arg-type]
        raise PaymentDeclined("still down")

    messaging = build([charge], ["orders"])
    messaging.send(ChargeCard("o-1"), headers={"tenant": "acme"})
    messaging.run_until_idle()
    messaging.dead_letters.replay("msg-1@charge")
    wire = receive_one(messaging.channels["orders"].transport, "orders", lease=seconds(1))
    assert wire is not None
    assert (wire.message.headers[H.REPLAYED], wire.message.headers[H.ATTEMPT]) == ("1", "1")
    messaging.channels["orders"].transport.release(wire)

    messaging.run_until_idle()
    [again] = messaging.dead_letters.list()
    assert again.replayed == 1  # failed again after one replay
    messaging.dead_letters.replay(again.id)
    messaging.run_until_idle()
    assert messaging.dead_letters.list()[0].replayed == 2
    assert seen == [("msg-1", "acme", "o-1")] * 3


def test_replay_all_sends_every_letter_back() -> None:
    flaky = Flaky(failures=3, error=PaymentDeclined)
    messaging = build([charge_handler(flaky)], ["orders"])
    for n in range(1, 4):
        messaging.send(ChargeCard(f"o-{n}"))
    messaging.run_until_idle()
    assert messaging.dead_letters.count() == 3

    assert messaging.dead_letters.replay_all() == 3
    assert messaging.dead_letters.count() == 0
    assert pending(messaging, "orders") == 3
    messaging.run_until_idle()
    assert flaky.calls[3:] == [ChargeCard("o-1"), ChargeCard("o-2"), ChargeCard("o-3")]
    assert len(messaging.journal.of_kind(RecordKind.REPLAYED)) == 3


def test_replay_all_of_an_empty_store_replays_nothing() -> None:
    messaging = build([charge_handler(Flaky())], ["orders"])
    assert messaging.dead_letters.replay_all() == 0


def test_replay_in_inline_mode_handles_the_message_at_once() -> None:
    flaky = Flaky(failures=1, error=PaymentDeclined)
    messaging = build([charge_handler(flaky)], ["orders"], mode="inline")
    messaging.send(ChargeCard("o-1"))
    assert messaging.dead_letters.count() == 1
    messaging.dead_letters.replay("msg-1@charge")
    assert len(flaky.calls) == 2
    assert pending(messaging, "orders") == 0
    assert len(messaging.journal.of_kind(RecordKind.HANDLED)) == 1


def test_replay_to_a_channel_this_messaging_does_not_declare_is_refused() -> None:
    store = InMemoryDeadLetterStore()
    store.add(
        DeadLetter(
            id="x-1@charge",
            message_id="x-1",
            channel="payments",
            endpoint_id="charge",
            message_type="ChargeCard",
            body=b'{"order_id":"o-1"}',
            headers={},
            reason="failed",
        )
    )
    messaging = build([charge_handler(Flaky())], ["orders"], dead_letters=store)
    with pytest.raises(ConfigurationError) as raised:
        messaging.dead_letters.replay("x-1@charge")
    assert str(raised.value) == (
        "dead letter x-1@charge came from channel 'payments', which this Messaging does not "
        "declare (declared: orders); declare it to replay."
    )
    assert messaging.dead_letters.count() == 1  # nothing was lost


def test_a_store_of_your_own_receives_the_letters() -> None:
    store = InMemoryDeadLetterStore()
    assert isinstance(store, DeadLetterStore)
    messaging = build(
        [charge_handler(Flaky(None, PaymentDeclined))], ["orders"], dead_letters=store
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert [d.id for d in store.list()] == ["msg-1@charge"]


def test_expired_messages_are_dead_lettered_when_the_channel_asks_for_it() -> None:
    flaky = Flaky()
    messaging = build([charge_handler(flaky)], [QueueChannel("orders", dead_letter_expired=True)])
    messaging.send(ChargeCard("o-1"), ttl=seconds(1))
    messaging.clock.advance(seconds(5))  # type: ignore[attr-defined]  # nobody consumed in time
    messaging.run_until_idle()
    assert flaky.calls == []
    [letter] = messaging.dead_letters.list()
    assert (letter.reason, letter.endpoint_id, letter.exception_type) == ("expired", "charge", None)
    assert [
        r.kind
        for r in messaging.journal
        if r.kind in (RecordKind.EXPIRED, RecordKind.DEAD_LETTERED)
    ] == [
        RecordKind.EXPIRED,
        RecordKind.DEAD_LETTERED,
    ]


def test_expired_messages_are_only_recorded_by_default() -> None:
    flaky = Flaky()
    messaging = build([charge_handler(flaky)], ["orders"])
    messaging.send(ChargeCard("o-1"), ttl=seconds(1))
    messaging.clock.advance(seconds(5))  # type: ignore[attr-defined]
    messaging.run_until_idle()
    [expired] = messaging.journal.of_kind(RecordKind.EXPIRED)
    assert expired.detail == f"expired at {(START + seconds(1)).isoformat()}"
    assert messaging.dead_letters.count() == 0


def test_a_poison_letter_keeps_its_raw_bytes_for_replay() -> None:
    messaging = build([charge_handler(Flaky())], ["orders"])
    messaging.channels["orders"].transport.send("orders", WireMessage(b"\xff\x00 not json", {}))
    messaging.run_until_idle()
    [letter] = messaging.dead_letters.list()
    assert letter.body == b"\xff\x00 not json"
    messaging.dead_letters.replay(letter.id)
    messaging.run_until_idle()
    assert messaging.dead_letters.list()[0].body == b"\xff\x00 not json"
