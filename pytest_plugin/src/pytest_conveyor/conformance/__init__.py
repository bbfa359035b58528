"""The transport conformance suite: one set of checks every transport passes, sync or async.

DESIGN section 5: the in-memory transport and every adapter run the same checks, so "works on
memory" means "works on the broker". It ships inside the plugin so third-party adapters can run
it too. The package is layered:

- :mod:`.checks`: the checks, plain functions of a :class:`Harness` that raise AssertionError
  saying what the transport did; grouped by concern (send and receive, leases and release,
  delays and priority, time to live, batches and long poll, renewal, declare and close,
  inspection). No pytest in them.
- :class:`TransportHarness` and :class:`AsyncTransportHarness`: the sync and async runners'
  view of one transport. The async one runs each coroutine on its own event loop, so the very
  same check bodies hold both twins to the same promises.
- :class:`Timing`: virtual time (a ``SteppableClock``: every boundary stepped exactly) or real
  time on the broker's clock (polling until a deadline; durations from the capabilities).
- :func:`run_checks`: the pytest-free runner. :class:`TransportConformance`: the pytest layer.

An adapter's test module is a few lines::

    import pytest
    from pytest_conveyor.conformance import TransportConformance, TransportHarness

    class TestMyTransport(TransportConformance):
        @pytest.fixture
        def harness(self, tmp_path):
            clock = VirtualClock()
            with TransportHarness(
                MyTransport(tmp_path / "q.db", clock=clock),
                clock,
                reopen=lambda: MyTransport(tmp_path / "q.db", clock=clock),  # durable only
            ) as harness:
                yield harness

and ``pytest -k conformance`` runs ``test_conformance[<check>]`` for every check: those about
promises the transport declares it does not make (no priority, a connection lease, no
``renew``) are skipped with the declaration as the reason; nothing it declares is left out.
"""

from __future__ import annotations

from datetime import timedelta

from conveyor.transports.seam import Delivery, Transport
from pytest_conveyor.conformance.async_harness import AsyncTransportHarness
from pytest_conveyor.conformance.checks import CHECKS, GROUPS, check_named
from pytest_conveyor.conformance.harness import Harness, NotApplicable
from pytest_conveyor.conformance.registry import Check
from pytest_conveyor.conformance.runner import Outcome, Report, run_check, run_checks
from pytest_conveyor.conformance.suite import AsyncTransportConformance, TransportConformance
from pytest_conveyor.conformance.sync_harness import TransportHarness
from pytest_conveyor.conformance.timing import Timing

__all__ = [
    "TransportConformance",
    "AsyncTransportConformance",
    "Harness",
    "TransportHarness",
    "AsyncTransportHarness",
    "Timing",
    "NotApplicable",
    "Check",
    "CHECKS",
    "GROUPS",
    "check_named",
    "run_check",
    "run_checks",
    "Outcome",
    "Report",
    "receive_one",
]


def receive_one(transport: Transport, channel: str, *, lease: timedelta) -> Delivery | None:
    """One due delivery, or None: ``receive`` with ``max_messages=1`` and no wait."""
    found = transport.receive(channel, lease=lease, max_messages=1)
    return found[0] if found else None
