"""A handler rejects a message it can never handle: straight to the dead-letter store with the
reason, with no retries and no error handler (whatever the endpoint's policy)."""

from __future__ import annotations

import pytest
from failure_kit import ChargeCard, build, seconds

from conveyor import (
    Context,
    Failure,
    MessageRejected,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
)


def test_a_rejected_message_goes_straight_to_the_dead_letter_store_with_the_reason() -> None:
    calls: list[str] = []
    failures: list[Failure] = []

    @event_handler
    def on_failure(failure: Failure) -> None:
        failures.append(failure)

    @asynchronous(
        "orders",
        retry=RetryPolicy(instant=3, delays=[seconds(1)], attempts=5),
        error_handler=on_failure,
    )
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard, ctx: Context) -> None:
        calls.append(command.order_id)
        ctx.reject(f"card for {command.order_id} belongs to another customer")

    messaging = build([charge, on_failure], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert calls == ["o-1"]  # no instant, no delayed retry
    assert failures == []  # no error handler
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "rejected by the handler: card for o-1 belongs to another customer"
    assert letter.exception_type == "conveyor.core.errors.MessageRejected"
    [rejected] = messaging.journal.of_kind(RecordKind.REJECTED)
    assert rejected.endpoint_id == "charge"


def test_a_synchronous_handler_that_rejects_raises_to_its_caller() -> None:
    @command_handler
    def charge(command: ChargeCard, ctx: Context) -> None:
        ctx.reject("no such order")

    messaging = build([charge], [])
    with pytest.raises(MessageRejected, match="no such order"):
        messaging.send(ChargeCard("o-1"))
