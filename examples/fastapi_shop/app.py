"""The HTTP side: ``POST /orders`` sends a command and answers 202 before it is handled.

``create_app`` takes the ``AsyncMessaging`` it sends through, so tests hand it one built on their
virtual clock. In production the app's lifespan opens the channels and runs a consumer task per
channel until shutdown, which stops them taking messages and waits for those in flight::

    uvicorn --factory examples.fastapi_shop.app:production_app
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

from conveyor import AsyncMessaging
from examples.fastapi_shop.shop import PlaceOrder, Shop, create_messaging


class OrderIn(BaseModel):
    order_id: str
    email: str


class OrderOut(BaseModel):
    order_id: str
    status: str


def create_app(shop: Shop, messaging: AsyncMessaging, *, consume: bool = False) -> FastAPI:
    """The API over ``shop``; with ``consume``, its lifespan runs the channels' consumers."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with messaging:
            consumers = [
                asyncio.create_task(messaging.run(name, finish_when_empty=False))
                for name in (messaging.consumers() if consume else [])
            ]
            try:
                yield
            finally:
                messaging.request_stop()
                await asyncio.gather(*consumers)

    app = FastAPI(title="shop", lifespan=lifespan)

    @app.post("/orders", status_code=202)
    async def place_order(order: OrderIn) -> OrderOut:
        await messaging.send(PlaceOrder(order.order_id, order.email))
        return OrderOut(order_id=order.order_id, status="accepted")

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> OrderOut:
        return OrderOut(order_id=order_id, status=shop.status(order_id))

    return app


def production_app() -> FastAPI:
    """The app on the system clock, consuming its own channels (``uvicorn --factory``)."""
    shop = Shop()
    return create_app(shop, create_messaging(shop), consume=True)
