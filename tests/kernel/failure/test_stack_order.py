"""The consumption stack, pinned by one log that every layer writes into.

Outermost first (reference section 8.1): acknowledge or final failure, then failure resolution
(after rollback), then instant retries, then the transaction, then the collector, then
deduplication, then user interceptors and the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from failure_kit import (
    ChargeCard,
    GatewayTimeout,
    LoggingTransport,
    ReceiptIssued,
    RecordingChannel,
    RecordingTransaction,
    build,
    seconds,
)

from conveyor import (
    Context,
    Deduplication,
    Failure,
    InMemoryDeduplicationStore,
    Messaging,
    RecordKind,
    RetryPolicy,
    around,
    asynchronous,
    command_handler,
    event_handler,
)


class LoggingDeduplicationStore(InMemoryDeduplicationStore):
    __slots__ = ("log",)

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def add(self, endpoint_id: str, key: str, *, expires_at: datetime) -> None:
        super().add(endpoint_id, key, expires_at=expires_at)
        self.log.append(f"dedup add {endpoint_id} {key}")


def flow(
    log: list[str],
    *,
    failures: int,
    retry: RetryPolicy | None = None,
    fail_commits: int = 0,
    **options: object,
) -> tuple[Messaging, list[int]]:
    """ChargeCard on "orders" -> charge, which publishes ReceiptIssued (async on "receipts")."""
    calls: list[int] = []

    @asynchronous("orders", retry=retry)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard, ctx: Context) -> None:
        calls.append(ctx.attempt)
        log.append(f"charge attempt {ctx.attempt}")
        ctx.publish(ReceiptIssued(command.order_id))
        if len(calls) <= failures:
            raise GatewayTimeout(f"call {len(calls)} failed")

    @asynchronous("receipts")
    @event_handler(endpoint_id="print_receipt")
    def print_receipt(event: ReceiptIssued) -> None:
        log.append("print receipt")

    messaging = build(
        [charge, print_receipt, *options.pop("handlers", [])],  # type: ignore[misc]
        [RecordingChannel("orders", log=log), RecordingChannel("receipts", log=log)],
        transaction=(transaction := RecordingTransaction(log)),
        deduplication=Deduplication(store=LoggingDeduplicationStore(log)),
        **options,
    )
    messaging.send(ChargeCard("o-1"))
    log.clear()  # the send itself is not under test
    transaction.fail_commits = fail_commits
    return messaging, calls


def test_a_success_runs_inside_one_transaction_then_records_dedup_then_acknowledges() -> None:
    log: list[str] = []
    messaging, _ = flow(log, failures=0)
    messaging.run("orders")
    assert log == [
        "begin",
        "charge attempt 1",
        "send ReceiptIssued to receipts",  # the collector flushes inside the transaction
        "commit",
        "dedup add charge msg-1",  # only once everything succeeded
        "ack ChargeCard on orders",  # acknowledging is outermost
    ]


def test_each_instant_retry_runs_in_a_fresh_transaction_and_sends_only_once() -> None:
    log: list[str] = []
    messaging, calls = flow(log, failures=2, retry=RetryPolicy(instant=2))
    messaging.run("orders")
    assert log == [
        "begin",
        "charge attempt 1",
        "rollback",
        "begin",
        "charge attempt 1",
        "rollback",
        "begin",
        "charge attempt 1",
        "send ReceiptIssued to receipts",
        "commit",
        "dedup add charge msg-1",
        "ack ChargeCard on orders",
    ]
    assert calls == [1, 1, 1]


def test_the_collector_releases_nothing_from_a_failed_attempt() -> None:
    log: list[str] = []
    messaging, _ = flow(log, failures=1, retry=RetryPolicy(delays=[seconds(5)]))
    messaging.run_until_idle(advance_time=True)
    assert log.count("send ReceiptIssued to receipts") == 1
    assert log.count("print receipt") == 1
    [queued] = [
        r for r in messaging.journal.of_kind(RecordKind.QUEUED) if r.message_type == "ReceiptIssued"
    ]
    assert queued.causation_id == "msg-1"


def test_a_delayed_retry_is_sent_after_rollback_and_before_the_acknowledgement() -> None:
    log: list[str] = []
    messaging, _ = flow(log, failures=1, retry=RetryPolicy(delays=[seconds(5)]))
    messaging.run("orders")
    assert log == [
        "begin",
        "charge attempt 1",
        "rollback",
        "send ChargeCard to orders",  # back to the channel it came from, outside the rollback
        "ack ChargeCard on orders",
    ]


def test_dead_lettering_happens_after_rollback_and_before_the_acknowledgement() -> None:
    log: list[str] = []
    messaging, _ = flow(log, failures=1)
    messaging.run("orders")
    assert log == ["begin", "charge attempt 1", "rollback", "ack ChargeCard on orders"]
    assert messaging.dead_letters.count() == 1


def test_the_error_handler_sees_the_failure_after_rollback_in_its_own_transaction() -> None:
    log: list[str] = []

    @event_handler(endpoint_id="on_failure")
    def on_failure(failure: Failure) -> None:
        log.append(f"on_failure {failure.exception_message}")

    messaging, _ = flow(log, failures=1, handlers=[on_failure], error_handler="on_failure")
    messaging.run("orders")
    assert log == [
        "begin",
        "charge attempt 1",
        "rollback",
        "begin",
        "on_failure call 1 failed",
        "commit",
        "ack ChargeCard on orders",
    ]


def test_a_failed_commit_records_no_dedup_so_the_retry_runs_the_handler() -> None:
    log: list[str] = []
    messaging, calls = flow(log, failures=0, fail_commits=1, retry=RetryPolicy(delays=[seconds(5)]))
    messaging.run_until_idle(advance_time=True)
    assert calls == [1, 2]
    assert log.count("dedup add charge msg-1") == 1
    assert log.index("dedup add charge msg-1") > log.index("commit")
    assert messaging.journal.of_kind(RecordKind.DUPLICATE) == []
    [retried] = messaging.journal.of_kind(RecordKind.RETRIED)
    assert str(retried.exception) == "ConnectionError: commit failed: the database went away"


def test_a_failed_flush_records_no_dedup_and_sends_nothing() -> None:
    log: list[str] = []
    calls: list[int] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[seconds(5)]))
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard, ctx: Context) -> None:
        calls.append(ctx.attempt)
        ctx.publish(ReceiptIssued("x" * (200 if ctx.attempt == 1 else 1)))

    @asynchronous("receipts")
    @event_handler(endpoint_id="print_receipt")
    def print_receipt(event: ReceiptIssued) -> None: ...

    messaging = build(
        [charge, print_receipt],
        [RecordingChannel("orders", log=log), RecordingChannel("receipts", log=log, max_size=300)],
        transaction=RecordingTransaction(log),
        deduplication=Deduplication(store=LoggingDeduplicationStore(log)),
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert calls == [1, 2]  # the retry was not taken for a duplicate
    assert log.count("dedup add charge msg-1") == 1
    [retried] = messaging.journal.of_kind(RecordKind.RETRIED)
    assert retried.exception is not None
    assert retried.exception.type_name == "MessageTooLarge"


def test_user_interceptors_run_inside_the_transaction_around_the_handler_on_every_attempt() -> None:
    log: list[str] = []

    @around(ChargeCard)
    def timing(proceed: Callable[[], object], message: object) -> object:
        log.append("around in")
        try:
            return proceed()
        finally:
            log.append("around out")

    messaging, _ = flow(log, failures=1, retry=RetryPolicy(instant=1), handlers=[timing])
    messaging.run("orders")
    assert log == [
        "begin",
        "around in",
        "charge attempt 1",
        "around out",
        "rollback",
        "begin",
        "around in",
        "charge attempt 1",
        "around out",
        "send ReceiptIssued to receipts",
        "commit",
        "dedup add charge msg-1",
        "ack ChargeCard on orders",
    ]


def test_a_duplicate_is_acknowledged_without_a_transaction() -> None:
    log: list[str] = []
    messaging, _ = flow(log, failures=0)
    transport = messaging.channels["orders"].transport
    assert isinstance(transport, LoggingTransport)
    wire = transport.sent[0]
    messaging.run("orders")
    log.clear()
    transport.send("orders", wire)
    log.clear()
    messaging.run("orders")
    assert log == ["ack ChargeCard on orders"]


def test_stop_on_failure_releases_after_rollback_once_instant_retries_ran() -> None:
    log: list[str] = []
    messaging, _ = flow(log, failures=5, retry=RetryPolicy(instant=1, delays=[seconds(1)]))
    with pytest.raises(GatewayTimeout):
        messaging.run("orders", stop_on_failure=True)
    assert log == [
        "begin",
        "charge attempt 1",
        "rollback",
        "begin",
        "charge attempt 1",  # instant retries still run
        "rollback",
        "release ChargeCard on orders",  # no delayed retry, no error handler, no dead letter
    ]
