"""The pytest11 entry point of pytest-conveyor (registered as ``conveyor``).

Installing ``pytest-conveyor`` is all it takes; no ``conftest.py`` line is needed.

* Fixtures: ``messaging`` (a fresh ``conveyor.testing.Harness`` per test, on in-memory channels,
  a ``VirtualClock`` and sequential ids), ``async_messaging`` (the same for ``AsyncMessaging``:
  a ``conveyor.testing.AsyncHarness`` whose assertions are awaited), ``clock`` (their clock),
  ``messaging_factory`` (more services on the same clock) and ``conveyor_setup`` (the ``Setup``
  they are built from; override it in ``conftest.py``).
* The ``conveyor`` marker sets any ``Setup`` option for a module, class or test.
* ini options set project defaults; ``--conveyor-seed`` seeds jitter.
* Strict teardown: after a test passes, each harness is checked for unasserted failures, dead
  letters and pending work it did not inspect; the test fails with the explanation.

The pytest-free part lives in ``conveyor.testing``; this module only wires it to pytest.
"""

from __future__ import annotations

import asyncio
import threading
import types
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor.core.clock import VirtualClock
from conveyor.core.ids import SequentialIds
from conveyor.testing import (
    AsyncHarness,
    FlowAssertionError,
    Harness,
    Services,
    Setup,
    Strictness,
    strict_report,
)
from conveyor.testing.report import flow_section
from conveyor.testing.setup import DEFAULT_START
from conveyor.testing.transcript import transcript_difference

__all__ = [
    "conveyor_setup",
    "clock",
    "messaging",
    "async_messaging",
    "messaging_factory",
    "pytest_addoption",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_pyfunc_call",
]

_REGISTERED = pytest.StashKey[list[tuple[Harness, Setup]]]()
_TRANSCRIPTS = pytest.StashKey[dict[str, str]]()
_EXPLAINED = pytest.StashKey[bool]()  # the failure text holds the flow already
_LIBRARY = (str(Path(conveyor.__file__ or "").parent), str(Path(__file__).parent))
_HARNESS_FIXTURES = frozenset({"messaging", "async_messaging", "messaging_factory"})
_RUN_IDS = {1: "conveyor-run-1", 2: "conveyor-run-2"}
_MARKER = (
    "conveyor(**options): configure the `messaging` fixture for this module, class or test: "
    "handlers=[...], channels=[...], mode='queued'|'inline', advance_time=True, seed=N, "
    "start='2026-01-01T00:00Z', strict=False, allow_failures=True, allow_dead_letters=True, "
    "allow_pending=True, check_determinism=True, or any Messaging keyword (retry=..., ...)."
)


# ---------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conveyor", "Conveyor message flows")
    group.addoption(
        "--conveyor-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed for retry jitter in every conveyor test (default: ini conveyor_seed, else 0).",
    )
    group.addoption(
        "--conveyor-check-determinism",
        action="store_true",
        default=False,
        help="run each test that uses `messaging` twice and fail when the two "
        "flows' transcripts differ.",
    )
    parser.addini(
        "conveyor_check_determinism",
        "run each test that uses `messaging` twice and compare the flows (default false).",
        type="bool",
        default=False,
    )
    parser.addini(
        "conveyor_mode", "'queued' (default) or 'inline' asynchronous handling.", default="queued"
    )
    parser.addini(
        "conveyor_advance_time",
        "settling before assertions jumps the clock to due "
        "retries and delayed messages (default false).",
        type="bool",
        default=False,
    )
    parser.addini("conveyor_seed", "seed for retry jitter (default 0).", default="0")
    parser.addini(
        "conveyor_start",
        "ISO 8601 instant the virtual clock starts at.",
        default=DEFAULT_START.isoformat(),
    )
    parser.addini(
        "conveyor_strict", "strict teardown checks (default true).", type="bool", default=True
    )
    for name, what in (
        ("failures", "failed attempts and expiries"),
        ("dead_letters", "dead letters"),
        ("pending", "pending messages"),
    ):
        parser.addini(
            f"conveyor_allow_{name}",
            f"let tests leave unasserted {what} (default false).",
            type="bool",
            default=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)


def pytest_report_header(config: pytest.Config) -> str:
    return f"conveyor: seed={_seed(config)}"


def _seed(config: pytest.Config) -> int:
    option = config.getoption("conveyor_seed")
    if option is not None:
        return int(option)
    return int(str(config.getini("conveyor_seed")))


def _from_ini(config: pytest.Config) -> Setup:
    mode = str(config.getini("conveyor_mode"))
    if mode not in ("queued", "inline"):
        raise pytest.UsageError(f"ini option conveyor_mode = {mode!r}; use queued or inline.")
    strict = bool(config.getini("conveyor_strict"))
    return Setup().replace(
        mode=mode,
        advance_time=bool(config.getini("conveyor_advance_time")),
        seed=_seed(config),
        start=str(config.getini("conveyor_start")),
        strict=Strictness(
            failures=strict and not config.getini("conveyor_allow_failures"),
            dead_letters=strict and not config.getini("conveyor_allow_dead_letters"),
            pending=strict and not config.getini("conveyor_allow_pending"),
        ),
    )


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def conveyor_setup(pytestconfig: pytest.Config) -> Setup:
    """The project's base ``Setup`` (from ini options); override it in ``conftest.py``::

    @pytest.fixture
    def conveyor_setup(conveyor_setup):
        return conveyor_setup.replace(handlers=[Orders, email_customer])
    """
    return _from_ini(pytestconfig)


@pytest.fixture
def _conveyor_run(request: pytest.FixtureRequest) -> int:
    """Which run of a determinism check this is (1 or 2); 0 when the test runs once."""
    return int(getattr(request, "param", 0))


@pytest.fixture
def _conveyor_services(
    request: pytest.FixtureRequest, conveyor_setup: Setup, _conveyor_run: int
) -> Iterator[Services]:
    setup = _with_markers(request, conveyor_setup)
    registered = request.node.stash.setdefault(_REGISTERED, [])

    def register(harness: Harness, built_from: Setup) -> None:
        _register(request, harness, built_from)

    services = Services(setup, VirtualClock(setup.start), SequentialIds(), on_build=register)
    yield services
    services.broker.close()
    registered.clear()  # checked already (after the call); items outlive their test


def _register(request: pytest.FixtureRequest, harness: Harness, setup: Setup) -> None:
    """Strict teardown, failure output and determinism checks will read this harness."""
    harness.replay = (
        f"Seed {setup.seed}; rerun: pytest {request.node.nodeid} --conveyor-seed={setup.seed}"
    )
    request.node.stash.setdefault(_REGISTERED, []).append((harness, setup))


@pytest.fixture
def clock(_conveyor_services: Services) -> VirtualClock:
    """The test's ``VirtualClock``, shared by ``messaging`` and ``messaging_factory`` services."""
    return _conveyor_services.clock


@pytest.fixture
def messaging(_conveyor_services: Services) -> Iterator[Harness]:
    """A fresh ``Messaging`` with assertions (``conveyor.testing.Harness``), set by the marker."""
    services = _conveyor_services
    harness = services.shared(services.setup).harness(clock=services.clock, ids=services.ids)
    services.add(harness)
    yield harness
    harness.close()


@pytest.fixture
def async_messaging(
    request: pytest.FixtureRequest, _conveyor_services: Services
) -> Iterator[AsyncHarness]:
    """A fresh ``AsyncMessaging`` with awaited assertions (``conveyor.testing.AsyncHarness``).

    For ``async def`` tests under pytest-asyncio (strict or auto mode) or anyio's plugin (the
    asyncio backend). The fixture itself is synchronous, so it needs no async-fixture marker
    and works with any of them: the kernel opens its channels on the first awaited verb, on the
    test's loop. The ``conveyor`` marker sets it up as it sets up ``messaging``
    (``build_async=`` for an app that builds its own ``AsyncMessaging``).
    """
    services = _conveyor_services
    harness = services.setup.async_harness(clock=services.clock, ids=services.ids)
    _register(request, harness.view, services.setup)
    yield harness
    _close(harness)


def _close(harness: AsyncHarness) -> None:
    """Close the transports on a loop of their own: the test's may be closed already, or running
    (then the closing runs in a thread of its own, since a running loop cannot be re-entered)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(harness.aclose())
        return
    closer = threading.Thread(target=asyncio.run, args=(harness.aclose(),))
    closer.start()
    closer.join()


@pytest.fixture
def messaging_factory(_conveyor_services: Services) -> Iterator[Services]:
    """Builds more services on the test's clock: ``billing = messaging_factory(handlers=[...])``.

    ``messaging_factory.settle()`` and ``.advance(...)`` drive all of them (and ``messaging``).
    """
    yield _conveyor_services
    for harness in _conveyor_services:
        harness.close()


def _with_markers(request: pytest.FixtureRequest, setup: Setup) -> Setup:
    marks = list(request.node.iter_markers("conveyor"))
    for mark in reversed(marks):  # farthest first: the test's own marker wins
        if mark.args:
            raise pytest.UsageError(
                f"@pytest.mark.conveyor takes keyword options only, got positional "
                f"{mark.args!r} on {request.node.nodeid}; for example "
                f"@pytest.mark.conveyor(handlers=[...])."
            )
        try:
            options = {k: v for k, v in mark.kwargs.items() if k != "check_determinism"}
            setup = setup.replace(**options)
        except TypeError as error:
            raise pytest.UsageError(f"{request.node.nodeid}: {error}") from None
    return setup


# ---------------------------------------------------------------------- strict teardown


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test passes, fail it if a harness was left with what strict mode forbids."""
    result = yield
    reports = [
        strict_report(harness, setup.strict) for harness, setup in item.stash.get(_REGISTERED, [])
    ]
    problems = [report for report in reports if report]
    if problems:
        item.stash[_EXPLAINED] = True
        pytest.fail("\n\n".join(problems), pytrace=False)
    _compare_runs(item, [harness for harness, _ in item.stash.get(_REGISTERED, [])])
    return result


# ---------------------------------------------------------------------- determinism


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With determinism checks on, every test using ``messaging`` runs twice, fresh each time."""
    names = metafunc.fixturenames
    if "_conveyor_run" not in names or not _HARNESS_FIXTURES & set(names):
        return
    wanted = bool(metafunc.config.getoption("conveyor_check_determinism")) or bool(
        metafunc.config.getini("conveyor_check_determinism")
    )
    for mark in metafunc.definition.iter_markers("conveyor"):  # nearest first
        if "check_determinism" in mark.kwargs:
            wanted = bool(mark.kwargs["check_determinism"])
            break
    if wanted:
        metafunc.parametrize(
            "_conveyor_run",
            [pytest.param(run, id=_RUN_IDS[run]) for run in (1, 2)],
            indirect=True,
        )


def _compare_runs(item: pytest.Item, harnesses: list[Harness]) -> None:
    """Keep run 1's transcript; fail run 2 when its transcript differs."""
    callspec = getattr(item, "callspec", None)
    run = callspec.params.get("_conveyor_run") if callspec is not None else None
    if run not in (1, 2) or not harnesses:
        return
    text = "\n".join(harness.transcript() for harness in harnesses)
    transcripts = item.config.stash.setdefault(_TRANSCRIPTS, {})
    nodeid = item.nodeid
    if run == 1:
        transcripts[nodeid] = text
        return
    first = transcripts.pop(nodeid.replace(_RUN_IDS[2], _RUN_IDS[1]), None)
    if first is None:
        item.warn(
            pytest.PytestWarning(
                "conveyor: run 1 of this test did not pass here (or ran in another xdist worker; "
                "use --dist loadfile), so its flow was not compared."
            )
        )
        return
    difference = transcript_difference(first, text)
    if difference is not None:
        item.stash[_EXPLAINED] = True
        pytest.fail(difference, pytrace=False)


# ---------------------------------------------------------------------- failure output


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Append the flow of each harness to a failed test whose failure text does not have it.

    A plain ``assert`` on a side effect (made while the flow was still queued) says only
    ``assert [] == [...]``; where the flow stood is what explains it.
    """
    report = yield
    if report.when != "call" or not report.failed or item.stash.get(_EXPLAINED, False):
        return report
    if call.excinfo is not None and isinstance(call.excinfo.value, FlowAssertionError):
        return report
    harnesses = [harness for harness, _ in item.stash.get(_REGISTERED, [])]
    for number, harness in enumerate(harnesses, 1):
        name = "conveyor flow" if len(harnesses) == 1 else f"conveyor flow (service {number})"
        text = flow_section(harness.snapshot())
        add = getattr(report.longrepr, "addsection", None)
        if callable(add):
            add(name, text)
        else:
            report.sections.append((name, text))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Errors from Conveyor start at the user's line: library frames leave the traceback.

    ``NoHandlerError`` raised deep in routing would otherwise print the library's source
    before its message. A handler's own frames stay. ``--full-trace`` keeps everything.
    """
    try:
        return (yield)
    except BaseException as error:
        if _REGISTERED in pyfuncitem.stash and not pyfuncitem.config.getoption("fulltrace"):
            error.with_traceback(_user_frames(error.__traceback__))
        raise


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_LIBRARY):
            kept.append(tb)
        tb = tb.tb_next
    chain: types.TracebackType | None = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain
