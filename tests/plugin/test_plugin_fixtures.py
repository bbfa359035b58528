"""The plugin as a user installs it: fixtures, the marker, ini options and command-line options.

Every test runs pytest in a fresh directory (``pytester``) with no ``conftest.py`` unless the
test writes one: the plugin must load from its ``pytest11`` entry point alone.
"""

from __future__ import annotations

import pytest
from plugin_kit import APP, with_app


def test_the_plugin_loads_from_its_entry_point_and_lists_its_fixtures(pytester: pytest.Pytester):
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from pytest_conveyor.plugin*",
            "conveyor_setup -- *",
            "clock -- *",
            "messaging -- *",
            "messaging_factory -- *",
        ]
    )


def test_the_marker_is_registered_and_the_header_shows_the_seed(pytester: pytest.Pytester):
    pytester.makepyfile("def test_nothing(): pass")

    markers = pytester.runpytest("--markers")
    run = pytester.runpytest("--strict-markers", "--conveyor-seed=7")

    markers.stdout.fnmatch_lines(["@pytest.mark.conveyor(**options): configure the *"])
    run.stdout.fnmatch_lines(["conveyor: seed=7"])


def test_the_sketch_in_the_issue_passes_as_written(pytester: pytest.Pytester):
    with_app(
        pytester,
        """
def test_order_is_confirmed(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.assert_published(OrderPlaced(order_id="o-1"))
    messaging.assert_handled(email_customer, OrderPlaced)


@pytest.mark.conveyor(advance_time=True)
def test_card_declined_goes_to_dead_letter(messaging):
    messaging.send(ChargeCard("declined-2"))
    messaging.assert_retried(ChargeCard, delays=[timedelta(seconds=1), timedelta(seconds=2)])
    messaging.assert_dead_lettered(ChargeCard, exception=CardDeclined, attempts=3)
""",
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_each_test_gets_a_fresh_messaging_clock_ids_and_handler_instances(
    pytester: pytest.Pytester,
):
    with_app(
        pytester,
        """
from datetime import datetime, UTC

@pytest.mark.parametrize("order", ["o-1", "o-2"])
def test_fresh(messaging, clock, order):
    assert clock is messaging.clock
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    messaging.send(PlaceOrder(order))
    assert messaging.sent(PlaceOrder).one().message_id == "msg-1"
    [orders] = [s.function.__self__ for s in messaging.handlers if s.endpoint_id == "Orders.place"]
    assert orders.placed == [order]
    clock.advance(timedelta(hours=1))
""",
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_nearest_marker_wins_over_the_module_and_class(pytester: pytest.Pytester):
    with_app(
        pytester,
        """
pytestmark = [pytestmark, pytest.mark.conveyor(mode="inline", start="2030-05-01T09:00:00Z")]


class TestStartAndMode:
    pytestmark = pytest.mark.conveyor(start="2031-01-01T00:00:00+00:00")

    def test_class_start_and_module_mode(self, messaging):
        assert messaging.clock.now().year == 2031
        messaging.send(PlaceOrder("o-1"))
        assert not messaging.pending()  # inline: handled at send time

    @pytest.mark.conveyor(mode="queued")
    def test_own_marker(self, messaging):
        messaging.send(PlaceOrder("o-1"))
        assert len(messaging.pending()) == 2
        messaging.settle()
""",
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_conftest_configures_every_test_by_overriding_conveyor_setup(pytester: pytest.Pytester):
    pytester.makepyfile(app=APP)
    pytester.makeconftest("""
import pytest
from app import CHANNELS, HANDLERS

@pytest.fixture
def conveyor_setup(conveyor_setup):
    return conveyor_setup.replace(handlers=HANDLERS, channels=CHANNELS, advance_time=True)
""")
    pytester.makepyfile(
        test_conftest="""
from app import CardDeclined, ChargeCard

def test_configured_by_conftest(messaging):
    messaging.send(ChargeCard("declined-1"))
    messaging.assert_dead_lettered(ChargeCard, exception=CardDeclined, attempts=3)
"""
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_an_app_factory_builds_the_messaging(pytester: pytest.Pytester):
    pytester.makepyfile(
        app=APP
        + """

from conveyor import Messaging

def create_messaging(**kernel):
    return Messaging([Orders(), email_customer, charge], CHANNELS, **kernel)
"""
    )
    pytester.makepyfile(
        test_factory="""
import pytest
from app import OrderPlaced, PlaceOrder, create_messaging

@pytest.mark.conveyor(build=create_messaging)
def test_built_by_the_app(messaging):
    messaging.send(PlaceOrder("o-1"))
    messaging.assert_published(OrderPlaced("o-1"))
"""
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_ini_options_set_project_defaults(pytester: pytest.Pytester):
    pytester.makeini("""
[pytest]
conveyor_mode = inline
conveyor_advance_time = true
conveyor_start = 2027-03-01T12:00:00+00:00
""")
    with_app(
        pytester,
        """
def test_defaults(messaging):
    assert messaging.clock.now().isoformat() == "2027-03-01T12:00:00+00:00"
    messaging.send(PlaceOrder("declined-1"))
    assert not messaging.pending(OrderPlaced)  # inline
    messaging.assert_dead_lettered(ChargeCard, attempts=3)  # the clock moved
""",
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_seed_drives_jitter_the_same_way_every_run(pytester: pytest.Pytester):
    with_app(
        pytester,
        """
from conveyor import Backoff, QueueChannel, RetryPolicy, asynchronous, command_handler

JITTER = RetryPolicy(delays=Backoff.fixed(timedelta(seconds=10), jitter=0.5), attempts=2)


@asynchronous("refunds")
@command_handler
def refund(command: ChargeCard) -> None:
    raise CardDeclined("no refund")


@pytest.mark.conveyor(handlers=[refund], channels=[QueueChannel("refunds", retry=JITTER)])
def test_jitter(messaging):
    messaging.send(ChargeCard("o-1"))
    [retry] = messaging.retried(ChargeCard)
    print("DELAY", retry.delay.total_seconds())
    messaging.assert_pending(ChargeCard)
""",
    )

    def delay(*args: str) -> str:
        result = pytester.runpytest("-rP", "-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=1)
        return next(line for line in result.outlines if line.startswith("DELAY"))

    assert delay("--conveyor-seed=1") == delay("--conveyor-seed=1")
    assert delay("--conveyor-seed=1") != delay("--conveyor-seed=2")
    assert delay() == delay("--conveyor-seed=0")


def test_an_unknown_marker_option_is_a_usage_error_listing_the_options(
    pytester: pytest.Pytester,
):
    with_app(
        pytester,
        """
@pytest.mark.conveyor(advance_tme=True)
def test_typo(messaging):
    pass
""",
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(["*unknown conveyor option 'advance_tme'; known options: *"])
    result.assert_outcomes(errors=1)


def test_services_share_one_in_memory_broker(pytester: pytest.Pytester):
    with_app(
        pytester,
        """
from conveyor import QueueChannel, asynchronous, event_handler


@pytest.mark.conveyor(channels=[*CHANNELS, QueueChannel("billing", send_only=True)])
def test_the_shop_publishes_to_a_queue_billing_consumes(messaging, messaging_factory):
    billed = []

    @asynchronous("billing")
    @event_handler
    def bill(event: OrderPlaced) -> None:
        billed.append(event.order_id)

    billing = messaging_factory(handlers=[bill], channels=[QueueChannel("billing", bus=True)])
    messaging.event_bus("billing").publish(OrderPlaced("o-1"))
    messaging.assert_published(OrderPlaced("o-1"))  # settles the shop: it only sends
    assert billing.channels["billing"].pending() == 1
    billing.assert_handled(bill, OrderPlaced("o-1"))
    assert billed == ["o-1"]
    assert messaging.channels["billing"].pending() == 0  # one queue


def test_without_send_only_each_service_consumes_what_it_declares(messaging_factory):
    one = messaging_factory(handlers=[], channels=["jobs"])
    other = messaging_factory(handlers=[], channels=["jobs"])
    assert one.consumers() == other.consumers() == ["jobs"]
""",
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_services_share_one_clock_and_ids_and_settle_together(pytester: pytest.Pytester):
    with_app(
        pytester,
        """
from conveyor import Context, asynchronous, event_handler


def test_two_services(messaging, messaging_factory, clock):
    billing_calls = []

    @asynchronous("billing")
    @event_handler
    def bill(event: OrderPlaced, ctx: Context) -> None:
        billing_calls.append(ctx.now)

    billing = messaging_factory(handlers=[bill], channels=["billing"])

    @asynchronous("outbound")
    @event_handler
    def relay(event: OrderPlaced) -> None:
        billing.publish(event)

    shop = messaging_factory(handlers=[*HANDLERS, relay], channels=[*CHANNELS, "outbound"])
    assert billing.clock is shop.clock is messaging.clock is clock
    shop.send(PlaceOrder("o-1"))
    messaging_factory.advance(timedelta(seconds=5))

    billing.assert_handled(bill, OrderPlaced("o-1"))
    assert billing.published().one().message_id.startswith("msg-")
    assert billing.published().one().message_id not in {r.message_id for r in shop.sent()}
    assert len(messaging_factory) == 3
""",
    )

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
