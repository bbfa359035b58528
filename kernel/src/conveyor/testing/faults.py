"""Failure plans: make chosen handlers fail a chosen number of times, per message.

Ecotone's ``ExceptionalQueueChannel`` fails a channel; a plan fails handlers, which is what a
retry policy, an error handler or a dead letter reacts to. A plan is an interceptor: pass it in
``handlers=[...]`` (or ``interceptors=[...]``) and it raises before the handler runs, counting
attempts per message copy, instant retries included. Hypothesis draws plans
(``pytest_conveyor.hypothesis.failure_plans``) to explore failure paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conveyor.core.handlers import handler_mark
from conveyor.core.interceptors import before
from conveyor.core.message import Message
from conveyor.drivers.context import Context

__all__ = ["FailurePlan", "PlannedFailure", "ALWAYS"]

ALWAYS = -1
"""A failure count meaning "every attempt"."""


class PlannedFailure(Exception):
    """What a :class:`FailurePlan` raises unless told to raise something else."""


class FailurePlan:
    """Which handlers fail, and how many times for each message they receive.

    Args:
        failures: handler (function, bound method or endpoint id) to the number of attempts
            that fail for each message copy before it succeeds (``ALWAYS``: every attempt).
        exception: the exception class (or factory) raised; it receives a message saying
            which planned failure this is.
    """

    def __init__(
        self,
        failures: Mapping[object, int] | None = None,
        *,
        exception: Callable[[str], BaseException] = PlannedFailure,
    ) -> None:
        self.exception = exception
        self.failures: dict[str, int] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        for handler, times in (failures or {}).items():
            self.fail(handler, times)

    def fail(self, handler: object, times: int = 1) -> None:
        """Plan ``times`` failing attempts per message for ``handler`` (replacing any plan)."""
        self.failures[_endpoint_id(handler)] = times

    @before(order=1_000_000)
    def inject(self, message: Message, ctx: Context) -> None:
        """Raise if this attempt is planned to fail: right before the handler, as if it raised."""
        endpoint = ctx.endpoint_id or ""
        times = self.failures.get(endpoint)
        if times is None:
            return
        key = (endpoint, message.headers.id)
        count = self.attempts.get(key, 0) + 1
        self.attempts[key] = count
        if times == ALWAYS or count <= times:
            of = "every attempt" if times == ALWAYS else f"{times}"
            raise self.exception(f"planned failure {count} of {of} in {endpoint}")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{e}: {'ALWAYS' if t == ALWAYS else t}" for e, t in self.failures.items()
        )
        return f"FailurePlan({{{shown}}})"


def _endpoint_id(handler: object) -> str:
    """The endpoint id a handler gets by default (its own name) or was given."""
    if isinstance(handler, str):
        return handler
    function: Any = getattr(handler, "__func__", handler)
    mark = handler_mark(function)
    if mark is not None and mark.endpoint_id:
        return mark.endpoint_id
    name: str = getattr(function, "__qualname__", repr(handler))
    return name.rsplit("<locals>.", 1)[-1]
