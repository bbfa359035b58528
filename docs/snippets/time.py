from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conveyor import Messaging, QueueChannel, VirtualClock, asynchronous, delayed, event_handler

reminded: list[str] = []


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@asynchronous("reminders")
@delayed(timedelta(hours=24))
@event_handler
def remind_unpaid(event: OrderPlaced) -> None:
    reminded.append(event.order_id)


clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
messaging = Messaging(handlers=[remind_unpaid], channels=[QueueChannel("reminders")], clock=clock)
messaging.publish(OrderPlaced("o-1"))
messaging.advance(timedelta(hours=23))
assert reminded == []  # not due yet
messaging.advance(timedelta(hours=1))
assert reminded == ["o-1"]  # at exactly 24 h
