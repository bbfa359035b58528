"""Periodic handlers: cron, fixed rate, initial delay and catch-up (issue 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    ConfigurationError,
    Context,
    Messaging,
    RecordKind,
    SequentialIds,
    VirtualClock,
    command_handler,
    event_handler,
    scheduled,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GenerateReport:
    day: str


@dataclass(frozen=True)
class ReportDue:
    day: str


def build(*handlers: object) -> Messaging:
    return Messaging(handlers=list(handlers), clock=VirtualClock(START), ids=SequentialIds())


def test_cron_runs_at_each_match_in_utc_and_its_returned_command_is_sent() -> None:
    reports: list[tuple[str, datetime]] = []

    @scheduled(cron="0 3 * * *")
    def nightly_report(ctx: Context) -> GenerateReport | None:
        return GenerateReport(ctx.now.date().isoformat())

    @command_handler
    def generate(command: GenerateReport, ctx: Context) -> None:
        reports.append((command.day, ctx.now))

    messaging = build(nightly_report, generate)
    assert messaging.consumers() == ["nightly_report"]
    messaging.advance(timedelta(days=2))
    assert reports == [
        ("2026-01-01", START + timedelta(hours=3)),
        ("2026-01-02", START + timedelta(days=1, hours=3)),
    ]


def test_a_returned_event_is_published_and_none_skips_the_tick() -> None:
    published: list[str] = []

    @scheduled(every=timedelta(hours=1))
    def maybe(ctx: Context) -> ReportDue | None:
        return ReportDue(ctx.now.isoformat()) if ctx.now.hour % 2 == 0 else None

    @event_handler
    def on_due(event: ReportDue) -> None:
        published.append(event.day)

    messaging = build(maybe, on_due)
    messaging.advance(timedelta(hours=4))
    assert published == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T02:00:00+00:00",
        "2026-01-01T04:00:00+00:00",
    ]
    assert len(messaging.journal.of_kind(RecordKind.TICKED)) == 5


def test_cron_in_a_named_zone() -> None:
    ticks: list[datetime] = []

    @scheduled(cron="0 9 * * *", zone="Europe/Paris")
    def morning(ctx: Context) -> None:
        ticks.append(ctx.now)

    build(morning).advance(timedelta(days=1))
    assert ticks == [datetime(2026, 1, 1, 8, tzinfo=UTC)]  # 09:00 in Paris in winter


def test_fixed_rate_with_an_initial_delay() -> None:
    ticks: list[datetime] = []

    @scheduled(every=timedelta(minutes=5), initial_delay=timedelta(minutes=1))
    def poll(ctx: Context) -> None:
        ticks.append(ctx.now)

    build(poll).advance(timedelta(minutes=12))
    assert ticks == [START + timedelta(minutes=m) for m in (1, 6, 11)]


def _paused(catch_up: str) -> list[datetime]:
    ticks: list[datetime] = []

    @scheduled(every=timedelta(minutes=10), catch_up=catch_up)  # type: ignore[arg-type]
    def sync(ctx: Context) -> None:
        ticks.append(ctx.now)

    messaging = build(sync)
    messaging.run("sync", limit=1)  # the tick at START
    messaging.clock.advance(timedelta(minutes=35))  # type: ignore[attr-defined]  # process paused
    messaging.run_until_idle()
    messaging.advance(timedelta(minutes=10))
    return [t - START for t in ticks]  # type: ignore[misc]


def test_catch_up_once_runs_one_tick_for_the_missed_span_by_default() -> None:
    assert _paused("once") == [timedelta(0), timedelta(minutes=35), timedelta(minutes=40)]


def test_catch_up_all_runs_every_missed_tick_back_to_back() -> None:
    assert _paused("all") == [
        timedelta(0),
        timedelta(minutes=35),
        timedelta(minutes=35),
        timedelta(minutes=35),
        timedelta(minutes=40),
    ]


def test_catch_up_skip_drops_missed_ticks() -> None:
    assert _paused("skip") == [timedelta(0), timedelta(minutes=40)]


def test_a_failing_tick_is_recorded_and_the_schedule_goes_on() -> None:
    ticks: list[datetime] = []

    @scheduled(every=timedelta(hours=1))
    def fragile(ctx: Context) -> None:
        ticks.append(ctx.now)
        if len(ticks) == 1:
            raise RuntimeError("first tick fails")

    messaging = build(fragile)
    messaging.advance(timedelta(hours=1))
    assert len(ticks) == 2
    [failed] = messaging.journal.of_kind(RecordKind.FAILED)
    assert failed.exception is not None
    assert failed.exception.message == "first tick fails"


def test_a_scheduled_endpoint_is_a_consumer() -> None:
    ticks: list[datetime] = []

    @scheduled(every=timedelta(minutes=1))
    def minutely() -> None:
        ticks.append(START)

    messaging = build(minutely)
    result = messaging.run("minutely", limit=3)
    assert (result.processed, result.stopped_because) == (3, "limit")
    assert messaging.clock.now() == START + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "@scheduled needs exactly one of cron="),
        ({"cron": "0 3 * *"}, "is not a valid cron expression"),
        ({"every": timedelta(0)}, "every= must be positive"),
        ({"every": timedelta(1), "zone": "Mars/Olympus"}, "is not a known IANA time zone"),
    ],
)
def test_bad_schedules_fail_when_decorated(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        scheduled(**options)  # type: ignore[arg-type]


def test_a_failing_tick_is_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    @scheduled(every=timedelta(hours=1))
    def fragile() -> None:
        raise RuntimeError("report store unavailable")

    with caplog.at_level(logging.ERROR, logger="conveyor"):
        build(fragile).run_until_idle()
    [record] = caplog.records
    assert record.getMessage() == (
        "scheduled fragile failed at its tick planned 2026-01-01T00:00:00+00:00; the next tick "
        "runs as planned: report store unavailable"
    )
