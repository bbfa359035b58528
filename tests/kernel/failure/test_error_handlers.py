"""Error handlers: who receives a failure, in which order of precedence, and what they receive.

Resolution: stop-on-failure, then the most specific level (handler, channel, Messaging) that says
where a failure goes (an error handler, or the dead-letter setting), then the channel's final
failure strategy.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from failure_kit import (
    START,
    ChargeCard,
    Flaky,
    GatewayTimeout,
    PaymentDeclined,
    build,
    pending,
    seconds,
    timeline,
)

from conveyor import (
    ConfigurationError,
    Failure,
    Messaging,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.wire import H


class Inbox:
    """Error handlers for each level, recording which one received what."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Failure]] = []

    @event_handler(endpoint_id="handler_level")
    def handler_level(self, failure: Failure) -> None:
        self.received.append(("handler", failure))

    @event_handler(endpoint_id="channel_level")
    def channel_level(self, failure: Failure) -> None:
        self.received.append(("channel", failure))

    @event_handler(endpoint_id="messaging_level")
    def messaging_level(self, failure: Failure) -> None:
        self.received.append(("messaging", failure))

    @property
    def levels(self) -> list[str]:
        return [level for level, _ in self.received]


def scenario(
    *, on_handler: bool, on_channel: bool, on_messaging: bool, **messaging_options: object
) -> tuple[Messaging, Inbox, Flaky]:
    inbox = Inbox()
    flaky = Flaky(failures=None, error=PaymentDeclined)

    @asynchronous("orders", error_handler="handler_level" if on_handler else None)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build(
        [charge, inbox],
        [QueueChannel("orders", error_handler="channel_level" if on_channel else None)],
        error_handler="messaging_level" if on_messaging else None,
        **messaging_options,
    )
    messaging.send(ChargeCard("o-1"))
    return messaging, inbox, flaky


@pytest.mark.parametrize(
    ("on_handler", "on_channel", "on_messaging", "expected"),
    [
        (True, True, True, ["handler"]),
        (False, True, True, ["channel"]),
        (False, False, True, ["messaging"]),
        (True, False, True, ["handler"]),
        (True, True, False, ["handler"]),
    ],
)
def test_the_most_specific_error_handler_receives_the_failure(
    on_handler: bool, on_channel: bool, on_messaging: bool, expected: list[str]
) -> None:
    messaging, inbox, _ = scenario(
        on_handler=on_handler, on_channel=on_channel, on_messaging=on_messaging
    )
    messaging.run_until_idle(advance_time=True)
    assert inbox.levels == expected
    assert messaging.dead_letters.count() == 0
    [record] = messaging.journal.of_kind(RecordKind.ERROR_HANDLED)
    assert (record.endpoint_id, record.detail) == ("charge", f"{expected[0]}_level")
    assert pending(messaging, "orders") == 0


def test_stop_on_failure_comes_before_every_error_handler() -> None:
    messaging, inbox, _ = scenario(on_handler=True, on_channel=True, on_messaging=True)
    with pytest.raises(PaymentDeclined, match="call 1 failed"):
        messaging.run("orders", stop_on_failure=True)
    assert inbox.levels == []
    assert pending(messaging, "orders") == 1  # released, not lost
    messaging.run("orders")
    assert inbox.levels == ["handler"]
    assert inbox.received[0][1].attempt == 2


def test_without_error_handlers_the_failure_goes_to_the_dead_letter_store() -> None:
    messaging, _, _ = scenario(on_handler=False, on_channel=False, on_messaging=False)
    messaging.run_until_idle(advance_time=True)
    assert messaging.dead_letters.count() == 1


def test_without_error_handler_or_dead_letter_the_final_failure_strategy_decides() -> None:
    messaging, _, _ = scenario(
        on_handler=False, on_channel=False, on_messaging=False, dead_letter=False
    )
    messaging.run("orders", limit=1)
    assert timeline(messaging, RecordKind.REQUEUED) == [("requeued", "charge", 1)]
    assert pending(messaging, "orders") == 1


def test_delayed_retries_come_before_the_error_handler() -> None:
    inbox = Inbox()
    flaky = Flaky(failures=None)

    @asynchronous(
        "orders",
        retry=RetryPolicy(instant=1, delays=[seconds(1)], attempts=3),
        error_handler="handler_level",
    )
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge, inbox], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert len(flaky.calls) == 6
    [(_, failure)] = inbox.received
    assert failure.attempt == 3


def test_the_failure_carries_the_message_and_the_exception() -> None:
    inbox = Inbox()
    flaky = Flaky(failures=None, error=PaymentDeclined)

    @asynchronous("orders", error_handler=Inbox.handler_level)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge, inbox], ["orders"])
    messaging.send(ChargeCard("o-1"), headers={"tenant": "acme"})
    messaging.advance(timedelta(minutes=5))
    [(_, failure)] = inbox.received
    assert failure.message_id == "msg-1"
    assert failure.channel == "orders"
    assert failure.endpoint_id == "charge"
    assert failure.message_type == "ChargeCard"
    assert failure.payload == ChargeCard("o-1")
    assert failure.headers["tenant"] == "acme"
    assert failure.headers[H.ID] == "msg-1"
    assert failure.exception_type == "failure_kit.PaymentDeclined"
    assert failure.exception_message == "call 1 failed"
    assert failure.traceback.startswith("Traceback (most recent call last):")
    assert failure.traceback.rstrip().endswith("failure_kit.PaymentDeclined: call 1 failed")
    assert failure.attempt == 1
    assert failure.failed_at == START
    assert isinstance(failure.error, PaymentDeclined)


def test_the_failure_message_is_caused_by_the_failed_message() -> None:
    inbox = Inbox()

    @asynchronous("orders", error_handler="handler_level")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        raise PaymentDeclined("card expired")

    messaging = build([charge, inbox], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    [handled] = [
        r for r in messaging.journal.of_kind(RecordKind.HANDLED) if r.endpoint_id == "handler_level"
    ]
    assert handled.message_type == "Failure"
    assert handled.causation_id == "msg-1"


def test_an_asynchronous_error_handler_receives_the_failure_through_its_channel() -> None:
    received: list[Failure] = []

    @asynchronous("failures")
    @event_handler(endpoint_id="on_failure")
    def on_failure(failure: Failure) -> None:
        received.append(failure)

    @asynchronous("orders", error_handler=on_failure)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        raise PaymentDeclined("card expired")

    messaging = build([charge, on_failure], ["orders", "failures"])
    messaging.send(ChargeCard("o-1"))
    messaging.run("orders")
    assert received == []
    assert pending(messaging, "failures") == 1
    messaging.run("failures")
    [failure] = received
    assert (failure.endpoint_id, failure.exception_type, failure.exception_message) == (
        "charge",
        "failure_kit.PaymentDeclined",
        "card expired",
    )
    assert failure.payload == {"order_id": "o-1"}  # crossed the wire as plain JSON
    assert failure.error is None  # exceptions do not cross the wire
    assert messaging.dead_letters.count() == 0


def test_an_error_handler_that_fails_leaves_the_message_in_the_dead_letter_store() -> None:
    @event_handler(endpoint_id="on_failure")
    def on_failure(failure: Failure) -> None:
        raise RuntimeError("the pager is down")

    @asynchronous("orders", error_handler="on_failure")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        raise PaymentDeclined("card expired")

    messaging = build([charge, on_failure], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    [letter] = messaging.dead_letters.list()
    # the letter is about the message: the original failure, with the error handler's noted
    assert letter.endpoint_id == "charge"
    assert (letter.exception_type, letter.exception_message) == (
        "failure_kit.PaymentDeclined",
        "card expired",
    )
    assert (
        letter.reason == "failed; error handler on_failure raised RuntimeError: the pager is down"
    )
    assert [r.endpoint_id for r in messaging.journal.of_kind(RecordKind.FAILED)] == [
        "charge",
        "on_failure",
    ]
    assert messaging.journal.of_kind(RecordKind.ERROR_HANDLED) == []


def test_an_error_handler_absorbs_the_failure_so_the_dead_letter_setting_is_not_reached() -> None:
    inbox = Inbox()
    flaky = Flaky(failures=None, error=GatewayTimeout)

    @asynchronous("orders", error_handler="handler_level", dead_letter=True)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge, inbox], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert inbox.levels == ["handler"]
    assert messaging.dead_letters.count() == 0


def test_an_unknown_error_handler_is_refused_at_bootstrap() -> None:
    @asynchronous("orders", error_handler="pager")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        build([charge], ["orders"])
    assert str(raised.value).endswith(
        "<locals>.charge names error handler 'pager', which is not a registered handler "
        "(endpoint ids: charge). Pass the handler in Messaging(handlers=[...]) and refer to it "
        "by function or endpoint id."
    )


def test_an_unknown_channel_error_handler_is_refused_at_bootstrap() -> None:
    with pytest.raises(ConfigurationError, match=r"^channel 'orders' names error handler 'x'"):
        build([], [QueueChannel("orders", error_handler="x")])


def test_an_error_handler_that_does_not_take_a_failure_is_refused_at_bootstrap() -> None:
    @event_handler(endpoint_id="on_failure")
    def on_failure(event: ChargeCard) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        build([on_failure], ["orders"], error_handler=on_failure)
    assert str(raised.value).startswith("Messaging names error handler ")
    assert str(raised.value).endswith(
        "<locals>.on_failure, which takes ChargeCard; an error handler receives a "
        "conveyor.Failure. Give it a first parameter annotated Failure, for example "
        "def on_failure(failure: Failure) -> None."
    )


def test_an_asynchronous_error_handler_is_not_given_its_own_failure() -> None:
    @asynchronous("failures")
    @event_handler(endpoint_id="on_failure")
    def on_failure(failure: Failure) -> None:
        raise RuntimeError("the pager is down")

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        raise PaymentDeclined("card expired")

    messaging = build([charge, on_failure], ["orders", "failures"], error_handler=on_failure)
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    [letter] = messaging.dead_letters.list()
    assert (letter.endpoint_id, letter.channel, letter.message_type, letter.reason) == (
        "on_failure",
        "failures",
        "Failure",
        "failed",
    )
    assert letter.exception_message == "the pager is down"
    assert [r.endpoint_id for r in messaging.journal.of_kind(RecordKind.ERROR_HANDLED)] == [
        "charge"
    ]


def test_a_handler_that_keeps_dead_letters_is_not_overridden_by_the_messaging_error_handler() -> (
    None
):
    inbox = Inbox()
    flaky = Flaky(failures=None, error=GatewayTimeout)

    @asynchronous("orders", retry=RetryPolicy(delays=[seconds(1)], attempts=2), dead_letter=True)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge, inbox], ["orders"], error_handler="messaging_level")
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert inbox.levels == []
    assert messaging.dead_letters.count() == 1
    assert timeline(messaging, RecordKind.RETRIED) == [("retried", "charge", 1)]


def test_a_channel_that_keeps_dead_letters_is_not_overridden_by_the_messaging_error_handler() -> (
    None
):
    inbox = Inbox()
    flaky = Flaky(failures=None, error=PaymentDeclined)

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build(
        [charge, inbox],
        [QueueChannel("orders", dead_letter=True)],
        error_handler="messaging_level",
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert inbox.levels == []
    assert messaging.dead_letters.count() == 1


def test_a_handler_that_opts_out_of_dead_letters_goes_to_the_final_failure_strategy() -> None:
    inbox = Inbox()
    flaky = Flaky(failures=None, error=PaymentDeclined)

    @asynchronous("orders", dead_letter=False)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build(
        [charge, inbox],
        [QueueChannel("orders", final_failure="ignore")],
        error_handler="messaging_level",
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    assert inbox.levels == []
    assert timeline(messaging, RecordKind.DISCARDED) == [("discarded", "charge", 1)]
