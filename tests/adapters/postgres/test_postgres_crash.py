"""Real consumer processes on one PostgreSQL queue: a consumer SIGKILLed mid-handler loses
nothing, and with deduplication in the handler's transaction no effect is applied twice.

Three consumer processes (``crash_consumer.py``) share one channel and one effects table. One
is killed with SIGKILL while it holds a lease in the middle of its handler; the survivors
receive that message again once its 300 ms lease runs out. A second test races three processes
with leases that never run out: ``FOR UPDATE SKIP LOCKED`` never gives one message to two.

Nothing sleeps: the test reads the children's stdout and waits on their exit, all bounded by
one wall-clock budget.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from postgres_support import Deadline

from conveyor.core.clock import SystemClock, VirtualClock
from conveyor.transports.seam import WireMessage
from conveyor_postgres import PostgresTransport

CONSUMER = Path(__file__).with_name("crash_consumer.py")
MESSAGES = 150
STALL_AT = 3


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def read_line(process: subprocess.Popen[str], deadline: Deadline) -> str:
    """The child's next stdout line, read byte by byte from the pipe until the deadline."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            if not selector.select(timeout=deadline.remaining()):
                pytest.fail(f"{process.args!r} printed no line before the deadline")
            byte = os.read(fd, 1)
            if not byte:
                _, err = process.communicate(timeout=deadline.remaining())
                pytest.fail(f"{process.args!r} exited early ({process.returncode}):\n{err}")
            line += byte
    return line.decode().strip()


def stop_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("kill_point", ["before-effect", "after-effect"])
def test_a_consumer_killed_mid_handler_loses_nothing_and_effects_apply_once(
    dsn: str, schema: str, kill_point: str
) -> None:
    deadline = Deadline(40)
    producer = PostgresTransport(dsn, clock=SystemClock(), schema=schema)
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {schema}.effects (message_id text PRIMARY KEY, consumer text)")
        setup.execute(
            f"CREATE TABLE {schema}.handled (seq serial, consumer text, message_id text, "
            f"delivery_count int, applied bool)"
        )
    ids = [f"m-{n:03}" for n in range(MESSAGES)]
    for message_id in ids:
        producer.send("jobs", WireMessage(message_id.encode(), {"id": message_id}))

    victim = start(str(CONSUMER), dsn, schema, "victim", str(STALL_AT), kill_point)
    processes = [victim]
    try:
        mid = read_line(victim, deadline)
        assert mid.startswith("MID "), mid
        killed_message = mid.removeprefix("MID ")
        survivors = [start(str(CONSUMER), dsn, schema, f"survivor-{n}") for n in (1, 2)]
        processes += survivors
        victim.kill()  # SIGKILL, mid-handler, holding a lease
        assert victim.wait(timeout=deadline.remaining()) == -9
        for survivor in survivors:
            out, err = survivor.communicate(timeout=deadline.remaining())
            assert survivor.returncode == 0, err
            assert out.splitlines()[-1].startswith("DONE "), out
    finally:
        stop_all(processes)

    assert producer.pending("jobs") == 0  # nothing left, leased or not
    producer.close()
    with psycopg.connect(dsn) as db:
        handled = db.execute(
            f"SELECT consumer, message_id, delivery_count FROM {schema}.handled"
        ).fetchall()
        applied = db.execute(f"SELECT message_id, consumer FROM {schema}.effects").fetchall()
        keys = db.execute(f"SELECT count(*) FROM {schema}.deduplication").fetchone()

    assert {message_id for _, message_id, _ in handled} == set(ids)  # 0 lost
    assert sorted(message_id for message_id, _ in applied) == ids  # 0 duplicate effects
    assert keys == (MESSAGES,)
    again = [(c, n) for c, m, n in handled if m == killed_message and c != "victim"]
    assert again, f"{killed_message} was never handled again after the victim died"
    assert all(count >= 2 for _, count in again)  # redelivered after the lease ran out
    if kill_point == "after-effect":
        assert (killed_message, "victim") in applied  # the survivors' handling was deduplicated
    else:
        assert killed_message not in [m for c, m, _ in handled if c == "victim"]


RACER = """
import sys
from datetime import timedelta
from conveyor.core.clock import VirtualClock
from conveyor_postgres import PostgresTransport

# A clock that never moves: no lease ever runs out, so a message received twice is a bug.
transport = PostgresTransport(sys.argv[1], clock=VirtualClock(), schema=sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # wait for the start signal, so every racer claims at once
while found := transport.receive("jobs", lease=timedelta(seconds=1), max_messages=int(sys.argv[3])):
    for delivery in found:
        print(delivery.message.headers["id"], flush=True)
transport.close()
"""


def test_consumer_processes_on_one_queue_never_receive_a_message_twice(
    dsn: str, schema: str
) -> None:
    deadline = Deadline(40)
    # The racers' clock: a VirtualClock starts at the same instant in every process.
    producer = PostgresTransport(dsn, clock=VirtualClock(), schema=schema)
    ids = [f"m-{n:03}" for n in range(600)]
    for message_id in ids:
        producer.send("jobs", WireMessage(b"", {"id": message_id}))
    producer.close()

    racers = [start("-c", RACER, dsn, schema, batch) for batch in ("1", "1", "7")]
    try:
        for racer in racers:
            assert read_line(racer, deadline) == "ready"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=deadline.remaining()) for racer in racers]
    finally:
        stop_all(racers)

    assert [racer.returncode for racer in racers] == [0, 0, 0], [err for _, err in outputs]
    received = [line for out, _ in outputs for line in out.splitlines()]
    assert sorted(received) == ids  # each exactly once across the processes
    assert all(out for out, _ in outputs), "a racer received nothing: they did not compete"
