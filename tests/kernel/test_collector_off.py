"""A channel can switch the message collector off: its handlers' sends leave at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor import (
    Context,
    Messaging,
    QueueChannel,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Import:
    rows: int


@dataclass(frozen=True)
class RowImported:
    row: int


def build(collector: bool) -> Messaging:
    @asynchronous("imports", dead_letter=True)
    @command_handler
    def run_import(command: Import, ctx: Context) -> None:
        for row in range(command.rows):
            ctx.publish(RowImported(row))
        raise RuntimeError("row 3 is corrupt")

    @asynchronous("progress")
    @event_handler
    def show_progress(event: RowImported) -> None: ...

    return Messaging(
        handlers=[run_import, show_progress],
        channels=[QueueChannel("imports", collector=collector), QueueChannel("progress")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )


def test_with_the_collector_on_a_failed_handler_sends_nothing() -> None:
    messaging = build(collector=True)
    messaging.send(Import(rows=3))
    messaging.run("imports")
    progress = [r for r in messaging.journal.of_kind(RecordKind.QUEUED) if r.channel == "progress"]
    assert progress == []
    assert len(messaging.journal.of_kind(RecordKind.UNSENT)) == 3


def test_with_the_collector_off_each_send_leaves_at_once_and_stays_sent() -> None:
    messaging = build(collector=False)
    messaging.send(Import(rows=3))
    messaging.run("imports")
    progress = [r for r in messaging.journal.of_kind(RecordKind.QUEUED) if r.channel == "progress"]
    assert [r.payload for r in progress] == [RowImported(0), RowImported(1), RowImported(2)]
    assert messaging.journal.of_kind(RecordKind.UNSENT) == []
    assert messaging.dead_letters.count() == 1
