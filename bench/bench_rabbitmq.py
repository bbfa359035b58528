"""Issue 14: a round trip through RabbitMQ (send, receive, ack), against raw pika and peers.

Every row uses durable queues, persistent messages, publisher confirms (a send waits for the
broker's confirm), a push consumer with prefetch 1 and a manual ack, so every row does the same
work on the wire:

1. Round trip per message, one message at a time (send it, receive it, ack it; N times), at
   the transport level. Each row is opened once (connection, queue, consumer), then the rows are
   interleaved message by message and each figure is the median round trip (a stall of the
   broker or of the shared machine then hits every row alike). The client CPU per round trip
   (this thread, mean) is printed under each table: with the cores contended it decides the
   wall time, and it is what each library itself costs.
   * raw pika (the limit): a ``BlockingConnection`` with one confirming channel doing what the
     adapter does on the wire: ``basic_publish`` (persistent, mandatory, the message's headers),
     a ``basic_consume`` with ``basic_qos(prefetch_count=1)`` served by
     ``process_data_events``, ``basic_ack``; no adapter code runs.
   * raw py-amqp (the limit on the client Celery uses, and the sync transport since it left
     pika): an ``amqp.Connection``, one channel with ``basic_publish_confirm`` (persistent,
     mandatory, the headers), ``basic_consume`` with ``basic_qos`` prefetch 1 served by
     ``drain_events``, ``basic_ack``. Targets stay measured against raw pika.
   * Conveyor ``RabbitMQTransport``: ``send``, ``receive(wait=...)`` (as a worker waiting on its
     queue: the transport's push consumer, prefetch 1 per waiting thread), ``ack``.
   * dramatiq's ``RabbitmqBroker`` (peer), ``confirm_delivery=True``: ``enqueue``, its consumer
     iterator (``prefetch=1``, a push consumer), ``ack``.
   * Celery on RabbitMQ (peer): kombu's py-amqp transport, which Celery's broker connection is,
     with ``confirm_publish=True``, through ``SimpleQueue``: ``put``, ``get`` (a push consumer,
     prefetch 1), ``ack``.
2. Send N, then handle N with one consumer, whole frameworks (serialization, routing, the
   handler): Conveyor ``Messaging`` (``send``, then ``run(finish_when_empty=True)``, which never
   waits, so it takes each message with ``basic.get``), dramatiq (``actor.send``, then a
   ``Worker`` with one thread, a push consumer), Celery (``task.delay``, then a ``solo`` worker
   thread, a push consumer, ``task_acks_late`` so it acks once handled as the others do, and
   prefetch multiplier 1), against raw pika publishing N with confirms, then ``basic_get`` +
   JSON decode + the handler call + ``basic_ack`` until empty. Best of the repeats, interleaved.

Each table is measured twice: on quorum queues (Conveyor's default: replicated, and the
broker writes every confirmed message to its log before confirming it) for Conveyor and raw
pika, then on classic queues for every row, since dramatiq and Celery declare classic queues and
a comparison is only fair on the same queue type.

Targets (issue 14): Conveyor at least 0.7x the raw client's throughput, and ahead of both peers.
RabbitMQ comes from ``AMQP_URL`` (``. .ci/brokers.sh; start_rabbitmq``).
Run alone: ``.venv/bin/python bench/bench_rabbitmq.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine_facts
from _rivals import Cases, Opened, Runner, measure, measure_steps, report

from conveyor import Messaging, SystemClock, asynchronous, command_handler
from conveyor.transports.seam import WireMessage
from conveyor_rabbitmq import QueueType, RabbitMQChannel, RabbitMQTransport

_run_ids = itertools.count()
_made: list[str] = []
PEERS = ("dramatiq", "celery")
Opener = Callable[[str], Opened]
Steps = dict[str, tuple[str, Opener]]


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


def _handler(queue: str) -> object:
    @asynchronous(queue)
    @command_handler
    def handle(cmd: Work) -> None:
        _handle(cmd.n, cmd.name)

    return handle


def _fresh(kind: str) -> str:
    name = f"bench-{kind}-{os.getpid()}-{next(_run_ids)}"
    _made.append(name)
    return name


def _reset() -> None:
    Seen.total = Seen.count = 0


def _raw_channel(url: str, queue: str, queue_type: QueueType) -> tuple[object, object]:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": queue_type})
    return connection, channel


# ---------------------------------------------------------------------------- round trip (1)
#
# Each row is opened once (connection, queue, consumer) and gives a step: one round trip for
# message number i. The steps of all rows are interleaved message by message, so a stall of the
# broker or of the shared machine hits every row alike; a row's figure is its median step.


def raw_round_trip(url: str, queue_type: QueueType) -> Opened:
    import pika

    queue = _fresh("raw")
    connection, channel = _raw_channel(url, queue, queue_type)
    held: deque[int] = deque()
    channel.basic_qos(prefetch_count=1)  # type: ignore[attr-defined]
    channel.basic_consume(  # type: ignore[attr-defined]
        queue, lambda _c, method, _p, _b: held.append(method.delivery_tag), auto_ack=False
    )
    publish, ack = channel.basic_publish, channel.basic_ack  # type: ignore[attr-defined]
    pump = connection.process_data_events  # type: ignore[attr-defined]
    dumps = json.dumps

    def step(i: int) -> None:
        properties = pika.BasicProperties(delivery_mode=2, headers={"cv-id": str(i)})
        publish("", queue, dumps({"n": i, "name": "item"}).encode(), properties, mandatory=True)
        while not held:
            pump(time_limit=5)
        ack(held.popleft())

    return step, connection.close  # type: ignore[attr-defined]


def raw_amqp_round_trip(url: str, queue_type: QueueType) -> Opened:
    import amqp

    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    connection = amqp.Connection(
        f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost,
        login_method="PLAIN",
    )
    connection.connect()
    queue = _fresh("rawamqp")
    channel = connection.channel()
    channel.queue_declare(
        queue, durable=True, auto_delete=False, arguments={"x-queue-type": queue_type}
    )
    held: deque[int] = deque()
    channel.basic_qos(0, 1, False)
    channel.basic_consume(queue, callback=lambda message: held.append(message.delivery_tag))
    # basic_publish_confirm puts the channel in confirm mode on its first call (the warm-up)
    publish, ack, drain = channel.basic_publish_confirm, channel.basic_ack, connection.drain_events
    dumps, message_of = json.dumps, amqp.Message

    def step(i: int) -> None:
        body = dumps({"n": i, "name": "item"}).encode()
        message = message_of(body, delivery_mode=2, application_headers={"cv-id": str(i)})
        publish(message, "", queue, mandatory=True)
        while not held:
            drain(timeout=5)
        ack(held.popleft())

    return step, connection.close


def conveyor_round_trip(url: str, queue_type: QueueType) -> Opened:
    transport = RabbitMQTransport(url, clock=SystemClock(), queue_type=queue_type)
    queue = _fresh("conveyor")
    send, receive, ack = transport.send, transport.receive, transport.ack
    lease, wait = timedelta(seconds=30), timedelta(seconds=5)
    dumps = json.dumps

    def step(i: int) -> None:
        send(queue, WireMessage(dumps({"n": i, "name": "item"}).encode(), {"cv-id": str(i)}))
        [delivery] = receive(queue, lease=lease, wait=wait)  # a worker waiting on its queue
        ack(delivery)

    return step, transport.close


def dramatiq_round_trip(url: str) -> Opened:
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=url, confirm_delivery=True, middleware=[])
    queue = _fresh("dramatiq")
    broker.declare_queue(queue)
    _made.extend([f"{queue}.DQ", f"{queue}.XQ"])
    consumer = broker.consume(queue, prefetch=1, timeout=1000)

    def step(i: int) -> None:
        broker.enqueue(Message(queue, "work", (i, "item"), {}, {}))
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

    connection = Connection(url, transport_options={"confirm_publish": True})
    queue = connection.SimpleQueue(_fresh("celery"))

    def step(i: int) -> None:
        queue.put({"n": i, "name": "item"})
        queue.get(block=True, timeout=5).ack()

    def close() -> None:
        queue.close()
        connection.close()

    return step, close


# ---------------------------------------------------------------------------- frameworks (2)


def raw_flow(url: str, n: int, queue_type: QueueType) -> float:
    import pika

    queue = _fresh("rawflow")
    connection, channel = _raw_channel(url, queue, queue_type)
    publish, get, ack = channel.basic_publish, channel.basic_get, channel.basic_ack  # type: ignore[attr-defined]
    dumps, loads = json.dumps, json.loads
    start = time.perf_counter()
    for i in range(n):
        properties = pika.BasicProperties(delivery_mode=2, headers={"cv-id": str(i)})
        publish("", queue, dumps({"n": i, "name": "item"}).encode(), properties, mandatory=True)
    while True:
        method, _, body = get(queue, auto_ack=False)
        if method is None:
            break
        _handle(**loads(body))
        ack(method.delivery_tag)
    elapsed = time.perf_counter() - start
    connection.close()  # type: ignore[attr-defined]
    return elapsed


def conveyor_flow(url: str, n: int, queue_type: QueueType) -> float:
    channel = RabbitMQChannel(_fresh("work"), url=url, queue_type=queue_type)
    messaging = Messaging(
        handlers=[_handler(channel.name)], channels=[channel], clock=SystemClock()
    )
    send = messaging.send
    start = time.perf_counter()
    for i in range(n):
        send(Work(i, "item"))
    result = messaging.run(channel.name, finish_when_empty=True)
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
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=url, confirm_delivery=True)
    dramatiq.set_broker(broker)
    queue = _fresh("dramatiqflow")
    _made.extend([f"{queue}.DQ", f"{queue}.XQ"])
    actor = dramatiq.actor(
        _handle, broker=broker, actor_name=_fresh("work"), queue_name=queue, max_retries=0
    )
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
        task_ignore_result=True,
        task_default_queue=_fresh("q"),
        worker_hijack_root_logger=False,
        broker_transport_options={"confirm_publish": True},
        task_acks_late=True,  # acked once handled, as every other row (Celery acks early)
        worker_prefetch_multiplier=1,
    )
    task = app.task(name="bench.work")(_handle)
    start = time.perf_counter()
    for i in range(n):
        task.delay(i, "item")
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="ERROR",
        shutdown_timeout=60,  # the solo worker thread leaves its consumer loop slowly
    ):
        _wait_for(n)
        return time.perf_counter() - start


def _on(queue_type: QueueType, run: Callable[[str, int, QueueType], float]) -> Runner:
    return lambda url, n: run(url, n, queue_type)


def _opened_on(queue_type: QueueType, open_row: Callable[[str, QueueType], Opened]) -> Opener:
    return lambda url: open_row(url, queue_type)


RAW_ROUND_TRIP = "raw pika: publish+confirm, consume (prefetch 1), ack (limit)"
RAW_AMQP_ROUND_TRIP = "raw py-amqp: the same on Celery's client (limit)"
QUORUM_ROUND_TRIP: Steps = {
    "raw": (RAW_ROUND_TRIP, _opened_on("quorum", raw_round_trip)),
    "raw py-amqp": (RAW_AMQP_ROUND_TRIP, _opened_on("quorum", raw_amqp_round_trip)),
    "conveyor": ("Conveyor RabbitMQTransport", _opened_on("quorum", conveyor_round_trip)),
}
CLASSIC_ROUND_TRIP: Steps = {
    "raw": (RAW_ROUND_TRIP, _opened_on("classic", raw_round_trip)),
    "raw py-amqp": (RAW_AMQP_ROUND_TRIP, _opened_on("classic", raw_amqp_round_trip)),
    "conveyor": ("Conveyor RabbitMQTransport", _opened_on("classic", conveyor_round_trip)),
    "dramatiq": ("dramatiq RabbitmqBroker, confirms, prefetch 1 (peer)", dramatiq_round_trip),
    "celery": ("Celery's RabbitMQ transport, kombu, confirms (peer)", kombu_round_trip),
}
QUORUM_FLOW: Cases = {
    "raw": ("raw pika + json + call (limit)", _on("quorum", raw_flow)),
    "conveyor": ("Conveyor Messaging, RabbitMQChannel", _on("quorum", conveyor_flow)),
}
CLASSIC_FLOW: Cases = {
    "raw": ("raw pika + json + call (limit)", _on("classic", raw_flow)),
    "conveyor": ("Conveyor Messaging, RabbitMQChannel", _on("classic", conveyor_flow)),
    "dramatiq": ("dramatiq actor + Worker, 1 thread (peer)", dramatiq_flow),
    "celery": ("Celery task + solo worker (peer)", celery_flow),
}


# ---------------------------------------------------------------------------- running


def _delete_queues(url: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    for name in _made:
        channel = connection.channel()
        try:
            channel.queue_delete(name)
        except Exception:  # a queue a peer never made, or one already gone
            continue
    connection.close()


def main(quick: bool) -> None:
    n = 500 if quick else 2_000
    repeats = 2 if quick else 3
    url = os.environ.get("AMQP_URL")
    if not url:
        raise SystemExit("no AMQP_URL: run `. .ci/brokers.sh; start_rabbitmq` first")
    for fact in machine_facts():
        print(fact)
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    version = connection._impl.server_properties.get("version", b"?")
    connection.close()
    version = version.decode() if isinstance(version, bytes) else version
    print(f"rabbitmq {version} at {url.rsplit('@', 1)[-1]}")
    round_trips = [
        ("quorum queues (Conveyor's default)", QUORUM_ROUND_TRIP, (), "round trip, quorum"),
        ("classic queues (what dramatiq and Celery declare)", CLASSIC_ROUND_TRIP, PEERS,
         "round trip, classic"),
    ]  # fmt: skip
    flows = [
        ("quorum queues", QUORUM_FLOW, (), "flow, quorum"),
        ("classic queues", CLASSIC_FLOW, PEERS, "flow, classic"),
    ]
    try:
        for queues, steps, peers, short in round_trips:
            cpu: dict[str, float] = {}
            best, failed = measure_steps(steps, url, n, cpu=cpu)
            heading = (
                f"Issue 14 - round trip per message (send with confirm, receive, ack), one at a "
                f"time, {queues}; {n:,} per row, interleaved; median round trip x N"
            )
            report(heading, steps, best, failed, n, peers=peers, workload=f"W6 rabbitmq {short}")
            spent = ", ".join(f"{name} {seconds * 1e6:.0f}" for name, seconds in cpu.items())
            print(f"client CPU per round trip, this thread, mean us: {spent}\n")
        for queues, cases, peers, short in flows:
            best, failed = measure(cases, url, n, repeats, before_each=_reset)
            heading = (
                f"Issue 14 - send N (confirmed), then handle them with one consumer, whole "
                f"frameworks, {queues}; {n:,} messages, best of {repeats}"
            )
            report(heading, cases, best, failed, n, peers=peers, workload=f"W6 rabbitmq {short}")
    finally:
        _delete_queues(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=500 and 2 repeats")
    main(parser.parse_args().quick)
