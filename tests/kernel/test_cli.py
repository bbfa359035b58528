"""The ``conveyor`` command: loading the app, running consumers, listing them, dead letters.

Most tests call ``main([...])`` in-process from ``tests/kernel/cli_apps`` (the current directory
is importable, as for a user's project) and read what it printed; a few run the real command
in a subprocess, where signals and exit codes belong to a process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import IO

import pytest

from conveyor import ConfigurationError, Messaging, RecordKind
from conveyor.cli.format import parse_duration
from conveyor.cli.main import main
from conveyor.core.errors import TransportClosed
from pytest_conveyor.conformance import receive_one

APPS = Path(__file__).parent / "cli_apps"
LINE_TIMEOUT = 20.0  # seconds a subprocess may take to print its next line


@dataclass(frozen=True)
class Outcome:
    """What the command printed; ``err`` without the kernel's failure log, kept in ``log``."""

    code: int
    out: str
    err: str
    log: str = ""


KERNEL_LOG_LINE = re.compile(r"^\S+ \S+ [A-Z]+ conveyor: ")


Conveyor = Callable[..., Outcome]


@pytest.fixture(autouse=True)
def in_project_directory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from the apps directory, as a user runs from their project; forget its modules after."""
    monkeypatch.chdir(APPS)
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == APPS:
            del sys.modules[name]


@pytest.fixture
def conveyor(capsys: pytest.CaptureFixture[str]) -> Conveyor:
    def run(*argv: str) -> Outcome:
        code = main(list(argv))
        captured = capsys.readouterr()
        lines = captured.err.splitlines(keepends=True)
        log = "".join(line for line in lines if KERNEL_LOG_LINE.match(line))
        err = "".join(line for line in lines if not KERNEL_LOG_LINE.match(line))
        return Outcome(code, captured.out, err, log)

    return run


def app_module(name: str) -> ModuleType:
    """The test app module the CLI imports, as the CLI sees it (the same object)."""
    if str(APPS) not in sys.path:
        sys.path.insert(0, str(APPS))
    return importlib.import_module(name)


def letters_messaging() -> Messaging:
    messaging = app_module("letters").messaging
    assert isinstance(messaging, Messaging)
    return messaging


# ---------------------------------------------------------------------- loading the app


def test_no_app_is_a_usage_error(conveyor: Conveyor) -> None:
    result = conveyor("list")
    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "conveyor: error: no app given: pass --app module:attribute (for example --app "
        "myproject.messaging:messaging) or set CONVEYOR_APP.\n"
    )


def test_an_app_path_without_a_colon_is_a_usage_error(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop", "list")
    assert result.code == 2
    assert result.err == (
        "conveyor: error: --app 'shop' must be module:attribute, for example --app "
        "myproject.messaging:messaging (a Messaging) or myproject.messaging:build (a function "
        "that returns one).\n"
    )


def test_an_app_value_that_is_not_names_is_not_echoed(
    conveyor: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_APP", "amqp://user:s3cret@broker/")
    result = conveyor("list")
    assert result.code == 2
    assert "s3cret" not in result.err
    assert result.err.startswith("conveyor: error: CONVEYOR_APP (not shown) must be module:")


@pytest.mark.parametrize(
    ("app", "module", "error"),
    [
        ("nowhere:messaging", "nowhere", "No module named 'nowhere'"),
        ("broken:messaging", "broken", "No module named 'conveyor_no_such_dependency'"),
    ],
)
def test_a_module_that_cannot_be_imported_is_named_with_its_import_error(
    conveyor: Conveyor, app: str, module: str, error: str
) -> None:
    result = conveyor("--app", app, "list")
    assert result.code == 2
    assert result.err == (
        f"conveyor: error: cannot import module {module!r} (--app {app}): ModuleNotFoundError: "
        f"{error}. Run conveyor from your project's directory (it is put on sys.path) or "
        f"install your project into this environment.\n"
    )
    assert "Traceback" not in result.err


def test_a_missing_attribute_lists_the_messagings_and_factories_that_exist(
    conveyor: Conveyor,
) -> None:
    result = conveyor("--app", "oddities:mesaging", "list")
    assert result.code == 2
    assert result.err == (
        "conveyor: error: --app oddities:mesaging: module 'oddities' has no attribute "
        "'mesaging'; it has Messaging instances: messaging; functions without arguments: make, "
        "not_a_factory, explodes, misconfigured.\n"
    )


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            "oddities:ANSWER",
            "--app oddities:ANSWER is int (42), not a Messaging. Point --app at a Messaging "
            "instance or a function that takes no arguments and returns one.",
        ),
        (
            "oddities:Noticed.what",
            "--app oddities:Noticed.what: oddities:Noticed has no attribute 'what'; it has "
            "Messaging instances: messaging; functions without arguments: make, not_a_factory, "
            "explodes, misconfigured.",
        ),
        (
            "oddities:not_a_factory",
            "--app oddities:not_a_factory() returned dict ({}), not a Messaging.",
        ),
        (
            "oddities:needs_settings",
            "--app oddities:needs_settings needs arguments (settings); a factory is called with "
            "none. Give its parameters defaults, or point --app at a Messaging instance.",
        ),
    ],
)
def test_an_attribute_that_gives_no_messaging_is_a_usage_error(
    conveyor: Conveyor, app: str, message: str
) -> None:
    result = conveyor("--app", app, "list")
    assert result.code == 2
    assert result.err == f"conveyor: error: {message}\n"


def test_a_factory_that_raises_a_conveyor_error_shows_its_message_alone(
    conveyor: Conveyor,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        app_module("oddities").misconfigured()
    result = conveyor("--app", "oddities:misconfigured", "list")
    assert result.code == 2
    assert result.err == (
        f"conveyor: error: oddities:misconfigured() raised ConfigurationError: {raised.value}\n"
    )


def test_a_handler_is_not_mistaken_for_a_factory(conveyor: Conveyor) -> None:
    result = conveyor("--app", "oddities:on_noticed", "list")
    assert result.code == 2
    assert result.err.startswith("conveyor: error: --app oddities:on_noticed is function (")
    assert result.err.endswith(
        "not a Messaging. Point --app at a Messaging instance or a "
        "function that takes no arguments and returns one.\n"
    )


def test_a_factory_that_raises_shows_its_traceback(conveyor: Conveyor) -> None:
    result = conveyor("--app", "oddities:explodes", "list")
    assert result.code == 2
    first, *rest = result.err.splitlines()
    assert first == "conveyor: error: oddities:explodes() raised RuntimeError: database is down"
    assert rest[0] == "Traceback (most recent call last):"
    assert 'raise RuntimeError("database is down")' in result.err


def test_a_messaging_instance_or_a_factory_is_an_app(conveyor: Conveyor) -> None:
    assert conveyor("--app", "oddities:messaging", "list").code == 0
    assert conveyor("--app", "oddities:make", "list").code == 0


def test_the_app_comes_from_either_side_of_the_command_or_from_the_environment(
    conveyor: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = "orders: processed 1 message (1 handled, 0 retried, 0 failed), stopped: limit\n"
    assert conveyor("run", "orders", "--limit", "1", "--app", "shop:build").out == expected
    assert conveyor("dead-letter", "list", "--app", "letters:messaging").code == 0
    monkeypatch.setenv("CONVEYOR_APP", "shop:build")
    assert conveyor("run", "orders", "--limit", "1").out == expected
    monkeypatch.setenv("CONVEYOR_APP", "nowhere:build")
    assert conveyor("--app", "shop:build", "run", "orders", "--limit", "1").out == expected


def test_a_messaging_the_factory_built_is_closed_one_given_as_instance_is_not(
    conveyor: Conveyor,
) -> None:
    assert conveyor("--app", "shop:build", "list").code == 0
    (built,) = app_module("shop").built
    with pytest.raises(TransportClosed):
        receive_one(built.channels["orders"].transport, "orders", lease=timedelta(seconds=1))
    assert conveyor("--app", "letters:messaging", "dead-letter", "list").code == 0
    assert letters_messaging().dead_letters.count() == 2  # still usable


def test_help_exits_zero_and_lists_the_exit_codes(conveyor: Conveyor) -> None:
    result = conveyor("--help")
    assert result.code == 0
    assert "run" in result.out
    assert "dead-letter" in result.out
    assert "2  usage or configuration error" in result.out


# ---------------------------------------------------------------------- run


def test_run_stops_at_the_limit_and_logs_start_and_stop(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop:build", "run", "orders", "--limit", "2")
    assert result.code == 0
    assert (
        result.out
        == "orders: processed 2 messages (1 handled, 0 retried, 1 failed), stopped: limit\n"
    )
    started, stopped = result.err.splitlines()
    assert started.endswith(
        "INFO conveyor.cli: consumer orders started on VirtualClock(2026-01-01T00:00:00+00:00) "
        "(limit: 2, finish when empty: False)"
    )
    assert stopped.endswith("INFO conveyor.cli: consumer orders stopped: limit")


def test_run_finishes_when_empty_a_failure_without_stop_on_failure_is_a_dead_letter(
    conveyor: Conveyor,
) -> None:
    result = conveyor("--app", "shop:build", "run", "orders", "--finish-when-empty")
    assert result.code == 0
    assert (
        result.out
        == "orders: processed 3 messages (2 handled, 0 retried, 1 failed), stopped: empty\n"
    )
    (built,) = app_module("shop").built
    assert [letter.id for letter in built.dead_letters.list()] == ["msg-2@place_order"]


def test_run_stops_at_the_time_limit_on_the_apps_clock(conveyor: Conveyor) -> None:
    result = conveyor(
        "--app", "shop:build", "run", "report", "--time-limit", "10m", "--no-finish-when-empty"
    )
    assert result.code == 0
    assert (
        result.out
        == "report: processed 2 messages (2 handled, 0 retried, 0 failed), stopped: time limit\n"
    )  # at 1m and 6m
    assert "(time limit: 0:10:00, finish when empty: False)" in result.err


def test_run_stops_at_the_memory_limit(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop:build", "run", "orders", "--memory-limit", "1")
    assert result.code == 0
    assert (
        result.out
        == "orders: processed 0 messages (0 handled, 0 retried, 0 failed), stopped: memory limit\n"
    )


def test_stop_on_failure_logs_the_traceback_and_exits_1(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop:build", "run", "orders", "--stop-on-failure")
    assert result.code == 1
    assert result.out == "orders: stopped: failure (ValueError: order bad-2 is out of stock)\n"
    assert "ERROR conveyor.cli: consumer orders stopped on a failure\n" in result.err
    assert "Traceback (most recent call last):" in result.err
    assert result.err.rstrip().endswith("ValueError: order bad-2 is out of stock")
    (built,) = app_module("shop").built
    assert built.dead_letters.count() == 0  # the message was released, not dead-lettered


def test_an_unknown_consumer_lists_the_consumers(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop:build", "run", "order")
    assert result.code == 2
    assert result.err == (
        "conveyor: error: no consumer named 'order'; consumers: orders, report. "
        "See `conveyor list`.\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--time-limit", "30"],
            "argument --time-limit: '30' is not a duration; use numbers "
            "with units ms, s, m, h or d, for example 45s, 30m, 1h30m or 500ms",
        ),
        (["--time-limit", "0s"], "argument --time-limit: '0s' must be longer than zero"),
        (["--limit", "0"], "argument --limit: '0' must be at least 1"),
        (["--memory-limit", "lots"], "argument --memory-limit: 'lots' is not a whole number"),
    ],
)
def test_bad_run_options_are_usage_errors(
    conveyor: Conveyor, argv: list[str], message: str
) -> None:
    result = conveyor("--app", "shop:build", "run", "orders", *argv)
    assert result.code == 2
    assert result.err.endswith(f"conveyor run: error: {message}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        (" 2M ", timedelta(minutes=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "h", "1x", "1h 30m", "-5s", "0ms", "m30"])
def test_not_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a duration|longer than zero"):
        parse_duration(text)


# ---------------------------------------------------------------------- list


def test_list_shows_channels_with_pending_messages_and_schedules(
    conveyor: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    result = conveyor("--app", "shop:build", "list")
    assert result.code == 0
    assert result.out.splitlines() == [
        "NAME    KIND       PENDING  IN FLIGHT  DEAD  OLDEST  NEXT DUE (UTC)       "
        "SCHEDULE / TRANSPORT",
        "orders  channel    3        -          0     -       now                  MemoryTransport",
        "report  scheduled  -        -          0     -       2026-01-01 00:01:00  "
        "every 0:05:00, first after 0:01:00",
    ]


def test_list_counts_dead_letters_per_channel(conveyor: Conveyor) -> None:
    rows = conveyor("--app", "letters:messaging", "list").out.splitlines()
    assert rows[0].split()[:6] == ["NAME", "KIND", "PENDING", "IN", "FLIGHT", "DEAD"]
    assert rows[1].split()[:5] == ["orders", "channel", "0", "-", "2"]


def test_list_as_json(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop:build", "list", "--json")
    assert json.loads(result.out) == [
        {
            "name": "orders",
            "kind": "channel",
            "pending": 3,
            "in_flight": None,
            "dead_letters": 0,
            "oldest_age_seconds": None,
            "next_due": "2026-01-01T00:00:00+00:00",
            "detail": "MemoryTransport",
        },
        {
            "name": "report",
            "kind": "scheduled",
            "pending": None,
            "in_flight": None,
            "dead_letters": 0,
            "oldest_age_seconds": None,
            "next_due": "2026-01-01T00:01:00+00:00",
            "detail": "every 0:05:00, first after 0:01:00",
        },
    ]


def test_list_marks_what_a_transport_cannot_tell(conveyor: Conveyor) -> None:
    result = conveyor("--app", "opaque:build", "list")
    assert result.out.splitlines()[1] == (
        "remote  channel  -        -          0     -       -               OpaqueTransport"
    )


def test_list_without_consumers_says_how_to_get_one(conveyor: Conveyor) -> None:
    result = conveyor("--app", "oddities:make", "list")
    assert result.out == (
        "no consumers: declare a channel with an @asynchronous handler, or a @scheduled one\n"
    )


# ---------------------------------------------------------------------- dead letters


LETTERS_TABLE = [
    "ID                 FAILED AT (UTC)      CHANNEL  ENDPOINT     TYPE        ATTEMPTS  REASON",
    "msg-2@place_order  2026-01-01 00:00:00  orders   place_order  PlaceOrder  1         "
    "ValueError: o...",
    "raw-1@orders       2026-01-01 00:00:00  orders   -            ?           1         "
    "undecodable: ...",
    "(1-2 of 2; `conveyor dead-letter show ID` shows one in full)",
]


def test_dead_letter_list_is_a_table_cut_to_the_terminal(conveyor: Conveyor) -> None:
    result = conveyor("--app", "letters:messaging", "dead-letter", "list")
    assert result.code == 0
    assert result.out.splitlines() == LETTERS_TABLE
    assert all(len(line) <= 100 for line in result.out.splitlines())


def test_dead_letter_list_on_a_wide_terminal_shows_the_reason(
    conveyor: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    lines = conveyor("--app", "letters:messaging", "dead-letter", "list").out.splitlines()
    assert lines[1].endswith("  ValueError: order bad-2 is out of stock")
    assert lines[2].endswith("undecodable: SerializationError: the body is not JSON")


def test_dead_letter_list_pages(conveyor: Conveyor) -> None:
    result = conveyor(
        "--app", "letters:messaging", "dead-letter", "list", "--offset", "1", "--limit", "1"
    )
    assert result.out.splitlines() == [  # the columns fit the rows shown
        "ID            FAILED AT (UTC)      CHANNEL  ENDPOINT  TYPE  ATTEMPTS  REASON",
        "raw-1@orders  2026-01-01 00:00:00  orders   -         ?     1         undecodable: "
        "SerializationE...",
        "(2-2 of 2; `conveyor dead-letter show ID` shows one in full)",
    ]
    beyond = conveyor("--app", "letters:messaging", "dead-letter", "list", "--offset", "5")
    assert beyond.out == "no dead letters at offset 5 (2 in the store)\n"


@pytest.mark.parametrize("action", [("list",), ("show", "x"), ("replay-all",), ("delete", "x")])
def test_dead_letter_commands_refuse_an_empty_in_memory_store(
    conveyor: Conveyor, action: tuple[str, ...]
) -> None:
    result = conveyor("--app", "shop:build", "dead-letter", *action)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(
        "conveyor: error: the dead-letter store is in memory (InMemoryDeadLetterStore): it holds "
        "only the dead letters of the process that built it, so this command cannot see your "
        "workers'. Give the workers and this command one durable store: "
        'Messaging(dead_letters=SqliteDeadLetterStore("app.db"))'
    )


def test_dead_letter_list_as_json(conveyor: Conveyor) -> None:
    result = conveyor("--app", "letters:messaging", "dead-letter", "list", "--json")
    letters = json.loads(result.out)
    assert [(d["id"], d["reason"], d["body_encoding"]) for d in letters] == [
        ("msg-2@place_order", "failed", "utf-8"),
        ("raw-1@orders", "undecodable", "base64"),
    ]


def test_dead_letter_show_prints_fields_headers_body_and_traceback(conveyor: Conveyor) -> None:
    headers = letters_messaging().dead_letters.get("msg-2@place_order").headers
    assert headers["cv-type"] == "PlaceOrder"
    result = conveyor("--app", "letters:messaging", "dead-letter", "show", "msg-2@place_order")
    assert result.code == 0
    head, traceback = result.out.split("\nTraceback\n")
    assert head.splitlines() == [
        "Dead letter msg-2@place_order",
        "",
        "  message id:   msg-2",
        "  channel:      orders",
        "  endpoint:     place_order",
        "  type:         PlaceOrder",
        "  reason:       failed",
        "  attempts:     1",
        "  first failed: 2026-01-01T00:00:00+00:00",
        "  last failed:  2026-01-01T00:00:00+00:00",
        "  replayed:     0",
        "  exception:    ValueError: order bad-2 is out of stock",
        "",
        "Raised in your code (innermost first)",  # before the kernel's frames
        f"  {APPS / 'shop.py'}:37 in place_order: "
        'raise ValueError(f"order {command.order} is out of stock")',
        "",
        f"Headers ({len(headers)})",
        *(f"  {name}: {value}" for name, value in sorted(headers.items())),
        "",
        "Body (17 bytes, application/json)",
        "  {",
        '    "order": "bad-2"',
        "  }",
    ]
    assert traceback.startswith("  Traceback (most recent call last):\n")
    assert traceback.endswith("  ValueError: order bad-2 is out of stock\n")


def test_dead_letter_show_a_body_that_is_not_text(conveyor: Conveyor) -> None:
    result = conveyor("--app", "letters:messaging", "dead-letter", "show", "raw-1@orders")
    assert "\nBody (6 bytes, not UTF-8; shown as hex)\n  ff fe 00 72 61 77\n" in result.out
    assert "\n  origin: another system\n" in result.out
    assert "  endpoint:     - (no endpoint)\n" in result.out


def test_dead_letter_show_as_json(conveyor: Conveyor) -> None:
    text = conveyor(
        "--app", "letters:messaging", "dead-letter", "show", "msg-2@place_order", "--json"
    ).out
    letter = json.loads(text)
    assert letter["body"] == '{"order":"bad-2"}'
    assert letter["exception_type"] == "ValueError"
    assert letter["traceback"].endswith("ValueError: order bad-2 is out of stock\n")
    binary = json.loads(
        conveyor("--app", "letters:messaging", "dead-letter", "show", "raw-1@orders", "--json").out
    )
    assert (binary["body"], binary["body_encoding"]) == ("//4AcmF3", "base64")


def test_what_a_failed_message_carries_cannot_drive_the_terminal(conveyor: Conveyor) -> None:
    messaging = letters_messaging()
    shop = app_module("shop")
    messaging.send(shop.PlaceOrder("bad-\x1b[2J\u202e"))
    messaging.run("orders")
    out = conveyor("--app", "letters:messaging", "dead-letter", "show", "msg-4@place_order").out
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "exception:    ValueError: order bad-\\x1b[2J\\u202e is out of stock" in out
    table = conveyor("--app", "letters:messaging", "dead-letter", "list").out
    assert "\x1b" not in table


@pytest.mark.parametrize("action", ["show", "replay", "delete"])
def test_an_unknown_dead_letter_exits_1_with_the_stores_message(
    conveyor: Conveyor, action: str
) -> None:
    result = conveyor("--app", "letters:messaging", "dead-letter", action, "msg-9@nobody")
    assert result.code == 1
    assert result.out == ""
    assert result.err == (
        "conveyor: error: no dead letter with id 'msg-9@nobody'; the store holds 2: "
        "msg-2@place_order, raw-1@orders. List them with messaging.dead_letters.list() or "
        "`conveyor dead-letter list`.\n"
    )


def test_dead_letter_replay_and_delete_round_trip(conveyor: Conveyor) -> None:
    app = ("--app", "letters:messaging")
    messaging = letters_messaging()

    replayed = conveyor(*app, "dead-letter", "replay", "msg-2@place_order")
    assert replayed.code == 0
    assert replayed.out == "replayed msg-2@place_order to channel orders (endpoint place_order)\n"
    assert "WARNING conveyor.cli: channel orders is not durable (MemoryTransport)" in replayed.err
    assert [d.id for d in messaging.dead_letters.list()] == ["raw-1@orders"]
    assert messaging.journal.last(1)[0].kind == RecordKind.REPLAYED

    # The order still fails: consuming it again puts it back, counting the replay.
    assert (
        conveyor(*app, "run", "orders").out
        == "orders: processed 1 message (0 handled, 0 retried, 1 failed), stopped: empty\n"
    )
    assert messaging.dead_letters.get("msg-2@place_order").headers["cv-replayed"] == "1"

    deleted = conveyor(*app, "dead-letter", "delete", "raw-1@orders")
    assert (deleted.code, deleted.out) == (0, "deleted raw-1@orders\n")
    assert [d.id for d in messaging.dead_letters.list()] == ["msg-2@place_order"]

    everything = conveyor(*app, "dead-letter", "replay-all")
    assert (everything.code, everything.out) == (0, "replayed 1 dead letter\n")
    assert [d.id for d in messaging.dead_letters.list()] == []
    emptied = conveyor(*app, "dead-letter", "list")  # in memory, and now empty: refused
    assert emptied.code == 2
    assert "the dead-letter store is in memory" in emptied.err


# ---------------------------------------------------------------------- real processes


def read_until(stream: IO[bytes], text: str) -> list[str]:
    """Lines from a child's unbuffered pipe up to one containing ``text``; never waits forever."""
    lines: list[str] = []
    while True:
        ready, _, _ = select.select([stream], [], [], LINE_TIMEOUT)
        assert ready, f"no line with {text!r} within {LINE_TIMEOUT}s; so far: {lines}"
        line = stream.readline().decode()
        assert line, f"the process ended before printing {text!r}; it printed: {lines}"
        lines.append(line)
        if text in line:
            return lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_current_message_then_exits_0(signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--app", "worker:build", "run", "jobs"],
        cwd=APPS,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        assert process.stderr is not None
        read_until(process.stderr, "working on first")  # the handler is running
        process.send_signal(signum)
        read_until(process.stderr, "stopping (signal): taking no more work; 1 in flight")
        out, err = process.communicate(input=b"go on\n", timeout=LINE_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err.decode()
    assert (
        out.decode()
        == "jobs: processed 1 message (1 handled, 0 retried, 0 failed), stopped: signal\n"
    )
    assert "finished first" in err.decode()
    assert "working on second" not in err.decode()
    assert "INFO conveyor.cli: consumer jobs stopped: signal" in err.decode()


def test_the_installed_command_reports_usage_errors_without_a_traceback() -> None:
    command = Path(sys.executable).parent / "conveyor"
    assert command.exists(), f"{command} is missing: run scripts/setup"
    result = subprocess.run(
        [str(command), "--app", "nowhere:messaging", "run", "orders"],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=LINE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("conveyor: error: cannot import module 'nowhere'")
    assert "Traceback" not in result.stderr


def test_python_dash_m_conveyor_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor", "--app", "shop:build", "run", "orders", "--limit", "3"],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=LINE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == "orders: processed 3 messages (2 handled, 0 retried, 1 failed), stopped: limit\n"
    )


def test_failures_while_consuming_reach_the_operator_log(conveyor: Conveyor) -> None:
    result = conveyor("--app", "shop:build", "run", "orders", "--limit", "2")
    assert result.code == 0
    assert " ERROR conveyor: dead_lettered PlaceOrder [msg-2] channel=orders " in result.log
    assert "out of stock" in result.log


def test_version(conveyor: Conveyor) -> None:
    result = conveyor("--version")
    assert (result.code, result.out.split()[0]) == (0, "conveyor")


def test_dead_letter_list_shows_short_ids_that_show_accepts_wide_shows_them_whole(
    conveyor: Conveyor,
) -> None:
    from conveyor.cli.format import id_matches, short_id

    long = "0190f3a2-7b1c-7d2e-8f90-a1b2c3d4e5f6@charge"
    assert short_id(long) == "…c3d4e5f6@charge"
    assert id_matches(long, short_id(long))
    assert id_matches(long, "c3d4e5f6")
    assert not id_matches(long, "c3d4e5f6@refund")
    wide = conveyor("--app", "letters:messaging", "dead-letter", "list", "--wide").out
    assert "ValueError: order bad-2 is out of stock" in wide  # nothing is cut
    shown = conveyor("--app", "letters:messaging", "dead-letter", "show", "msg-2")
    assert shown.out.startswith("Dead letter msg-2@place_order")


def test_an_app_given_as_a_file_path_is_imported_by_its_dotted_name(conveyor: Conveyor) -> None:
    result = conveyor("run", "orders", "--limit", "1", "--app", "shop.py:build")
    assert result.out.startswith("orders: processed 1 message (1 handled")
    missing = conveyor("list", "--app", "nowhere/app.py:build")
    assert missing.code == 2
    assert "no such file 'nowhere/app.py'" in missing.err


def test_run_serves_an_asyncio_app_with_concurrency(conveyor: Conveyor) -> None:
    result = conveyor(
        "--app", "async_shop:build", "run", "orders", "--concurrency", "3", "--finish-when-empty"
    )
    assert result.code == 0, result.err
    assert result.out == (
        "orders: processed 5 messages (5 handled, 0 retried, 0 failed), stopped: empty\n"
    )


def test_other_commands_name_run_for_an_asyncio_app(conveyor: Conveyor) -> None:
    result = conveyor("--app", "async_shop:build", "list")
    assert result.code == 2
    assert "AsyncMessaging, which conveyor serves with `conveyor run` only" in result.err


def test_run_takes_a_channel_alias_and_runs_its_channel(conveyor: Conveyor) -> None:
    result = conveyor("--app", "aliased:build", "run", "orders.v1", "--limit", "1")
    assert result.code == 0
    assert result.out == (
        "orders: processed 1 message (1 handled, 0 retried, 0 failed), stopped: limit\n"
    )
