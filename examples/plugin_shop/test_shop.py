"""The shop's tests, written the way pytest-conveyor's README shows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from conveyor.testing import where
from examples.plugin_shop.shop import (
    CardDeclined,
    ChargeCard,
    OrderPlaced,
    PaymentReceived,
    PlaceOrder,
    email_customer,
)


def test_order_is_confirmed_and_paid(messaging, gateway):
    messaging.send(PlaceOrder("o-1", Decimal("20.00")))

    messaging.assert_published(OrderPlaced(order_id="o-1", total=Decimal("20.00")))
    messaging.assert_handled(email_customer, OrderPlaced)
    messaging.assert_published(where(PaymentReceived, order_id="o-1"))
    assert gateway.charged == [("o-1", Decimal("20.00"))]


def test_payment_is_caused_by_the_order(messaging):
    messaging.send(PlaceOrder("o-1", Decimal("20.00")))

    messaging.assert_caused_by(PaymentReceived, where(PlaceOrder, order_id="o-1"))
    messaging.assert_in_order(PlaceOrder, OrderPlaced, ChargeCard, PaymentReceived)


@pytest.mark.conveyor(advance_time=True)
def test_card_declined_goes_to_dead_letter(messaging, gateway):
    gateway.declined.add("o-2")

    messaging.send(PlaceOrder("o-2", Decimal("5.00")))

    messaging.assert_retried(ChargeCard, delays=[timedelta(seconds=1), timedelta(seconds=2)])
    messaging.assert_dead_lettered(ChargeCard, exception=CardDeclined, attempts=3)
    messaging.assert_not_published(PaymentReceived)


def test_a_declined_card_waits_for_its_retry_until_time_moves(messaging, gateway):
    gateway.declined.add("o-3")
    messaging.send(PlaceOrder("o-3", Decimal("5.00")))

    messaging.assert_failed(ChargeCard, exception=CardDeclined, attempt=1)
    messaging.assert_pending(ChargeCard, channel="payments", due_in=timedelta(seconds=1))

    gateway.declined.clear()
    messaging.advance(timedelta(seconds=1))
    messaging.assert_published(PaymentReceived(order_id="o-3", amount=Decimal("5.00")))


def test_the_email_waits_on_its_channel_until_settled(messaging):
    messaging.send(PlaceOrder("o-4", Decimal("1.00")))

    [waiting] = messaging.pending(OrderPlaced, by=email_customer)
    assert waiting.channel == "notifications"

    messaging.assert_handled(email_customer, OrderPlaced)
    messaging.assert_nothing_pending()


def test_the_flow_reads_the_same_on_every_run(messaging):
    messaging.send(PlaceOrder("o-5", Decimal("9.99")))
    messaging.settle()

    assert messaging.transcript() == TRANSCRIPT


TRANSCRIPT = """\
+0s sent PlaceOrder m1 = PlaceOrder(order_id='o-5', total=Decimal('9.99'))
+0s published OrderPlaced m2 <- m1 = OrderPlaced(order_id='o-5', total=Decimal('9.99'))
+0s sent ChargeCard m3 <- m2 = ChargeCard(order_id='o-5', amount=Decimal('9.99'))
+0s handled OrderPlaced m2 <- m1 -> Payments.request_payment
+0s handled PlaceOrder m1 -> Orders.place
+0s queued OrderPlaced m2 <- m1 on notifications -> email_customer
+0s queued ChargeCard m3 <- m2 on payments -> Payments.charge
+0s handled OrderPlaced m2 <- m1 on notifications -> email_customer
+0s published PaymentReceived m4 <- m3 = PaymentReceived(order_id='o-5', amount=Decimal('9.99'))
+0s handled ChargeCard m3 <- m2 on payments -> Payments.charge"""
