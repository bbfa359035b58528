"""Executing lifecycle plans in the asyncio driver: the same plans, awaited where they do IO.

Journal records and dead letters are performed by ``conveyor.drivers.plans.PlanSteps``, as in the
sync driver; resend, ack, release and the error handler are awaited here. Nothing is decided:
once the error handler returned or raised, the core gives the next plan.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from conveyor.core.clock import Clock
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.failure import Failure
from conveyor.core.journal import Journal
from conveyor.core.lifecycle import Ack, CallErrorHandler, Plan, Release, Resend, ResolvedPolicy
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.drivers.async_dispatch import AsyncDispatch
from conveyor.drivers.async_outgoing import AsyncOutgoing
from conveyor.drivers.channel_runtime import AsyncChannelRuntime
from conveyor.drivers.plans import Consumed, PlanSteps, failure_for
from conveyor.drivers.recording import Recorder
from conveyor.stores.dead_letters import DeadLetterStore

__all__ = ["AsyncConsumed", "AsyncPlanExecutor", "AsyncErrorHandlers"]

AsyncConsumed = Consumed[AsyncChannelRuntime]


class AsyncPlanExecutor(PlanSteps):
    """Performs the actions of lifecycle plans for one ``AsyncMessaging``'s consumers."""

    __slots__ = ("_call_error_handler", "_outgoing")

    def __init__(
        self,
        *,
        clock: Clock,
        journal: Journal,
        recorder: Recorder,
        outgoing: AsyncOutgoing,
        letters: DeadLetterStore,
        letter_id: Callable[[str, str], str],
        call_error_handler: Callable[[str, AsyncConsumed, BaseException], Awaitable[None]],
        rng: random.Random,
    ) -> None:
        super().__init__(
            clock=clock,
            journal=journal,
            recorder=recorder,
            letters=letters,
            letter_id=letter_id,
            rng=rng,
        )
        self._outgoing = outgoing
        self._call_error_handler = call_error_handler

    async def execute(
        self,
        plan: Plan,
        consumed: AsyncConsumed,
        *,
        policy: ResolvedPolicy | None = None,
        error: BaseException | None = None,
    ) -> Outcome:
        """Perform ``plan``'s actions in order; returns what became of the delivery."""
        transport = consumed.runtime.transport
        for action in plan.actions:
            if self.perform_local(action, consumed):
                continue
            if isinstance(action, Resend):
                wire, priority = self.resent(action, consumed)
                available_at = self._outgoing.held_until(consumed.runtime, action.available_at)
                await transport.send(
                    consumed.channel, wire, available_at=available_at, priority=priority
                )
            elif isinstance(action, CallErrorHandler):
                assert policy is not None
                assert error is not None
                raised: BaseException | None = None
                try:
                    await self._call_error_handler(action.handler, consumed, error)
                except Exception as handler_error:
                    raised = handler_error
                next_plan = self.next_plan(action, consumed, policy, error, raised)
                return await self.execute(next_plan, consumed)
            elif isinstance(action, Ack):
                await transport.ack(consumed.delivery)
            elif isinstance(action, Release):
                await transport.release(consumed.delivery, available_at=action.available_at)
        return plan.outcome


class AsyncErrorHandlers:
    """Hands a failure to an error handler by endpoint id (see ``ErrorHandlers``)."""

    __slots__ = ("_clock", "_dispatch", "_endpoints", "_outgoing")

    def __init__(
        self,
        endpoints: Mapping[str, HandlerSpec],
        *,
        dispatch: AsyncDispatch,
        outgoing: AsyncOutgoing,
        clock: Clock,
    ) -> None:
        self._endpoints = endpoints
        self._dispatch = dispatch
        self._outgoing = outgoing
        self._clock = clock

    async def __call__(
        self, handler_id: str, consumed: AsyncConsumed, error: BaseException
    ) -> None:
        handler = self._endpoints[handler_id]
        failure = failure_for(
            consumed, error, now=self._clock.now(), in_process=not handler.is_async
        )
        await self.give(
            handler_id, failure, consumed.message, consumed.endpoint_id, consumed.channel
        )

    async def give(
        self,
        handler_id: str,
        failure: Failure,
        failed: Message | None,
        endpoint_id: str | None,
        channel: str | None,
    ) -> None:
        """Hand ``failure`` to an error handler: a consumed copy's, or a scheduled tick's."""
        handler = self._endpoints[handler_id]
        if handler.is_async and failure.error is not None:
            failure = replace(failure, error=None)  # exceptions do not cross the wire
        dispatch = self._dispatch

        async def hand_over() -> None:
            failure_message = dispatch.new_message(failure, None, None)
            if handler.is_async:
                self._outgoing.queue_copy(handler, failure_message, NO_OPTIONS)
            else:
                await dispatch.call_handler(handler, failure_message, channel)

        await dispatch.collected(failed, endpoint_id, channel, hand_over)
