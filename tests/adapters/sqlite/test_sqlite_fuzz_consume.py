"""Fuzz of the whole consume path on the SQLite channel: rows written straight into the table.

``test_sqlite_poison_rows`` plants each known kind of bad row once; this draws rows of any shape a
SQLite file can hold (a column holds any type, whatever its declared one): bodies as BLOB, TEXT,
REAL or INTEGER, JSON or not; headers that are not JSON, a JSON array or number, text that is not
UTF-8, or valid wire headers with arbitrary values and extra names; delivery counts, priorities
and leases of any type. They are planted ahead of and between good messages, then one consumer
settles the channel.

Whatever they hold: no exception escapes, every row ends in a final state (handled,
dead-lettered with a reason, expired, or moved to the quarantine table), the table is empty
afterwards, and every good message is handled. The number of rows tried is printed with ``-s``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import poison_app  # the test directory is on sys.path (pytest's default import mode)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conveyor import RecordKind, VirtualClock
from conveyor.core.instants import LATEST
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT, H
from conveyor_sqlite import SqliteQuarantine

FINAL = {
    RecordKind.HANDLED,
    RecordKind.DEAD_LETTERED,
    RecordKind.EXPIRED,
    RecordKind.DISCARDED,
    RecordKind.ERROR_HANDLED,
    RecordKind.DUPLICATE,
}

START = VirtualClock().now()
START_MS = int(START.timestamp() * 1000)
LATEST_MS = int(LATEST.timestamp() * 1000)

instants = st.sampled_from(
    [
        START.isoformat(),
        (START + timedelta(hours=1)).isoformat(),
        (START - timedelta(days=1)).isoformat(),
        "2026-01-01T00:00:00",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "yesterday",
        "",
    ]
)
numbers = st.sampled_from(["1", "2", "0", "-1", "-50", str(2**70), "x", ""])
header_values: dict[str, st.SearchStrategy[str]] = {
    H.ID: st.text(max_size=8),
    H.CORRELATION: st.text(max_size=8),
    H.TIMESTAMP: instants,
    H.ATTEMPT: numbers,
    H.TYPE: st.sampled_from(["PlaceOrder", "json", "Nope", ""]),
    H.ENDPOINT: st.sampled_from(["place", BUS_COMMAND, BUS_EVENT, "x", ""]),
    H.SLIP: st.sampled_from(["orders", "nowhere", "orders,orders", ",", ""]),
    H.EXPIRES_AT: instants,
    H.NOT_BEFORE: instants,
    H.PRIORITY: numbers | st.integers(-(2**64), 2**64).map(str),
    H.REPLAYED: numbers,
}

# What any SQLite column can hold (NULL aside: body and headers are NOT NULL).
sql_values = st.one_of(
    st.binary(max_size=24),
    st.text(max_size=24),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),  # SQLite stores NaN as NULL
)
json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
).map(json.dumps)


@st.composite
def wire_headers(draw: st.DrawFn, template: dict[str, str]) -> str:
    """Valid wire headers as JSON text, with some values replaced, dropped or added."""
    headers: dict[str, Any] = dict(template)
    for name, values in header_values.items():
        choice = draw(st.sampled_from(["keep"] * 5 + ["set"] * 4 + ["drop"]))
        if choice == "set":
            headers[name] = draw(values)
        elif choice == "drop":
            headers.pop(name, None)
    extra = st.text(max_size=5) | st.integers() | st.none() | st.lists(st.integers(), max_size=2)
    headers.update(draw(st.dictionaries(st.text(max_size=5), extra, max_size=2)))
    return json.dumps(headers)


@st.composite
def rows(draw: st.DrawFn, template: dict[str, str]) -> dict[str, object]:
    """One row of ``conveyor_messages`` as column values; due now unless its lease says not."""
    good = st.sampled_from([b'{"order_id":"o-planted"}', '{"order_id":"o-planted"}'])
    body = draw(st.one_of(good, good, json_texts, sql_values))
    wire = wire_headers(template)
    headers = draw(st.one_of(wire, wire, json_texts, sql_values))
    counts = st.one_of(st.just(0), st.integers(-(2**63), 2**63 - 1), sql_values)
    leases = st.one_of(
        st.none(),
        st.none(),
        st.integers(START_MS - 10_000, START_MS + 60_000),
        sql_values,
    )
    return {
        "channel": "orders",
        "body": body,
        "headers": headers,
        "priority": draw(st.one_of(st.integers(-5, 5), sql_values)),
        "available_at": 0,
        "expires_at": draw(st.one_of(st.none(), st.none(), sql_values)),
        "lease_until": draw(leases),
        "lease_token": draw(st.one_of(st.none(), sql_values)),
        "delivery_count": draw(counts),
        "enqueued_seq": 0,
        "ready": draw(st.sampled_from([0, 1])),
    }


def template_headers(path: Path) -> dict[str, str]:
    """The wire headers of a real message, to plant well-formed rows with."""
    messaging = poison_app.build(str(path))
    try:
        messaging.send(poison_app.PlaceOrder("template"))
        with sqlite3.connect(path) as connection:
            (text,) = connection.execute("SELECT headers FROM conveyor_messages").fetchone()
            connection.execute("DELETE FROM conveyor_messages")
        headers: dict[str, str] = json.loads(text)
        return headers
    finally:
        messaging.close()


with tempfile.TemporaryDirectory() as _directory:
    TEMPLATE = template_headers(Path(_directory) / "template.db")


def row(**columns: object) -> dict[str, object]:
    """A well-formed, due row of a good order, with ``columns`` replaced."""
    return {
        "channel": "orders",
        "body": b'{"order_id":"o-planted"}',
        "headers": json.dumps(TEMPLATE),
        "priority": 0,
        "available_at": 0,
        "expires_at": None,
        "lease_until": None,
        "lease_token": None,
        "delivery_count": 0,
        "enqueued_seq": 0,
        "ready": 1,
        **columns,
    }


tried = {"rows": 0, "examples": 0}


def plant(path: Path, row: dict[str, object]) -> None:
    with sqlite3.connect(path) as connection:
        names, marks = ", ".join(row), ", ".join("?" * len(row))
        connection.execute(
            f"INSERT INTO conveyor_messages ({names}) VALUES ({marks})", tuple(row.values())
        )
    connection.close()


@settings(
    max_examples=int(os.environ.get("CONVEYOR_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("CI") == "true",  # CI gates merges: the same examples each run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(planted=st.lists(rows(TEMPLATE), min_size=1, max_size=4))
@example(planted=[row(body="not json")])  # a TEXT body
@example(planted=[row(headers="{oops")])  # headers that are not JSON
@example(planted=[row(headers='["cv-id", "x"]')])  # headers that are a JSON array
@example(planted=[row(body=1.5)])  # a REAL body
@example(planted=[row(delivery_count="many")])  # a TEXT delivery count
@example(planted=[row(lease_until=2**62), row(lease_until=float("inf"))])  # leased past 9000
@example(planted=[row(lease_until=START_MS + 0.5)])  # a lease ending within a millisecond
def test_no_row_can_stop_the_consumer_and_every_row_ends(planted: list[dict[str, object]]) -> None:
    poison_app.HANDLED.clear()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "conveyor.db"
        messaging = poison_app.build(str(path))
        try:
            good: list[str] = []
            for n, row in enumerate(planted):
                plant(path, row)
                good.append(f"good-{n}")
                messaging.send(poison_app.PlaceOrder(good[-1]))
            tried["rows"] += len(planted)
            tried["examples"] += 1

            messaging.run_until_idle(advance_time=True)  # nothing escapes

            handled = poison_app.HANDLED
            assert set(good) <= set(handled)  # the consumer went on to every good message
            with sqlite3.connect(path) as connection:
                left = connection.execute("SELECT COUNT(*) FROM conveyor_messages").fetchone()
            connection.close()
            held = sum(1 for row in planted if _leased_past_the_end(row["lease_until"]))
            assert left == (held,)  # no row stays behind, but for one leased past year 9000
            quarantine = SqliteQuarantine(path)
            try:
                quarantined = len(quarantine.list())
            finally:
                quarantine.close()
            finals = sum(1 for record in messaging.journal if record.kind in FINAL)
            # Each row ended: handled, dead-lettered (a bus event on a handler's channel too),
            # expired or quarantined.
            assert finals + quarantined >= len(planted) - held + len(good)
            for letter in messaging.dead_letters.list():
                assert letter.reason  # every dead letter says why
        finally:
            messaging.close()


def _leased_past_the_end(lease_until: object) -> bool:
    """A lease that another consumer holds until after the latest instant a clock reaches.

    Such a row (only a hand-written one: a lease is the lease duration after now) is still
    leased when settling stops; it blocks nothing, and a receive skips it like any leased row.
    """
    return isinstance(lease_until, int | float) and lease_until >= LATEST_MS


def teardown_module() -> None:
    print(f"\nSQLite consume fuzz: {tried['rows']} rows in {tried['examples']} examples")
