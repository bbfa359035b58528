"""Assertions about work still waiting on channels; unlike every other assertion, they never settle.

Settling would run exactly the messages these assertions look at: a retry due in two seconds, a
delayed reminder, a command queued for a consumer the test has not run. So they look at the
channels as they are, like ``pending()``, and looking counts: strict teardown does not report
pending work a test asserted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.testing.core import HarnessCore
from conveyor.testing.flow import Pending
from conveyor.testing.formatting import format_duration, format_offset, plural
from conveyor.testing.matching import MessageMatcher, as_matcher
from conveyor.testing.report import FlowAssertionError, explain

__all__ = ["PendingAssertions"]


class PendingAssertions(HarnessCore):
    """``assert_pending`` and ``assert_nothing_pending``."""

    def assert_pending(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        channel: str | None = None,
        due_in: timedelta | None = None,
        due_at: datetime | None = None,
        times: int | None = None,
    ) -> list[Pending]:
        """A message waits on a channel (due ``due_in`` from now, or ``due_at``). No settling."""
        __tracebackhide__ = True
        now = self.clock.now()
        found = [
            p
            for p in self.pending(message, by=by, channel=channel)
            if (due_in is None or p.due == now + due_in) and (due_at is None or p.due == due_at)
        ]
        if found and (times is None or len(found) == times):
            return found
        filters = "".join(
            [
                f" by {self.endpoint_of(by)}" if by is not None else "",
                f" on {channel}" if channel else "",
                f" due in {format_duration(due_in)}" if due_in is not None else "",
                f" due at {format_offset(due_at, self.origin)}" if due_at is not None else "",
                f" {plural(times, 'time')}" if times is not None else "",
            ]
        )
        what = as_matcher(message).describe()
        headline = (
            f"{what} is pending{filters} {len(found)} times, not {times}."
            if found
            else f"No {what} is pending{filters}."
        )
        raise FlowAssertionError(explain(self.snapshot(), headline))

    def assert_nothing_pending(self) -> None:
        """No message waits on any channel (scheduled endpoints do not count). No settling."""
        __tracebackhide__ = True
        found = self.pending()
        if found:
            first = found[0]
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            raise FlowAssertionError(
                explain(
                    self.snapshot(),
                    f"Expected nothing pending, but {first.message_type}"
                    f" {first.message_id} waits on {first.where}"
                    f"{more}.",
                )
            )
