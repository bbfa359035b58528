"""A production Messaging keeps bounded memory, and ``memory_limit`` reads the current RSS.

The production journal keeps its last records without payloads, so a worker that handled
thousands of large messages does not hold them; the memory limit reads the resident set now
(``/proc/self/statm`` on Linux), so one spike does not stop every later run.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass

import pytest

from conveyor import Messaging, QueueChannel, RecordKind, asynchronous, command_handler
from conveyor.drivers.resident import resident_mib

MESSAGES = 4_000
SIZE = 100 * 1024
BATCH = 50


@dataclass(frozen=True)
class Upload:
    number: int
    blob: str


def production_messaging(handled: list[int]) -> Messaging:
    @asynchronous("uploads")
    @command_handler(endpoint_id="store")
    def store(command: Upload) -> None:
        handled.append(command.number)

    return Messaging(handlers=[store], channels=[QueueChannel("uploads")])  # SystemClock


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="current RSS is read on Linux")
def test_a_production_journal_holds_no_payloads_of_handled_messages() -> None:
    handled: list[int] = []
    messaging = production_messaging(handled)
    blob = "x" * SIZE
    gc.collect()
    before = resident_mib()
    for batch in range(0, MESSAGES, BATCH):
        for number in range(batch, batch + BATCH):
            # a fresh string per message, as a decoder makes: nothing shared between them
            messaging.send(Upload(number, blob[:-1] + str(number % 10)))
        messaging.run("uploads", limit=BATCH)
    gc.collect()
    grown = resident_mib() - before

    assert len(handled) == MESSAGES
    # 4,000 messages of 100 KB are 400 MiB; the journal's last records are small without them.
    assert grown < 60, f"the process grew by {grown:.0f} MiB"
    assert any(r.kind is RecordKind.HANDLED for r in messaging.journal)
    assert all(r.payload is None for r in messaging.journal)


def test_listeners_still_see_each_payload_as_it_is_recorded() -> None:
    handled: list[int] = []
    messaging = production_messaging(handled)
    seen: list[object] = []
    messaging.journal.subscribe(lambda record: seen.append(record.payload), [RecordKind.HANDLED])

    messaging.send(Upload(1, "small"))
    messaging.run("uploads", limit=1)

    assert seen == [Upload(1, "small")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="current RSS is read on Linux")
def test_the_memory_limit_reads_the_current_resident_set_not_the_peak() -> None:
    handled: list[int] = []
    messaging = production_messaging(handled)
    before = resident_mib()
    spike = b"\x01" * (300 * 1024 * 1024)  # written, so resident
    assert resident_mib() > before + 250
    del spike
    gc.collect()
    messaging.send(Upload(1, "after the spike"))

    result = messaging.run("uploads", limit=1, memory_limit=int(before) + 150)

    assert (result.processed, result.stopped_because) == (1, "limit")
