"""Transcripts for snapshot tests, and the check that runs a test's flow twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from plugin_app import CHANNELS, HANDLERS, ChargeCard, PlaceOrder
from plugin_kit import failure, with_app

from conveyor import Messaging, UuidV7Ids, VirtualClock
from conveyor.testing import FlowAssertionError, Harness, Setup, assert_deterministic

SETUP = Setup(handlers=HANDLERS, channels=CHANNELS, advance_time=True)

DECLINED = """\
+0s sent ChargeCard m1 = ChargeCard(order_id='declined-1')
+0s queued ChargeCard m1 on payments -> charge
+0s failed ChargeCard m1 on payments -> charge !! CardDeclined: card declined for declined-1
+0s retried ChargeCard m1 on payments -> charge delay 1s !! CardDeclined: card declined for declined-1
+1s failed ChargeCard m1 on payments -> charge attempt 2 !! CardDeclined: card declined for declined-1
+1s retried ChargeCard m1 on payments -> charge attempt 2 delay 2s !! CardDeclined: card declined for declined-1
+3s failed ChargeCard m1 on payments -> charge attempt 3 !! CardDeclined: card declined for declined-1
+3s dead_lettered ChargeCard m1 on payments -> charge attempt 3 !! CardDeclined: card declined for declined-1 (failed; dead letter m1@charge)"""  # noqa: E501


def declined_flow(harness: Harness) -> None:
    harness.send(ChargeCard("declined-1"))
    harness.settle()


def test_a_transcript_has_one_line_per_record_with_relative_times_and_renumbered_ids():
    harness = SETUP.harness()
    declined_flow(harness)

    assert harness.transcript() == DECLINED
    assert len(harness.transcript().splitlines()) == len(harness.journal)


def test_a_transcript_does_not_depend_on_the_id_generator_or_start_time():
    clock = VirtualClock(SETUP.start + timedelta(days=300))
    harness = Harness(
        Messaging(
            [h() if isinstance(h, type) else h for h in HANDLERS],
            CHANNELS,
            clock=clock,
            ids=UuidV7Ids(clock),
        ),
        advance_time=True,
    )
    declined_flow(harness)

    assert harness.transcript() == DECLINED


def test_payloads_can_be_left_out():
    harness = SETUP.harness()
    harness.send(PlaceOrder("o-1"))

    assert harness.transcript(payloads=False).splitlines()[0] == "+0s sent PlaceOrder m1"
    harness.settle()


def test_assert_deterministic_returns_the_transcript_of_a_deterministic_flow():
    assert assert_deterministic(SETUP.harness, declined_flow) == DECLINED


def test_assert_deterministic_shows_where_two_runs_part():
    runs = []

    def flow(harness: Harness) -> None:
        runs.append(1)
        harness.send(PlaceOrder(f"o-{len(runs)}"))  # state kept between runs
        harness.settle()

    with pytest.raises(FlowAssertionError) as raised:
        assert_deterministic(SETUP.harness, flow)

    text = str(raised.value)
    assert text.splitlines()[0] == (
        "The flow is not deterministic: run 2's transcript differs from run 1's."
    )
    assert "-+0s sent PlaceOrder m1 = PlaceOrder(order_id='o-1')" in text
    assert "++0s sent PlaceOrder m1 = PlaceOrder(order_id='o-2')" in text


NONDETERMINISTIC = """
RUNS = []


def test_keeps_state(messaging):
    RUNS.append(1)
    messaging.send(PlaceOrder(f"o-{len(RUNS)}"))
    messaging.settle()


def test_deterministic(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.assert_handled(email_customer)
"""


def test_the_determinism_check_runs_each_test_twice_with_fresh_fixtures(pytester):
    with_app(pytester, NONDETERMINISTIC)

    result = pytester.runpytest("-p", "no:cacheprovider", "--conveyor-check-determinism")

    result.assert_outcomes(passed=3, failed=1)
    text = failure(result, "test_keeps_state[conveyor-run-2]")
    assert text.splitlines()[0] == (
        "The flow is not deterministic: run 2's transcript differs from run 1's."
    )
    assert "++0s sent PlaceOrder m1 = PlaceOrder(order_id='o-2')" in text.splitlines()


def test_the_marker_asks_for_the_check_on_one_test_only(pytester):
    with_app(
        pytester,
        NONDETERMINISTIC.replace(
            "def test_keeps_state",
            "@pytest.mark.conveyor(check_determinism=True)\ndef test_keeps_state",
        ),
    )

    result = pytester.runpytest("-p", "no:cacheprovider", "-v")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_keeps_state?conveyor-run-2? FAILED*", "*test_deterministic PASSED*"]
    )
