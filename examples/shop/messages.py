"""The shop's messages: plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer: str
    total: Decimal


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: str
    total: Decimal


@dataclass(frozen=True)
class GenerateSalesReport:
    day: date


@dataclass(frozen=True)
class SalesReport:
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class OrderCount:
    pass
