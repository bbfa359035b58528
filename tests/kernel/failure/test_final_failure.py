"""The channel's final failure strategy: what happens when nothing else took the failure.

It is reached only when retries are exhausted, no error handler is set and dead-lettering is off
(DESIGN section 4: no silent drops, so "ignore" must be chosen and leaves a journal record).
"""

from __future__ import annotations

import pytest
from failure_kit import ChargeCard, Flaky, PaymentDeclined, build, pending, seconds, timeline

from conveyor import (
    ConfigurationError,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
)


def charge_handler(flaky: Flaky, **options: object) -> object:
    @asynchronous("orders", **options)  # type: ignore[arg-type]
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    return charge


def test_resend_is_the_default_and_puts_the_message_at_the_tail_of_its_channel() -> None:
    flaky = Flaky(failures=1)
    messaging = build([charge_handler(flaky)], ["orders"], dead_letter=False)
    messaging.send(ChargeCard("o-1"))
    messaging.send(ChargeCard("o-2"))
    messaging.run_until_idle()

    assert flaky.calls == [ChargeCard("o-1"), ChargeCard("o-2"), ChargeCard("o-1")]
    [requeued] = messaging.journal.of_kind(RecordKind.REQUEUED)
    assert (requeued.endpoint_id, requeued.attempt, str(requeued.exception)) == (
        "charge",
        1,
        "GatewayTimeout: call 1 failed",
    )
    assert [(r.message_id, r.attempt) for r in messaging.journal.of_kind(RecordKind.HANDLED)] == [
        ("msg-2", 1),
        ("msg-1", 2),
    ]


def test_resend_follows_exhausted_retries() -> None:
    flaky = Flaky(failures=3)
    handler = charge_handler(flaky, retry=RetryPolicy(delays=[seconds(1)], attempts=2))
    messaging = build([handler], [QueueChannel("orders", dead_letter=False)])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert timeline(messaging, RecordKind.RETRIED, RecordKind.REQUEUED, RecordKind.HANDLED) == [
        ("retried", "charge", 1),
        ("requeued", "charge", 2),
        ("requeued", "charge", 3),  # attempts count on: a requeued copy's retries are spent
        ("handled", "charge", 4),
    ]


def test_ignore_drops_the_message_with_a_journal_record() -> None:
    flaky = Flaky(failures=None, error=PaymentDeclined)
    messaging = build(
        [charge_handler(flaky)],
        [QueueChannel("orders", dead_letter=False, final_failure="ignore")],
    )
    messaging.send(ChargeCard("o-1"))
    messaging.send(ChargeCard("o-2"))
    messaging.run_until_idle(advance_time=True)

    assert len(flaky.calls) == 2
    assert pending(messaging, "orders") == 0
    assert messaging.dead_letters.count() == 0
    discarded = messaging.journal.of_kind(RecordKind.DISCARDED)
    assert [(r.message_id, r.detail, str(r.exception)) for r in discarded] == [
        ("msg-1", "final_failure='ignore'", "PaymentDeclined: call 1 failed"),
        ("msg-2", "final_failure='ignore'", "PaymentDeclined: call 2 failed"),
    ]


def test_stop_reraises_the_original_exception_and_keeps_the_message() -> None:
    flaky = Flaky(failures=1, error=PaymentDeclined)
    messaging = build(
        [charge_handler(flaky)],
        [QueueChannel("orders", dead_letter=False, final_failure="stop")],
    )
    messaging.send(ChargeCard("o-1"))
    messaging.send(ChargeCard("o-2"))

    with pytest.raises(PaymentDeclined, match=r"^call 1 failed$") as raised:
        messaging.run("orders")
    assert raised.value.__traceback__ is not None
    assert pending(messaging, "orders") == 2  # released, not acknowledged
    assert messaging.journal.of_kind(RecordKind.HANDLED) == []

    result = messaging.run("orders")  # the next run starts with the same message, in order
    assert result.processed == 2
    assert flaky.calls == [ChargeCard("o-1"), ChargeCard("o-1"), ChargeCard("o-2")]
    assert [(r.message_id, r.attempt) for r in messaging.journal.of_kind(RecordKind.HANDLED)] == [
        ("msg-1", 2),
        ("msg-2", 1),
    ]


def test_stop_also_stops_settling() -> None:
    flaky = Flaky(failures=None, error=PaymentDeclined)
    messaging = build(
        [charge_handler(flaky)],
        [QueueChannel("orders", dead_letter=False, final_failure="stop")],
    )
    messaging.send(ChargeCard("o-1"))
    with pytest.raises(PaymentDeclined):
        messaging.run_until_idle()
    assert pending(messaging, "orders") == 1


def test_the_dead_letter_store_comes_before_the_final_failure_strategy() -> None:
    flaky = Flaky(failures=None, error=PaymentDeclined)
    messaging = build(
        [charge_handler(flaky)], [QueueChannel("orders", final_failure="stop")]
    )  # dead_letter defaults to True on the Messaging
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert messaging.dead_letters.count() == 1


def test_a_handler_can_turn_dead_lettering_off_for_itself() -> None:
    flaky = Flaky(failures=None, error=PaymentDeclined)
    messaging = build(
        [charge_handler(flaky, dead_letter=False)],
        [QueueChannel("orders", dead_letter=True, final_failure="ignore")],
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert messaging.dead_letters.count() == 0
    assert len(messaging.journal.of_kind(RecordKind.DISCARDED)) == 1


def test_a_handler_can_turn_dead_lettering_on_for_itself() -> None:
    flaky = Flaky(failures=None, error=PaymentDeclined)
    messaging = build(
        [charge_handler(flaky, dead_letter=True)],
        [QueueChannel("orders", dead_letter=False, final_failure="ignore")],
        dead_letter=False,
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert messaging.dead_letters.count() == 1


def test_an_unknown_final_failure_strategy_is_refused_at_definition() -> None:
    with pytest.raises(ConfigurationError) as raised:
        QueueChannel("orders", final_failure="drop")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "channel 'orders' has final_failure='drop'; choose 'resend' (back to the tail of the "
        "channel), 'stop' (the consumer stops, the message stays), 'release' (given back to the "
        "channel for another consumer) or 'ignore' (dropped, with a journal record)."
    )


def test_release_gives_the_delivery_back_to_the_channel_for_another_consumer() -> None:
    flaky = Flaky(failures=1)
    messaging = build(
        [charge_handler(flaky, dead_letter=False)],
        [QueueChannel("orders", final_failure="release")],
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run("orders", limit=1)
    [released] = messaging.journal.of_kind(RecordKind.RELEASED)
    assert (released.endpoint_id, released.attempt, released.detail) == (
        "charge",
        1,
        "final_failure='release'",
    )
    assert pending(messaging, "orders") == 1  # the same delivery, not a new copy
    assert messaging.journal.of_kind(RecordKind.REQUEUED) == []
    messaging.run_until_idle()
    [delivered] = messaging.journal.of_kind(RecordKind.DELIVERED)
    assert (delivered.delivery_count, delivered.attempt) == (2, 2)  # a redelivery is an attempt
    assert timeline(messaging, RecordKind.HANDLED) == [("handled", "charge", 2)]
