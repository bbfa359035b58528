"""Issue 2: the per-message cost of the synchronous buses, against a direct call and the peers.

Every row does the same work: a command handler adds the quantity to a total, three event
handlers each add it, a query handler returns a number. What differs is how the call gets there:

* direct: the handler function called by hand (three calls for the event);
* Conveyor ``send`` / ``publish`` / ``ask`` with the production features on (uuid v7 ids from
  ``UuidV7Ids``, ``SystemClock``, the journal bounded at 10,000 records: the ``Messaging()``
  defaults), and again with ``SequentialIds()`` + ``VirtualClock()`` (same bounded journal) to
  isolate what the ids and the clock cost;
* lato (``Application.execute`` / ``publish``; its messages are pydantic models, as lato requires);
* pymessagebus (``CommandBus.handle`` for commands and queries, ``MessageBus.handle`` for events;
  it has no query bus, its docs use a CommandBus with ``allow_result=True``, the default).

Messages are built once, outside the timed loop, for every bus (lato's pydantic construction and
its uuid4 are therefore not charged to lato).

Run alone: ``.venv/bin/python bench/bench_buses.py [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_ns, fmt_ratio, interleaved, print_table, summarize, title

from conveyor import (
    Journal,
    Messaging,
    SequentialIds,
    VirtualClock,
    command_handler,
    event_handler,
    query_handler,
)

TARGET_OVERHEAD_NS = 2_000  # issue 2: send costs at most 2 µs more than the direct call


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CountOrders:
    order_id: str


class Totals:
    """The handlers' shared state: the work every row does."""

    placed = 0
    seen = 0


@command_handler
def place(command: PlaceOrder) -> None:
    Totals.placed += command.quantity


@event_handler
def on_placed_a(event: OrderPlaced) -> None:
    Totals.seen += event.quantity


@event_handler
def on_placed_b(event: OrderPlaced) -> None:
    Totals.seen += event.quantity


@event_handler
def on_placed_c(event: OrderPlaced) -> None:
    Totals.seen += event.quantity


@query_handler
def count(query: CountOrders) -> int:
    return Totals.placed


HANDLERS = [place, on_placed_a, on_placed_b, on_placed_c, count]


def _direct_publish(event: OrderPlaced) -> None:
    on_placed_a(event)
    on_placed_b(event)
    on_placed_c(event)


def _lato_cases() -> dict[str, tuple[Any, object]] | str:
    try:
        import lato
    except ImportError:
        return "lato is not installed (bash scripts/setup --bench)"

    class PlaceOrderL(lato.Command):
        order_id: str
        quantity: int

    class OrderPlacedL(lato.Event):
        order_id: str
        quantity: int

    class CountOrdersL(lato.Query):
        order_id: str

    app = lato.Application("bench")

    @app.handler(PlaceOrderL)
    def place_l(command: PlaceOrderL) -> None:
        Totals.placed += command.quantity

    @app.handler(OrderPlacedL)
    def on_placed_a_l(event: OrderPlacedL) -> None:
        Totals.seen += event.quantity

    @app.handler(OrderPlacedL)
    def on_placed_b_l(event: OrderPlacedL) -> None:
        Totals.seen += event.quantity

    @app.handler(OrderPlacedL)
    def on_placed_c_l(event: OrderPlacedL) -> None:
        Totals.seen += event.quantity

    @app.handler(CountOrdersL)
    def count_l(query: CountOrdersL) -> int:
        return Totals.placed

    assert app.execute(CountOrdersL(order_id="o-1")) == Totals.placed
    return {
        "send": (app.execute, PlaceOrderL(order_id="o-1", quantity=1)),
        "publish": (app.publish, OrderPlacedL(order_id="o-1", quantity=1)),
        "ask": (app.execute, CountOrdersL(order_id="o-1")),
    }


def _pymessagebus_cases() -> dict[str, tuple[Any, object]] | str:
    try:
        from pymessagebus import CommandBus, MessageBus
    except ImportError:
        return "pymessagebus is not installed (bash scripts/setup --bench)"
    commands = CommandBus()
    commands.add_handler(PlaceOrder, place)
    events = MessageBus()
    for handler in (on_placed_a, on_placed_b, on_placed_c):
        events.add_handler(OrderPlaced, handler)
    queries = CommandBus(allow_result=True)
    queries.add_handler(CountOrders, count)
    assert queries.handle(CountOrders("o-1")) == Totals.placed
    return {
        "send": (commands.handle, PlaceOrder("o-1", 1)),
        "publish": (events.handle, OrderPlaced("o-1", 1)),
        "ask": (queries.handle, CountOrders("o-1")),
    }


def production_messaging() -> Messaging:
    return Messaging(handlers=HANDLERS)


def isolated_messaging() -> Messaging:
    return Messaging(
        handlers=HANDLERS,
        clock=VirtualClock(),
        ids=SequentialIds(),
        journal=Journal(max_records=10_000),
    )


def journal_bound(journal: object) -> str:
    """The journal's max_records, read from its deque (the Journal does not expose it)."""
    for name in ("max_records", "_entries", "_records"):
        value = getattr(journal, name, None)
        if isinstance(value, int):
            return f"{value:,}"
        if hasattr(value, "maxlen"):
            maxlen = value.maxlen  # type: ignore[union-attr]
            return "unbounded" if maxlen is None else f"{maxlen:,}"
    return "?"


def _features(messaging: Messaging) -> str:
    return (
        f"ids={type(messaging.ids).__name__}, clock={type(messaging.clock).__name__}, "
        f"journal max_records={journal_bound(messaging.journal)}"
    )


def main(quick: bool = False, profile: bool = False) -> None:
    number, repeats = (3_000, 5) if quick else (10_000, 7)
    prod = production_messaging()
    test = isolated_messaging()
    command, event, query = PlaceOrder("o-1", 1), OrderPlaced("o-1", 1), CountOrders("o-1")
    assert prod.ask(query) == test.ask(query) == Totals.placed

    rows_spec: list[tuple[str, str, tuple[Any, object]]] = [
        ("send", "direct call", (place, command)),
        ("send", "Conveyor (production)", (prod.send, command)),
        ("send", "Conveyor (SequentialIds+VirtualClock)", (test.send, command)),
        ("publish x3", "direct calls", (_direct_publish, event)),
        ("publish x3", "Conveyor (production)", (prod.publish, event)),
        ("publish x3", "Conveyor (SequentialIds+VirtualClock)", (test.publish, event)),
        ("ask", "direct call", (count, query)),
        ("ask", "Conveyor (production)", (prod.ask, query)),
        ("ask", "Conveyor (SequentialIds+VirtualClock)", (test.ask, query)),
    ]
    missing: list[str] = []
    for peer, cases in (("lato", _lato_cases()), ("pymessagebus", _pymessagebus_cases())):
        if isinstance(cases, str):
            missing.append(cases)
            continue
        for op, label in (("send", "send"), ("publish", "publish x3"), ("ask", "ask")):
            rows_spec.append((label, peer, cases[op]))
    order = ["send", "publish x3", "ask"]
    rows_spec.sort(key=lambda r: order.index(r[0]))  # stable: keeps the bus order per operation

    cases = {f"{op}|{bus}": spec for op, bus, spec in rows_spec}
    samples = interleaved(cases, number=number, repeats=repeats)

    title("Issue 2 - synchronous buses: cost per message (ns/op)")
    print(f"production features on: {_features(prod)}")
    print(f"isolation rows:         {_features(test)}")
    print(f"{number:,} calls per repeat, best of {repeats} interleaved repeats (median beside it)")
    print()
    rows = []
    for op, bus, _ in rows_spec:
        sample = samples[f"{op}|{bus}"]
        direct = samples[f"{op}|{'direct calls' if op == 'publish x3' else 'direct call'}"]
        rows.append(
            [
                op,
                bus,
                fmt_ns(sample.best),
                fmt_ns(sample.median),
                fmt_ratio(sample.best / direct.best),
                fmt_ns(sample.best - direct.best),
            ]
        )
    print_table(["operation", "bus", "ns/op", "median", "vs direct", "+ns vs direct"], rows, left=2)
    for reason in missing:
        print(f"(skipped: {reason})")

    title("Issue 2 - Conveyor against each peer (ratio = Conveyor / peer; below 1x is faster)")
    rows = []
    verdicts = []
    for op in order:
        conveyor = samples[f"{op}|Conveyor (production)"].best
        row = [op, fmt_ns(conveyor)]
        beaten = True
        for peer in ("lato", "pymessagebus"):
            peer_sample = samples.get(f"{op}|{peer}")
            if peer_sample is None:
                row += ["-", "-"]
                continue
            row += [fmt_ns(peer_sample.best), fmt_ratio(conveyor / peer_sample.best)]
            beaten = beaten and conveyor < peer_sample.best
        row.append("yes" if beaten else "NO")
        rows.append(row)
        verdicts.append(beaten)
    print_table(
        [
            "operation",
            "Conveyor ns",
            "lato ns",
            "vs lato",
            "pymessagebus ns",
            "vs pmb",
            "faster than all",
        ],
        rows,
    )
    for op, workload in (("send", "W1 send, one handler"), ("publish x3", "W1 publish x3")):
        peer_sample = samples.get(f"{op}|pymessagebus")
        if peer_sample is not None:  # issue 21: at most 3x pymessagebus, medians
            ratio = samples[f"{op}|Conveyor (production)"].median / peer_sample.median
            summarize(workload, ratio, against="pymessagebus", target=3)
    send = samples["send|Conveyor (production)"].best
    direct = samples["send|direct call"].best
    isolated = samples["send|Conveyor (SequentialIds+VirtualClock)"].best
    overhead_ns = (send - direct) * 1e9
    print()
    print(
        f"target 'send <= direct + 2 us': send costs +{overhead_ns:,.0f} ns over the direct "
        f"call -> {'MET' if overhead_ns <= TARGET_OVERHEAD_NS else 'MISSED'}"
        + (
            f" by {overhead_ns - TARGET_OVERHEAD_NS:,.0f} ns "
            f"({overhead_ns / TARGET_OVERHEAD_NS:.1f}x the budget)"
            if overhead_ns > TARGET_OVERHEAD_NS
            else ""
        )
    )
    print(f"target 'faster than every peer on every row': {'MET' if all(verdicts) else 'MISSED'}")
    print(
        f"uuid v7 ids + SystemClock cost {fmt_ns(send - isolated)} ns of the send "
        f"({(send - isolated) / send:.0%}); the rest is the kernel."
    )
    if profile:
        _profile(prod, command)


def _profile(messaging: Messaging, command: PlaceOrder) -> None:
    title("cProfile of 50,000 production sends (tottime, top 20)")
    profiler = cProfile.Profile()
    send = messaging.send
    profiler.enable()
    for _ in range(50_000):
        send(command)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of send")
    args = parser.parse_args()
    main(quick=args.quick, profile=args.profile)
