"""``conveyor list`` on SQLite channels: pending, in flight, dead letters, the oldest's age.

``SqliteTransport.stats`` is checked through the shared check on virtual time (exact figures);
then the CLI prints them for a channel with messages waiting and one leased.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from list_app import Place, build

from conveyor.cli.main import main
from conveyor.core.clock import VirtualClock
from conveyor.transports.seam import ChannelStats, WireMessage
from conveyor_sqlite import SqliteTransport
from pytest_conveyor.channel_stats import check_channel_stats

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_stats_tell_pending_in_flight_and_the_oldest_age(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    check_channel_stats(
        transport, "orders", knows={"pending", "in_flight", "oldest_age"}, advance=clock.advance
    )


def test_a_message_whose_lease_ran_out_waits_again_from_its_lease_end(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"one"))
    transport.receive("orders", lease=timedelta(seconds=30))
    assert transport.stats("orders").in_flight == 1
    clock.advance(timedelta(seconds=45))  # the lease ran out 15 s ago
    stats = transport.stats("orders")
    assert (stats.pending, stats.in_flight) == (1, 0)
    assert stats.oldest_age == timedelta(seconds=15)


def test_a_delayed_message_is_pending_but_not_waiting(
    transport: SqliteTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"later"), available_at=clock.now() + timedelta(hours=1))
    stats = transport.stats("orders")
    assert (stats.pending, stats.in_flight, stats.oldest_age) == (1, 0, None)


@pytest.fixture
def listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three orders placed at START, one of them taken by a consumer; the CLI looks 90 s on."""
    monkeypatch.setenv("LIST_DB", str(tmp_path / "app.db"))
    monkeypatch.setenv("LIST_NOW", START.isoformat())
    monkeypatch.setenv("COLUMNS", "200")
    messaging = build()
    for order in range(3):
        messaging.send(Place(order))
    messaging.channels["orders"].transport.receive("orders", lease=timedelta(minutes=5))
    messaging.close()
    monkeypatch.setenv("LIST_NOW", (START + timedelta(seconds=90)).isoformat())


@pytest.mark.usefixtures("listed")
def test_list_shows_the_channel_load(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--app", "list_app:build", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "NAME    KIND     PENDING  IN FLIGHT  DEAD  OLDEST  NEXT DUE (UTC)  SCHEDULE / TRANSPORT",
        "orders  channel  2        1          0     1m30s   now             SqliteTransport",
    ]


@pytest.mark.usefixtures("listed")
def test_list_as_json_gives_the_load_in_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--app", "list_app:build", "list", "--json"]) == 0
    (orders,) = json.loads(capsys.readouterr().out)
    assert {k: orders[k] for k in ("pending", "in_flight", "dead_letters")} == {
        "pending": 2,
        "in_flight": 1,
        "dead_letters": 0,
    }
    assert orders["oldest_age_seconds"] == 90.0


def test_a_channel_view_gives_the_same_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIST_DB", str(tmp_path / "app.db"))
    monkeypatch.setenv("LIST_NOW", START.isoformat())
    messaging = build()
    messaging.send(Place(1))
    messaging.send(Place(2))
    messaging.channels["orders"].transport.receive("orders", lease=timedelta(minutes=5))
    stats = messaging.channels["orders"].stats()
    messaging.close()
    assert stats == ChannelStats(pending=1, in_flight=1, oldest_age=timedelta(0))
