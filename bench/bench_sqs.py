"""Issue 16: a round trip through SQS (send, receive, ack), against raw boto3 and Celery's kombu.

Two tables, every row measured in this process against the same SQS-compatible server (moto's,
from ``SQS_ENDPOINT_URL``), the repeats of every row interleaved, best of the repeats (noise
only adds time):

1. Round trip per message, one message at a time (send it, receive it, ack it; N times):
   * raw boto3 (the limit): the same three calls the adapter makes (``SendMessage`` with the
     one ``conveyor`` attribute, ``ReceiveMessage`` with the lease as ``VisibilityTimeout`` and
     the same attribute names, ``DeleteMessage``), the attribute built by hand; no adapter code.
   * Conveyor ``SqsTransport``: ``send``, ``receive``, ``ack``.
   * Celery on SQS (peer): kombu's SQS transport, which Celery's broker connection is, through
     ``SimpleQueue``: ``put``, ``get``, ``ack``.
2. Batches of 10 (send 10, receive them, ack each; N messages in all): raw boto3
   ``SendMessageBatch`` + ``ReceiveMessage`` of 10 + ``DeleteMessage`` each, against Conveyor's
   ``send_batch`` + ``receive(max_messages=10)`` + ``ack``. Celery has no batched send.

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
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, fmt_ratio, machine_facts, print_table, title

from conveyor import SystemClock
from conveyor.transports.seam import WireMessage
from conveyor_sqs import ClientSettings, SqsTransport, wire

TARGET_VS_RAW = 0.7
LEASE = timedelta(seconds=30)
_run_ids = itertools.count()

Case = tuple[str, Callable[[str, int], float]]


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


def raw_round_trip(endpoint: str, n: int) -> float:
    client, url = _raw_client(endpoint)
    send, receive, delete = client.send_message, client.receive_message, client.delete_message  # type: ignore[attr-defined]
    start = time.perf_counter()
    for i in range(n):
        send(QueueUrl=url, MessageBody=_body(i).decode(), MessageAttributes=_attribute(i))
        messages: list[dict[str, str]] = []
        while not messages:  # a short poll samples servers: try again, as the adapter does
            messages = receive(QueueUrl=url, MaxNumberOfMessages=1, **_RECEIVE).get("Messages", [])
        json.loads(messages[0]["MessageAttributes"][wire.ATTRIBUTE]["StringValue"])  # type: ignore[index]
        delete(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    elapsed = time.perf_counter() - start
    client.close()  # type: ignore[attr-defined]
    return elapsed


def _conveyor(endpoint: str) -> tuple[SqsTransport, str]:
    transport = SqsTransport(clock=SystemClock(), settings=ClientSettings(endpoint_url=endpoint))
    channel = _fresh("conveyor")
    from conveyor.transports.seam import ChannelOptions

    transport.declare(ChannelOptions(channel))
    return transport, channel


def conveyor_round_trip(endpoint: str, n: int) -> float:
    transport, channel = _conveyor(endpoint)
    send, receive, ack = transport.send, transport.receive, transport.ack
    start = time.perf_counter()
    for i in range(n):
        send(channel, WireMessage(_body(i), {"cv-id": str(i)}))
        found = []
        while not found:
            found = receive(channel, lease=LEASE)
        ack(found[0])
    elapsed = time.perf_counter() - start
    transport.close()
    return elapsed


def kombu_round_trip(endpoint: str, n: int) -> float:
    from kombu import Connection

    host = endpoint.removeprefix("http://")
    options = {
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "is_secure": False,
        "visibility_timeout": 30,
        "wait_time_seconds": 0,
        "polling_interval": 0,
    }
    with Connection(f"sqs://{host}", transport_options=options) as connection:
        queue = connection.SimpleQueue(_fresh("celery"))
        start = time.perf_counter()
        for i in range(n):
            queue.put({"n": i, "name": "item"})
            queue.get(block=True, timeout=10).ack()
        elapsed = time.perf_counter() - start
        queue.close()
    return elapsed


# ---------------------------------------------------------------------------- batches of 10 (2)


def raw_batches(endpoint: str, n: int) -> float:
    client, url = _raw_client(endpoint)
    start = time.perf_counter()
    for first in range(0, n, 10):
        entries = [
            {"Id": str(k), "MessageBody": _body(i).decode(), "MessageAttributes": _attribute(i)}
            for k, i in enumerate(range(first, min(first + 10, n)))
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[attr-defined]
        left = len(entries)
        while left:
            answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **_RECEIVE)  # type: ignore[attr-defined]
            for message in answer.get("Messages", []):
                json.loads(message["MessageAttributes"][wire.ATTRIBUTE]["StringValue"])
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # type: ignore[attr-defined]
                left -= 1
    elapsed = time.perf_counter() - start
    client.close()  # type: ignore[attr-defined]
    return elapsed


def conveyor_batches(endpoint: str, n: int) -> float:
    transport, channel = _conveyor(endpoint)
    start = time.perf_counter()
    for first in range(0, n, 10):
        batch = [WireMessage(_body(i), {"cv-id": str(i)}) for i in range(first, min(first + 10, n))]
        transport.send_batch(channel, batch)
        left = len(batch)
        while left:
            for delivery in transport.receive(channel, lease=LEASE, max_messages=10):
                transport.ack(delivery)
                left -= 1
    elapsed = time.perf_counter() - start
    transport.close()
    return elapsed


ROUND_TRIP: dict[str, Case] = {
    "raw": ("raw boto3, the adapter's three calls (limit)", raw_round_trip),
    "conveyor": ("Conveyor SqsTransport", conveyor_round_trip),
    "celery": ("Celery's SQS transport, kombu (peer)", kombu_round_trip),
}
BATCHES: dict[str, Case] = {
    "raw": ("raw boto3, batch send + receive 10 (limit)", raw_batches),
    "conveyor": ("Conveyor send_batch + receive(max_messages=10)", conveyor_batches),
}


# ---------------------------------------------------------------------------- running


def measure(
    cases: dict[str, Case], endpoint: str, n: int, repeats: int
) -> tuple[dict[str, float], dict[str, str]]:
    best: dict[str, float] = {}
    failed: dict[str, str] = {}
    for _ in range(repeats):
        for name, (_, run) in cases.items():  # interleaved, so a burst of load hits every row
            if name in failed:
                continue
            try:
                seconds = run(endpoint, n)
            except Exception as error:  # a peer that cannot run here is reported, not fatal
                failed[name] = f"{type(error).__name__}: {error}"
                continue
            best[name] = min(best.get(name, seconds), seconds)
    return best, failed


def report(
    heading: str, cases: dict[str, Case], best: dict[str, float], failed: dict[str, str], n: int
) -> None:
    title(heading)
    rows = []
    for name, (label, _) in cases.items():
        if name not in best:
            rows.append([label, "-", "-", "-", "-"])
            continue
        rows.append(
            [
                label,
                fmt_int(n / best[name]),
                f"{best[name] / n * 1e6:.0f}",
                fmt_ratio(best["raw"] / best[name]),
                fmt_ratio(best[name] / best["conveyor"]) if name != "conveyor" else "-",
            ]
        )
    print_table(["", "msgs/s", "us/msg", "throughput / raw", "conveyor is x faster"], rows)
    for name, why in failed.items():
        print(f"({cases[name][0]} could not run here: {why})")
    vs_raw = best["raw"] / best["conveyor"]
    print(
        f"target 'at least {TARGET_VS_RAW}x the raw client's throughput': {vs_raw:.2f}x -> "
        f"{'MET' if vs_raw >= TARGET_VS_RAW else 'MISSED'}"
    )
    if "celery" in best:
        ratio = best["celery"] / best["conveyor"]
        print(f"target 'ahead of celery': {ratio:.2f}x -> {'MET' if ratio > 1 else 'MISSED'}")
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
    repeats = 2 if quick else 3
    for fact in machine_facts():
        print(fact)
    from importlib.metadata import version

    print(f"sqs      moto {version('moto')} at {endpoint}; boto3 {version('boto3')}")
    best, failed = measure(ROUND_TRIP, endpoint, n, repeats)
    report(
        f"Issue 16 - round trip per message (send, receive, ack), {n:,} messages, one at a "
        f"time; best of {repeats}",
        ROUND_TRIP, best, failed, n,
    )  # fmt: skip
    best, failed = measure(BATCHES, endpoint, n, repeats)
    report(
        f"Issue 16 - batches of 10 (send, receive, ack each), {n:,} messages; best of {repeats}",
        BATCHES, best, failed, n,
    )  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=200 and 2 repeats")
    main(parser.parse_args().quick)
