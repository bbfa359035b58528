"""Failure output, pinned: what pytest prints when an assertion or strict teardown fails.

Each case runs a real pytest session (``pytester``) on the app in ``plugin_app.py`` and compares
the whole failure text. The text is the product: a change here is a change users see.
"""

from __future__ import annotations

import pytest
from plugin_kit import failure, with_app

NEAR_MISS = (
    """
def test_near_miss(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.assert_published(OrderPlaced(order_id="o-2"))
""",
    """\
FlowAssertionError: OrderPlaced(order_id='o-2') was not published.

Nearest candidates (1 published in all):
  #2 OrderPlaced msg-2, published at +0s
      order_id: expected 'o-2', got 'o-1'

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1  sent       PlaceOrder msg-1     PlaceOrder(order_id='o-1')
  +0s  #2  published    OrderPlaced msg-2  OrderPlaced(order_id='o-1')
  +0s  #3  sent         ChargeCard msg-3   ChargeCard(order_id='o-1')
  +0s  #4  handled    PlaceOrder msg-1     -> Orders.place
  +0s  #7  handled      OrderPlaced msg-2  notifications -> email_customer
  +0s  #8  handled      ChargeCard msg-3   payments -> charge

Pending: nothing (the clock stands at +0s).

Seed 0; rerun: pytest test_flow.py::test_near_miss --conveyor-seed=0
""",
)

RETRY_WITHOUT_MOVING_THE_CLOCK = (
    """
def test_retry_without_moving_the_clock(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_retried(ChargeCard, delays=[timedelta(seconds=1), timedelta(seconds=2)])
""",
    """\
FlowAssertionError: ChargeCard was not retried with delays [1s, 2s].

Retried copies:
  #4 ChargeCard msg-1 payments -> charge, retried at +0s
      delays: expected [1s, 2s], got [1s]

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1  sent     ChargeCard msg-1  ChargeCard(order_id='declined-1')
  +0s  #3  failed   ChargeCard msg-1  payments -> charge  attempt 1: CardDeclined: card dec…
  +0s  #4  retried  ChargeCard msg-1  payments -> charge  attempt 2 in 1s

Pending (1; the clock stands at +0s):
  ChargeCard msg-1 on payments -> charge: retry, attempt 2, due at +1s
Hint: settling does not move the clock unless asked, and 1 message waits on a timer
  (next due at +1s). Opt in with @pytest.mark.conveyor(advance_time=True),
  or call messaging.settle(advance_time=True) or messaging.advance(...) first.

Failures (1):
  +0s #3 ChargeCard msg-1 -> charge, attempt 1: CardDeclined: card declined for declined-1
      raised at app.py:57 in charge

Seed 0; rerun: pytest test_flow.py::test_retry_without_moving_the_clock --conveyor-seed=0
""",
)

WRONG_NUMBER_OF_ATTEMPTS = (
    """
@pytest.mark.conveyor(advance_time=True)
def test_wrong_number_of_attempts(messaging):
    messaging.send(PlaceOrder("declined-1"))
    messaging.assert_dead_lettered(ChargeCard, exception=CardDeclined, attempts=2)
""",
    """\
FlowAssertionError: ChargeCard was not dead-lettered with CardDeclined after 2 attempts.

Nearest candidates (1 dead-lettered in all):
  #13 ChargeCard msg-3 payments -> charge, dead_lettered at +3s
      attempts: expected 2, got 3

Probable cause:
  ChargeCard msg-3 -> charge was dead-lettered after 3 attempts: CardDeclined: card decline…

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1   sent           PlaceOrder msg-1     PlaceOrder(order_id='declined-1')
  +0s  #2   published        OrderPlaced msg-2  OrderPlaced(order_id='declined-1')
  +0s  #3   sent             ChargeCard msg-3   ChargeCard(order_id='declined-1')
  +0s  #4   handled        PlaceOrder msg-1     -> Orders.place
  +0s  #7   handled          OrderPlaced msg-2  notifications -> email_customer
  +0s  #8   failed           ChargeCard msg-3   payments -> charge  attempt 1: CardDeclined…
  +0s  #9   retried          ChargeCard msg-3   payments -> charge  attempt 2 in 1s
  +1s  #10  failed           ChargeCard msg-3   payments -> charge  attempt 2: CardDeclined…
  +1s  #11  retried          ChargeCard msg-3   payments -> charge  attempt 3 in 2s
  +3s  #12  failed           ChargeCard msg-3   payments -> charge  attempt 3: CardDeclined…
  +3s  #13  dead_lettered    ChargeCard msg-3   payments -> charge  after 3 attempts: CardD…

Pending: nothing (the clock stands at +3s).

Failures (3):
  +0s #8 ChargeCard msg-3 -> charge, attempt 1: CardDeclined: card declined for declined-1
      raised at app.py:57 in charge
  +1s #10 ChargeCard msg-3 -> charge, attempt 2: CardDeclined: card declined for declined-1
      raised at app.py:57 in charge
  +3s #12 ChargeCard msg-3 -> charge, attempt 3: CardDeclined: card declined for declined-1
      raised at app.py:57 in charge

Seed 0; rerun: pytest test_flow.py::test_wrong_number_of_attempts --conveyor-seed=0
""",
)

PUBLISHED_BUT_SHOULD_NOT_BE = (
    """
def test_published_but_should_not_be(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.assert_not_published(OrderPlaced)
""",
    """\
FlowAssertionError: OrderPlaced was published (1 time), but should not have been.

Matching records:
  #2 OrderPlaced msg-2, published at +0s
      caused by PlaceOrder msg-1 (sent)
      OrderPlaced(order_id='o-1')

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1  sent       PlaceOrder msg-1     PlaceOrder(order_id='o-1')
  +0s  #2  published    OrderPlaced msg-2  OrderPlaced(order_id='o-1')
  +0s  #3  sent         ChargeCard msg-3   ChargeCard(order_id='o-1')
  +0s  #4  handled    PlaceOrder msg-1     -> Orders.place
  +0s  #7  handled      OrderPlaced msg-2  notifications -> email_customer
  +0s  #8  handled      ChargeCard msg-3   payments -> charge

Pending: nothing (the clock stands at +0s).

Seed 0; rerun: pytest test_flow.py::test_published_but_should_not_be --conveyor-seed=0
""",
)

ONE_OF_SEVERAL = (
    """
def test_one_of_several(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.send(PlaceOrder("o-2"))
    messaging.published(OrderPlaced).one()
""",
    """\
FlowAssertionError: OrderPlaced was published 2 times, not once.

Matching records:
  #2 OrderPlaced msg-2, published at +0s
      caused by PlaceOrder msg-1 (sent)
      OrderPlaced(order_id='o-1')
  #8 OrderPlaced msg-5, published at +0s
      caused by PlaceOrder msg-4 (sent)
      OrderPlaced(order_id='o-2')

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1   sent       PlaceOrder msg-1     PlaceOrder(order_id='o-1')
  +0s  #2   published    OrderPlaced msg-2  OrderPlaced(order_id='o-1')
  +0s  #3   sent         ChargeCard msg-3   ChargeCard(order_id='o-1')
  +0s  #4   handled    PlaceOrder msg-1     -> Orders.place
  +0s  #7   sent       PlaceOrder msg-4     PlaceOrder(order_id='o-2')
  +0s  #8   published    OrderPlaced msg-5  OrderPlaced(order_id='o-2')
  +0s  #9   sent         ChargeCard msg-6   ChargeCard(order_id='o-2')
  +0s  #10  handled    PlaceOrder msg-4     -> Orders.place
  +0s  #13  handled      OrderPlaced msg-2  notifications -> email_customer
  +0s  #14  handled      ChargeCard msg-3   payments -> charge
  +0s  #15  handled      OrderPlaced msg-5  notifications -> email_customer
  +0s  #16  handled      ChargeCard msg-6   payments -> charge

Pending: nothing (the clock stands at +0s).

Seed 0; rerun: pytest test_flow.py::test_one_of_several --conveyor-seed=0
""",
)

NOT_HANDLED_BECAUSE_DEAD_LETTERED = (
    """
@pytest.mark.conveyor(advance_time=True)
def test_not_handled_because_dead_lettered(messaging):
    messaging.send(ChargeCard("declined-7"))
    messaging.assert_handled(charge, ChargeCard)
""",
    """\
FlowAssertionError: ChargeCard was not handled by charge (nothing was handled).

Probable cause:
  ChargeCard msg-1 -> charge was dead-lettered after 3 attempts: CardDeclined: card decline…

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1  sent           ChargeCard msg-1  ChargeCard(order_id='declined-7')
  +0s  #3  failed         ChargeCard msg-1  payments -> charge  attempt 1: CardDeclined: ca…
  +0s  #4  retried        ChargeCard msg-1  payments -> charge  attempt 2 in 1s
  +1s  #5  failed         ChargeCard msg-1  payments -> charge  attempt 2: CardDeclined: ca…
  +1s  #6  retried        ChargeCard msg-1  payments -> charge  attempt 3 in 2s
  +3s  #7  failed         ChargeCard msg-1  payments -> charge  attempt 3: CardDeclined: ca…
  +3s  #8  dead_lettered  ChargeCard msg-1  payments -> charge  after 3 attempts: CardDecli…

Pending: nothing (the clock stands at +3s).

Failures (3):
  +0s #3 ChargeCard msg-1 -> charge, attempt 1: CardDeclined: card declined for declined-7
      raised at app.py:57 in charge
  +1s #5 ChargeCard msg-1 -> charge, attempt 2: CardDeclined: card declined for declined-7
      raised at app.py:57 in charge
  +3s #7 ChargeCard msg-1 -> charge, attempt 3: CardDeclined: card declined for declined-7
      raised at app.py:57 in charge

Seed 0; rerun: pytest test_flow.py::test_not_handled_because_dead_lettered --conveyor-seed=0
""",
)

STRICT_TEARDOWN = (
    """
def test_strict_teardown(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.settle()
    messaging.send(PlaceOrder("o-9"))
""",
    """\
Strict teardown found 1 unasserted failure and 3 pending messages not inspected.

Unasserted failures (assert them with assert_failed, assert_retried, assert_expired or
assert_dead_lettered, or allow them: @pytest.mark.conveyor(allow_failures=True)):
  +0s  #3  failed  ChargeCard msg-1  payments -> charge  attempt 1: CardDeclined: card decl…

Unsettled work (settle it with an assertion or messaging.settle(), inspect it with
assert_pending, or allow it: @pytest.mark.conveyor(allow_pending=True)):
  ChargeCard msg-1 on payments -> charge: retry, due at +1s
  OrderPlaced msg-3 on notifications -> email_customer: queued, runnable now
  ChargeCard msg-4 on payments -> charge: queued, runnable now

Timeline (virtual time since 2026-01-01 00:00:00 UTC):
  +0s  #1   sent       ChargeCard msg-1     ChargeCard(order_id='declined-1')
  +0s  #3   failed     ChargeCard msg-1     payments -> charge  attempt 1: CardDeclined: ca…
  +0s  #4   retried    ChargeCard msg-1     payments -> charge  attempt 2 in 1s
  +0s  #5   sent       PlaceOrder msg-2     PlaceOrder(order_id='o-9')
  +0s  #6   published    OrderPlaced msg-3  OrderPlaced(order_id='o-9')
  +0s  #7   sent         ChargeCard msg-4   ChargeCard(order_id='o-9')
  +0s  #8   handled    PlaceOrder msg-2     -> Orders.place
  +0s  #9   queued       OrderPlaced msg-3  notifications -> email_customer
  +0s  #10  queued       ChargeCard msg-4   payments -> charge

Pending (3; the clock stands at +0s):
  ChargeCard msg-1 on payments -> charge: retry, attempt 2, due at +1s
  OrderPlaced msg-3 on notifications -> email_customer: queued, attempt 1, runnable now
  ChargeCard msg-4 on payments -> charge: queued, attempt 1, runnable now
Hint: settling does not move the clock unless asked, and 1 message waits on a timer
  (next due at +1s). Opt in with @pytest.mark.conveyor(advance_time=True),
  or call messaging.settle(advance_time=True) or messaging.advance(...) first.

Failures (1):
  +0s #3 ChargeCard msg-1 -> charge, attempt 1: CardDeclined: card declined for declined-1
      raised at app.py:57 in charge

Seed 0; rerun: pytest test_flow.py::test_strict_teardown --conveyor-seed=0
""",
)


CASES = {
    "test_near_miss": NEAR_MISS,
    "test_retry_without_moving_the_clock": RETRY_WITHOUT_MOVING_THE_CLOCK,
    "test_wrong_number_of_attempts": WRONG_NUMBER_OF_ATTEMPTS,
    "test_published_but_should_not_be": PUBLISHED_BUT_SHOULD_NOT_BE,
    "test_one_of_several": ONE_OF_SEVERAL,
    "test_not_handled_because_dead_lettered": NOT_HANDLED_BECAUSE_DEAD_LETTERED,
    "test_strict_teardown": STRICT_TEARDOWN,
}


@pytest.mark.parametrize("name", list(CASES))
def test_failure_output_is_pinned(pytester: pytest.Pytester, name: str) -> None:
    source, expected = CASES[name]
    with_app(pytester, source)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    assert failure(result, name) == expected.rstrip("\n")


TEN_MESSAGES = """
def test_ten_messages(messaging):
    for number in range(3):
        messaging.send(PlaceOrder(f"o-{number}"))
    messaging.send(ChargeCard("declined-9"))
    messaging.assert_published(OrderPlaced(order_id="o-7"))
"""


def test_a_ten_message_flow_fits_one_screen_and_100_columns(pytester: pytest.Pytester) -> None:
    with_app(pytester, TEN_MESSAGES)

    result = pytester.runpytest("-p", "no:cacheprovider")

    printed = [line for line in result.outlines if line.startswith("E ")]
    assert len(printed) <= 50
    assert max(len(line) for line in printed) <= 100
    text = failure(result, "test_ten_messages")
    assert text.startswith("FlowAssertionError: OrderPlaced(order_id='o-7') was not published.")
    assert text.count(" sent ") + text.count(" published ") >= 10  # the whole flow is there
