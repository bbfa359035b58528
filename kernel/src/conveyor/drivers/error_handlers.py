"""Handing a failure to an error handler (a handler that takes a ``conveyor.Failure``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from conveyor.core.clock import Clock
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.failure import Failure
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers.dispatch import Dispatch
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.plans import Consumed, failure_for

__all__ = ["ErrorHandlers"]


class ErrorHandlers:
    """Calls error handlers by endpoint id, with the failed copy as a ``Failure``.

    The error handler runs in the application's transaction and a collecting scope named after
    the failed message: what it sends leaves only if it succeeds. An asynchronous error handler
    gets the failure through its channel (without the exception object, which does not cross
    the wire).
    """

    __slots__ = ("_clock", "_dispatch", "_endpoints", "_outgoing")

    def __init__(
        self,
        endpoints: Mapping[str, HandlerSpec],
        *,
        dispatch: Dispatch,
        outgoing: Outgoing,
        clock: Clock,
    ) -> None:
        self._endpoints = endpoints
        self._dispatch = dispatch
        self._outgoing = outgoing
        self._clock = clock

    def __call__(
        self, handler_id: HandlerSpec | str, consumed: Consumed, error: BaseException
    ) -> None:
        handler = handler_id if isinstance(handler_id, HandlerSpec) else self._endpoints[handler_id]
        failure = failure_for(
            consumed, error, now=self._clock.now(), in_process=not handler.is_async
        )
        self.give(handler, failure, consumed.message, consumed.endpoint_id, consumed.runtime.name)

    def give(
        self,
        handler_id: HandlerSpec | str,
        failure: Failure,
        failed: Message | None,
        endpoint_id: str | None,
        channel: str | None,
    ) -> None:
        """Hand ``failure`` (of the message ``failed``) to an error handler: a consumed copy's,
        or a scheduled tick's."""
        handler = handler_id if isinstance(handler_id, HandlerSpec) else self._endpoints[handler_id]
        if handler.is_async and failure.error is not None:
            failure = replace(failure, error=None)  # exceptions do not cross the wire
        dispatch = self._dispatch

        def hand_over() -> None:
            failure_message = dispatch.new_message(failure, None, None)
            if handler.is_async:
                self._outgoing.queue_copy(handler, failure_message, NO_OPTIONS)
            else:
                dispatch.call_handler(handler, failure_message, channel)

        dispatch.collected(failed, endpoint_id, channel, hand_over)
