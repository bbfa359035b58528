"""Issue 14: a round trip through RabbitMQ (send, receive, ack), against raw pika and peers.

Two tables, every row measured in this process, the repeats of every row interleaved, best of
the repeats (noise only adds time). Every row uses durable queues, persistent messages and
publisher confirms, so each send costs the same wait for the broker's confirm:

1. Round trip per message, one message at a time (send it, receive it, ack it; N times), at
   the transport level:
   * raw pika (the limit): a ``BlockingConnection`` with a confirming channel doing what the
     adapter does on the wire: ``basic_publish`` (persistent, mandatory, the message's headers)
     to a durable quorum queue, ``basic_get``, ``basic_ack``; no adapter code runs.
   * Conveyor ``RabbitMQTransport``: ``send``, ``receive``, ``ack``.
   * dramatiq's ``RabbitmqBroker`` (peer), ``confirm_delivery=True``: ``enqueue``, its consumer
     iterator (``prefetch=1``), ``ack``.
   * Celery on RabbitMQ (peer): kombu's py-amqp transport, which Celery's broker connection is,
     with ``confirm_publish=True``, through ``SimpleQueue``: ``put``, ``get``, ``ack``.
2. Send N, then handle N with one consumer, whole frameworks (serialization, routing, the
   handler): Conveyor ``Messaging`` (``send``, then ``run(finish_when_empty=True)``), dramatiq
   (``actor.send``, then a ``Worker`` with one thread), Celery (``task.delay``, then a ``solo``
   worker thread), against raw pika publishing N with confirms, then ``basic_get`` + JSON
   decode + the handler call + ``basic_ack`` until empty.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine_facts
from _rivals import Cases, Runner, measure, report

from conveyor import Messaging, SystemClock, asynchronous, command_handler
from conveyor.transports.seam import WireMessage
from conveyor_rabbitmq import QueueType, RabbitMQChannel, RabbitMQTransport

_run_ids = itertools.count()
_made: list[str] = []
PEERS = ("dramatiq", "celery")


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


def raw_round_trip(url: str, n: int, queue_type: QueueType) -> float:
    import pika

    queue = _fresh("raw")
    connection, channel = _raw_channel(url, queue, queue_type)
    publish, get, ack = channel.basic_publish, channel.basic_get, channel.basic_ack  # type: ignore[attr-defined]
    dumps = json.dumps
    start = time.perf_counter()
    for i in range(n):
        properties = pika.BasicProperties(delivery_mode=2, headers={"cv-id": str(i)})
        publish("", queue, dumps({"n": i, "name": "item"}).encode(), properties, mandatory=True)
        method, _, _ = get(queue, auto_ack=False)
        ack(method.delivery_tag)
    elapsed = time.perf_counter() - start
    connection.close()  # type: ignore[attr-defined]
    return elapsed


def conveyor_round_trip(url: str, n: int, queue_type: QueueType) -> float:
    transport = RabbitMQTransport(url, clock=SystemClock(), queue_type=queue_type)
    queue = _fresh("conveyor")
    send, receive, ack = transport.send, transport.receive, transport.ack
    lease = timedelta(seconds=30)
    dumps = json.dumps
    send(queue, WireMessage(b"warm-up"))  # declares the queue, as raw's setup does
    ack(receive(queue, lease=lease)[0])
    start = time.perf_counter()
    for i in range(n):
        send(queue, WireMessage(dumps({"n": i, "name": "item"}).encode(), {"cv-id": str(i)}))
        [delivery] = receive(queue, lease=lease)
        ack(delivery)
    elapsed = time.perf_counter() - start
    transport.close()
    return elapsed


def dramatiq_round_trip(url: str, n: int) -> float:
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=url, confirm_delivery=True, middleware=[])
    queue = _fresh("dramatiq")
    broker.declare_queue(queue)
    _made.extend([f"{queue}.DQ", f"{queue}.XQ"])
    consumer = broker.consume(queue, prefetch=1, timeout=1000)
    start = time.perf_counter()
    for i in range(n):
        broker.enqueue(Message(queue, "work", (i, "item"), {}, {}))
        message = None
        while message is None:
            message = next(consumer)
        consumer.ack(message)
    elapsed = time.perf_counter() - start
    consumer.close()
    broker.close()
    return elapsed


def kombu_round_trip(url: str, n: int) -> float:
    from kombu import Connection

    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        queue = connection.SimpleQueue(_fresh("celery"))
        start = time.perf_counter()
        for i in range(n):
            queue.put({"n": i, "name": "item"})
            queue.get(block=True, timeout=5).ack()
        elapsed = time.perf_counter() - start
        queue.close()
    return elapsed


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
    )
    task = app.task(name="bench.work")(_handle)
    start = time.perf_counter()
    for i in range(n):
        task.delay(i, "item")
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="ERROR"):
        _wait_for(n)
        return time.perf_counter() - start


def _on(queue_type: QueueType, run: Callable[[str, int, QueueType], float]) -> Runner:
    return lambda url, n: run(url, n, queue_type)


QUORUM_ROUND_TRIP: Cases = {
    "raw": ("raw pika: publish+confirm, basic_get, ack (limit)", _on("quorum", raw_round_trip)),
    "conveyor": ("Conveyor RabbitMQTransport", _on("quorum", conveyor_round_trip)),
}
CLASSIC_ROUND_TRIP: Cases = {
    "raw": ("raw pika: publish+confirm, basic_get, ack (limit)", _on("classic", raw_round_trip)),
    "conveyor": ("Conveyor RabbitMQTransport", _on("classic", conveyor_round_trip)),
    "dramatiq": ("dramatiq RabbitmqBroker, confirms (peer)", dramatiq_round_trip),
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
    tables = [
        ("round trip per message (send with confirm, receive, ack), one at a time", [
            ("quorum queues (Conveyor's default)", QUORUM_ROUND_TRIP, (), "round trip, quorum"),
            ("classic queues (what dramatiq and Celery declare)", CLASSIC_ROUND_TRIP, PEERS,
             "round trip, classic"),
        ]),
        ("send N (confirmed), then handle them with one consumer, whole frameworks", [
            ("quorum queues", QUORUM_FLOW, (), "flow, quorum"),
            ("classic queues", CLASSIC_FLOW, PEERS, "flow, classic"),
        ]),
    ]  # fmt: skip
    try:
        for what, parts in tables:
            for queues, cases, peers, short in parts:
                best, failed = measure(cases, url, n, repeats, before_each=_reset)
                heading = f"Issue 14 - {what}, {queues}; {n:,} messages, best of {repeats}"
                workload = f"W6 rabbitmq {short}"
                report(heading, cases, best, failed, n, peers=peers, workload=workload)
    finally:
        _delete_queues(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=500 and 2 repeats")
    main(parser.parse_args().quick)
