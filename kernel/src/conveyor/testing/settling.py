"""Settling, and looking at what waits: the two ways a test asks "where is the flow now?".

Settling runs every consumer until nothing is runnable, so that an assertion after it is exact:
a message not published by then never will be without something new happening. It moves the
clock only when the test asked for that (``advance_time``), jumping to the next message due on a
channel; scheduled endpoints never keep it going, so a cron job cannot make it run forever.
Looking at pending work never settles, since settling would run exactly what the test wants to
see waiting; and the snapshot that failure output prints is taken the same way.
"""

from __future__ import annotations

from datetime import datetime

from conveyor.core.clock import VirtualClock
from conveyor.testing.flow import Pending, fold_copies, pending_copies
from conveyor.testing.matching import MessageMatcher, as_matcher
from conveyor.testing.report import Snapshot
from conveyor.testing.verbs import HarnessVerbs

__all__ = ["SettlingHarness"]


class SettlingHarness(HarnessVerbs):
    """A ``Messaging`` under test that settles exactly and shows what still waits."""

    def settle(self, *, advance_time: bool | None = None, max_steps: int | None = None) -> int:
        """Run every consumer until nothing is runnable; returns the steps taken.

        With ``advance_time`` (default: the harness's setting) the clock then jumps to the next
        message due on a channel (a retry, a delayed message) and settling goes on, until no
        message waits. Scheduled endpoints tick on the way but never keep settling going, so a
        cron job cannot make it run forever. More than ``max_steps`` steps raises
        ``SettleError`` with the last journal records (a runaway loop).
        """
        __tracebackhide__ = True
        m = self.messaging
        budget = max_steps if max_steps is not None else m.max_steps
        with self.raising():
            steps = m.run_until_idle(max_steps=budget)
            if not (self.advance_time if advance_time is None else advance_time):
                return steps
            names = list(m.channels)
            while True:
                due = m.driver.next_due(names)
                if due is None or due <= m.clock.now():
                    return steps
                left = None if budget is None else max(budget - steps, 0)
                steps += m.advance_to(due, max_steps=left)

    # ------------------------------------------------------------------ inspection (no settling)

    def pending(
        self, message: MessageMatcher = None, *, by: object = None, channel: str | None = None
    ) -> list[Pending]:
        """Messages waiting on channels (queued, delayed, or waiting for a retry); no settling.

        ``channel`` names a channel (or a ``ChannelAlias`` of one), or the concrete channel
        behind a dynamic one.

        Looking counts: strict teardown does not complain about pending work a test inspected.
        """
        if channel is not None:
            channel = getattr(self.messaging, "aliases", {}).get(channel, channel)
        matcher = as_matcher(message)
        endpoint = self.endpoint_of(by) if by is not None else None
        found = [
            p
            for p in self._pending()
            if matcher.matches(p.payload, p.message_type)
            and (endpoint is None or p.endpoint_id == endpoint)
            and (channel is None or channel in (p.channel, p.via))
        ]
        self._acknowledged.note_inspected(found)
        return found

    def _pending(self) -> list[Pending]:
        held: dict[str, int] = {}
        for name, runtime in self.messaging.runtimes.items():
            transport = runtime.transport
            count = getattr(transport, "pending", None)  # InspectableTransport, checked cheaply
            if callable(count):
                held[name] = count(name)
        return pending_copies(fold_copies(self.journal.records), held)

    def schedules(self) -> list[tuple[str, datetime]]:
        """Each scheduled endpoint with its next planned tick."""
        return [(name, endpoint.due) for name, endpoint in self.messaging.driver.scheduled.items()]

    def snapshot(self) -> Snapshot:
        """What failure output shows, as of now."""
        return Snapshot(
            tuple(self.journal.records),
            self.origin,
            self.clock.now(),
            tuple(self._pending()),
            tuple(self.schedules()),
            self._jumps_clock(),
            self.replay,
            self.width,
        )

    def _jumps_clock(self) -> bool:
        return self.advance_time and isinstance(self.clock, VirtualClock)
