"""Fuzz of the whole consume path on the in-memory channel: arbitrary bodies and headers put
straight on the transport, ahead of a good message.

Whatever they hold: no exception escapes ``run_until_idle``, every message ends in a final state
(handled, dead-lettered with a reason, expired), nothing is left on a channel, and the good
message behind them is handled.
"""

from __future__ import annotations

import os
from datetime import timedelta

from failure_kit import START, ChargeCard, RefundCard, build, pending
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poison_kit import good_headers
from test_fuzz_decoder import bodies

from conveyor import RecordKind, RetryPolicy, asynchronous, command_handler, event_handler
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT, H
from conveyor.transports.seam import WireMessage

FINAL = {
    RecordKind.HANDLED,
    RecordKind.DEAD_LETTERED,
    RecordKind.EXPIRED,
    RecordKind.DISCARDED,
    RecordKind.ERROR_HANDLED,
    RecordKind.DUPLICATE,
}

instants = st.sampled_from(
    [
        START.isoformat(),
        (START + timedelta(hours=1)).isoformat(),
        (START - timedelta(days=1)).isoformat(),
        "2026-01-01T00:00:00",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "8999-12-31T00:00:00+00:00",
        "9999-12-31T00:00:00+00:00",
        "yesterday",
        "",
    ]
)
numbers = st.sampled_from(["1", "2", "3", "0", "-1", "-50", str(2**70), "1_0", " 2", "x", ""])
header_values = {
    H.ID: st.text(max_size=8),
    H.CORRELATION: st.text(max_size=8),
    H.TIMESTAMP: instants,
    H.ATTEMPT: numbers | st.integers(1, 2**31 + 1).map(str),
    H.TYPE: st.sampled_from(["ChargeCard", "RefundCard", "json", "Nope", ""]),
    H.ENDPOINT: st.sampled_from(["charge", "refund", "audit", BUS_COMMAND, BUS_EVENT, "x", ""]),
    H.SLIP: st.sampled_from(["bus", "orders", "nowhere", "orders,bus", ",", ""]),
    H.ROUTING_KEY: st.text(max_size=8),
    H.EXPIRES_AT: instants,
    H.NOT_BEFORE: instants,
    H.FIRST_FAILED_AT: instants,
    H.PRIORITY: numbers | st.integers(-(2**64), 2**64).map(str),
    H.REPLAYED: numbers,
}


@st.composite
def wire_messages(draw: st.DrawFn) -> tuple[str, WireMessage]:
    headers = good_headers()
    for name, values in header_values.items():
        choice = draw(st.sampled_from(["keep"] * 5 + ["set"] * 4 + ["drop"]))
        if choice == "set":
            headers[name] = draw(values)
        elif choice == "drop":
            headers.pop(name, None)
    headers.update(draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)))
    good = st.sampled_from([b'{"order_id":"o-1"}', b'{"order_id":"fail"}'])
    body = draw(st.one_of(good, good, good, bodies))
    return draw(st.sampled_from(["orders", "bus"])), WireMessage(body, headers)


tried = {"messages": 0}


@settings(
    max_examples=int(os.environ.get("CONVEYOR_FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=os.environ.get("CI") == "true",  # CI gates merges: the same examples each run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(poison=st.lists(wire_messages(), min_size=1, max_size=3))
def test_nothing_on_a_channel_can_stop_its_consumer(poison: list[tuple[str, WireMessage]]) -> None:
    handled: list[object] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(seconds=1)], attempts=2))
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        if command.order_id == "fail":
            raise RuntimeError("declined")
        handled.append(command)

    @command_handler(endpoint_id="refund")
    def refund(command: RefundCard) -> None:
        handled.append(command)

    @event_handler(endpoint_id="audit")
    def audit(event: RefundCard) -> None:
        handled.append(event)

    messaging = build([charge, refund, audit], ["orders", "bus"], log_failures=False)
    transport = messaging.channels["orders"].transport
    for channel, message in poison:
        transport.send(channel, message)
    tried["messages"] += len(poison)
    messaging.send(ChargeCard("good"))
    messaging.run_until_idle(advance_time=True)  # nothing escapes
    assert ChargeCard("good") in handled  # the consumer went on to the next message
    assert pending(messaging, "orders") == 0
    assert pending(messaging, "bus") == 0
    finals = sum(1 for record in messaging.journal if record.kind in FINAL)
    # Each ended: handled, dead-lettered or expired. A well-formed event of a type nobody
    # subscribes to is the exception, as with publish(): it is acknowledged and nothing runs.
    events = sum(1 for _, message in poison if message.headers.get(H.ENDPOINT) == BUS_EVENT)
    assert finals >= len(poison) - events + 1
    for letter in messaging.dead_letters.list():
        assert letter.reason  # every dead letter says why
