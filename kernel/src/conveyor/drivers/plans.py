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

from conveyor.core.clock import Clock
from conveyor.core.failure import Failure
from conveyor.core.journal import ExceptionInfo, Journal, RecordKind
from conveyor.core.lifecycle import (
    Ack,
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
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore

__all__ = ["Consumed", "PlanExecutor", "failure_for"]


@dataclass(frozen=True, slots=True)
class Consumed:
    """One delivery being consumed, with as much as could be read of it."""

    runtime: ChannelRuntime
    delivery: Delivery
    envelope: Envelope | None = None
    message: Message | None = None
    endpoint_id: str | None = None

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


class PlanExecutor:
    """Performs the actions of lifecycle plans for one ``Messaging``'s consumers."""

    __slots__ = (
        "_call_error_handler",
        "_clock",
        "_journal",
        "_letter_id",
        "_letters",
        "_outgoing",
        "_recorder",
        "random",
    )

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
        self._clock = clock
        self._journal = journal
        self._recorder = recorder
        self._outgoing = outgoing
        self._letters = letters
        self._letter_id = letter_id
        self._call_error_handler = call_error_handler
        self.random = rng

    def execute(
        self,
        plan: Plan,
        consumed: Consumed,
        *,
        policy: ResolvedPolicy | None = None,
        error: BaseException | None = None,
    ) -> Outcome:
        """Perform ``plan``'s actions in order; returns what became of the delivery."""
        for action in plan.actions:
            if isinstance(action, Record):
                self._record(action, consumed)
            elif isinstance(action, Resend):
                self._resend(action, consumed)
            elif isinstance(action, StoreDeadLetter):
                self._store(action, consumed)
            elif isinstance(action, CallErrorHandler):
                assert policy is not None
                assert error is not None
                return self._error_handler(action, consumed, policy, error)
            elif isinstance(action, Ack):
                consumed.runtime.transport.ack(consumed.delivery)
            elif isinstance(action, Release):
                consumed.runtime.transport.release(consumed.delivery)
            elif isinstance(action, Stop):
                raise action.error
        return plan.outcome

    # ------------------------------------------------------------------ actions

    def _record(self, action: Record, consumed: Consumed) -> None:
        attempt = action.attempt if action.attempt is not None else consumed.attempt
        runtime = consumed.runtime
        if consumed.message is not None:
            self._recorder.message(
                action.kind,
                consumed.message,
                endpoint_id=consumed.endpoint_id,
                channel=runtime.name,
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
            channel=runtime.name,
            endpoint_id=consumed.endpoint_id,
            exception=action.exception,
            delay=action.delay,
            detail=action.detail,
            via=self._recorder.via(runtime.name),
        )

    def _resend(self, action: Resend, consumed: Consumed) -> None:
        runtime = consumed.runtime
        runtime.transport.send(
            runtime.name,
            WireMessage(consumed.delivery.message.body, action.headers),
            available_at=self._outgoing.held_until(runtime, action.available_at),
            # a retried copy keeps its place among priorities
            priority=consumed.envelope.priority if consumed.envelope else 0,
        )

    def _store(self, action: StoreDeadLetter, consumed: Consumed) -> None:
        """Add the delivery to the dead-letter store and journal it; a later action acks."""
        now = self._clock.now()
        runtime, delivery, envelope = consumed.runtime, consumed.delivery, consumed.envelope
        endpoint = consumed.endpoint_id
        letter = DeadLetter(
            id=self._letter_id(consumed.message_id, endpoint or runtime.name),
            message_id=consumed.message_id,
            channel=runtime.name,
            endpoint_id=endpoint,
            message_type=consumed.type_name,
            body=delivery.message.body,
            headers=dict(delivery.message.headers),
            reason=action.detail or action.reason,
            exception_type=action.exception.qualified_name if action.exception else None,
            exception_message=action.exception.message if action.exception else None,
            traceback=action.exception.traceback if action.exception else None,
            attempts=action.attempts,
            first_failed_at=(
                envelope.first_failed_at if envelope and envelope.first_failed_at else now
            ),
            last_failed_at=now,
            replayed=replay_count(delivery.message.headers),
        )
        letter_id = self._letters.add(letter)  # the store's id: never an overwrite
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

    def _error_handler(
        self,
        action: CallErrorHandler,
        consumed: Consumed,
        policy: ResolvedPolicy,
        error: BaseException,
    ) -> Outcome:
        """Hand the failure to the error handler, then carry out what the core decides next."""
        handler_error: BaseException | None = None
        try:
            self._call_error_handler(action.handler, consumed, error)
        except Exception as raised:
            handler_error = raised
        plan = after_error_handler(
            policy,
            error=error,
            handler_error=handler_error,
            handler=action.handler,
            attempt=consumed.attempt,
            wire=consumed.delivery.message.headers,
            now=self._clock.now(),
        )
        return self.execute(plan, consumed)


def failure_for(
    consumed: Consumed, error: BaseException, *, now: datetime, in_process: bool
) -> Failure:
    """The ``Failure`` an error handler receives for a consumed copy."""
    assert consumed.message is not None
    assert consumed.endpoint_id is not None
    info = ExceptionInfo.capture(error)
    message = consumed.message
    return Failure(
        message_id=message.headers.id,
        channel=consumed.runtime.name,
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
