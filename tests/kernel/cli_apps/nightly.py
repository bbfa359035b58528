"""A production-like app for the stop tests: a schedule hours away, and a channel of slow jobs.

``build`` is a ``Messaging`` on the system clock, ``build_async`` the same app as an
``AsyncMessaging``. The job handler says on stderr that it started, then waits for a line on
stdin, so a test can signal the worker while a message is in flight.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta

from conveyor import (
    AsyncMessaging,
    Messaging,
    QueueChannel,
    SystemClock,
    asynchronous,
    command_handler,
    scheduled,
)


@dataclass(frozen=True)
class Job:
    name: str


@scheduled(every=timedelta(hours=6), initial_delay=timedelta(hours=6), endpoint_id="nightly")
def nightly() -> None:
    print("nightly ran", file=sys.stderr, flush=True)


@asynchronous("jobs")
@command_handler
def work(job: Job) -> None:
    sys.stderr.write(f"working on {job.name}\n")  # one write: threads print at once
    sys.stderr.flush()
    sys.stdin.readline()
    sys.stderr.write(f"finished {job.name}\n")
    sys.stderr.flush()


def build() -> Messaging:
    return Messaging([nightly, work], [QueueChannel("jobs")], clock=SystemClock())


def build_with_a_job() -> Messaging:
    messaging = build()
    messaging.send(Job("first"))
    messaging.send(Job("second"))
    return messaging


def build_async() -> AsyncMessaging:
    return AsyncMessaging([nightly], [], clock=SystemClock())
