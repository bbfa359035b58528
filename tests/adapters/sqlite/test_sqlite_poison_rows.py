"""Nothing stored in a SQLite row can stop a consumer.

Rows are planted by hand between good messages, as another program, a manual fix or a damaged
file could leave them: a body stored as TEXT, REAL or invalid UTF-8; headers that are not
JSON, a JSON array, a number, a BLOB, not UTF-8, nested too deep, or holding a lone surrogate;
a delivery count, a lease or a priority of the wrong type; and a row SQLite refuses to lease.
Each ends in exactly one place: handled (the message itself is intact), the dead-letter store
with a reason and the raw bytes, or (the row SQLite refuses to lease) the quarantine table. The
good messages behind them are all handled and ``run()`` returns normally; so does ``conveyor
run``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import poison_app  # the test directory is on sys.path (pytest's default import mode)
import pytest

from conveyor import Messaging
from conveyor.cli.main import main
from conveyor_sqlite import SqliteQuarantine

# Headers that do not parse, and what the row's delivery says about them (no values quoted).
UNREADABLE_HEADERS = {
    "headers not JSON": (
        "'{oops'",
        "are not JSON (Expecting property name enclosed in double quotes at line 1 column 2)",
    ),
    "headers a JSON array": ('\'["cv-id", "x"]\'', "are a JSON array, not a JSON object"),
    "headers a number": ("42", "are a JSON number, not a JSON object"),
    "headers JSON null": ("'null'", "are JSON null, not a JSON object"),
    "headers a BLOB": ("x'00ff'", "are not UTF-8 text (invalid byte at offset 1)"),
    "headers not UTF-8": ("CAST(x'7bff' AS TEXT)", "are not UTF-8 text (invalid byte at offset 1)"),
    "headers nested too deep": ("'" + "[" * 100_000 + "'", "nest too deeply to be read as JSON"),
    "headers with a lone surrogate": (
        '\'{"cv-id": "\\ud800"}\'',
        "hold text that is not valid Unicode (a lone surrogate escape)",
    ),
}

# Bodies that the codec cannot decode: delivered as bytes, dead-lettered as "undecodable".
UNDECODABLE_BODIES = {
    "body TEXT, not JSON": ("'not json'", b"not json"),
    "body REAL": ("1.5", b"1.5"),
    "body INTEGER": ("7", b"7"),
    "body TEXT, not UTF-8": ("CAST(x'ff' AS TEXT)", b"\xff"),
}


@dataclass
class Planter:
    """Writes rows into the channel table by hand, with headers copied from a real message."""

    path: Path
    template: dict[str, str]
    planted: int = 0

    def row(self, *, body: str, headers: str, **columns: str) -> int:
        values = {
            "channel": "'orders'",
            "body": body,
            "headers": headers,
            "available_at": "0",
            "enqueued_seq": "0",
            **columns,
        }
        with sqlite3.connect(self.path) as connection:
            cursor = connection.execute(
                f"INSERT INTO conveyor_messages ({', '.join(values)}) "
                f"VALUES ({', '.join(values.values())})"
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def headers(self, message_id: str) -> str:
        """Valid wire headers for ``message_id``, as a SQL string literal."""
        text = json.dumps({**self.template, "cv-id": message_id, "cv-correlation-id": message_id})
        return "'" + text.replace("'", "''") + "'"


@pytest.fixture
def app(db_path: Path) -> Iterator[tuple[Messaging, Planter]]:
    poison_app.HANDLED.clear()
    messaging = poison_app.build(str(db_path))
    messaging.send(poison_app.PlaceOrder("template"))
    with sqlite3.connect(db_path) as connection:
        (headers,) = connection.execute("SELECT headers FROM conveyor_messages").fetchone()
        connection.execute("DELETE FROM conveyor_messages")
    yield messaging, Planter(db_path, json.loads(headers))
    messaging.close()


def plant_every_kind(messaging: Messaging, planter: Planter) -> list[str]:
    """Good orders between every bad row; returns the good order ids in send order."""
    good: list[str] = []

    def send_good() -> None:
        good.append(f"good-{len(good) + 1}")
        messaging.send(poison_app.PlaceOrder(good[-1]))

    send_good()
    for sql, _ in UNREADABLE_HEADERS.values():
        planter.row(body="x'7b7d'", headers=sql)
        send_good()
    for n, (sql, _) in enumerate(UNDECODABLE_BODIES.values()):
        planter.row(body=sql, headers=planter.headers(f"bad-body-{n}"))
        send_good()
    # Damaged storage around an intact message: delivered and handled.
    intact = {
        "delivery count TEXT": {"delivery_count": "'many'"},
        "delivery count REAL": {"delivery_count": "2.5"},
        "delivery count not UTF-8": {"delivery_count": "CAST(x'ff' AS TEXT)"},
        "lease TEXT": {"lease_until": "'soon'", "lease_token": "'t'"},
        "priority TEXT": {"priority": "'high'"},
    }
    for n, columns in enumerate(intact.values()):
        order = f"intact-{n}"
        planter.row(
            body=f'\'{{"order_id": "{order}"}}\'',  # a TEXT body that is valid JSON
            headers=planter.headers(f"intact-{n}"),
            **columns,
        )
        good.append(order)
        send_good()
    return good


def refuse_to_lease(path: Path, row_id: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"CREATE TRIGGER refuse_lease BEFORE UPDATE OF lease_until ON conveyor_messages "
            f"WHEN OLD.id = {row_id} BEGIN SELECT RAISE(ABORT, 'leasing refused'); END"
        )


def test_every_bad_row_ends_handled_dead_lettered_or_quarantined_and_the_rest_is_handled(
    app: tuple[Messaging, Planter], db_path: Path
) -> None:
    messaging, planter = app
    good = plant_every_kind(messaging, planter)
    stuck = planter.row(body="x'01'", headers=planter.headers("stuck"))
    refuse_to_lease(db_path, stuck)
    messaging.send(poison_app.PlaceOrder("last"))

    result = messaging.run("orders")

    assert result.stopped_because == "empty"
    assert sorted(poison_app.HANDLED) == sorted([*good, "last"])
    letters = messaging.dead_letters.list()
    unreadable = [letter for letter in letters if letter.reason == "malformed headers"]
    assert [(letter.headers, letter.body) for letter in unreadable] == [
        ({"cv-unreadable": f"the headers stored in this row {why}"}, b"{}")
        for _, why in UNREADABLE_HEADERS.values()
    ]
    undecodable = [letter for letter in letters if letter.reason == "undecodable"]
    assert [(letter.message_id, letter.body) for letter in undecodable] == [
        (f"bad-body-{n}", raw) for n, (_, raw) in enumerate(UNDECODABLE_BODIES.values())
    ]
    assert len(letters) == len(unreadable) + len(undecodable)
    assert all(letter.exception_type for letter in letters)
    quarantine = SqliteQuarantine(db_path)
    (moved,) = quarantine.list()
    assert (moved.message_row, moved.channel, moved.body) == (stuck, "orders", b"\x01")
    assert moved.headers["cv-id"] == "stuck"
    assert moved.problem == "SQLite refused to lease it (IntegrityError: leasing refused)"
    quarantine.close()
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM conveyor_messages").fetchone() == (0,)


def test_conveyor_run_exits_0_on_a_channel_with_poison_rows(
    app: tuple[Messaging, Planter],
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    messaging, planter = app
    good = plant_every_kind(messaging, planter)
    monkeypatch.setenv("CONVEYOR_TEST_DB", str(db_path))

    code = main(["--app", "poison_app:build", "run", "orders", "--finish-when-empty"])

    out = capsys.readouterr().out
    assert code == 0
    planted = len(UNREADABLE_HEADERS) + len(UNDECODABLE_BODIES)
    assert out == (
        f"orders: processed {len(good) + planted} messages "
        f"({len(good)} handled, 0 retried, {planted} failed), stopped: empty\n"
    )
    assert sorted(poison_app.HANDLED) == sorted(good)
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM conveyor_messages").fetchone() == (0,)
        assert connection.execute("SELECT COUNT(*) FROM conveyor_dead_letters").fetchone() == (
            planted,
        )
