"""Issue 13: a round trip through Redis (send, receive, ack), against raw redis-py and peers.

Two tables, every row measured in this process (table 1 interleaved message by message, the
median round trip; table 2 the repeats of every row interleaved, best of the repeats):

1. Round trip per message, one message at a time (send it, receive it, ack it; N times), at
   the transport level, the cases interleaved message by message and each figure the median
   round trip (a stall of the shared machine hits every case alike):
   * raw redis-py (the limit): the adapter's own three Lua scripts called with ``EVALSHA`` on a
     plain ``redis.Redis`` client, the stored bytes built by hand; no adapter code runs.
   * Conveyor ``RedisTransport``: ``send``, ``receive``, ``ack``.
   * dramatiq's ``RedisBroker`` (peer): ``enqueue``, the consumer iterator (``prefetch=1``),
     ``ack``: its own Lua dispatch script.
   * Celery on Redis (peer): kombu's Redis transport, which Celery's broker connection is,
     through ``SimpleQueue``: ``put``, ``get``, ``ack``.
2. Send N, then handle N with one consumer, whole frameworks (serialization, routing, the
   handler): Conveyor ``Messaging`` (``send``, then ``run(finish_when_empty=True)``),
   dramatiq (``actor.send``, then a ``Worker`` with one thread), Celery (``task.delay``, then a
   ``solo`` worker thread from ``celery.contrib.testing``), against the raw scripts doing the
   sends and then the receive/ack loop with a JSON decode and the handler call.

Targets (issue 13): Conveyor at least 0.7x the raw client's throughput, and ahead of both peers.
Redis comes from ``REDIS_URL``, or this script starts its own ``redis-server`` on a free port.
Run alone: ``.venv/bin/python bench/bench_redis.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine_facts
from _rivals import Cases, measure, report

from conveyor import Messaging, SystemClock, asynchronous, command_handler
from conveyor.transports.seam import WireMessage
from conveyor_redis import RedisChannel, RedisTransport, scripts
from conveyor_redis.keys import channel_keys

_run_ids = itertools.count()


@dataclass(frozen=True, slots=True)
class Work:
    n: int
    name: str


class Seen:
    total = 0
    count = 0


def _handle(n: int, name: str) -> None:
    Seen.total += n
    Seen.count += 1


@asynchronous("work")
@command_handler
def handle(cmd: Work) -> None:
    _handle(cmd.n, cmd.name)


def _fresh(kind: str) -> str:
    return f"bench-{kind}-{os.getpid()}-{next(_run_ids)}"


# ---------------------------------------------------------------------------- round trip (1)


Step = Callable[[int], None]
Opened = tuple[Step, Callable[[], None]]


def raw_round_trip(url: str) -> Opened:
    import redis

    client = redis.Redis.from_url(url)
    evalsha = client.evalsha
    send, receive, ack = (
        client.script_load(s) for s in (scripts.SEND, scripts.RECEIVE, scripts.ACK)
    )
    keys = channel_keys(_fresh("raw"), "work").all
    dumps = json.dumps

    def step(i: int) -> None:
        now = int(time.time() * 1000)
        stored = b'{"cv-id":"%d"}\n' % i + dumps({"n": i, "name": "item"}).encode()
        evalsha(send, 9, *keys, stored, now, now, 0, "")
        reply = evalsha(receive, 9, *keys, now, now + 30_000, 1, "0")
        evalsha(ack, 9, *keys, reply[1], reply[2])  # type: ignore[index]

    return step, client.close


def conveyor_round_trip(url: str) -> Opened:
    transport = RedisTransport(url, clock=SystemClock(), prefix=_fresh("conveyor"))
    send, receive, ack = transport.send, transport.receive, transport.ack
    lease = timedelta(seconds=30)
    dumps = json.dumps

    def step(i: int) -> None:
        send("work", WireMessage(dumps({"n": i, "name": "item"}).encode(), {"cv-id": str(i)}))
        [delivery] = receive("work", lease=lease)
        ack(delivery)

    return step, transport.close


def dramatiq_round_trip(url: str) -> Opened:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace=_fresh("dramatiq"), middleware=[])
    broker.declare_queue("work")
    consumer = broker.consume("work", prefetch=1, timeout=1000)

    def step(i: int) -> None:
        broker.enqueue(Message("work", "work", (i, "item"), {}, {}))
        message = None
        while message is None:
            message = next(consumer)
        consumer.ack(message)

    def close() -> None:
        consumer.close()
        broker.close()

    return step, close


def kombu_round_trip(url: str) -> Opened:
    from kombu import Connection

    connection = Connection(url)
    queue = connection.SimpleQueue(_fresh("celery"))

    def step(i: int) -> None:
        queue.put({"n": i, "name": "item"})
        queue.get(block=True, timeout=5).ack()

    def close() -> None:
        queue.close()
        connection.close()

    return step, close


def measure_steps(
    cases: dict[str, tuple[str, Callable[[str], Opened]]], url: str, n: int
) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per round trip of each case, the cases interleaved message by message.

    On a shared machine a stall of Redis or of this process then hits every case alike; a
    case's figure is its median round trip (reported as the time for N, for the table).
    """
    opened: dict[str, Opened] = {}
    failed: dict[str, str] = {}
    for name, (_, open_case) in cases.items():
        try:
            opened[name] = open_case(url)
            opened[name][0](0)  # warm up: the connection, the scripts
        except Exception as error:  # a peer that cannot run here is reported, not fatal
            failed[name] = f"{type(error).__name__}: {error}"
            opened.pop(name, None)
    samples: dict[str, list[float]] = {name: [] for name in opened}
    order = list(opened)
    for i in range(1, n + 1):
        order = order[1:] + order[:1]  # rotate, so no case always follows another
        for name in order:
            started = time.perf_counter()
            opened[name][0](i)
            samples[name].append(time.perf_counter() - started)
    for _, close in opened.values():
        close()
    return {name: statistics.median(s) * n for name, s in samples.items()}, failed


# ---------------------------------------------------------------------------- frameworks (2)


def raw_flow(url: str, n: int) -> float:
    import redis

    client = redis.Redis.from_url(url)
    evalsha = client.evalsha
    send, receive, ack = (
        client.script_load(s) for s in (scripts.SEND, scripts.RECEIVE, scripts.ACK)
    )
    keys = channel_keys(_fresh("rawflow"), "work").all
    dumps, loads = json.dumps, json.loads
    start = time.perf_counter()
    for i in range(n):
        now = int(time.time() * 1000)
        stored = b'{"cv-id":"%d"}\n' % i + dumps({"n": i, "name": "item"}).encode()
        evalsha(send, 9, *keys, stored, now, now, 0, "")
    while True:
        now = int(time.time() * 1000)
        reply = evalsha(receive, 9, *keys, now, now + 30_000, 1, "0")
        if len(reply) == 1:
            break
        stored = reply[3]
        end = stored.index(b"\n")
        loads(stored[:end])
        _handle(**loads(stored[end + 1 :]))
        evalsha(ack, 9, *keys, reply[1], reply[2])
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


def conveyor_flow(url: str, n: int) -> float:
    channel = RedisChannel("work", url=url, prefix=_fresh("conveyorflow"))
    messaging = Messaging(handlers=[handle], channels=[channel], clock=SystemClock())
    send = messaging.send
    start = time.perf_counter()
    for i in range(n):
        send(Work(i, "item"))
    result = messaging.run("work", finish_when_empty=True)
    elapsed = time.perf_counter() - start
    messaging.close()
    assert result.processed == n, result
    return elapsed


def _wait_for(n: int, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while Seen.count < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {Seen.count} of {n} handled")
        time.sleep(0.0005)


def dramatiq_flow(url: str, n: int) -> float:
    import dramatiq
    from dramatiq import Worker
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace=_fresh("dramatiqflow"))
    dramatiq.set_broker(broker)
    actor = dramatiq.actor(_handle, broker=broker, actor_name=_fresh("work"), max_retries=0)
    start = time.perf_counter()
    for i in range(n):
        actor.send(i, "item")
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    _wait_for(n)
    elapsed = time.perf_counter() - start
    worker.stop()
    broker.close()
    return elapsed


def celery_flow(url: str, n: int) -> float:
    import logging

    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    logging.getLogger("celery").setLevel(logging.ERROR)
    app = Celery(_fresh("celery"), broker=url, backend=None, set_as_current=False)
    app.conf.update(
        task_ignore_result=True, task_default_queue=_fresh("q"), worker_hijack_root_logger=False
    )
    task = app.task(name="bench.work")(_handle)
    start = time.perf_counter()
    for i in range(n):
        task.delay(i, "item")
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="ERROR"):
        _wait_for(n)
        return time.perf_counter() - start


ROUND_TRIP: dict[str, tuple[str, Callable[[str], Opened]]] = {
    "raw": ("raw redis-py, the adapter's scripts (limit)", raw_round_trip),
    "conveyor": ("Conveyor RedisTransport", conveyor_round_trip),
    "dramatiq": ("dramatiq RedisBroker (peer)", dramatiq_round_trip),
    "celery": ("Celery's Redis transport, kombu (peer)", kombu_round_trip),
}
PEERS = ("dramatiq", "celery")
FLOW: Cases = {
    "raw": ("raw redis-py scripts + json + call (limit)", raw_flow),
    "conveyor": ("Conveyor Messaging, RedisChannel", conveyor_flow),
    "dramatiq": ("dramatiq actor + Worker, 1 thread (peer)", dramatiq_flow),
    "celery": ("Celery task + solo worker (peer)", celery_flow),
}


# ---------------------------------------------------------------------------- running


def _reset() -> None:
    Seen.total = Seen.count = 0


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """``REDIS_URL`` if set, else a redis-server of our own on a free port (stopped after)."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "no REDIS_URL and no redis-server: run `source .ci/brokers.sh; start_redis`"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", directory, "--logfile", os.path.join(directory, "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(directory, ignore_errors=True)


def main(quick: bool) -> None:
    n = 2_000 if quick else 10_000
    repeats = 2 if quick else 3
    for fact in machine_facts():
        print(fact)
    with redis_server() as url:
        import redis

        client = redis.Redis.from_url(url)
        info = client.info("server")
        persistence = client.config_get("appendonly")
        client.close()
        where, appendonly = url.rsplit("@", 1)[-1], persistence["appendonly"]
        print(f"redis    {info['redis_version']} at {where}, appendonly {appendonly}")
        best, failed = measure_steps(ROUND_TRIP, url, n)
        report(
            f"Issue 13 - round trip per message (send, receive, ack), {n:,} per case, one at a "
            f"time, interleaved; median round trip x N",
            ROUND_TRIP, best, failed, n, peers=PEERS, workload="W6 redis round trip",
        )  # fmt: skip
        best, failed = measure(FLOW, url, n, repeats, before_each=_reset)
        report(
            f"Issue 13 - send {n:,}, then handle them with one consumer, whole frameworks; best "
            f"of {repeats}",
            FLOW, best, failed, n, peers=PEERS, workload="W6 redis flow",
        )  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=2,000 and 2 repeats")
    main(parser.parse_args().quick)
