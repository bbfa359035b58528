"""A failing scheduled tick, handled as an endpoint's failure (what both drivers share).

A tick has no channel: there is no delivery to resend or acknowledge. The decision is still the
core's (``conveyor.core.lifecycle.after_failure`` and ``after_error_handler``, with the tick's
own policy and the final failure strategy "ignore": the next tick runs as planned); this module
carries out what a driver does the same way in both worlds: resolving the tick's policy,
remembering a delayed retry beside the schedule, journaling, and storing a dead letter whose
replay runs the tick again. Calling the handler and the error handler is the driver's (sync or
awaited).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime

from conveyor.core.clock import Clock
from conveyor.core.failure import Failure
from conveyor.core.headers import Headers
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.lifecycle import (
    CallErrorHandler,
    Plan,
    Record,
    Resend,
    ResolvedPolicy,
    StoreDeadLetter,
    after_error_handler,
    after_failure,
)
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.core.wire import H, replayed_times
from conveyor.drivers.recording import Recorder
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore

__all__ = [
    "TICK",
    "TickFailures",
    "tick_policies",
    "planned_of",
    "replayed_tick",
    "log_tick_failure",
]

#: The ``message_type`` of a tick's journal records and dead letters; its body is the planned
#: instant (ISO 8601), its headers say which endpoint and how often it was replayed.
TICK = "tick"


def tick_policies(
    specs: tuple[HandlerSpec, ...], error_handlers: Mapping[str, HandlerSpec | None]
) -> dict[str, ResolvedPolicy]:
    """The failure policy of each scheduled endpoint that sets one (its own settings only)."""
    policies: dict[str, ResolvedPolicy] = {}
    for spec in specs:
        if spec.kind != "scheduled":
            continue
        handler = error_handlers.get(spec.endpoint_id)
        if spec.retry is None and handler is None and spec.dead_letter is None:
            continue
        policies[spec.endpoint_id] = ResolvedPolicy(
            retry=spec.retry,
            error_handler=handler.endpoint_id if handler is not None else None,
            dead_letter=bool(spec.dead_letter),
            final_failure="ignore",
        )
    return policies


def planned_of(letter: DeadLetter) -> datetime:
    """The planned instant of a tick kept as a dead letter."""
    return datetime.fromisoformat(letter.body.decode())


def replayed_tick(letter: DeadLetter, now: datetime) -> Message:
    """The tick a dead letter holds, on a fresh first attempt, counted as replayed once more."""
    replayed = replayed_times(letter.headers) + 1
    headers = Headers(letter.message_id, letter.message_id, None, now, 1, replayed=replayed)
    return Message(planned_of(letter), headers, letter.endpoint_id)


def log_tick_failure(endpoint_id: str, planned: datetime, error: BaseException) -> None:
    """A failing tick with no failure policy: only the log (and the journal) say so."""
    logging.getLogger("conveyor").error(
        "scheduled %s failed at its tick planned %s; the next tick runs as planned: %s",
        endpoint_id,
        planned.isoformat(),
        error,
        exc_info=error,
    )


class TickFailures:
    """What a driver needs to carry out a failing tick's plan, beside calling handlers."""

    __slots__ = ("_clock", "_letter_id", "_letters", "_recorder", "policies", "rng")

    def __init__(
        self,
        *,
        policies: Mapping[str, ResolvedPolicy],
        clock: Clock,
        recorder: Recorder,
        letters: DeadLetterStore,
        letter_id: Callable[[str, str], str],
        rng: random.Random,
    ) -> None:
        self.policies = policies
        self._clock = clock
        self._recorder = recorder
        self._letters = letters
        self._letter_id = letter_id
        self.rng = rng

    def instant_retries(self, endpoint_id: str, error: BaseException, tried: int) -> bool:
        """Whether the tick runs again at once after its ``tried``-th call failed."""
        policy = self.policies.get(endpoint_id)
        retry = policy.retry if policy is not None else None
        return retry is not None and tried <= retry.instant and retry.retries(error)

    def plan(self, endpoint_id: str, error: BaseException, attempt: int) -> Plan | None:
        """The core's decision for a tick whose retries at once are spent; None: just log."""
        policy = self.policies.get(endpoint_id)
        if policy is None:
            return None
        retry = policy.retry
        delay = retry.next_delay(error, attempt, self.rng) if retry is not None else None
        return after_failure(
            policy,
            endpoint_id=endpoint_id,
            error=error,
            attempt=attempt,
            retry_delay=delay,
            wire={},
            now=self._clock.now(),
        )

    def perform(
        self,
        plan: Plan,
        tick: Message,
        endpoint_id: str,
        retry_later: Callable[[datetime, Message], None],
    ) -> CallErrorHandler | None:
        """Carry out a plan's journal, retry and dead-letter actions; return the error-handler call.

        Calling the error handler is the driver's (sync or awaited); it then asks
        ``after_error_handler`` for the next plan and performs that one. ``retry_later`` keeps
        a delayed retry beside the schedule (the tick's next attempt at its due time).
        """
        call: CallErrorHandler | None = None
        for action in plan.actions:
            if isinstance(action, Record):
                self.record(action, tick, endpoint_id)
            elif isinstance(action, Resend) and action.available_at is not None:
                later = tick.headers.with_attempt(tick.headers.attempt + 1)
                retry_later(action.available_at, Message(tick.payload, later, None))
            elif isinstance(action, StoreDeadLetter):
                self.store(action, tick, endpoint_id)
            elif isinstance(action, CallErrorHandler):
                call = action
        return call

    def after_error_handler(
        self,
        call: CallErrorHandler,
        tick: Message,
        endpoint_id: str,
        error: BaseException,
        handler_error: BaseException | None,
    ) -> Plan:
        """The core's decision once the tick's error handler returned or raised."""
        return after_error_handler(
            self.policies[endpoint_id], error=error, handler_error=handler_error,
            handler=call.handler, attempt=tick.headers.attempt, wire={}, now=self._clock.now(),
        )  # fmt: skip

    def failure(self, tick: Message, endpoint_id: str, error: BaseException) -> Failure:
        """What an error handler receives for a failed tick (its payload: the planned time)."""
        info = ExceptionInfo.capture(error)
        return Failure(
            message_id=tick.headers.id,
            channel=endpoint_id,
            endpoint_id=endpoint_id,
            message_type=TICK,
            payload=tick.payload,
            headers={H.ENDPOINT: endpoint_id},
            exception_type=info.qualified_name,
            exception_message=info.message,
            traceback=info.traceback,
            attempt=tick.headers.attempt,
            failed_at=self._clock.now(),
            error=error,
        )

    def record(self, action: Record, tick: Message, endpoint_id: str) -> None:
        self._recorder.message(
            action.kind,
            tick,
            endpoint_id=endpoint_id,
            attempt=action.attempt if action.attempt is not None else tick.headers.attempt,
            exception=action.exception,
            delay=action.delay,
            detail=action.detail or (
                "the next tick runs as planned" if action.kind is RecordKind.DISCARDED else ""
            ),
        )  # fmt: skip

    def store(self, action: StoreDeadLetter, tick: Message, endpoint_id: str) -> None:
        """Keep the tick as a dead letter; replaying it runs the tick again."""
        assert isinstance(tick.payload, datetime)
        now = self._clock.now()
        headers = {H.ID: tick.headers.id, H.ENDPOINT: endpoint_id, H.TYPE: TICK}
        if tick.headers.replayed:
            headers[H.REPLAYED] = str(tick.headers.replayed)
        info = action.exception
        letter_id = self._letters.add(
            DeadLetter(
                id=self._letter_id(tick.headers.id, endpoint_id),
                message_id=tick.headers.id,
                channel=endpoint_id,
                endpoint_id=endpoint_id,
                message_type=TICK,
                body=tick.payload.isoformat().encode(),
                headers=headers,
                reason=action.reason,
                exception_type=info.qualified_name if info else None,
                exception_message=info.message if info else None,
                traceback=info.traceback if info else None,
                attempts=action.attempts,
                first_failed_at=now,
                last_failed_at=now,
                replayed=replayed_times(headers),
            )
        )
        self.record(
            Record(
                RecordKind.DEAD_LETTERED,
                exception=info,
                detail=f"{action.reason}; dead letter {letter_id}",
                attempt=action.attempts,
            ),
            tick,
            endpoint_id,
        )
