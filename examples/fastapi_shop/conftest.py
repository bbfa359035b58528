"""The shop's test configuration: every test's ``async_messaging`` is the app's own, and a client.

``build_async`` makes the plugin build the harness around ``create_messaging`` (on the test's
virtual clock and ids); the client talks to the app in process through httpx's ASGI transport,
which runs no lifespan, so no consumer task runs: the test settles and steps time itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import pytest_asyncio

from conveyor.testing import AsyncHarness, Setup
from examples.fastapi_shop.app import create_app
from examples.fastapi_shop.shop import Shop, create_messaging


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def conveyor_setup(conveyor_setup: Setup, shop: Shop) -> Setup:
    return conveyor_setup.replace(build_async=partial(create_messaging, shop))


@pytest_asyncio.fixture
async def client(async_messaging: AsyncHarness, shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(shop, async_messaging.messaging)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        yield client
