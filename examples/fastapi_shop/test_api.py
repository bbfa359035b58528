"""The shop API's tests: a command handled asynchronously, a follow-up stepped in virtual time."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from conveyor.testing import AsyncHarness
from examples.fastapi_shop.shop import REVIEW_DELAY, OrderPlaced, PlaceOrder, Shop

pytestmark = pytest.mark.asyncio

ORDER = {"order_id": "o-1", "email": "ada@example.com"}


async def test_posting_an_order_answers_before_the_order_is_placed(
    client: httpx.AsyncClient, async_messaging: AsyncHarness, shop: Shop
) -> None:
    response = await client.post("/orders", json=ORDER)

    assert response.status_code == 202
    assert response.json() == {"order_id": "o-1", "status": "accepted"}
    assert shop.placed == {}  # queued on "orders": no consumer has run yet
    await async_messaging.assert_pending(PlaceOrder(order_id="o-1", email="ada@example.com"))


async def test_the_order_is_placed_once_the_consumer_has_run(
    client: httpx.AsyncClient, async_messaging: AsyncHarness, shop: Shop
) -> None:
    await client.post("/orders", json=ORDER)

    await async_messaging.assert_published(OrderPlaced(order_id="o-1", email="ada@example.com"))
    response = await client.get("/orders/o-1")
    assert response.json() == {"order_id": "o-1", "status": "placed"}
    await async_messaging.assert_pending(by=shop.ask_for_review)  # in three days


async def test_the_review_request_follows_three_days_later(
    client: httpx.AsyncClient, async_messaging: AsyncHarness, shop: Shop
) -> None:
    start = async_messaging.clock.now()
    await client.post("/orders", json=ORDER)
    await async_messaging.settle()  # the order is placed; the review request waits

    await async_messaging.assert_pending(OrderPlaced, by=shop.ask_for_review, due_in=REVIEW_DELAY)
    await async_messaging.advance(REVIEW_DELAY - timedelta(seconds=1))
    assert shop.outbox == []
    await async_messaging.advance(timedelta(seconds=1))

    await async_messaging.assert_handled(shop.ask_for_review, OrderPlaced)
    assert shop.outbox == [("ada@example.com", "How was order o-1?")]
    assert async_messaging.clock.now() - start == REVIEW_DELAY


@pytest.mark.conveyor(advance_time=True)
async def test_settling_with_time_runs_the_whole_flow_in_microseconds(
    client: httpx.AsyncClient, async_messaging: AsyncHarness, shop: Shop
) -> None:
    await client.post("/orders", json=ORDER)
    await client.post("/orders", json={"order_id": "o-2", "email": "bob@example.com"})

    await async_messaging.assert_handled(shop.ask_for_review, times=2)
    assert [address for address, _ in shop.outbox] == ["ada@example.com", "bob@example.com"]
