from dataclasses import dataclass

from conveyor import (
    Context,
    Messaging,
    Query,
    QueryBus,
    command_handler,
    event_handler,
    query_handler,
)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class CountOrders(Query[int]):  # a query whose answer is an int
    pass


class Orders:
    def __init__(self) -> None:
        self.placed: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.placed.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id))

    @query_handler
    def count(self, query: CountOrders) -> int:
        return len(self.placed)


@event_handler
def audit(event: OrderPlaced) -> None: ...


messaging = Messaging(handlers=[Orders(), audit])
messaging.send(PlaceOrder("o-1"), headers={"tenant": "acme"})
assert messaging.ask(CountOrders()) == 1


def orders_so_far(queries: QueryBus) -> int:
    return queries.ask(CountOrders())  # an int to mypy --strict too, not Any


assert orders_so_far(messaging) == 1
