"""Several services in one test, on one virtual clock and one in-memory broker.

A flow that crosses services (orders calls billing, billing publishes back) needs them to share
time: a retry due in one service at +2s and a delayed message in another at +1s must run in that
order. :class:`Services` builds harnesses on one clock and one id generator, and settles and
advances them together. It also gives their in-memory channels one ``MemoryBroker``, as two
processes on one broker would have: a channel name is one queue across the services, so one
service can put messages on a queue another consumes (the sender declares it
``QueueChannel(name, send_only=True)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from conveyor.core.clock import VirtualClock
from conveyor.core.ids import IdGenerator
from conveyor.testing.harness import Harness
from conveyor.testing.setup import Setup
from conveyor.transports.channels import Channel, QueueChannel
from conveyor.transports.memory_broker import MemoryBroker

__all__ = ["Services"]


class Services:
    """Builds harnesses that share a clock and ids; settles and advances them as one.

    Args:
        setup: the base setup; each service changes it with keyword options.
        clock: the shared clock.
        ids: the shared id generator, so message ids stay unique across services.
        on_build: called with each new harness and its setup (the plugin registers them for
            strict teardown).
        broker: the in-memory broker their channels share (a new one by default).
    """

    def __init__(
        self,
        setup: Setup,
        clock: VirtualClock,
        ids: IdGenerator,
        on_build: Callable[[Harness, Setup], None] | None = None,
        broker: MemoryBroker | None = None,
    ) -> None:
        self.setup = setup
        self.clock = clock
        self.ids = ids
        self.broker = broker if broker is not None else MemoryBroker()
        self.harnesses: list[Harness] = []
        self._on_build = on_build

    def __call__(self, **changes: Any) -> Harness:
        """A new service: the base setup with ``changes`` (``handlers=[...]``, ``channels=...``)."""
        setup = self.shared(self.setup.replace(**changes))
        harness = setup.harness(clock=self.clock, ids=self.ids)
        self.add(harness, setup)
        return harness

    def shared(self, setup: Setup) -> Setup:
        """``setup`` with its in-memory channels on the services' broker.

        Channel names and ``QueueChannel`` definitions move to the broker; broker channels,
        dynamic channels and a ``build=`` function's own channels are left as they are.
        """
        return setup.replace(channels=[self._on_broker(c) for c in setup.channels])

    def _on_broker(self, channel: Channel | str) -> Channel | str:
        if isinstance(channel, str):
            return QueueChannel(channel, broker=self.broker)
        if type(channel) is QueueChannel and channel.broker is None:
            return dataclasses.replace(channel, broker=self.broker)
        return channel

    def add(self, harness: Harness, setup: Setup | None = None) -> None:
        """Count a harness built elsewhere (on the same clock) as one of the services."""
        self.harnesses.append(harness)
        if self._on_build is not None:
            self._on_build(harness, setup if setup is not None else self.setup)

    def settle(self, *, advance_time: bool | None = None) -> int:
        """Run every service's consumers until none has runnable work.

        With ``advance_time`` (default: the base setup's), then jump the shared clock to the
        next message due on any service's channels, and go on.
        """
        steps = self._settle_now()
        if not (self.setup.advance_time if advance_time is None else advance_time):
            return steps
        while True:
            due = self._next_due(channels_only=True)
            if due is None or due <= self.clock.now():
                return steps
            steps += self.advance_to(due)

    def advance(self, duration: timedelta) -> int:
        """Move the shared clock forward, running every service's work at its due time."""
        return self.advance_to(self.clock.now() + duration)

    def advance_to(self, target: datetime) -> int:
        steps = self._settle_now()
        while True:
            due = self._next_due(channels_only=False)
            if due is None or due > target or due <= self.clock.now():
                break
            self.clock.advance_to(due)
            steps += self._settle_now()
        self.clock.advance_to(target)
        return steps + self._settle_now()

    def _settle_now(self) -> int:
        total = 0
        while True:
            steps = sum(h.run_until_idle() for h in self.harnesses)
            total += steps
            if not steps:
                return total

    def _next_due(self, *, channels_only: bool) -> datetime | None:
        found = []
        for harness in self.harnesses:
            driver = harness.messaging.driver
            names = list(harness.messaging.channels) if channels_only else driver.names()
            due = driver.next_due(names)
            if due is not None:
                found.append(due)
        return min(found, default=None)

    def __iter__(self) -> Any:
        return iter(self.harnesses)

    def __len__(self) -> int:
        return len(self.harnesses)
