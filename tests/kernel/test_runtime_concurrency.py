"""One ``Messaging`` shared by threads: nothing lost, nothing sent by a failed handler, every
causation right; failures recorded once per attempt; no transport left open by a bad setup."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor import (
    Channel,
    Clock,
    ConfigurationError,
    Context,
    Messaging,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    SystemClock,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
    priority,
)
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Capabilities, Transport
from conveyor_sqlite import SqliteChannel


@dataclass(frozen=True)
class Job:
    n: int


@dataclass(frozen=True)
class JobDone:
    n: int


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as error:  # reported below, with the thread's index
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_eight_threads_sending_to_one_messaging_store_every_message_exactly_once(
    kind: str, tmp_path: Path
) -> None:
    @asynchronous("jobs")
    @command_handler
    def work(job: Job) -> None: ...

    channel: Channel = (
        QueueChannel("jobs")
        if kind == "memory"
        else SqliteChannel("jobs", path=tmp_path / "q.db", synchronous="NORMAL")
    )
    messaging = Messaging(handlers=[work], channels=[channel], clock=SystemClock())
    # A production journal keeps no payloads; a listener sees each one as it is recorded.
    queued_jobs: list[int] = []
    messaging.journal.subscribe(
        lambda record: queued_jobs.append(record.payload.n),  # type: ignore[attr-defined]
        [RecordKind.QUEUED],
    )

    def send_500(thread: int) -> None:
        for n in range(500):
            messaging.send(Job(thread * 1000 + n))

    _in_threads(8, send_500)
    inspect = messaging.runtimes["jobs"].inspectable
    assert inspect is not None
    assert inspect.pending("jobs") == 4000
    queued = messaging.journal.of_kind(RecordKind.QUEUED)
    assert sorted(queued_jobs) == sorted(t * 1000 + n for t in range(8) for n in range(500))
    assert len({r.message_id for r in queued}) == 4000
    messaging.close()


@dataclass
class Seen:
    lock: threading.Lock = field(default_factory=threading.Lock)
    followed: dict[int, tuple[str, str | None]] = field(default_factory=dict)


def test_four_consumer_threads_keep_the_collector_promise_and_causation() -> None:
    seen = Seen()
    ids: dict[int, str] = {}

    @asynchronous("jobs")
    @command_handler
    def work(job: Job, ctx: Context) -> None:
        ids[job.n] = ctx.message_id
        ctx.publish(JobDone(job.n))
        if job.n % 10 == 0:
            raise RuntimeError(f"job {job.n} fails after publishing")

    @asynchronous("done")
    @event_handler
    def follow(event: JobDone, ctx: Context) -> None:
        with seen.lock:
            seen.followed[event.n] = (ctx.message_id, ctx.headers.causation_id)

    messaging = Messaging(
        handlers=[work, follow],
        channels=[QueueChannel("jobs"), QueueChannel("done")],
        clock=SystemClock(),
        log_failures=False,
    )
    for n in range(2000):
        messaging.send(Job(n))
    _in_threads(4, lambda _: messaging.run("jobs", limit=2000, finish_when_empty=True))
    messaging.run("done", limit=5000, finish_when_empty=True)

    succeeded = {n for n in range(2000) if n % 10}
    assert set(seen.followed) == succeeded  # none lost, none from a failed handler
    for n, (_, causation) in seen.followed.items():
        assert causation == ids[n]  # caused by the job whose handler published it
    assert messaging.dead_letters.count() == 200


FAILS_EVERY_TIME = RuntimeError("the one module-level error object")


def test_the_same_exception_object_is_recorded_once_per_attempt() -> None:
    @asynchronous(
        "jobs",
        retry=RetryPolicy(instant=2, delays=[timedelta(seconds=1), timedelta(seconds=1)]),
    )
    @command_handler
    def work(job: Job) -> None:
        raise FAILS_EVERY_TIME

    messaging = Messaging(
        handlers=[work],
        channels=[QueueChannel("jobs")],
        clock=VirtualClock(),
        ids=SequentialIds(),
        log_failures=False,
    )
    messaging.send(Job(1))
    messaging.run_until_idle(advance_time=True)
    failed = messaging.journal.of_kind(RecordKind.FAILED)
    assert [r.attempt for r in failed] == [1, 1, 1, 2, 2, 2, 3, 3, 3]  # 3 deliveries x 3 tries
    assert all(r.exception is not None and r.exception.error is FAILS_EVERY_TIME for r in failed)


class Counted(MemoryTransport):
    opened = 0
    closed = 0

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        type(self).opened += 1

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(priority=False)

    def close(self) -> None:
        type(self).closed += 1
        super().close()


@dataclass(frozen=True, kw_only=True)
class CountedChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return Counted(clock)


def test_a_configuration_error_leaves_no_transport_open() -> None:
    @asynchronous("missing")
    @command_handler
    def lost(job: Job) -> None: ...

    @asynchronous("jobs")
    @priority(5)
    @command_handler
    def urgent(job: JobDone) -> None: ...

    Counted.opened = Counted.closed = 0
    with pytest.raises(ConfigurationError, match="no channel 'missing' was given"):
        Messaging(handlers=[lost], channels=[CountedChannel("jobs")])
    assert (Counted.opened, Counted.closed) == (0, 0)  # checked before anything was opened
    with pytest.raises(ConfigurationError, match="does not honour priority"):
        Messaging(handlers=[urgent], channels=[CountedChannel("jobs"), CountedChannel("other")])
    assert Counted.opened == 2
    assert Counted.closed == 2  # opened to learn its capabilities, then closed


def test_channels_with_one_transport_key_share_one_transport() -> None:
    messaging = Messaging(channels=[QueueChannel(f"c{n}") for n in range(10)])
    transports = {id(rt.transport) for rt in messaging.channels.values()}
    assert len(transports) == 1
    messaging.close()
