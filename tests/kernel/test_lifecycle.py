"""The lifecycle as data: each outcome and policy gives the expected plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor import RecordKind, RetryPolicy
from conveyor.core.journal import ExceptionInfo
from conveyor.core.lifecycle import (
    TRANSITIONS,
    Ack,
    CallErrorHandler,
    CopyState,
    Plan,
    Record,
    Release,
    Resend,
    ResolvedPolicy,
    Stop,
    StoreDeadLetter,
    after_bus_failure,
    after_error_handler,
    after_failure,
    expire,
    reject,
    retry_headers,
)
from conveyor.core.outcome import Outcome
from conveyor.testing.flow import FINAL_KINDS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WIRE = {"cv-id": "m-1", "cv-attempt": "2", "cv-expires-at": "2026-01-02T00:00:00+00:00"}
ERROR = ValueError("card declined")


def shape(plan: Plan) -> list[str]:
    """The plan as names, with the record kinds spelled out."""
    return [
        f"Record({action.kind.value})" if isinstance(action, Record) else type(action).__name__
        for action in plan.actions
    ]


@pytest.mark.parametrize(
    ("policy", "retry_delay", "expected", "outcome"),
    [
        (ResolvedPolicy(), timedelta(seconds=5), ["Resend", "Record(retried)", "Ack"], "retried"),
        (ResolvedPolicy(error_handler="on_failure"), None, ["CallErrorHandler"], "error_handled"),
        (ResolvedPolicy(dead_letter=True), None, ["StoreDeadLetter", "Ack"], "dead_lettered"),
        (
            ResolvedPolicy(dead_letter=False, final_failure="ignore"),
            None,
            ["Record(discarded)", "Ack"],
            "discarded",
        ),
        (
            ResolvedPolicy(dead_letter=False, final_failure="resend"),
            None,
            ["Resend", "Record(requeued)", "Ack"],
            "requeued",
        ),
        (ResolvedPolicy(dead_letter=False, final_failure="stop"), None, ["Release", "Stop"], None),
        # a delayed retry left wins over the error handler and the dead letter
        (
            ResolvedPolicy(error_handler="on_failure", dead_letter=True),
            timedelta(seconds=1),
            ["Resend", "Record(retried)", "Ack"],
            "retried",
        ),
        # the failing handler is never its own error handler
        (ResolvedPolicy(error_handler="charge"), None, ["StoreDeadLetter", "Ack"], "dead_lettered"),
    ],
)
def test_a_failed_attempt_gives_the_plan_its_policy_calls_for(
    policy: ResolvedPolicy, retry_delay: timedelta | None, expected: list[str], outcome: str | None
) -> None:
    plan = after_failure(
        policy, endpoint_id="charge", error=ERROR, attempt=2, retry_delay=retry_delay,
        wire=WIRE, now=NOW,
    )  # fmt: skip
    assert shape(plan) == expected
    if outcome is not None:
        assert plan.outcome == Outcome(outcome)


def test_a_delayed_retry_resends_with_the_next_attempt_due_later_without_its_ttl() -> None:
    plan = after_failure(
        ResolvedPolicy(retry=RetryPolicy(delays=[timedelta(seconds=5)])),
        endpoint_id="charge", error=ERROR, attempt=2, retry_delay=timedelta(seconds=5),
        wire=WIRE, now=NOW,
    )  # fmt: skip
    resend = plan.actions[0]
    assert isinstance(resend, Resend)
    assert resend.available_at == NOW + timedelta(seconds=5)
    assert resend.headers["cv-attempt"] == "3"
    assert resend.headers["cv-not-before"] == "2026-01-01T00:00:05+00:00"
    assert resend.headers["cv-first-failed-at"] == NOW.isoformat()
    assert "cv-expires-at" not in resend.headers
    record = plan.actions[1]
    assert isinstance(record, Record)
    assert record.delay == timedelta(seconds=5)


@pytest.mark.parametrize(
    ("handler_error", "dead_letter", "expected"),
    [
        (None, True, ["Record(error_handled)", "Ack"]),
        (KeyError("no mailbox"), True, ["StoreDeadLetter", "Ack"]),
        (KeyError("no mailbox"), False, ["Resend", "Record(requeued)", "Ack"]),
    ],
)
def test_what_follows_an_error_handler(
    handler_error: BaseException | None, dead_letter: bool, expected: list[str]
) -> None:
    plan = after_error_handler(
        ResolvedPolicy(error_handler="on_failure", dead_letter=dead_letter),
        error=ERROR, handler_error=handler_error, handler="on_failure", attempt=1,
        wire=WIRE, now=NOW,
    )  # fmt: skip
    assert shape(plan) == expected
    if handler_error is not None and dead_letter:
        letter = plan.actions[0]
        assert isinstance(letter, StoreDeadLetter)
        assert letter.reason == "failed; error handler on_failure raised KeyError: 'no mailbox'"
        assert letter.exception == ExceptionInfo.capture(ERROR)  # the message's own failure


def test_poison_and_expired_messages_are_set_aside_never_dropped() -> None:
    assert shape(reject("undecodable", "undecodable", None, 1)) == [
        "Record(rejected)",
        "StoreDeadLetter",
        "Ack",
    ]
    assert shape(expire(NOW, dead_letter_expired=False, attempt=1)) == ["Record(expired)", "Ack"]
    assert shape(expire(NOW, dead_letter_expired=True, attempt=1)) == [
        "Record(expired)",
        "StoreDeadLetter",
        "Ack",
    ]


def test_an_asynchronous_bus_message_retries_then_dead_letters() -> None:
    later = after_bus_failure(
        error=ERROR, attempt=1, retry_delay=timedelta(seconds=1), wire=WIRE, now=NOW
    )
    assert shape(later) == ["Resend", "Record(retried)", "Ack"]
    final = after_bus_failure(error=ERROR, attempt=3, retry_delay=None, wire=WIRE, now=NOW)
    assert shape(final) == ["StoreDeadLetter", "Ack"]


def test_stop_carries_the_original_exception() -> None:
    plan = after_failure(
        ResolvedPolicy(dead_letter=False, final_failure="stop"), endpoint_id="charge",
        error=ERROR, attempt=1, retry_delay=None, wire=WIRE, now=NOW,
    )  # fmt: skip
    assert isinstance(plan.actions[0], Release)
    stop = plan.actions[1]
    assert isinstance(stop, Stop)
    assert stop.error is ERROR


def test_the_harness_folds_the_journal_with_the_kernels_transition_table() -> None:
    final = {kind for kind, state in TRANSITIONS.items() if state is CopyState.FINAL}
    assert final == FINAL_KINDS
    assert TRANSITIONS[RecordKind.RETRIED] is CopyState.WAITING
    assert RecordKind.SENT not in TRANSITIONS  # entering the bus is not a copy's step


def test_retry_headers_keep_the_first_failure_time() -> None:
    first = retry_headers(WIRE, 3, None, NOW)
    second = retry_headers(first, 4, None, NOW + timedelta(hours=1))
    assert second["cv-first-failed-at"] == NOW.isoformat()
    assert "cv-not-before" not in second
    assert isinstance(CallErrorHandler("x", ExceptionInfo.capture(ERROR)), CallErrorHandler)
    assert isinstance(Ack(), Ack)
