"""User interceptors take their place among the consumption stack's layers by their order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from conveyor import (
    Messaging,
    QueueChannel,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    around,
    asynchronous,
    command_handler,
)
from conveyor.core.message import Message
from conveyor.drivers.stack import StackOrder


@dataclass(frozen=True)
class Charge:
    order_id: str


def build(log: list[str], interceptor_order: int) -> Messaging:
    failures = [2]

    @asynchronous("payments")
    @command_handler
    def charge(command: Charge) -> None:
        log.append("handler")
        if failures[0]:
            failures[0] -= 1
            raise TimeoutError("gateway")

    @around(order=interceptor_order)
    def tenant(proceed: Callable[[], object], message: Message) -> object:
        log.append("tenant>")
        try:
            return proceed()
        finally:
            log.append("<tenant")

    @contextmanager
    def transaction() -> Iterator[None]:
        log.append("begin")
        try:
            yield
        except Exception:
            log.append("rollback")
            raise
        log.append("commit")

    return Messaging(
        handlers=[charge, tenant],
        channels=[QueueChannel("payments", retry=RetryPolicy(instant=2))],
        transaction=transaction,
        clock=VirtualClock(),
        ids=SequentialIds(),
    )


def test_by_default_a_user_interceptor_runs_inside_the_transaction_on_every_attempt() -> None:
    log: list[str] = []
    messaging = build(log, interceptor_order=0)
    messaging.send(Charge("o-1"))
    log.clear()
    messaging.run("payments")
    assert log == ["begin", "tenant>", "handler", "<tenant", "rollback"] * 2 + [
        "begin", "tenant>", "handler", "<tenant", "commit"
    ]  # fmt: skip


def test_an_interceptor_ordered_before_the_transaction_wraps_each_attempt_outside_it() -> None:
    log: list[str] = []
    messaging = build(log, interceptor_order=StackOrder.TRANSACTION - 1)
    messaging.send(Charge("o-1"))
    log.clear()
    messaging.run("payments")
    assert log == ["tenant>", "begin", "handler", "rollback", "<tenant"] * 2 + [
        "tenant>", "begin", "handler", "commit", "<tenant"
    ]  # fmt: skip


def test_an_interceptor_ordered_before_instant_retries_wraps_all_attempts_once() -> None:
    log: list[str] = []
    messaging = build(log, interceptor_order=StackOrder.INSTANT_RETRY - 1)
    messaging.send(Charge("o-1"))
    log.clear()
    messaging.run("payments")
    assert log[0] == "tenant>"
    assert log[-1] == "<tenant"
    assert log.count("tenant>") == 1
    assert log.count("handler") == 3


def test_on_a_synchronous_call_outer_interceptors_still_wrap_the_handler() -> None:
    log: list[str] = []

    @command_handler
    def charge(command: Charge) -> None:
        log.append("handler")

    @around(order=StackOrder.TRANSACTION - 1)
    def tenant(proceed: Callable[[], object], message: Message) -> object:
        log.append("tenant")
        return proceed()

    Messaging(handlers=[charge, tenant]).send(Charge("o-1"))
    assert log == ["tenant", "handler"]


def test_a_failure_raised_by_an_outer_interceptor_is_journaled_for_each_attempt() -> None:
    from conveyor import RecordKind

    @asynchronous("payments")
    @command_handler
    def charge(command: Charge) -> None: ...

    @around(order=StackOrder.TRANSACTION - 1)
    def no_tenant(proceed: Callable[[], object], message: Message) -> object:
        raise LookupError("no tenant connection")

    messaging = Messaging(
        handlers=[charge, no_tenant],
        channels=[QueueChannel("payments", retry=RetryPolicy(instant=1))],
        clock=VirtualClock(),
        ids=SequentialIds(),
    )
    messaging.send(Charge("o-1"))
    messaging.run("payments")
    failed = messaging.journal.of_kind(RecordKind.FAILED)
    assert [(r.endpoint_id, str(r.exception)) for r in failed] == [
        ("charge", "LookupError: no tenant connection"),
        ("charge", "LookupError: no tenant connection"),
    ]
    assert messaging.dead_letters.count() == 1


def test_settling_with_time_jumps_ignores_endless_schedules() -> None:
    from datetime import timedelta

    from conveyor import scheduled

    ticks: list[object] = []

    @scheduled(every=timedelta(minutes=1))
    def minutely() -> None:
        ticks.append(1)

    @asynchronous("payments")
    @command_handler
    def charge(command: Charge) -> None: ...

    messaging = Messaging(
        handlers=[minutely, charge], channels=["payments"], clock=VirtualClock(), max_steps=50
    )
    messaging.send(Charge("o-1"), delay=timedelta(minutes=5))
    messaging.run_until_idle(advance_time=True)  # stops once no message is pending
    assert len(ticks) == 6  # the ticks at minutes 0 to 5 ran on the way
