"""Issue 15: a round trip through PostgreSQL (send, receive, ack), against raw psycopg and
Procrastinate, and the cost of the outbox write in an application's transaction.

Three tables, every row measured in this process, the repeats of every row interleaved, best of
the repeats (noise only adds time):

1. Round trip per message, one message at a time (send it, receive it, ack it; N times):
   * raw psycopg (the limit): one autocommit connection executing the adapter's own three
     statements (``Statements.of(schema)``: the INSERT + NOTIFY, the SKIP LOCKED claim, the
     DELETE) with the same parameters; no adapter code runs.
   * Conveyor ``PostgresTransport``: ``send``, ``receive``, ``ack`` (through its pool).
   * Procrastinate (peer), on its own psycopg connector: ``defer_async``, then its job
     manager's ``fetch_job`` and ``finish_job(delete_job=True)``, the calls its worker makes.
2. Send N, then handle N with one consumer, whole frameworks: Conveyor ``Messaging``
   (``send``, then ``run(finish_when_empty=True)``), Procrastinate (``defer`` N, then
   ``run_worker(wait=False)``), against the raw statements with a JSON decode and the handler
   call.
3. The outbox: a unit of work that inserts an order row in the application's transaction,
   alone, then with the message written in the same transaction by raw psycopg (the send
   statement on the application's connection) and by Conveyor (a ``PostgresTransport`` given
   the application's connection).

Targets (issue 15): Conveyor at least 0.7x the raw statements' throughput, ahead of
Procrastinate. PostgreSQL comes from ``DATABASE_URL`` (``. .ci/brokers.sh; start_postgres``).
Run alone: ``.venv/bin/python bench/bench_postgres.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, machine_facts, print_table, title
from _rivals import Cases, measure, report

from conveyor import Messaging, SystemClock, asynchronous, command_handler
from conveyor.transports.seam import WireMessage
from conveyor_postgres import PostgresChannel, PostgresTransport
from conveyor_postgres.statements import Statements

SCHEMA = f"bench_{os.getpid()}"
PEERS = ("procrastinate",)
_run_ids = itertools.count()


@dataclass(frozen=True, slots=True)
class Work:
    n: int
    name: str


class Seen:
    count = 0


def _handle(n: int, name: str) -> None:
    Seen.count += 1


def _reset() -> None:
    Seen.count = 0


def _fresh(kind: str) -> str:
    return f"bench-{kind}-{next(_run_ids)}"


def _handler(channel: str) -> object:
    @asynchronous(channel)
    @command_handler
    def handle(cmd: Work) -> None:
        _handle(cmd.n, cmd.name)

    return handle


# ---------------------------------------------------------------------------- round trip (1)


def raw_round_trip(dsn: str, n: int) -> float:
    import psycopg

    sql = Statements.of(SCHEMA)
    channel, lease, clock = _fresh("raw"), timedelta(seconds=30), SystemClock()
    dumps = json.dumps
    with psycopg.connect(dsn, autocommit=True) as connection:
        execute = connection.execute
        start = time.perf_counter()
        for i in range(n):
            now = clock.now()
            body = dumps({"n": i, "name": "item"}).encode()
            execute(sql.send, (channel, body, f'{{"cv-id":"{i}"}}', 0, now, None))
            now = clock.now()
            token = f"t.{i}"
            row = execute(sql.claim, (channel, now, 1, now + lease, token)).fetchone()
            assert row is not None
            execute(sql.ack, (row[0], token))
        return time.perf_counter() - start


def conveyor_round_trip(dsn: str, n: int) -> float:
    transport = PostgresTransport(dsn, clock=SystemClock(), schema=SCHEMA)
    channel, lease = _fresh("conveyor"), timedelta(seconds=30)
    send, receive, ack = transport.send, transport.receive, transport.ack
    dumps = json.dumps
    start = time.perf_counter()
    for i in range(n):
        send(channel, WireMessage(dumps({"n": i, "name": "item"}).encode(), {"cv-id": str(i)}))
        [delivery] = receive(channel, lease=lease)
        ack(delivery)
    elapsed = time.perf_counter() - start
    transport.close()
    return elapsed


PROCRASTINATE_DB = f"bench_procrastinate_{os.getpid()}"


def _procrastinate_dsn(dsn: str) -> str:
    """Procrastinate gets a database of its own, with its schema applied once."""
    return f"{dsn.rsplit('/', 1)[0]}/{PROCRASTINATE_DB}"


def _procrastinate_app(dsn: str) -> Any:
    import procrastinate

    connector = procrastinate.PsycopgConnector(conninfo=_procrastinate_dsn(dsn))
    return procrastinate.App(connector=connector)


def procrastinate_round_trip(dsn: str, n: int) -> float:
    from procrastinate.jobs import Status

    app = _procrastinate_app(dsn)
    queue = _fresh("procrastinate")
    task = app.task(name=f"bench.{queue}", queue=queue)(_handle)

    async def run() -> float:
        async with app.open_async():
            manager = app.job_manager
            worker_id = await manager.register_worker()
            start = time.perf_counter()
            for i in range(n):
                await task.defer_async(n=i, name="item")
                job = await manager.fetch_job(queues=[queue], worker_id=worker_id)
                await manager.finish_job(job, status=Status.SUCCEEDED, delete_job=True)
            elapsed = time.perf_counter() - start
            await manager.unregister_worker(worker_id)
            return elapsed

    return asyncio.run(run())


# ---------------------------------------------------------------------------- frameworks (2)


def raw_flow(dsn: str, n: int) -> float:
    import psycopg

    sql = Statements.of(SCHEMA)
    channel, lease, clock = _fresh("rawflow"), timedelta(seconds=30), SystemClock()
    dumps, loads = json.dumps, json.loads
    with psycopg.connect(dsn, autocommit=True) as connection:
        execute = connection.execute
        start = time.perf_counter()
        for i in range(n):
            body = dumps({"n": i, "name": "item"}).encode()
            execute(sql.send, (channel, body, f'{{"cv-id":"{i}"}}', 0, clock.now(), None))
        for i in itertools.count():
            now, token = clock.now(), f"t.{i}"
            row = execute(sql.claim, (channel, now, 1, now + lease, token)).fetchone()
            if row is None:
                break
            loads(row[3])
            _handle(**loads(bytes(row[2])))
            execute(sql.ack, (row[0], token))
        return time.perf_counter() - start


def conveyor_flow(dsn: str, n: int) -> float:
    channel = PostgresChannel(_fresh("work"), dsn=dsn, schema=SCHEMA)
    handlers = [_handler(channel.name)]
    messaging = Messaging(handlers=handlers, channels=[channel], clock=SystemClock())
    send = messaging.send
    start = time.perf_counter()
    for i in range(n):
        send(Work(i, "item"))
    result = messaging.run(channel.name, finish_when_empty=True)
    elapsed = time.perf_counter() - start
    messaging.close()
    assert result.processed == n, result
    return elapsed


def procrastinate_flow(dsn: str, n: int) -> float:
    app = _procrastinate_app(dsn)
    queue = _fresh("procrastinateflow")
    task = app.task(name=f"bench.{queue}", queue=queue)(_handle)
    with app.open():
        start = time.perf_counter()
        for i in range(n):
            task.defer(n=i, name="item")
        app.run_worker(
            queues=[queue], wait=False, install_signal_handlers=False, delete_jobs="always"
        )
        elapsed = time.perf_counter() - start
    assert Seen.count == n, Seen.count
    return elapsed


ROUND_TRIP: Cases = {
    "raw": ("raw psycopg, the adapter's statements (limit)", raw_round_trip),
    "conveyor": ("Conveyor PostgresTransport", conveyor_round_trip),
    "procrastinate": ("Procrastinate defer + fetch + finish (peer)", procrastinate_round_trip),
}
FLOW: Cases = {
    "raw": ("raw psycopg statements + json + call (limit)", raw_flow),
    "conveyor": ("Conveyor Messaging, PostgresChannel", conveyor_flow),
    "procrastinate": ("Procrastinate defer, then run_worker (peer)", procrastinate_flow),
}


# ---------------------------------------------------------------------------- the outbox (3)


def outbox(dsn: str, n: int, repeats: int) -> None:
    """A unit of work alone, with a raw outbox write, and with Conveyor's, in one transaction."""
    import psycopg

    sql = Statements.of(SCHEMA)
    app = psycopg.connect(dsn, autocommit=True)
    app.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.orders (id bigserial, ref text)")
    transport = PostgresTransport(dsn, clock=SystemClock(), schema=SCHEMA, connection=app)
    clock, insert = SystemClock(), f"INSERT INTO {SCHEMA}.orders (ref) VALUES (%s)"
    body = json.dumps({"n": 1, "name": "item"}).encode()

    def alone(i: int) -> None:
        with app.transaction():
            app.execute(insert, (f"o-{i}",))

    def raw(i: int) -> None:
        with app.transaction():
            app.execute(insert, (f"o-{i}",))
            app.execute(sql.send, ("outbox", body, f'{{"cv-id":"{i}"}}', 0, clock.now(), None))

    def conveyor(i: int) -> None:
        with app.transaction():
            app.execute(insert, (f"o-{i}",))
            transport.send("outbox", WireMessage(body, {"cv-id": str(i)}))

    rows = {
        "the order INSERT alone": alone,
        "+ raw outbox INSERT": raw,
        "+ Conveyor send": conveyor,
    }
    best: dict[str, float] = {}
    for _ in range(repeats):
        for label, unit in rows.items():
            start = time.perf_counter()
            for i in range(n):
                unit(i)
            seconds = time.perf_counter() - start
            best[label] = min(best.get(label, seconds), seconds)
    transport.close()
    app.close()
    title(
        f"Issue 15 - the outbox: one transaction per unit of work, {n:,} units; best of {repeats}"
    )
    base = best["the order INSERT alone"]
    print_table(
        ["", "units/s", "us/unit", "us added by the outbox"],
        [
            [label, fmt_int(n / s), f"{s / n * 1e6:.0f}", f"{(s - base) / n * 1e6:.0f}"]
            for label, s in best.items()
        ],
    )
    added_raw = best["+ raw outbox INSERT"] - base
    added_conveyor = best["+ Conveyor send"] - base
    print(
        f"Conveyor's outbox write costs {added_conveyor / n * 1e6:.0f} us per unit, raw "
        f"{added_raw / n * 1e6:.0f} us; whole unit of work {base / best['+ Conveyor send']:.2f}x "
        f"the speed of the unit without an outbox\n"
    )
    sys.stdout.flush()


# ---------------------------------------------------------------------------- running


def _prepare(dsn: str) -> None:
    import psycopg

    PostgresTransport(dsn, clock=SystemClock(), schema=SCHEMA).close()  # creates the schema
    with psycopg.connect(dsn, autocommit=True) as connection:
        version = connection.execute("SHOW server_version").fetchone()
        sync = connection.execute("SHOW synchronous_commit").fetchone()
        connection.execute(f"CREATE DATABASE {PROCRASTINATE_DB}")
    try:
        app = _procrastinate_app(dsn)
        with app.open():
            app.schema_manager.apply_schema()
    except Exception as error:  # Procrastinate missing: its rows report why
        print(f"(procrastinate schema not applied: {type(error).__name__}: {error})")
    assert version is not None
    assert sync is not None
    print(f"postgres {version[0]} at {dsn.rsplit('@', 1)[-1]}, synchronous_commit {sync[0]}")


def _drop(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.execute(f"DROP DATABASE IF EXISTS {PROCRASTINATE_DB} WITH (FORCE)")


def main(quick: bool) -> None:
    n = 1_000 if quick else 5_000
    repeats = 2 if quick else 3
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit("no DATABASE_URL: run `. .ci/brokers.sh; start_postgres` first")
    for fact in machine_facts():
        print(fact)
    _prepare(dsn)
    try:
        best, failed = measure(ROUND_TRIP, dsn, n, repeats, before_each=_reset)
        report(
            f"Issue 15 - round trip per message (send, receive, ack), {n:,} messages, one at a "
            f"time; best of {repeats}",
            ROUND_TRIP, best, failed, n, peers=PEERS, workload="W6 postgres round trip",
        )  # fmt: skip
        best, failed = measure(FLOW, dsn, n, repeats, before_each=_reset)
        report(
            f"Issue 15 - send {n:,}, then handle them with one consumer, whole frameworks; best "
            f"of {repeats}",
            FLOW, best, failed, n, peers=PEERS, workload="W6 postgres flow",
        )  # fmt: skip
        outbox(dsn, n, repeats)
    finally:
        _drop(dsn)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=1,000 and 2 repeats")
    main(parser.parse_args().quick)
