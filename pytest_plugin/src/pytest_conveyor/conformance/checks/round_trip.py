"""Send and receive: what goes in comes out whole, once, on its channel, up to the size limit."""

from __future__ import annotations

from conveyor.core.errors import MessageTooLarge
from conveyor.transports.seam import ChannelOptions, Delivery, WireMessage
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group, declares

__all__ = ["ROUND_TRIP", "message_of_size", "assert_same_message"]

ROUND_TRIP = Group("send and receive")
check = ROUND_TRIP.check

_LARGE_BODY = bytes(range(256)) * 4096  # 1 MiB, every byte value
_LARGE_HEADERS = {"x-large": "größer als groß ✓ " * 32, "x-part": "1/1"}


@check()
def round_trip_keeps_body_bytes(h: Harness) -> None:
    """Every byte value comes back, most of them not valid UTF-8."""
    body, channel = bytes(range(256)), h.channel()
    h.send(channel, WireMessage(body))

    received = h.expect(channel, "the message just sent").message.body
    assert received == body, f"{h.name} changed the body: sent {body!r}, received {received!r}"


@check()
def round_trip_keeps_unicode_headers(h: Harness) -> None:
    """Header names and values come back as sent, non-ASCII and empty ones included."""
    headers = {"x-greeting": "grüß dich ✓ 日本語", "x-emoji": "🚚📦", "x-empty": ""}
    channel = h.channel()
    h.send(channel, WireMessage(b"with headers", headers))

    received = dict(h.expect(channel, "the message just sent").message.headers)
    assert received == headers, f"{h.name} changed the headers: sent {headers}, got {received}"


@check()
def large_message_round_trips_intact(h: Harness) -> None:
    """1 MiB of body plus headers, or a message of exactly ``max_size`` if that is smaller.

    Without ``max_size`` the transport promises no limit, so a large message must neither be
    refused nor cut; under a limit, everything up to it must come back whole.
    """
    limit = h.capabilities.max_size
    message = WireMessage(_LARGE_BODY, _LARGE_HEADERS)
    if limit is not None and limit < message.size:
        message = message_of_size(limit)
    channel = h.channel()
    try:
        h.send(channel, message)
    except MessageTooLarge as error:
        raise AssertionError(
            f"{h.name} declares max_size={limit!r}, yet refused a message of {message.size} "
            f"bytes: {error}"
        ) from None

    assert_same_message(h, h.expect(channel, "the large message"), message)


@check()
def first_delivery_names_its_channel_and_counts_one(h: Harness) -> None:
    """A delivery carries the channel it came from, and ``delivery_count`` 1 the first time."""
    channel = h.channel()
    h.send(channel, WireMessage(b"first"))

    delivery = h.expect(channel, "the message just sent")
    assert (delivery.channel, delivery.delivery_count) == (channel, 1), (
        f"{h.name}'s first delivery says channel {delivery.channel!r}, delivery_count "
        f"{delivery.delivery_count}; expected {channel!r}, 1"
    )


@check()
def empty_channel_receives_nothing(h: Harness) -> None:
    """A declared channel with nothing on it gives an empty list."""
    channel = h.channel()
    h.declare(ChannelOptions(channel))

    h.expect_nothing(channel, "nothing was ever sent to it")


@check()
def competing_receives_never_share_a_lease(h: Harness) -> None:
    """Ten messages, ten receives: each message leased once, each with its own receipt."""
    channel = h.channel()
    sent = {f"job-{n}".encode() for n in range(10)}
    for body in sorted(sent):
        h.send(channel, WireMessage(body))

    leased = [h.expect(channel, f"message {n + 1} of 10") for n in range(10)]
    bodies = sorted(d.message.body for d in leased)
    assert bodies == sorted(sent), f"{h.name} leased {bodies}, not each of {sorted(sent)} once"
    assert len({d.receipt for d in leased}) == len(sent), f"{h.name} reused a receipt"
    h.expect_nothing(channel, "all ten messages were leased")


@check()
def many_messages_are_each_delivered_exactly_once(h: Harness) -> None:
    """``timing.many`` messages: every one delivered, none twice, none back once acknowledged."""
    channel, many = h.channel(), h.timing.many
    sent = [f"message-{n}".encode() for n in range(many)]
    for body in sent:
        h.send(channel, WireMessage(body))

    received = h.drain(channel, expect=many, at_most=2 * many)
    missing, extra = set(sent) - set(received), len(received) - len(set(received))
    assert not missing, f"{h.name} delivered {len(received)} of {many}: {len(missing)} missing"
    assert not extra, f"{h.name} delivered {extra} of {many} messages twice"
    h.expect_nothing(
        channel,
        "every message was acknowledged",
        until=h.now() + h.timing.lease + h.precision(),
    )


@check(declares("max_size"))
def message_over_max_size_raises_message_too_large(h: Harness) -> None:
    """One byte over, counting headers: a transport measuring the body alone fails."""
    limit = h.capabilities.max_size
    assert limit is not None
    channel, message = h.channel(), message_of_size(limit + 1)
    try:
        h.send(channel, message)
    except MessageTooLarge:
        pass
    else:
        raise AssertionError(
            f"{h.name} declares max_size={limit}, yet accepted a message of {message.size} bytes "
            f"(body plus headers) instead of raising MessageTooLarge"
        )
    h.expect_nothing(channel, "the only message sent was refused")


@check(declares("max_size"))
def message_of_exactly_max_size_is_accepted(h: Harness) -> None:
    """A message of exactly ``max_size`` bytes, body plus headers, is sent and comes back whole."""
    limit = h.capabilities.max_size
    assert limit is not None
    channel, message = h.channel(), message_of_size(limit)
    try:
        h.send(channel, message)
    except MessageTooLarge as error:
        raise AssertionError(
            f"{h.name} declares max_size={limit}, yet refused a message of exactly that size: "
            f"{error}"
        ) from None

    assert_same_message(h, h.expect(channel, "the message of max_size bytes"), message)


def message_of_size(size: int) -> WireMessage:
    """A message of exactly ``size`` bytes, body plus headers, with a header when it fits."""
    headers = {"x-size": "✓"}  # 6 + 3 bytes in UTF-8
    header_size = WireMessage(b"", headers).size
    if size < 2 * header_size:
        headers, header_size = {}, 0
    body = (bytes(range(256)) * (size // 256 + 1))[: size - header_size]
    return WireMessage(body, headers)


def assert_same_message(h: Harness, delivery: Delivery, sent: WireMessage) -> None:
    """Compare large messages without asking for a diff of a megabyte of bytes."""
    received = delivery.message
    if received.body != sent.body:
        if len(received.body) != len(sent.body):
            raise AssertionError(
                f"{h.name} returned a body of {len(received.body)} bytes, not {len(sent.body)}"
            )
        first = next(
            i for i, (a, b) in enumerate(zip(received.body, sent.body, strict=True)) if a != b
        )
        raise AssertionError(
            f"{h.name} changed the body of {len(sent.body)} bytes from byte {first} on"
        )
    assert dict(received.headers) == dict(sent.headers), (
        f"{h.name} changed the headers: sent {dict(sent.headers)}, got {dict(received.headers)}"
    )
