"""The journal: every step of a flow as an immutable, timed record, the same on every run."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    Context,
    Journal,
    Messaging,
    Record,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
    query_handler,
)

START = datetime(2026, 2, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class CountOrders:
    pass


@command_handler
def place(command: PlaceOrder, ctx: Context) -> None:
    ctx.publish(OrderPlaced(command.order_id))


@asynchronous("mail")
@event_handler
def email(event: OrderPlaced) -> None: ...


@query_handler
def count(query: CountOrders) -> int:
    return 0


def flow() -> Messaging:
    messaging = Messaging(
        handlers=[place, email, count],
        channels=["mail"],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )
    messaging.send(PlaceOrder("o-1"))
    messaging.advance(timedelta(seconds=5))
    messaging.ask(CountOrders())
    return messaging


def summary(messaging: Messaging) -> list[tuple[object, ...]]:
    return [
        (r.seq, r.at - START, r.kind.value, r.message_type, r.message_id, r.channel, r.endpoint_id)
        for r in messaging.journal
    ]


def test_a_flow_is_journaled_step_by_step_with_its_virtual_time() -> None:
    assert summary(flow()) == [
        (1, timedelta(0), "sent", "PlaceOrder", "msg-1", None, None),
        (2, timedelta(0), "published", "OrderPlaced", "msg-2", None, None),
        (3, timedelta(0), "handled", "PlaceOrder", "msg-1", None, "place"),
        (4, timedelta(0), "queued", "OrderPlaced", "msg-2", "mail", "email"),
        (5, timedelta(0), "handled", "OrderPlaced", "msg-2", "mail", "email"),
        (6, timedelta(seconds=5), "asked", "CountOrders", "msg-3", None, None),
        (7, timedelta(seconds=5), "handled", "CountOrders", "msg-3", None, "count"),
    ]


def test_records_carry_payload_and_causation() -> None:
    records = flow().journal.records
    published = records[1]
    assert published.payload == OrderPlaced("o-1")
    assert published.causation_id == "msg-1"


def test_the_same_scenario_gives_the_same_journal() -> None:
    assert summary(flow()) == summary(flow())


def test_records_are_immutable() -> None:
    record = flow().journal.records[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.kind = RecordKind.FAILED  # type: ignore[misc]


def test_a_bounded_journal_keeps_the_latest_records_and_numbers_them_all() -> None:
    journal = Journal(max_records=2)
    for n in range(5):
        journal.append(START, RecordKind.SENT, f"m{n}", "T")
    assert [(r.seq, r.message_id) for r in journal] == [(4, "m3"), (5, "m4")]


def test_records_appended_from_many_threads_are_each_numbered_once_and_read_in_order() -> None:
    journal = Journal()
    threads = 8
    per_thread = 2_000
    start = threading.Barrier(threads)

    def write(thread: int) -> None:
        start.wait()
        for n in range(per_thread):
            journal.append(START, RecordKind.SENT, f"t{thread}-{n}", "T")

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    records = journal.records
    assert [r.seq for r in records] == list(range(1, threads * per_thread + 1))
    assert sorted(r.message_id for r in records) == sorted(
        f"t{t}-{n}" for t in range(threads) for n in range(per_thread)
    )
    for thread in range(threads):  # each thread's own records in the order it wrote them
        own = [r.message_id for r in records if r.message_id.startswith(f"t{thread}-")]
        assert own == [f"t{thread}-{n}" for n in range(per_thread)]


def test_listeners_see_each_record_as_it_is_written() -> None:
    seen: list[Record] = []
    journal = Journal()
    journal.subscribe(seen.append)
    journal.append(START, RecordKind.PUBLISHED, "m1", "T", channel="c")
    assert [(r.kind, r.channel) for r in seen] == [(RecordKind.PUBLISHED, "c")]
