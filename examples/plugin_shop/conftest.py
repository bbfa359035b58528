"""The shop's test configuration: which handlers and channels every test's `messaging` has."""

from __future__ import annotations

from decimal import Decimal

import pytest

from examples.plugin_shop import shop


class FakeGateway:
    """Declines the cards it was told to decline, accepts the others."""

    def __init__(self) -> None:
        self.declined: set[str] = set()
        self.charged: list[tuple[str, Decimal]] = []

    def charge(self, order_id: str, amount: Decimal) -> None:
        if order_id in self.declined:
            raise shop.CardDeclined(f"card declined for {order_id}")
        self.charged.append((order_id, amount))


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def conveyor_setup(conveyor_setup, gateway):
    return conveyor_setup.replace(handlers=shop.handlers(gateway), channels=shop.channels())
