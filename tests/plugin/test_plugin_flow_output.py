"""Failure output a newcomer meets first: plain asserts, library errors, long flows, hints.

Each case runs a real pytest session on the app in ``plugin_app.py``.
"""

from __future__ import annotations

import pytest
from plugin_kit import failure, with_app


def run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    with_app(pytester, source)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    return result


def test_a_plain_assert_on_a_side_effect_gets_the_flow_and_a_hint(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
def test_plain(messaging):
    messaging.send(PlaceOrder("o-1"))
    assert Orders is None
""",
    )
    text = "\n".join(result.outlines)
    assert "conveyor flow" in text
    assert "OrderPlaced msg-2 on notifications -> email_customer: queued" in text
    assert "Hint: 2 messages still wait for a consumer" in text
    assert text.index("Hint: 2 messages") < text.index("rerun: pytest test_flow.py::test_plain")


def test_a_library_error_starts_at_the_users_line(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_no_handler(messaging):
    messaging.send(OrderPlaced("o-1"))
""",
    )
    text = "\n".join(result.outlines)
    assert "NoHandlerError: no command handler for OrderPlaced" in text
    assert "conveyor/core" not in text
    assert "conveyor/drivers" not in text
    assert "test_flow.py:11: NoHandlerError" in text


def test_full_trace_keeps_the_library_frames(pytester: pytest.Pytester) -> None:
    with_app(pytester, "def test_no_handler(messaging):\n    messaging.send(OrderPlaced('x'))\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--full-trace")
    assert "conveyor/core/routing.py" in "\n".join(result.outlines)


def test_repeated_schedule_ticks_are_folded_and_headlines_read_as_english(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
from conveyor import scheduled

@scheduled(every=timedelta(hours=1))
def hourly_billing() -> None:
    pass

@pytest.mark.conveyor(handlers=[*HANDLERS, hourly_billing])
def test_hourly(messaging):
    messaging.advance(timedelta(hours=72))
    messaging.assert_handled(hourly_billing, times=72)
""",
    )
    text = failure(result, "test_hourly")
    assert text.startswith("FlowAssertionError: hourly_billing handled 73 messages; expected 72.")
    assert "… hourly_billing ticked 71 more times from +1h to +2d 23h, each handled …" in text
    assert "records not shown" not in text


def test_the_timeline_keeps_the_records_of_the_message_under_assertion(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
def test_long_flow(messaging):
    for number in range(12):
        messaging.send(PlaceOrder(f"o-{number}"))
    messaging.send(ChargeCard("declined-1"))
    for number in range(12, 24):
        messaging.send(PlaceOrder(f"o-{number}"))
    messaging.assert_dead_lettered(ChargeCard(order_id="declined-1"))
""",
    )
    text = failure(result, "test_long_flow")
    assert "records not shown" in text
    timeline = text[text.index("Timeline") : text.index("Pending")]
    assert "failed " in timeline
    assert "attempt 1: CardDeclined" in timeline
    assert "ChargeCard(order_id='declined-1')" in timeline


def test_the_clock_hint_shows_only_when_a_timer_could_change_the_outcome(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
def test_unrelated_timer(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.send(PlaceOrder("o-1"))
    messaging.assert_published(OrderPlaced(order_id="o-2"))
""",
    )
    text = failure(result, "test_unrelated_timer")
    assert "retry, attempt 2, due at +1s" in text  # the timer is there ...
    assert "Hint" not in text  # ... but waiting for it would not publish OrderPlaced o-2


def test_the_rerun_line_is_never_cut(pytester: pytest.Pytester) -> None:
    name = "test_" + "a_rather_long_and_descriptive_name_" * 3 + "end"
    result = run(
        pytester,
        f"""
def {name}(messaging):
    messaging.assert_published(OrderPlaced)
""",
    )
    assert f"rerun: pytest test_flow.py::{name} --conveyor-seed=0" in failure(result, name)
