"""The values and records the bus verbs build on their hot path are the ordinary ones.

``Headers`` and ``Message`` set their slots in their own ``__init__``, and the recorder writes a
verb's and a handler's record without keywords (``Recorder.verb``, ``Recorder.handled``); each
must give exactly what the plain, keyword-built value or record gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from conveyor import Journal, RecordKind, VirtualClock
from conveyor.core.headers import Headers
from conveyor.core.journal import Record
from conveyor.core.message import Message
from conveyor.core.wire import WireMessage
from conveyor.drivers.recording import Recorder

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_headers_built_by_their_init_are_complete_frozen_values() -> None:
    user = MappingProxyType({"tenant": "acme"})
    headers = Headers("m-1", "c-1", "p-1", NOW, 2, user, replayed=1)
    assert (headers.id, headers.correlation_id, headers.causation_id) == ("m-1", "c-1", "p-1")
    assert (headers.timestamp, headers.attempt, headers.user, headers.replayed) == (
        NOW, 2, user, 1,
    )  # fmt: skip
    assert Headers("m-1", "m-1", None, NOW) == Headers("m-1", "m-1", None, NOW, 1, {}, 0)
    assert Headers("m-1", "m-1", None, NOW).replayed == 0
    assert dict(Headers("m-1", "m-1", None, NOW).user) == {}
    assert headers == dataclasses.replace(headers, replayed=0)  # replayed is not compared
    assert dataclasses.replace(headers, attempt=3).attempt == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        headers.id = "other"  # type: ignore[misc]


def test_messages_built_by_their_init_are_complete_frozen_values() -> None:
    headers = Headers("m-1", "m-1", None, NOW)
    message = Message({"n": 1}, headers)
    assert (message.payload, message.headers, message.routing_key) == ({"n": 1}, headers, None)
    assert Message(1, headers, "key") == Message(payload=1, headers=headers, routing_key="key")
    assert dataclasses.replace(message, routing_key="k").routing_key == "k"
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.payload = 2  # type: ignore[misc]


def _records(keep_payloads: bool, write: Callable[[Recorder], None]) -> list[Record]:
    journal = Journal(keep_payloads=keep_payloads)
    seen: list[Record] = []
    journal.subscribe(seen.append)
    recorder = Recorder(journal, VirtualClock(NOW))
    write(recorder)
    return [*journal.records, *seen]


@pytest.mark.parametrize("keep_payloads", [True, False])
def test_the_recorders_hot_methods_write_what_its_keyword_method_writes(
    keep_payloads: bool,
) -> None:
    headers = Headers("m-1", "c-1", "p-1", NOW - timedelta(seconds=1), 2)
    message = Message({"n": 1}, headers, "order.place")

    def fast(recorder: Recorder) -> None:
        recorder.verb(RecordKind.SENT, message)
        recorder.handled(message, "place", None)
        recorder.handled(message, "place", "orders")

    def keywords(recorder: Recorder) -> None:
        recorder.message(RecordKind.SENT, message, at=headers.timestamp)
        recorder.message(RecordKind.HANDLED, message, endpoint_id="place", attempt=2)
        recorder.message(
            RecordKind.HANDLED, message, channel="orders", endpoint_id="place", attempt=2
        )

    made, expected = _records(keep_payloads, fast), _records(keep_payloads, keywords)
    assert made == expected
    assert [r.headers for r in made] == [headers] * 6
    assert made[0].at == headers.timestamp
    assert made[0].payload == ({"n": 1} if keep_payloads else None)
    assert made[3].payload == {"n": 1}  # a listener sees it


def test_a_journal_without_payloads_keeps_neither_the_payload_nor_its_wire_form() -> None:
    wire = WireMessage(b"{}", {"cv-type": "X"})
    for keep, kept in ((True, wire), (False, None)):
        journal = Journal(keep_payloads=keep)
        journal.append(NOW, RecordKind.QUEUED, "m-1", "X", payload=1, channel="c", wire=wire)
        journal.append(NOW, RecordKind.DELIVERED, "m-1", "X", channel="c", delivery_count=2)
        queued, delivered = journal.records
        assert (queued.seq, queued.wire, queued.channel) == (1, kept, "c")
        assert queued.payload == (1 if keep else None)
        assert (delivered.seq, delivered.delivery_count) == (2, 2)
