"""Strict teardown: each check catches its case, and each switches off on its own."""

from __future__ import annotations

import pytest
from plugin_kit import failure, with_app

FLAKY = """
from conveyor import Context, asynchronous, command_handler


@asynchronous("payments", retry=RETRY)
@command_handler
def flaky_charge(command: ChargeCard, ctx: Context) -> None:
    if ctx.attempt == 1:
        raise CardDeclined("first attempt declined")


flaky = pytest.mark.conveyor(handlers=[flaky_charge], channels=["payments"], advance_time=True)
"""


def outcomes(pytester: pytest.Pytester, *args: str) -> dict[str, list[str]]:
    """Test name -> its outcome and, for a failure, the first line of its report."""
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA", *args)
    found: dict[str, list[str]] = {}
    for line in result.outlines:
        for outcome in ("PASSED", "FAILED", "ERROR"):
            if line.startswith(f"{outcome} test_flow.py::"):
                name = line[len(outcome) + 15 :].partition(" - ")[0]
                first = failure(result, name).splitlines()[0] if outcome == "FAILED" else ""
                found[name] = [outcome, first]
    return found


def test_an_unasserted_failure_fails_the_test_until_asserted_or_allowed(pytester):
    with_app(
        pytester,
        FLAKY
        + """
@flaky
def test_unasserted(messaging):
    messaging.send(ChargeCard("o-1"))
    messaging.assert_handled(flaky_charge)


@flaky
def test_asserted(messaging):
    messaging.send(ChargeCard("o-1"))
    messaging.assert_handled(flaky_charge)
    messaging.assert_failed(ChargeCard, exception=CardDeclined)


@flaky
@pytest.mark.conveyor(allow_failures=True)
def test_allowed(messaging):
    messaging.send(ChargeCard("o-1"))
    messaging.assert_handled(flaky_charge)


@command_handler
def refuse(command: PlaceOrder) -> None:
    raise CardDeclined("refused at once")


@pytest.mark.conveyor(handlers=[refuse], channels=[])
def test_raised_synchronously(messaging):
    with pytest.raises(CardDeclined):
        messaging.send(PlaceOrder("o-1"))
""",
    )

    found = outcomes(pytester)

    assert found == {
        "test_unasserted": ["FAILED", "Strict teardown found 1 unasserted failure."],
        "test_asserted": ["PASSED", ""],
        "test_allowed": ["PASSED", ""],
        "test_raised_synchronously": ["PASSED", ""],
    }


def test_an_unasserted_dead_letter_fails_the_test_until_asserted_deleted_or_allowed(pytester):
    with_app(
        pytester,
        """
@pytest.mark.conveyor(advance_time=True)
def test_unasserted(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_failed(ChargeCard, attempt=3)


@pytest.mark.conveyor(advance_time=True)
def test_asserted(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_dead_lettered(ChargeCard)


@pytest.mark.conveyor(advance_time=True)
def test_deleted(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_failed(ChargeCard)
    [letter] = messaging.dead_letters.list()
    messaging.dead_letters.delete(letter.id)


@pytest.mark.conveyor(advance_time=True, allow_dead_letters=True)
def test_allowed(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_failed(ChargeCard)
""",
    )

    found = outcomes(pytester)

    assert found == {
        "test_unasserted": ["FAILED", "Strict teardown found 1 unasserted dead letter."],
        "test_asserted": ["PASSED", ""],
        "test_deleted": ["PASSED", ""],
        "test_allowed": ["PASSED", ""],
    }


def test_unsettled_work_fails_the_test_until_settled_inspected_or_allowed(pytester):
    with_app(
        pytester,
        """
def test_unsettled(messaging):
    messaging.send(PlaceOrder("o-1"))


def test_settled(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.settle()


def test_inspected(messaging):
    messaging.send(PlaceOrder("o-1"))
    assert len(messaging.pending()) == 2


def test_waiting_retry_inspected(messaging):
    messaging.send(PlaceOrder("declined-1"))
    messaging.assert_failed(ChargeCard)
    messaging.assert_pending(ChargeCard, due_in=timedelta(seconds=1))


@pytest.mark.conveyor(allow_pending=True)
def test_allowed(messaging):
    messaging.send(PlaceOrder("o-1"))
""",
    )

    found = outcomes(pytester)

    assert found == {
        "test_unsettled": ["FAILED", "Strict teardown found 2 pending messages not inspected."],
        "test_settled": ["PASSED", ""],
        "test_inspected": ["PASSED", ""],
        "test_waiting_retry_inspected": ["PASSED", ""],
        "test_allowed": ["PASSED", ""],
    }


LEAVES_EVERYTHING = """
@pytest.mark.conveyor(advance_time=True)
def test_failure_and_dead_letter(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.settle()


def test_pending(messaging):
    messaging.send(PlaceOrder("o-1"))
"""


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        (
            "conveyor_strict = false",
            {"test_failure_and_dead_letter": "PASSED", "test_pending": "PASSED"},
        ),
        (
            "conveyor_allow_pending = true",
            {"test_failure_and_dead_letter": "FAILED", "test_pending": "PASSED"},
        ),
        (
            "conveyor_allow_failures = true\nconveyor_allow_dead_letters = true",
            {"test_failure_and_dead_letter": "PASSED", "test_pending": "FAILED"},
        ),
    ],
)
def test_ini_options_switch_checks_off_for_the_project(pytester, ini, expected):
    pytester.makeini(f"[pytest]\n{ini}\n")
    with_app(pytester, LEAVES_EVERYTHING)

    found = outcomes(pytester)

    assert {name: outcome for name, (outcome, _) in found.items()} == expected


def test_strict_false_on_the_marker_switches_every_check_off(pytester):
    with_app(
        pytester,
        "pytestmark = [pytestmark, pytest.mark.conveyor(strict=False)]\n" + LEAVES_EVERYTHING,
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_allowing_one_check_leaves_the_others_on(pytester):
    with_app(
        pytester,
        """
@pytest.mark.conveyor(advance_time=True, allow_failures=True)
def test_dead_letter_still_counts(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.settle()
""",
    )

    found = outcomes(pytester)

    assert found == {
        "test_dead_letter_still_counts": [
            "FAILED",
            "Strict teardown found 1 unasserted dead letter.",
        ]
    }


def test_a_test_that_fails_reports_its_own_failure_only(pytester):
    with_app(
        pytester,
        """
def test_fails_first(messaging):
    messaging.send(PlaceOrder("declined-1"))
    assert False, "the test's own failure"
""",
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    assert "Strict teardown" not in result.stdout.str()


def test_services_from_the_factory_are_checked_too(pytester):
    with_app(
        pytester,
        """
def test_service_left_work(messaging_factory):
    billing = messaging_factory(handlers=HANDLERS, channels=CHANNELS)
    billing.send(PlaceOrder("o-1"))
""",
    )

    found = outcomes(pytester)

    assert found["test_service_left_work"][0] == "FAILED"
