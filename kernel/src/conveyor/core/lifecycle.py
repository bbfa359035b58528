"""The lifecycle of a consumed message copy, as data: what happened in, a plan of actions out.

This is the kernel's one decision table for a delivery (DESIGN section 2, after h11's pure state
machine): given what happened (the envelope could not be read or routed, the copy expired, its
handling failed with an error, an error handler succeeded or raised), the resolved policy of its
endpoint on its channel, and the time, a pure function returns a :class:`Plan`: frozen actions
(record in the journal, send the copy back due later, store a dead letter, hand the failure to an
error handler, acknowledge, release, stop). Drivers execute plans; the sync driver now, the
asyncio driver with the same plans. Nothing here does IO.

:data:`TRANSITIONS` says what each journal record means for a copy (still waiting for a consumer,
or finished); the kernel derives a plan's :class:`~conveyor.core.outcome.Outcome` from it, and
``conveyor.testing`` folds the journal with the same table, so the harness and the kernel cannot
disagree about a message's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from conveyor.core.errors import MessageRejected
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.outcome import Outcome
from conveyor.core.retry import RetryPolicy
from conveyor.core.wire import MAX_REPLAYED, H, replayed_times

__all__ = [
    "CopyState",
    "TRANSITIONS",
    "FinalFailure",
    "ResolvedPolicy",
    "Record",
    "Resend",
    "StoreDeadLetter",
    "CallErrorHandler",
    "Ack",
    "Release",
    "Stop",
    "Action",
    "Plan",
    "reject",
    "expire",
    "not_acknowledged",
    "after_failure",
    "after_error_handler",
    "after_bus_failure",
    "retry_headers",
    "replay_count",
    "MAX_REPLAYED",
]

FinalFailure = Literal["resend", "ignore", "stop", "release"]


class CopyState(StrEnum):
    """Where a copy of a message for one endpoint is, as far as the journal says."""

    WAITING = "waiting"  # on a channel, for a consumer (queued, forwarded, retried, replayed, ...)
    FINAL = "final"  # nothing more to do (until a dead letter is replayed)
    ATTEMPTED = "attempted"  # a handling attempt failed; what follows decides


TRANSITIONS: Mapping[RecordKind, CopyState] = {
    RecordKind.QUEUED: CopyState.WAITING,
    RecordKind.FORWARDED: CopyState.WAITING,
    RecordKind.RETRIED: CopyState.WAITING,
    RecordKind.REPLAYED: CopyState.WAITING,
    RecordKind.REQUEUED: CopyState.WAITING,
    RecordKind.RELEASED: CopyState.WAITING,
    RecordKind.FAILED: CopyState.ATTEMPTED,
    RecordKind.HANDLED: CopyState.FINAL,
    RecordKind.ERROR_HANDLED: CopyState.FINAL,
    RecordKind.DEAD_LETTERED: CopyState.FINAL,
    RecordKind.DISCARDED: CopyState.FINAL,
    RecordKind.DUPLICATE: CopyState.FINAL,
    RecordKind.EXPIRED: CopyState.FINAL,
    RecordKind.REJECTED: CopyState.FINAL,
    RecordKind.UNSENT: CopyState.FINAL,  # never left: the work that sent it failed
}
"""The state a copy is in after each kind of record; kinds not listed do not move a copy
(DELIVERED: a copy received is still the consumer's to decide; STALE, TICKED, ...)."""


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """What happens when an endpoint's handling fails on one channel, resolved once at bootstrap.

    Precedence, most specific first (``conveyor.drivers.policies`` resolves it): the handler's own
    setting, then the channel's, then the ``Messaging``'s.

    Attributes:
        retry: instant and delayed retries; None for none.
        error_handler: the endpoint id of the error handler that takes the ``Failure``.
        dead_letter: whether a failure nothing else took goes to the dead-letter store.
        final_failure: what happens when neither an error handler nor the store takes it.
        collect: what the handler sends leaves only when it succeeds (the message collector);
            False (the channel's ``collector=False``) sends each message at once.
        manual_ack: the handler acknowledges each message itself (the channel's
            ``ack="manual"``): ``ctx.ack()``, or ``ctx.reject(reason)``.
    """

    retry: RetryPolicy | None = None
    error_handler: str | None = None
    dead_letter: bool = True
    final_failure: FinalFailure = "resend"
    collect: bool = True
    manual_ack: bool = False


# ---------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Record:
    """Append a journal record about the copy being consumed."""

    kind: RecordKind
    exception: ExceptionInfo | None = None
    delay: timedelta | None = None
    detail: str = ""
    attempt: int | None = None  # None: the copy's own attempt


@dataclass(frozen=True, slots=True)
class Resend:
    """Send the copy back to the channel it came from, for the same endpoint only."""

    headers: Mapping[str, str]
    available_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoreDeadLetter:
    """Put the copy, with its original bytes and headers, in the dead-letter store."""

    reason: str
    exception: ExceptionInfo | None
    attempts: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallErrorHandler:
    """Give the failure to an error handler; :func:`after_error_handler` decides what follows."""

    handler: str
    exception: ExceptionInfo


@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledge the delivery: the transport forgets it."""


@dataclass(frozen=True, slots=True)
class Release:
    """Give the delivery back to the transport, receivable again at once or from
    ``available_at``."""

    available_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the consumer by re-raising the failure (``final_failure="stop"``)."""

    error: BaseException = field(compare=False)


Action = Record | Resend | StoreDeadLetter | CallErrorHandler | Ack | Release | Stop


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one delivery, in order, and what became of it."""

    actions: tuple[Action, ...]
    outcome: Outcome


_ACK = Ack()


# ---------------------------------------------------------------------------------- decisions


def reject(reason: str, detail: str, exception: ExceptionInfo | None, attempts: int) -> Plan:
    """A message that cannot be handled here (malformed, undecodable, unknown type or endpoint).

    It is never dropped: a REJECTED record, then a dead letter with the reason, then the ack.
    """
    return Plan(
        (
            Record(RecordKind.REJECTED, exception=exception, detail=detail),
            StoreDeadLetter(reason, exception, attempts, detail=detail),
            _ACK,
        ),
        Outcome.REJECTED,
    )


def expire(expires_at: datetime, *, dead_letter_expired: bool, attempt: int) -> Plan:
    """A copy whose time to live ran out before it was handled."""
    actions: list[Action] = [
        Record(RecordKind.EXPIRED, detail=f"expired at {expires_at.isoformat()}")
    ]
    if dead_letter_expired:
        actions.append(StoreDeadLetter("expired", None, attempt))
    actions.append(_ACK)
    return Plan(tuple(actions), Outcome.EXPIRED)


def not_acknowledged(lease: timedelta, now: datetime) -> Plan:
    """A handler on a manually acknowledged channel returned without acknowledging.

    The delivery was not acknowledged, so it is given back as a broker gives back what its
    consumer never acknowledged: receivable again once the channel's lease has passed (its
    delivery count grows). Not a failure: no retry is counted and nothing is dead-lettered.
    """
    return Plan(
        (
            Record(
                RecordKind.RELEASED,
                detail=f"not acknowledged by the handler; comes again after the lease ({lease})",
            ),
            Release(now + lease),
        ),
        Outcome.RELEASED,
    )


def after_failure(
    policy: ResolvedPolicy,
    *,
    endpoint_id: str,
    error: BaseException,
    attempt: int,
    retry_delay: timedelta | None,
    wire: Mapping[str, str],
    now: datetime,
) -> Plan:
    """A handling attempt failed and its instant retries are spent.

    ``retry_delay`` is the policy's next delay for this failure (None: no delayed retry left),
    computed by the caller so that seeded jitter stays with the driver's random source.

    In order: a rejection by the handler goes straight to the dead-letter store; else a delayed
    retry; else the error handler; else a dead letter; else the final failure strategy.
    """
    info = ExceptionInfo.capture(error)
    if isinstance(error, MessageRejected):  # the handler's own verdict: no retry, no handler
        detail = f"rejected by the handler: {error.reason}"
        return Plan(
            (
                Record(RecordKind.REJECTED, exception=info, detail=detail),
                StoreDeadLetter("rejected", info, attempt, detail=detail),
                _ACK,
            ),
            Outcome.REJECTED,
        )
    if retry_delay is not None:
        return _retry_later(wire, attempt, retry_delay, now, info)
    if policy.error_handler is not None and policy.error_handler != endpoint_id:
        return Plan((CallErrorHandler(policy.error_handler, info),), Outcome.ERROR_HANDLED)
    return _set_aside(policy, error, info, attempt, wire, now, reason="failed")


def after_error_handler(
    policy: ResolvedPolicy,
    *,
    error: BaseException,
    handler_error: BaseException | None,
    handler: str,
    attempt: int,
    wire: Mapping[str, str],
    now: datetime,
) -> Plan:
    """The error handler took the failure (``handler_error`` None) or raised.

    The message's own failure stays the one on record; the error handler's is named in the reason.
    """
    info = ExceptionInfo.capture(error)
    if handler_error is None:
        return Plan(
            (Record(RecordKind.ERROR_HANDLED, exception=info, detail=handler), _ACK),
            Outcome.ERROR_HANDLED,
        )
    reason = f"failed; error handler {handler} raised {ExceptionInfo.capture(handler_error)}"
    return _set_aside(policy, error, info, attempt, wire, now, reason=reason)


def after_bus_failure(
    *, error: BaseException, attempt: int, retry_delay: timedelta | None,
    wire: Mapping[str, str], now: datetime,
) -> Plan:  # fmt: skip
    """A message of an asynchronous bus failed: the channel's retry policy, then a letter.

    Its handlers ran as on the plain bus, so it has no endpoint policy of its own.
    """
    info = ExceptionInfo.capture(error)
    if retry_delay is not None:
        return _retry_later(wire, attempt, retry_delay, now, info)
    return Plan((StoreDeadLetter("failed", info, attempt), _ACK), Outcome.DEAD_LETTERED)


def _retry_later(
    wire: Mapping[str, str],
    attempt: int,
    delay: timedelta,
    now: datetime,
    info: ExceptionInfo,
) -> Plan:
    due = now + delay
    return Plan(
        (
            Resend(retry_headers(wire, attempt + 1, due, now), due),
            Record(RecordKind.RETRIED, exception=info, delay=delay),
            _ACK,
        ),
        Outcome.RETRIED,
    )


def _set_aside(
    policy: ResolvedPolicy,
    error: BaseException,
    info: ExceptionInfo,
    attempt: int,
    wire: Mapping[str, str],
    now: datetime,
    *,
    reason: str,
) -> Plan:
    """A dead letter if the policy keeps them, else the final failure strategy."""
    if policy.dead_letter:
        return Plan((StoreDeadLetter(reason, info, attempt), _ACK), Outcome.DEAD_LETTERED)
    if policy.final_failure == "stop":
        return Plan((Release(), Stop(error)), Outcome.REQUEUED)
    if policy.final_failure == "release":
        return Plan(
            (
                Record(RecordKind.RELEASED, exception=info, detail="final_failure='release'"),
                Release(),
            ),
            Outcome.RELEASED,
        )
    if policy.final_failure == "ignore":
        return Plan(
            (
                Record(RecordKind.DISCARDED, exception=info, detail="final_failure='ignore'"),
                _ACK,
            ),
            Outcome.DISCARDED,
        )
    return Plan(
        (
            Resend(retry_headers(wire, attempt + 1, None, now), None),
            Record(RecordKind.REQUEUED, exception=info),
            _ACK,
        ),
        Outcome.REQUEUED,
    )


def retry_headers(
    wire: Mapping[str, str], attempt: int, available_at: datetime | None, now: datetime
) -> dict[str, str]:
    """The wire headers of a copy sent back to its channel for another attempt.

    The attempt count grows; the first failure time is kept; a retried copy cannot expire by
    its original time to live; a due time travels with it, so a broker with a maximum delay that
    hands it back early sends it on for the rest.
    """
    headers = dict(wire)
    headers[H.ATTEMPT] = str(attempt)
    headers.setdefault(H.FIRST_FAILED_AT, now.isoformat())
    headers.pop(H.EXPIRES_AT, None)
    if available_at is not None:
        headers[H.NOT_BEFORE] = available_at.isoformat()
    else:
        headers.pop(H.NOT_BEFORE, None)
    return headers


def replay_count(wire: Mapping[str, str]) -> int:
    """How many times a dead letter was replayed, from its headers; anything unreadable is 0."""
    return replayed_times(wire)
