"""Framework headers are checked when they are read: a value Conveyor never writes dead-letters the
message as malformed, naming the header, what was expected and the kind of value found (never the
value), and the consumer goes on to the next message.
"""

from __future__ import annotations

import pytest
from failure_kit import START, ChargeCard, build
from poison_kit import consume_after, good_headers

from conveyor import SerializationError, asynchronous, command_handler
from conveyor.core.header_values import MAX_ATTEMPT
from conveyor.core.wire import H, read_envelope
from conveyor.transports.seam import WireMessage

SECRET = "SECRET-4242"


@pytest.mark.parametrize(
    ("header", "value", "found"),
    [
        ("NOT_BEFORE", "2026-01-01T00:00:00", "a date and time without one"),
        ("EXPIRES_AT", "2026-01-01T00:00:00", "a date and time without one"),
        ("TIMESTAMP", "2026-01-01T00:00:00", "a date and time without one"),
        ("FIRST_FAILED_AT", "2026-01-01T00:00:00", "a date and time without one"),
        ("TIMESTAMP", SECRET, "a string of 11 characters"),
        ("TIMESTAMP", "", "an empty string"),
        ("NOT_BEFORE", "9999-12-31T23:59:59-23:59", "an instant outside the range of a datetime"),
        ("TIMESTAMP", "0001-01-01T00:00:00+23:59", "an instant outside the range of a datetime"),
        ("NOT_BEFORE", "9999-12-31T00:00:00+00:00", "a later instant"),
        ("EXPIRES_AT", "9500-01-01T00:00:00+00:00", "a later instant"),
        ("ATTEMPT", "-1", "a whole number outside that range"),
        ("ATTEMPT", "-50", "a whole number outside that range"),
        ("ATTEMPT", "0", "a whole number outside that range"),
        ("ATTEMPT", str(2**70), "a whole number outside that range"),
        ("ATTEMPT", str(MAX_ATTEMPT + 1), "a whole number outside that range"),
        ("ATTEMPT", "1_0", "a string of 3 characters"),
        ("ATTEMPT", " 1", "a string of 2 characters"),
        ("ATTEMPT", "", "an empty string"),
        ("PRIORITY", str(2**70), "a whole number outside that range"),
        ("PRIORITY", str(-(2**63) - 1), "a whole number outside that range"),
        ("PRIORITY", SECRET, "a string of 11 characters"),
    ],
)
def test_a_bad_framework_header_dead_letters_the_message_as_malformed(
    header: str, value: str, found: str
) -> None:
    messaging, _ = consume_after(b'{"order_id":"o-1"}', good_headers(**{header: value}))
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "malformed headers"
    assert letter.exception_type == "conveyor.core.errors.SerializationError"
    message = letter.exception_message or ""
    assert message.startswith(f"message headers are malformed: {getattr(H, header)!r} expected")
    assert message.endswith(f"found {found}")
    if len(value) > 2:
        assert value not in message  # never the value itself
    assert letter.body == b'{"order_id":"o-1"}'
    assert letter.headers[getattr(H, header)] == value  # kept as it was on the wire


def test_a_priority_above_the_channels_maximum_is_malformed() -> None:
    wire = good_headers(PRIORITY="11")
    with pytest.raises(SerializationError, match=r"'cv-priority' expected a whole number from "):
        read_envelope(wire, max_priority=10)
    assert read_envelope(good_headers(PRIORITY="10"), max_priority=10).priority == 10


def test_times_are_read_in_utc_and_well_formed_headers_pass() -> None:
    envelope = read_envelope(
        good_headers(
            TIMESTAMP="2026-03-01T11:00:00+02:00",
            NOT_BEFORE="2026-03-01T09:00:00+00:00",
            ATTEMPT=str(MAX_ATTEMPT),
            PRIORITY="-5",
        )
    )
    assert envelope.headers.timestamp == START
    assert envelope.headers.timestamp.utcoffset() is not None
    assert (envelope.headers.attempt, envelope.priority) == (MAX_ATTEMPT, -5)


@pytest.mark.parametrize("replayed", ["abc", "-5", "9" * 5000, "", "1e3", str(2**70)])
def test_any_stored_replay_count_is_tolerated(replayed: str) -> None:
    handled: list[ChargeCard] = []

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        handled.append(command)

    messaging = build([charge], ["orders"])
    headers = good_headers()
    headers[H.REPLAYED] = replayed
    messaging.channels["orders"].transport.send(
        "orders", WireMessage(b'{"order_id":"o-1"}', headers)
    )
    messaging.run("orders")
    assert handled == [ChargeCard("o-1")]
    assert messaging.dead_letters.count() == 0


def test_a_negative_attempt_no_longer_buys_extra_deliveries() -> None:
    """Issue 11: ``cv-attempt: -50`` gave 54 deliveries instead of 3; now it is set aside."""
    from conveyor import RetryPolicy

    calls: list[int] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[START - START], attempts=3))
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        calls.append(1)
        raise RuntimeError("down")

    messaging = build([charge], ["orders"])
    messaging.channels["orders"].transport.send(
        "orders", WireMessage(b'{"order_id":"o-1"}', good_headers(ATTEMPT="-50"))
    )
    messaging.run_until_idle(advance_time=True)
    assert calls == []
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "malformed headers"
