"""Executing lifecycle plans: the sync driver's side of ``conveyor.core.lifecycle``.

A plan is a tuple of frozen actions decided by the core; this module performs them in order
against one delivery: journal records, sends back to the channel, dead letters, the error
handler, acknowledgement, release, stop. It decides nothing: where an action's result matters (an
error handler succeeded or raised), it asks the core for the next plan.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar

from conveyor.core.clock import Clock
from conveyor.core.failure import Failure
from conveyor.core.journal import ExceptionInfo, Journal, RecordKind
from conveyor.core.lifecycle import (
    Ack,
    Action,
    CallErrorHandler,
    Plan,
    Record,
    Release,
    Resend,
    ResolvedPolicy,
    Stop,
    StoreDeadLetter,
    after_error_handler,
    replay_count,
)
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.wire import Delivery, Envelope, H, WireMessage
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.recording import Recorder
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore, InMemoryDeadLetterStore

__all__ = ["Consumed", "PlanExecutor", "PlanSteps", "failure_for"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=_Named, default=ChannelRuntime)


@dataclass(frozen=True, slots=True)
class Consumed(Generic[R]):
    """One delivery being consumed, with as much as could be read of it.

    ``runtime`` is the channel it came from as the driver runs it: a ``ChannelRuntime`` in the
    sync driver, an ``AsyncChannelRuntime`` in the asyncio driver.
    """

    runtime: R
    delivery: Delivery
    envelope: Envelope | None = None
    message: Message | None = None
    endpoint_id: str | None = None

    @property
    def channel(self) -> str:
        return self.runtime.name

    @property
    def message_id(self) -> str:
        if self.envelope is not None:
            return self.envelope.headers.id
        return self.delivery.message.headers.get(H.ID, self.delivery.receipt)

    @property
    def type_name(self) -> str:
        if self.envelope is not None:
            return self.envelope.type_name
        return self.delivery.message.headers.get(H.TYPE, "?")

    @property
    def attempt(self) -> int:
        if self.message is not None:
            return self.message.headers.attempt
        if self.envelope is not None:
            return self.envelope.headers.attempt
        return self.delivery.delivery_count


class PlanSteps:
    """The actions of a plan that both drivers perform alike: journal records, dead letters.

    What waits on a transport or a handler (resend, ack, release, the error handler) is the
    driver's own: :class:`PlanExecutor` here, ``AsyncPlanExecutor`` in the asyncio driver.
    """

    __slots__ = ("_clock", "_journal", "_letter_id", "_letters", "_recorder", "random")

    def __init__(
        self,
        *,
        clock: Clock,
        journal: Journal,
        recorder: Recorder,
        letters: DeadLetterStore,
        letter_id: Callable[[str, str], str],
        rng: random.Random,
    ) -> None:
        self._clock = clock
        self._journal = journal
        self._recorder = recorder
        self._letters = letters
        self._letter_id = letter_id
        self.random = rng

    def perform_local(self, action: Action, consumed: Consumed[Any]) -> bool:
        """Perform an action that needs no transport; False for one the driver performs."""
        if isinstance(action, Record):
            self._record(action, consumed)
        elif isinstance(action, StoreDeadLetter):
            self._store(action, consumed)
        elif isinstance(action, Stop):
            raise action.error
        else:
            return False
        return True

    def resent(self, action: Resend, consumed: Consumed[Any]) -> tuple[WireMessage, int]:
        """The copy a ``Resend`` sends back, and its priority (it keeps its place)."""
        return (
            WireMessage(consumed.delivery.message.body, action.headers),
            consumed.envelope.priority if consumed.envelope else 0,
        )

    def next_plan(
        self,
        action: CallErrorHandler,
        consumed: Consumed[Any],
        policy: ResolvedPolicy,
        error: BaseException,
        handler_error: BaseException | None,
    ) -> Plan:
        """What the core decides once the error handler took the failure or raised."""
        return after_error_handler(
            policy,
            error=error,
            handler_error=handler_error,
            handler=action.handler,
            attempt=consumed.attempt,
            wire=consumed.delivery.message.headers,
            now=self._clock.now(),
        )

    # ------------------------------------------------------------------ actions

    def _record(self, action: Record, consumed: Consumed[Any]) -> None:
        attempt = action.attempt if action.attempt is not None else consumed.attempt
        if consumed.message is not None:
            self._recorder.message(
                action.kind,
                consumed.message,
                endpoint_id=consumed.endpoint_id,
                channel=consumed.channel,
                attempt=attempt,
                exception=action.exception,
                delay=action.delay,
                detail=action.detail,
            )
            return
        self._journal.append(
            self._clock.now(),
            action.kind,
            consumed.message_id,
            consumed.type_name,
            channel=consumed.channel,
            endpoint_id=consumed.endpoint_id,
            exception=action.exception,
            delay=action.delay,
            detail=action.detail,
            via=self._recorder.via(consumed.channel),
        )

    def _store(self, action: StoreDeadLetter, consumed: Consumed[Any]) -> None:
        """Add the delivery to the dead-letter store and journal it; a later action acks."""
        now = self._clock.now()
        delivery, envelope = consumed.delivery, consumed.envelope
        endpoint = consumed.endpoint_id
        failure = action.exception
        # The in-memory store formats the traceback when the letter is first read (see there).
        in_memory = isinstance(self._letters, InMemoryDeadLetterStore)
        letter = DeadLetter(
            id=self._letter_id(consumed.message_id, endpoint or consumed.channel),
            message_id=consumed.message_id,
            channel=consumed.channel,
            endpoint_id=endpoint,
            message_type=consumed.type_name,
            body=delivery.message.body,
            headers=dict(delivery.message.headers),
            reason=action.detail or action.reason,
            exception_type=failure.qualified_name if failure else None,
            exception_message=failure.message if failure else None,
            traceback=failure.traceback if failure and not in_memory else None,
            attempts=action.attempts,
            first_failed_at=(
                envelope.first_failed_at if envelope and envelope.first_failed_at else now
            ),
            last_failed_at=now,
            replayed=replay_count(delivery.message.headers),
        )
        letter_id = (  # the store's id: never an overwrite
            self._letters.add(letter, failure=failure)
            if isinstance(self._letters, InMemoryDeadLetterStore)
            else self._letters.add(letter)
        )
        self._record(
            Record(
                RecordKind.DEAD_LETTERED,
                exception=action.exception,
                detail=f"{letter.reason if consumed.message is None else action.reason}; "
                f"dead letter {letter_id}",
                attempt=action.attempts,
            ),
            consumed,
        )


class PlanExecutor(PlanSteps):
    """Performs the actions of lifecycle plans for one ``Messaging``'s consumers."""

    __slots__ = ("_call_error_handler", "_outgoing")

    def __init__(
        self,
        *,
        clock: Clock,
        journal: Journal,
        recorder: Recorder,
        outgoing: Outgoing,
        letters: DeadLetterStore,
        letter_id: Callable[[str, str], str],
        call_error_handler: Callable[[HandlerSpec | str, Consumed, BaseException], None],
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

    def execute(
        self,
        plan: Plan,
        consumed: Consumed,
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
                transport.send(
                    consumed.channel,
                    wire,
                    available_at=self._outgoing.held_until(consumed.runtime, action.available_at),
                    priority=priority,
                )
            elif isinstance(action, CallErrorHandler):
                assert policy is not None
                assert error is not None
                handler_error: BaseException | None = None
                try:
                    self._call_error_handler(action.handler, consumed, error)
                except Exception as raised:
                    handler_error = raised
                next_plan = self.next_plan(action, consumed, policy, error, handler_error)
                return self.execute(next_plan, consumed)
            elif isinstance(action, Ack):
                transport.ack(consumed.delivery)
            elif isinstance(action, Release):
                transport.release(consumed.delivery, available_at=action.available_at)
        return plan.outcome


def failure_for(
    consumed: Consumed[Any], error: BaseException, *, now: datetime, in_process: bool
) -> Failure:
    """The ``Failure`` an error handler receives for a consumed copy."""
    assert consumed.message is not None
    assert consumed.endpoint_id is not None
    info = ExceptionInfo.capture(error)
    message = consumed.message
    return Failure(
        message_id=message.headers.id,
        channel=consumed.channel,
        endpoint_id=consumed.endpoint_id,
        message_type=consumed.type_name,
        payload=message.payload,
        headers=dict(consumed.delivery.message.headers),
        exception_type=info.qualified_name,
        exception_message=info.message,
        traceback=info.traceback,
        attempt=message.headers.attempt,
        failed_at=now,
        error=error if in_process else None,
    )
