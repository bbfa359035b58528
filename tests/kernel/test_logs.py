"""Failures reach the standard logging module, at a level that says how urgent they are."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import pytest

from conveyor import (
    Backoff,
    Messaging,
    QueueChannel,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
)


@dataclass(frozen=True)
class Charge:
    card: str


@asynchronous("payments")
@command_handler
def charge(command: Charge) -> None:
    raise ConnectionError("gateway unreachable")


def test_retries_are_warnings_and_dead_letters_errors_without_payloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    retry = RetryPolicy(delays=Backoff.fixed(timedelta(seconds=1)), attempts=2)
    messaging = Messaging(
        handlers=[charge],
        channels=[QueueChannel("payments", retry=retry)],
        clock=VirtualClock(),
        ids=SequentialIds(),
    )
    messaging.send(Charge("4111-1111-1111-1111"))
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        messaging.run_until_idle(advance_time=True)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "retried Charge [msg-1] channel=payments endpoint=charge attempt=1 retry_in=0:00:01"
            ": ConnectionError: gateway unreachable",
        ),
        (
            "ERROR",
            "dead_lettered Charge [msg-1] channel=payments endpoint=charge attempt=2 "
            "(failed; dead letter msg-1@charge): ConnectionError: gateway unreachable",
        ),
    ]
    assert "4111" not in caplog.text
