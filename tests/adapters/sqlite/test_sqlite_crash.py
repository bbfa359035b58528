"""Real processes on one SQLite file: a consumer killed mid-message loses nothing.

Three consumer processes (``crash_consumer.py``) share one queue file and one effects file.
One is killed with SIGKILL while it holds a lease in the middle of its handler; the survivors
receive that message again once its 300 ms lease runs out. Every message is handled at least
once, none is lost, and because each effect commits together with its deduplication key,
every effect is applied exactly once. A second test races three processes on one file with
leases that never run out: no message is received twice.

Nothing sleeps here: the test waits on the children's stdout pipes with ``select`` and on
their exit with ``subprocess`` timeouts, all bounded by one wall-clock budget.
"""

from __future__ import annotations

import os
import selectors
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.core.clock import SystemClock, VirtualClock
from conveyor.transports.seam import WireMessage
from conveyor_sqlite import SqliteTransport

CONSUMER = Path(__file__).with_name("crash_consumer.py")
MESSAGES = 200
BUDGET_SECONDS = 60.0
STALL_AT = 3  # the victim is killed while handling its third message


class Deadline:
    """One wall-clock budget shared by every wait in the test."""

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.end = self.started + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            pytest.fail(f"the crash test did not finish within {BUDGET_SECONDS} s of wall time")
        return left

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def start_consumer(queue: Path, effects: Path, name: str, *stall: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CONSUMER), str(queue), str(effects), name, *stall],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def read_line(process: subprocess.Popen[str], deadline: Deadline) -> str:
    """The child's next stdout line, waiting on the pipe with select until the deadline.

    Reads the raw pipe a byte at a time, so nothing after the line is buffered away from a later
    ``communicate()``.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            if not selector.select(timeout=deadline.remaining()):
                pytest.fail(f"consumer {process.args!r} printed no line before the deadline")
            byte = os.read(fd, 1)
            if not byte:
                _, err = process.communicate(timeout=deadline.remaining())
                pytest.fail(
                    f"consumer {process.args!r} exited early ({process.returncode}):\n{err}"
                )
            line += byte
    return line.decode().strip()


def stop_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("kill_point", ["before-effect", "after-effect"])
def test_a_consumer_killed_mid_message_loses_nothing_and_effects_apply_once(
    tmp_path: Path, kill_point: str
) -> None:
    deadline = Deadline(BUDGET_SECONDS)
    queue, effects = tmp_path / "queue.db", tmp_path / "effects.db"
    producer = SqliteTransport(queue, clock=SystemClock())
    ids = [f"m-{n:03}" for n in range(MESSAGES)]
    for message_id in ids:
        producer.send("jobs", WireMessage(message_id.encode(), {"id": message_id}))

    victim = start_consumer(queue, effects, "victim", str(STALL_AT), kill_point)
    processes = [victim]
    try:
        mid = read_line(victim, deadline)
        assert mid.startswith("MID "), mid
        killed_message = mid.removeprefix("MID ")
        survivors = [start_consumer(queue, effects, f"survivor-{n}") for n in (1, 2)]
        processes += survivors
        # No waiting for a survivor's "READY": one survivor can drain every message (and the
        # victim's, once its 300 ms lease runs out) before the other has even started.

        victim.kill()  # SIGKILL, mid-handler, holding a lease
        assert victim.wait(timeout=deadline.remaining()) == -9

        for survivor in survivors:
            out, err = survivor.communicate(timeout=deadline.remaining())
            assert survivor.returncode == 0, err
            assert out.splitlines()[-1].startswith("DONE "), out
    finally:
        stop_all(processes)
    elapsed = deadline.elapsed()

    assert producer.pending("jobs") == 0  # nothing left, leased or not
    producer.close()
    with sqlite3.connect(effects) as db:
        handled = db.execute("SELECT consumer, message_id, delivery_count FROM handled").fetchall()
        applied = db.execute("SELECT message_id, consumer FROM effects").fetchall()
        keys = db.execute("SELECT COUNT(*) FROM conveyor_deduplication").fetchone()[0]

    assert {message_id for _, message_id, _ in handled} == set(ids)  # at least once
    assert sorted(message_id for message_id, _ in applied) == ids  # exactly once
    assert keys == MESSAGES
    victim_handled = [m for consumer, m, _ in handled if consumer == "victim"]
    again = [(c, n) for c, m, n in handled if m == killed_message and c != "victim"]
    assert again, f"{killed_message} was never handled again after the victim died"
    assert all(count >= 2 for _, count in again)  # redelivered after the lease ran out
    if kill_point == "after-effect":
        assert victim_handled[-1] == killed_message
        assert (killed_message, "victim") in applied  # the survivors' handling was deduplicated
    else:
        assert killed_message not in victim_handled
    print(f"\ncrash test ({kill_point}): {MESSAGES} messages, 3 processes, {elapsed:.2f} s")
    assert elapsed < BUDGET_SECONDS


RACER = """
import sys
from datetime import timedelta
from conveyor.core.clock import VirtualClock
from conveyor_sqlite import SqliteTransport
from pytest_conveyor.conformance import receive_one

# A clock that never moves: no lease ever runs out, so a message received twice is a bug.
transport = SqliteTransport(sys.argv[1], clock=VirtualClock(), synchronous="NORMAL")
print("ready", flush=True)
sys.stdin.readline()  # wait for the start signal, so every racer polls at once
while (delivery := receive_one(transport, "jobs", lease=timedelta(seconds=1))) is not None:
    print(delivery.message.headers["id"], flush=True)
transport.close()
"""


def test_processes_racing_on_one_file_never_lease_a_message_twice(tmp_path: Path) -> None:
    deadline = Deadline(BUDGET_SECONDS)
    queue = tmp_path / "queue.db"
    producer = SqliteTransport(queue, clock=VirtualClock(), synchronous="NORMAL")
    ids = [f"m-{n:03}" for n in range(600)]
    for message_id in ids:
        producer.send("jobs", WireMessage(b"", {"id": message_id}))
    producer.close()

    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(queue)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        for _ in range(3)
    ]
    try:
        for racer in racers:
            assert read_line(racer, deadline) == "ready"
        for racer in racers:  # start them all before waiting for any
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=deadline.remaining()) for racer in racers]
    finally:
        stop_all(racers)

    assert [racer.returncode for racer in racers] == [0, 0, 0], [err for _, err in outputs]
    received = [line for out, _ in outputs for line in out.splitlines()]
    assert sorted(received) == ids  # every message once, none twice
