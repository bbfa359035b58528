"""The pytest face of the suite: one base class, one parametrized test per check.

An adapter's test class subclasses :class:`TransportConformance` and gives a ``harness`` fixture;
pytest then collects ``test_conformance[<check>]`` for every check of the suite. A check whose
promise the transport declares it does not make is skipped with that declaration as the reason;
everything it declares is checked. The same class runs an async transport: the fixture yields
an :class:`~pytest_conveyor.conformance.async_harness.AsyncTransportHarness` instead.

Class attributes tune the durations (``lease``, ``delay``, ``many``) and say how a broker
counts redeliveries (``counts_every_redelivery``). ``replaced`` names checks whose promise a
broker makes in another form (SQS FIFO groups hold later messages back), with why; the class
then carries its own test of that form. A replaced check is not collected, and the reason is in
the source for a reviewer to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import ClassVar

import pytest

from pytest_conveyor.conformance.async_harness import AsyncTransportHarness
from pytest_conveyor.conformance.checks import CHECKS, check_named
from pytest_conveyor.conformance.harness import Harness, NotApplicable

__all__ = ["TransportConformance", "AsyncTransportConformance"]


class TransportConformance:
    """What every transport promises, as ``test_conformance[<check>]``; subclass it as
    ``Test<YourTransport>`` with a ``harness`` fixture.

    Not named ``Test...``, so pytest collects only its subclasses.
    """

    lease: ClassVar[timedelta | None] = None
    """The lease the checks receive with; None for the time mode's default."""

    delay: ClassVar[timedelta | None] = None
    """How far ahead delayed and expiring messages are set; keep it under ``max_delay``."""

    many: ClassVar[int | None] = None
    """How many messages the exactly-once check pushes through."""

    counts_every_redelivery: ClassVar[bool] = True
    """False where a broker only flags redeliveries (RabbitMQ classic queues)."""

    replaced: ClassVar[Mapping[str, str]] = {}
    """Check name -> why this class tests that promise in its own form instead."""

    @pytest.fixture
    def harness(self) -> Harness:
        """Override me: yield a harness around a fresh transport (``with`` closes it)."""
        raise NotImplementedError(
            f"{type(self).__name__} subclasses TransportConformance without a `harness` fixture; "
            f"define `@pytest.fixture def harness(self): with TransportHarness(...) as h: yield h`."
        )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.function.__name__ != "test_conformance":
            return
        for name in self.replaced:
            check_named(name)  # a typo must not silently keep a check out
        names = [c.name for c in CHECKS if c.name not in self.replaced]
        metafunc.parametrize("check", names)

    def test_conformance(self, harness: Harness, check: str) -> None:
        harness.timing = harness.timing.tuned(
            lease=self.lease,
            delay=self.delay,
            many=self.many,
            counts_every_redelivery=self.counts_every_redelivery,
        )
        try:
            check_named(check)(harness)
        except NotApplicable as reason:
            pytest.skip(str(reason))


class AsyncTransportConformance(TransportConformance):
    """The same checks for an ``AsyncTransport``: the ``harness`` fixture yields an
    :class:`~pytest_conveyor.conformance.async_harness.AsyncTransportHarness`."""

    def test_conformance(self, harness: Harness, check: str) -> None:
        assert isinstance(harness, AsyncTransportHarness), (
            f"{type(self).__name__} is an AsyncTransportConformance, but its harness is a "
            f"{type(harness).__name__}; yield an AsyncTransportHarness around the async transport"
        )
        super().test_conformance(harness, check)
