"""Messages that cannot be handled at all are set aside with their reason; the consumer goes on.

Each case injects a raw wire message straight into the channel's transport, followed by a good
message that must still be handled.
"""

from __future__ import annotations

import pytest
from failure_kit import ChargeCard, build
from poison_kit import consume_after, good_headers

from conveyor import RecordKind, SerializationError, asynchronous, command_handler
from conveyor.core.codec.serialization import UnknownMessageType
from conveyor.core.wire import H
from conveyor.transports.seam import WireMessage


def test_a_body_the_codec_cannot_decode_is_dead_lettered_as_undecodable() -> None:
    messaging, _ = consume_after(b"{not json", good_headers())
    [letter] = messaging.dead_letters.list()
    assert (letter.id, letter.reason, letter.endpoint_id, letter.channel) == (
        "poison-1@charge",
        "undecodable",
        "charge",
        "orders",
    )
    assert letter.exception_type == "conveyor.core.errors.SerializationError"
    assert (letter.exception_message or "").startswith(
        "Cannot decode a 'ChargeCard' message: the body is not UTF-8 JSON"
    )
    assert letter.body == b"{not json"


def test_a_body_of_the_wrong_shape_is_dead_lettered_as_undecodable() -> None:
    messaging, _ = consume_after(b'{"order":"o-1"}', good_headers())
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "undecodable"
    assert (letter.exception_message or "").startswith(
        "Cannot decode a 'ChargeCard' message into failure_kit.ChargeCard: "
        "ChargeCard.order_id expected a value"
    )


def test_an_unknown_type_is_dead_lettered_with_the_types_that_exist() -> None:
    messaging, _ = consume_after(b'{"order_id":"o-1"}', good_headers(TYPE="RefundCard"))
    [letter] = messaging.dead_letters.list()
    assert (letter.reason, letter.message_type, letter.endpoint_id) == (
        "unknown type",
        "RefundCard",
        "charge",
    )
    assert letter.exception_type == "conveyor.core.codec.serialization.UnknownMessageType"
    assert "'RefundCard'" in (letter.exception_message or "")
    assert "ChargeCard" in (letter.exception_message or "")


def test_a_message_for_no_endpoint_of_this_channel_is_dead_lettered() -> None:
    messaging, _ = consume_after(b'{"order_id":"o-1"}', good_headers(ENDPOINT="refund"))
    [letter] = messaging.dead_letters.list()
    assert letter.id == "poison-1@refund"
    assert letter.endpoint_id == "refund"
    assert letter.reason == "no endpoint 'refund' on channel 'orders'; endpoints here: charge"
    assert letter.exception_type is None


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            good_headers(ID=None),
            "message headers lack 'cv-id'; it was not sent by Conveyor or was altered in "
            "transit. Headers present: cv-attempt, cv-content-type, cv-correlation-id, "
            "cv-endpoint, cv-timestamp, cv-type.",
        ),
        (
            good_headers(ENDPOINT=None),
            "message headers lack 'cv-endpoint'; it was not sent by Conveyor or was altered in "
            "transit. Headers present: cv-attempt, cv-content-type, cv-correlation-id, cv-id, "
            "cv-timestamp, cv-type.",
        ),
        (
            good_headers(TIMESTAMP="yesterday"),
            "message headers are malformed: 'cv-timestamp' expected an ISO 8601 date and time "
            "with a UTC offset, found a string of 9 characters",
        ),
        (
            good_headers(ATTEMPT="first"),
            "message headers are malformed: 'cv-attempt' expected a whole number from 1 to "
            "2147483647, found a string of 5 characters",
        ),
    ],
)
def test_malformed_headers_are_dead_lettered_with_what_is_wrong(
    headers: dict[str, str], message: str
) -> None:
    messaging, _ = consume_after(b'{"order_id":"o-1"}', headers)
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "malformed headers"
    assert letter.exception_type == "conveyor.core.errors.SerializationError"
    assert letter.exception_message == message
    assert letter.headers == headers
    assert letter.channel == "orders"


def test_a_message_with_no_headers_at_all_is_dead_lettered_under_its_receipt() -> None:
    messaging, _ = consume_after(b"???", {})
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "malformed headers"
    assert letter.endpoint_id is None
    assert letter.message_type == "?"
    assert letter.message_id  # the transport's receipt stands in for the missing id
    assert letter.id == f"{letter.message_id}@orders"


def test_rejections_are_in_the_journal() -> None:
    messaging, _ = consume_after(b'{"order_id":"o-1"}', good_headers(ENDPOINT="refund"))
    records = [
        (r.kind, r.message_id, r.endpoint_id, r.detail)
        for r in messaging.journal
        if r.kind in (RecordKind.REJECTED, RecordKind.DEAD_LETTERED)
    ]
    reason = "no endpoint 'refund' on channel 'orders'; endpoints here: charge"
    assert records == [
        (RecordKind.REJECTED, "poison-1", "refund", reason),
        (RecordKind.DEAD_LETTERED, "poison-1", "refund", f"{reason}; dead letter poison-1@refund"),
    ]


def test_poison_messages_are_kept_even_when_dead_lettering_is_off() -> None:
    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None: ...

    messaging = build([charge], ["orders"], dead_letter=False)
    messaging.channels["orders"].transport.send("orders", WireMessage(b"{", good_headers()))
    messaging.run("orders")
    assert messaging.dead_letters.count() == 1


def test_a_channel_sequence_naming_an_unknown_channel_is_dead_lettered() -> None:
    messaging, _ = consume_after(b'{"order_id":"o-1"}', {**good_headers(), H.SLIP: "nowhere"})
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "unknown channel"


def test_unknown_message_type_is_a_serialization_error() -> None:
    assert issubclass(UnknownMessageType, SerializationError)
