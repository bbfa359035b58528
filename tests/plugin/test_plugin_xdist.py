"""The plugin under pytest-xdist: each worker builds its own messaging; outcomes are the same."""

from __future__ import annotations

import pytest
from plugin_kit import with_app

TESTS = """
@pytest.mark.parametrize("order", [f"o-{n}" for n in range(6)])
def test_orders(messaging, order):
    messaging.send(PlaceOrder(order))
    messaging.assert_handled(email_customer, OrderPlaced(order))
    assert messaging.sent(PlaceOrder).one().message_id == "msg-1"


@pytest.mark.conveyor(advance_time=True)
def test_dead_letter(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_dead_lettered(ChargeCard, attempts=3)


def test_strict_teardown_still_fails(messaging):
    messaging.send(PlaceOrder("o-1"))
"""


def test_outcomes_under_xdist_match_a_plain_run(pytester: pytest.Pytester):
    with_app(pytester, TESTS)

    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    distributed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")

    plain.assert_outcomes(passed=7, failed=1)
    distributed.assert_outcomes(passed=7, failed=1)
    distributed.stdout.fnmatch_lines(["*Strict teardown found 2 pending messages not inspected.*"])


def test_the_determinism_check_compares_both_runs_under_xdist_loadfile(pytester: pytest.Pytester):
    with_app(
        pytester,
        """
RUNS = []


def test_keeps_state(messaging):
    RUNS.append(1)
    messaging.send(PlaceOrder(f"o-{len(RUNS)}"))
    messaging.settle()
""",
    )

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", "--conveyor-check-determinism"
    )

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*The flow is not deterministic*"])
