"""Run the transport conformance suite without pytest: every check, sync and async runners."""

from conveyor import VirtualClock
from conveyor.transports.async_memory import AsyncMemoryTransport
from conveyor.transports.memory import MemoryTransport
from pytest_conveyor.conformance import (
    AsyncTransportHarness,
    TransportHarness,
    run_checks,
)


def sync_harness() -> TransportHarness:
    clock = VirtualClock()  # virtual time: every boundary is stepped exactly, nothing waits
    return TransportHarness(MemoryTransport(clock), clock)


def async_harness() -> AsyncTransportHarness:
    clock = VirtualClock()
    return AsyncTransportHarness(AsyncMemoryTransport(clock), clock)


for make in (sync_harness, async_harness):
    report = run_checks(make)  # a fresh harness per check, closed after it
    assert report.ok, report  # str(report) lists each check: passed, failed, not applicable
    print(f"{make.__name__}: {len(report.named('passed'))} passed")
