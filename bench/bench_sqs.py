"""Issue 16: a round trip through SQS (send, receive, ack), against raw boto3 and Celery's kombu.

Two tables, every row measured in this process against the same SQS-compatible server (moto's,
from ``SQS_ENDPOINT_URL``). The emulator is a Python process whose answers take milliseconds and
stall whenever the machine is busy, so the cases are interleaved a step of 10 messages at a time
(a stall hits them alike) and each figure is the median step divided by 10. A step ends only when
every message of it is deleted: Conveyor's acks become deletes batched in the background
(``ack_delay``), so its step ends with ``flush()``, and no delete of one row runs in another
row's step. The client's CPU time per message (this process, every thread, the mean) is printed
beside it: what each library itself costs, which the emulator's milliseconds would otherwise
hide:

1. Round trip per message, one message at a time (send it, receive it, ack it; 10 per step):
   * raw boto3 (the limit): the three calls the adapter makes per message (``SendMessage`` with
     the one ``conveyor`` attribute, ``ReceiveMessage`` with the lease as ``VisibilityTimeout``
     and the same attribute names, the delete), the attribute built by hand, one after the
     other; no adapter code. A second raw row keeps the receipts and deletes the step's ten in
     one ``DeleteMessageBatch`` at its end: fewer calls than anyone else makes, for reference.
   * Conveyor ``SqsTransport``: ``send``, ``receive``, ``ack`` (``flush`` at the end of a step).
     Its acks are batched deletes sent in parallel with the next receive's call (ten messages
     one at a time: ten deletes of one, each overlapping a receive).
   * Celery on SQS (peer): kombu's SQS transport, which Celery's broker connection is, through
     ``SimpleQueue``: ``put``, ``get``, ``ack`` (``DeleteMessage`` per message).
2. Batches of 10 (send 10, receive them, ack each; N messages in all): raw boto3
   ``SendMessageBatch`` + ``ReceiveMessage`` of 10 + ``DeleteMessageBatch``, against Conveyor's
   ``send_batch`` + ``receive(max_messages=10)`` + ``ack`` each. Celery has no batched send.

Every call is an HTTP request to the emulator, so the figures say how much the adapter adds to
the client's own cost, not what AWS would answer (tens of ms per call, dwarfing both).
Targets (issue 16): Conveyor at least 0.7x raw boto3's throughput, and ahead of Celery.
Start the emulator first (``. .ci/brokers.sh; start_sqs``), then
``.venv/bin/python bench/bench_sqs.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, fmt_ratio, machine_facts, print_table, summarize, title

from conveyor import SystemClock
from conveyor.transports.seam import ChannelOptions, Delivery, WireMessage
from conveyor_sqs import ClientSettings, SqsTransport, wire

TARGET_VS_RAW = 0.7
LEASE = timedelta(seconds=30)
STEP = 10
"""Messages per step: a step ends when all its messages are deleted."""
_run_ids = itertools.count()


def _fresh(kind: str) -> str:
    return f"bench-{kind}-{os.getpid()}-{next(_run_ids)}"


def _body(i: int) -> bytes:
    return json.dumps({"n": i, "name": "item"}).encode()


def _raw_client(endpoint: str) -> tuple[object, str]:
    from conveyor_sqs.client import open_client

    client, _ = open_client(ClientSettings(endpoint_url=endpoint))
    url = client.create_queue(QueueName=_fresh("raw"))["QueueUrl"]  # type: ignore[attr-defined]
    return client, url


def _attribute(i: int) -> dict[str, dict[str, str]]:
    packed = json.dumps(["t", {"cv-id": str(i)}], separators=(",", ":"))
    return {wire.ATTRIBUTE: {"DataType": "String", "StringValue": packed}}


_RECEIVE = {
    "WaitTimeSeconds": 0,
    "VisibilityTimeout": 30,
    "MessageAttributeNames": [wire.ATTRIBUTE],
    "MessageSystemAttributeNames": [
        "ApproximateReceiveCount",
        "ApproximateFirstReceiveTimestamp",
        "MessageGroupId",
    ],
}


# ---------------------------------------------------------------------------- one at a time (1)
#
# Each case is opened once and gives a step (one round trip, or one batch of 10, for message
# number i) and a close. Steps of all cases are interleaved message by message, so a stall of
# the emulator (a Python process on a shared machine) hits every case alike; each case's figure
# is its median step.

Step = Callable[[int], None]
Opened = tuple[Step, Callable[[], None]]


def _raw_round_trip(endpoint: str, *, batched_deletes: bool) -> Opened:
    client, url = _raw_client(endpoint)
    send, receive = client.send_message, client.receive_message  # type: ignore[attr-defined]
    delete, delete_batch = client.delete_message, client.delete_message_batch  # type: ignore[attr-defined]

    def step(first: int) -> None:
        receipts: list[str] = []
        for i in range(first, first + STEP):
            send(QueueUrl=url, MessageBody=_body(i).decode(), MessageAttributes=_attribute(i))
            messages: list[dict[str, Any]] = []
            while not messages:  # a short poll samples servers: try again, as the adapter does
                answer = receive(QueueUrl=url, MaxNumberOfMessages=1, **_RECEIVE)
                messages = answer.get("Messages", [])
            json.loads(messages[0]["MessageAttributes"][wire.ATTRIBUTE]["StringValue"])
            if batched_deletes:
                receipts.append(messages[0]["ReceiptHandle"])
            else:
                delete(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        if receipts:
            entries = [{"Id": str(n), "ReceiptHandle": r} for n, r in enumerate(receipts)]
            delete_batch(QueueUrl=url, Entries=entries)

    return step, client.close  # type: ignore[attr-defined]


def raw_round_trip(endpoint: str) -> Opened:
    return _raw_round_trip(endpoint, batched_deletes=False)


def raw_round_trip_batched_deletes(endpoint: str) -> Opened:
    return _raw_round_trip(endpoint, batched_deletes=True)


def _conveyor(endpoint: str) -> tuple[SqsTransport, str]:
    transport = SqsTransport(clock=SystemClock(), settings=ClientSettings(endpoint_url=endpoint))
    channel = _fresh("conveyor")
    transport.declare(ChannelOptions(channel))
    return transport, channel


def conveyor_round_trip(endpoint: str) -> Opened:
    transport, channel = _conveyor(endpoint)
    send, receive, ack = transport.send, transport.receive, transport.ack

    def step(first: int) -> None:
        for i in range(first, first + STEP):
            send(channel, WireMessage(_body(i), {"cv-id": str(i)}))
            found: list[Delivery] = []
            while not found:
                found = receive(channel, lease=LEASE)
            ack(found[0])
        transport.flush()  # the step's deletes are sent within it

    return step, transport.close


def kombu_round_trip(endpoint: str) -> Opened:
    from kombu import Connection

    options = {
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "is_secure": False,
        "visibility_timeout": 30,
        "wait_time_seconds": 0,
        "polling_interval": 0,
    }
    connection = Connection(f"sqs://{endpoint.removeprefix('http://')}", transport_options=options)
    queue = connection.SimpleQueue(_fresh("celery"))

    def step(first: int) -> None:
        for i in range(first, first + STEP):
            queue.put({"n": i, "name": "item"})
            queue.get(block=True, timeout=10).ack()

    def close() -> None:
        queue.close()
        connection.close()

    return step, close


# ---------------------------------------------------------------------------- batches of 10 (2)


def raw_batches(endpoint: str) -> Opened:
    client, url = _raw_client(endpoint)

    def step(first: int) -> None:
        entries = [
            {"Id": str(k), "MessageBody": _body(i).decode(), "MessageAttributes": _attribute(i)}
            for k, i in enumerate(range(first, first + 10))
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[attr-defined]
        left = len(entries)
        while left:
            answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **_RECEIVE)  # type: ignore[attr-defined]
            receipts = []
            for message in answer.get("Messages", []):
                json.loads(message["MessageAttributes"][wire.ATTRIBUTE]["StringValue"])
                handle = message["ReceiptHandle"]
                receipts.append({"Id": str(len(receipts)), "ReceiptHandle": handle})
                left -= 1
            if receipts:
                client.delete_message_batch(QueueUrl=url, Entries=receipts)  # type: ignore[attr-defined]

    return step, client.close  # type: ignore[attr-defined]


def conveyor_batches(endpoint: str) -> Opened:
    transport, channel = _conveyor(endpoint)

    def step(first: int) -> None:
        batch = [WireMessage(_body(i), {"cv-id": str(i)}) for i in range(first, first + 10)]
        transport.send_batch(channel, batch)
        left = len(batch)
        while left:
            for delivery in transport.receive(channel, lease=LEASE, max_messages=10):
                transport.ack(delivery)
                left -= 1
        transport.flush()

    return step, transport.close


Case = tuple[str, Callable[[str], Opened]]

ROUND_TRIP: dict[str, Case] = {
    "raw": ("raw boto3, the same three calls (limit)", raw_round_trip),
    "raw-batched": ("raw boto3, one DeleteMessageBatch per step", raw_round_trip_batched_deletes),
    "conveyor": ("Conveyor SqsTransport", conveyor_round_trip),
    "celery": ("Celery's SQS transport, kombu (peer)", kombu_round_trip),
}
BATCHES: dict[str, Case] = {
    "raw": ("raw boto3, batch send, receive 10, batch delete (limit)", raw_batches),
    "conveyor": ("Conveyor send_batch + receive(max_messages=10)", conveyor_batches),
}


# ---------------------------------------------------------------------------- running


def measure(
    cases: dict[str, Case], endpoint: str, steps: int, per_step: int
) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """Median wall and client-CPU seconds per message of each case, the steps interleaved."""
    opened: dict[str, Opened] = {}
    failed: dict[str, str] = {}
    for name, (_, open_case) in cases.items():
        try:
            opened[name] = open_case(endpoint)
            opened[name][0](0)  # warm up: connections, the queue's first message
        except Exception as error:  # a peer that cannot run here is reported, not fatal
            failed[name] = f"{type(error).__name__}: {error}"
            opened.pop(name, None)
    walls: dict[str, list[float]] = {name: [] for name in opened}
    cpus: dict[str, list[float]] = {name: [] for name in opened}
    order = list(opened)
    for k in range(1, steps + 1):
        order = order[1:] + order[:1]  # rotate, so no case always follows another
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            opened[name][0](k * per_step)
            cpus[name].append(time.process_time() - cpu)
            walls[name].append(time.perf_counter() - wall)
    for _, close in opened.values():
        close()
    return {
        n: (statistics.median(walls[n]) / per_step, statistics.mean(cpus[n]) / per_step)
        for n in opened
    }, failed


def report(
    heading: str,
    cases: dict[str, Case],
    per_message: dict[str, tuple[float, float]],
    failed: dict[str, str],
    workload: str,
) -> None:
    title(heading)
    rows = []
    raw_wall, _ = per_message["raw"]
    conveyor_wall, conveyor_cpu = per_message["conveyor"]
    for name, (label, _) in cases.items():
        if name not in per_message:
            rows.append([label] + ["-"] * 6)
            continue
        wall, cpu = per_message[name]
        rows.append(
            [
                label,
                fmt_int(1 / wall),
                f"{wall * 1e6:.0f}",
                fmt_ratio(raw_wall / wall),
                fmt_ratio(wall / conveyor_wall) if name != "conveyor" else "-",
                f"{cpu * 1e6:.0f}",
                fmt_ratio(cpu / conveyor_cpu) if name != "conveyor" else "-",
            ]
        )
    print_table(
        [
            "",
            "msgs/s",
            "us/msg",
            "throughput / raw",
            "conveyor is x faster",
            "client CPU us/msg",
            "x conveyor's CPU",
        ],
        rows,
    )
    for name, why in failed.items():
        print(f"({cases[name][0]} could not run here: {why})")
    vs_raw = raw_wall / conveyor_wall
    summarize(workload, conveyor_wall / raw_wall, against=cases["raw"][0], target=1 / TARGET_VS_RAW)
    print(
        f"target 'at least {TARGET_VS_RAW}x the raw client's throughput': {vs_raw:.2f}x -> "
        f"{'MET' if vs_raw >= TARGET_VS_RAW else 'MISSED'}"
    )
    if "celery" in per_message:
        ratio = per_message["celery"][0] / conveyor_wall
        cpu_ratio = per_message["celery"][1] / conveyor_cpu
        print(
            f"target 'ahead of celery': {ratio:.2f}x in throughput, {cpu_ratio:.2f}x in client "
            f"CPU -> {'MET' if ratio > 1 else 'MISSED'}"
        )
    print()
    sys.stdout.flush()


def main(quick: bool) -> None:
    endpoint = os.environ.get("SQS_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit("no SQS_ENDPOINT_URL: run `. .ci/brokers.sh; start_sqs` first")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    n = 200 if quick else 1_000
    for fact in machine_facts():
        print(fact)
    from importlib.metadata import version

    print(f"sqs      moto {version('moto')} at {endpoint}; boto3 {version('boto3')}")
    per_message, failed = measure(ROUND_TRIP, endpoint, n // STEP, STEP)
    report(
        f"Issue 16 - round trip per message (send, receive, ack), {n:,} per case, one at a "
        f"time, interleaved {STEP} at a time; median step / {STEP}",
        ROUND_TRIP, per_message, failed, "W6 sqs round trip",
    )  # fmt: skip
    per_message, failed = measure(BATCHES, endpoint, n // 10, 10)
    report(
        f"Issue 16 - batches of 10 (send, receive, ack each), {n:,} per case, interleaved; "
        f"median step / 10",
        BATCHES, per_message, failed, "W6 sqs batches of 10",
    )  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 messages per case, not 1,000")
    main(parser.parse_args().quick)
