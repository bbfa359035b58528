"""``async def`` tests: the ``async_messaging`` fixture under pytest-asyncio and anyio's plugin.

The same harness and assertions as ``messaging``, awaited (settling awaits the consumers). Each
test runs pytest in a fresh directory (``pytester``) as a user would, in pytest-asyncio's strict
mode (tests marked ``asyncio``), its auto mode (no marker) and under anyio's ``anyio`` marker.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from plugin_kit import failure

from conveyor.testing import Harness, Setup

ASYNC_APP = (Path(__file__).parent / "plugin_async_app.py").read_text()

HEADER = """
from datetime import timedelta

import pytest

from async_app import *
from conveyor.testing import AsyncHarness, where

pytestmark = [pytest.mark.conveyor(handlers=HANDLERS, channels=CHANNELS){marks}]
"""

FLOW = """
{mark}
async def test_order_is_placed_and_the_email_follows_five_minutes_later(
    async_messaging: AsyncHarness, clock
) -> None:
    start = clock.now()
    await async_messaging.send(PlaceOrder("o-1"))
    await async_messaging.assert_published(OrderPlaced(order_id="o-1"))
    await async_messaging.assert_handled(charge, ChargeCard)
    await async_messaging.assert_not_handled(email_customer)  # delayed: time has not moved
    await async_messaging.assert_pending(by=email_customer, due_in=timedelta(minutes=5))
    await async_messaging.advance(timedelta(minutes=5))
    await async_messaging.assert_handled(email_customer, where(OrderPlaced, order_id="o-1"))
    assert clock.now() - start == timedelta(minutes=5)
    assert (await async_messaging.sent(ChargeCard)).one().payload.order_id == "o-1"


{mark}
@pytest.mark.conveyor(advance_time=True)
async def test_a_declined_card_is_retried_then_dead_lettered(async_messaging: AsyncHarness) -> None:
    await async_messaging.send(ChargeCard("declined-1"))
    await async_messaging.assert_retried(
        ChargeCard, delays=[timedelta(seconds=1), timedelta(seconds=2)]
    )
    await async_messaging.assert_dead_lettered(ChargeCard, exception=CardDeclined, attempts=3)
"""


def run(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    scope = ("-o", "asyncio_default_fixture_loop_scope=function")
    return pytester.runpytest("-p", "no:cacheprovider", *scope, *options)


def write(pytester: pytest.Pytester, tests: str, *, marks: str = "") -> None:
    pytester.makepyfile(async_app=ASYNC_APP, test_flow=HEADER.format(marks=marks) + tests)


def test_async_tests_pass_under_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    write(pytester, FLOW.format(mark="@pytest.mark.asyncio"))

    result = run(pytester, "-o", "asyncio_mode=strict")

    result.assert_outcomes(passed=2)


def test_async_tests_pass_under_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    write(pytester, FLOW.format(mark=""))

    result = run(pytester, "-o", "asyncio_mode=auto")

    result.assert_outcomes(passed=2)


def test_async_tests_pass_under_anyio(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        FLOW.format(mark="@pytest.mark.anyio")
        + """

@pytest.fixture
def anyio_backend():
    return "asyncio"
""",
    )

    result = run(pytester, "-p", "no:asyncio")

    result.assert_outcomes(passed=2)


def test_a_failing_awaited_assertion_explains_itself_with_the_flow(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester,
        """
async def test_wrong_order(async_messaging):
    await async_messaging.send(PlaceOrder("o-1"))
    await async_messaging.assert_published(OrderPlaced(order_id="o-2"))
""",
    )

    result = run(pytester, "-o", "asyncio_mode=auto")

    result.assert_outcomes(failed=1)
    text = failure(result, "test_wrong_order")
    assert "OrderPlaced(order_id='o-2') was not published." in text, text
    assert "order_id: expected 'o-2', got 'o-1'" in text, text
    assert "Timeline (virtual time since 2026-01-01 00:00:00 UTC):" in text, text
    assert "OrderPlaced msg-2 on notifications -> email_customer: queued" in text, text


def test_strict_teardown_fails_an_async_test_that_leaves_a_dead_letter_unasserted(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester,
        """
@pytest.mark.conveyor(advance_time=True)
async def test_forgets_the_dead_letter(async_messaging):
    await async_messaging.send(ChargeCard("declined-1"))
    await async_messaging.settle()
""",
    )

    result = run(pytester, "-o", "asyncio_mode=auto")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Strict teardown found*unasserted dead letter*"])


def test_strict_teardown_reports_work_left_pending_by_an_async_test(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester,
        """
async def test_leaves_the_email_waiting(async_messaging):
    await async_messaging.send(PlaceOrder("o-1"))
    await async_messaging.assert_handled(charge)
""",
    )

    result = run(pytester, "-o", "asyncio_mode=auto")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 pending message not inspected*", "*email_customer*"])


def test_the_determinism_check_runs_async_tests_twice_and_compares_them(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, FLOW.format(mark=""))

    result = run(pytester, "-o", "asyncio_mode=auto", "--conveyor-check-determinism", "-v")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*conveyor-run-1*", "*conveyor-run-2*"])


def test_the_async_harness_awaits_every_assertion_and_query_of_the_harness() -> None:
    harness = Setup().async_harness()
    queries = {"sent", "published", "asked", "handled", "failed", "retried", "expired"}
    names = {n for n in dir(Harness) if n.startswith("assert_")} | queries | {"dead_lettered"}

    missing = [n for n in sorted(names) if not inspect.iscoroutinefunction(getattr(harness, n))]

    assert missing == []
