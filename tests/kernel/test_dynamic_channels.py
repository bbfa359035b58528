"""Dynamic channels: one name over concrete channels, on the in-memory and SQLite transports.

Each strategy is checked on send (which concrete channel the journal says a copy was queued on)
and on receive (which concrete channel each handling came from); then the unmapped-header rule,
internal channels refused everywhere else, retries and dead-letter replay back to the concrete
channel, and a property: round robin over N tenants never leaves a tenant with due messages
unpolled for more than N polls.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor import (
    Channel,
    ConfigurationError,
    Context,
    DynamicChannel,
    Messaging,
    Outbound,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    RoutingError,
    SequentialIds,
    VirtualClock,
    asynchronous,
    by_header,
    command_handler,
    round_robin,
    throttled,
)
from conveyor.testing import FlowAssertionError, Harness
from conveyor.transports.dynamic import VIA
from conveyor_sqlite import SqliteChannel

ChannelFactory = Callable[[str], Channel]


@dataclass(frozen=True)
class Place:
    n: int


class Boom(Exception):
    pass


@pytest.fixture(params=["memory", "sqlite"])
def concrete(request: pytest.FixtureRequest, tmp_path: Path) -> ChannelFactory:
    """Makes the concrete channels behind a dynamic channel, on one transport or the other."""
    if request.param == "memory":
        return QueueChannel
    path = tmp_path / "dynamic.db"
    return lambda name: SqliteChannel(name, path=path, synchronous="NORMAL")


def tenants(concrete: ChannelFactory, *names: str) -> list[Channel]:
    return [concrete(f"orders.{n}") for n in names]


def build(dynamic: DynamicChannel, *, fail: bool = False, **options: object) -> Messaging:
    handled: list[tuple[int, str | None]] = []

    @command_handler(endpoint_id="place")
    @asynchronous("orders")
    def place(command: Place, context: Context) -> None:
        handled.append((command.n, context.headers.get("tenant")))  # type: ignore[arg-type]
        if fail:
            raise Boom(f"order {command.n}")

    return Messaging(
        [place],
        [dynamic],
        clock=VirtualClock(),
        ids=SequentialIds(),
        log_failures=False,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def closing() -> Iterator[list[Messaging]]:
    opened: list[Messaging] = []
    yield opened
    for messaging in opened:
        messaging.close()


def queued_via(messaging: Messaging) -> list[str | None]:
    return [r.via for r in messaging.journal.of_kind(RecordKind.QUEUED)]


def handled_via(messaging: Messaging) -> list[str | None]:
    return [r.via for r in messaging.journal.of_kind(RecordKind.HANDLED)]


def held(messaging: Messaging, channel: str) -> int:
    inspectable = messaging.runtimes["orders"].inspectable
    assert inspectable is not None
    return inspectable.pending(channel)


# ---------------------------------------------------------------------- round robin


def test_round_robin_sends_to_each_channel_in_turn(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    messaging = build(DynamicChannel("orders", channels=tenants(concrete, "a", "b", "c")))
    closing.append(messaging)

    for n in range(5):
        messaging.send(Place(n))

    assert queued_via(messaging) == ["orders.a", "orders.b", "orders.c", "orders.a", "orders.b"]
    assert [r.channel for r in messaging.journal.of_kind(RecordKind.QUEUED)] == ["orders"] * 5
    assert [held(messaging, f"orders.{n}") for n in "abc"] == [2, 2, 1]


def test_round_robin_receives_from_each_channel_in_turn(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(concrete, "a", "b"),
            sending=by_header("tenant", {"a": "orders.a", "b": "orders.b"}),
        )
    )
    closing.append(messaging)
    for n in range(3):
        messaging.send(Place(n), headers={"tenant": "a"})
    messaging.send(Place(10), headers={"tenant": "b"})
    messaging.send(Place(11), headers={"tenant": "b"})

    messaging.run_until_idle()

    # Tenant b's messages are not stuck behind all of tenant a's.
    assert handled_via(messaging) == ["orders.a", "orders.b", "orders.a", "orders.b", "orders.a"]
    assert all(r.channel == "orders" for r in messaging.journal.of_kind(RecordKind.HANDLED))


def test_round_robin_over_a_subset_of_the_channels(closing: list[Messaging]) -> None:
    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(QueueChannel, "a", "b", "c"),
            sending=round_robin("orders.b", "orders.c"),
        )
    )
    closing.append(messaging)
    for n in range(3):
        messaging.send(Place(n))
    assert queued_via(messaging) == ["orders.b", "orders.c", "orders.b"]


# ---------------------------------------------------------------------- by header


def test_by_header_maps_a_value_to_its_channel_and_the_rest_to_the_default(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(concrete, "big", "shared"),
            sending=by_header("tenant", {"acme": "orders.big"}, default="orders.shared"),
        )
    )
    closing.append(messaging)

    messaging.send(Place(1), headers={"tenant": "acme"})
    messaging.send(Place(2), headers={"tenant": "unknown-co"})  # unmapped: the default
    messaging.send(Place(3))  # no header: the default

    assert queued_via(messaging) == ["orders.big", "orders.shared", "orders.shared"]
    messaging.run_until_idle()
    assert sorted(handled_via(messaging)) == ["orders.big", "orders.shared", "orders.shared"]


def test_by_header_without_a_default_refuses_an_unmapped_value_at_send(
    closing: list[Messaging],
) -> None:
    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(QueueChannel, "acme", "globex"),
            sending=by_header("tenant", {"acme": "orders.acme", "globex": "orders.globex"}),
        )
    )
    closing.append(messaging)

    with pytest.raises(RoutingError) as unmapped:
        messaging.send(Place(1), headers={"tenant": "initech"})
    assert str(unmapped.value) == (
        "Place cannot go to dynamic channel 'orders': it sends by header 'tenant' and the "
        "message has tenant='initech' (mapped values: 'acme', 'globex'), and no default is "
        "declared. Send it with one of those values, or declare by_header('tenant', ..., "
        "default=...)."
    )
    with pytest.raises(RoutingError, match="has no such header"):
        messaging.send(Place(2))
    assert queued_via(messaging) == []
    assert held(messaging, "orders") == 0


def test_by_header_without_a_mapping_takes_the_value_as_the_channel_name(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(concrete, "a", "b"),
            sending=by_header("queue"),
        )
    )
    closing.append(messaging)

    messaging.send(Place(1), headers={"queue": "orders.b"})
    messaging.send(Place(2), headers={"queue": "orders.a"})
    with pytest.raises(RoutingError, match=r"its channels: orders\.a, orders\.b"):
        messaging.send(Place(3), headers={"queue": "orders.z"})

    assert queued_via(messaging) == ["orders.b", "orders.a"]


def test_a_mapping_to_a_channel_the_dynamic_channel_lacks_is_refused_when_declared() -> None:
    with pytest.raises(ConfigurationError, match=r"sends by header 'tenant' to 'orders\.z'"):
        DynamicChannel(
            "orders",
            channels=[QueueChannel("orders.a")],
            sending=by_header("tenant", {"z": "orders.z"}),
        )


# ---------------------------------------------------------------------- throttling


def test_throttling_skips_a_channel_and_takes_nothing_from_it(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    paused = {"orders.a"}
    asked: list[tuple[str, datetime]] = []

    def allow(channel: str, now: datetime) -> bool:
        asked.append((channel, now))
        return channel not in paused

    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(concrete, "a", "b"),
            sending=by_header("tenant", {"a": "orders.a", "b": "orders.b"}),
            receiving=throttled(allow),
        )
    )
    closing.append(messaging)
    messaging.send(Place(1), headers={"tenant": "a"})
    messaging.send(Place(2), headers={"tenant": "b"})
    messaging.send(Place(3), headers={"tenant": "b"})

    messaging.run_until_idle()

    assert handled_via(messaging) == ["orders.b", "orders.b"]
    assert held(messaging, "orders.a") == 1  # skipped polls consumed nothing
    assert {channel for channel, _ in asked} == {"orders.a", "orders.b"}
    assert all(now == messaging.clock.now() for _, now in asked)

    paused.clear()
    messaging.run_until_idle()
    assert handled_via(messaging) == ["orders.b", "orders.b", "orders.a"]
    assert held(messaging, "orders") == 0


# ---------------------------------------------------------------------- custom strategies


def test_custom_strategies_are_plain_functions(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    seen: list[Outbound] = []

    def by_size(outbound: Outbound) -> str:
        seen.append(outbound)
        return "orders.big" if outbound.headers.get("size") == "big" else "orders.small"

    order = iter(["orders.small", "orders.small", None, "orders.big", "orders.small"])

    def next_poll() -> str | None:
        return next(order, "orders.small")

    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(concrete, "big", "small"),
            sending=by_size,
            receiving=next_poll,
        )
    )
    closing.append(messaging)
    messaging.send(Place(1), headers={"size": "big"})
    messaging.send(Place(2))
    messaging.send(Place(3))

    assert queued_via(messaging) == ["orders.big", "orders.small", "orders.small"]
    assert seen[0] == Outbound("orders", "Place", "place", {"size": "big"})
    messaging.run_until_idle()
    # small, small, (skipped), big: the skipped poll took nothing
    assert handled_via(messaging) == ["orders.small", "orders.small", "orders.big"]


def test_a_custom_sending_function_that_names_another_channel_fails_at_send(
    closing: list[Messaging],
) -> None:
    messaging = build(
        DynamicChannel(
            "orders", channels=tenants(QueueChannel, "a"), sending=lambda outbound: "billing"
        )
    )
    closing.append(messaging)
    with pytest.raises(RoutingError, match=r"chose 'billing' for Place, which is not one of"):
        messaging.send(Place(1))


def test_a_custom_receiving_function_that_names_another_channel_fails_when_polled(
    closing: list[Messaging],
) -> None:
    messaging = build(
        DynamicChannel("orders", channels=tenants(QueueChannel, "a"), receiving=lambda: "nope")
    )
    closing.append(messaging)
    messaging.send(Place(1))
    with pytest.raises(ConfigurationError, match=r"chose 'nope', which is not one of its"):
        messaging.run_until_idle()


# ---------------------------------------------------------------------- internal channels


def test_an_internal_channel_cannot_be_an_asynchronous_target() -> None:
    @command_handler
    @asynchronous("orders.a")
    def place(command: Place) -> None: ...

    with pytest.raises(ConfigurationError) as refused:
        Messaging([place], [DynamicChannel("orders", channels=[QueueChannel("orders.a")])])
    assert "is @asynchronous on channel 'orders.a', which is internal to dynamic channel " in str(
        refused.value
    )
    assert "Use 'orders' instead" in str(refused.value)


def test_an_internal_channel_cannot_be_run_on_its_own(closing: list[Messaging]) -> None:
    messaging = build(DynamicChannel("orders", channels=tenants(QueueChannel, "a", "b")))
    closing.append(messaging)

    assert messaging.consumers() == ["orders"]
    assert messaging.internal_channels == {"orders.a": "orders", "orders.b": "orders"}
    with pytest.raises(ConfigurationError, match=r"run\(\) was asked for channel 'orders\.a'"):
        messaging.run("orders.a")
    with pytest.raises(ConfigurationError, match=r"asynchronous bus uses channel 'orders\.b'"):
        messaging.command_bus("orders.b").send(Place(1))


def test_an_internal_channel_cannot_also_be_declared_on_its_own() -> None:
    with pytest.raises(ConfigurationError, match=r"internal to dynamic channel 'orders' and also"):
        Messaging(
            [],
            [DynamicChannel("orders", channels=[QueueChannel("orders.a")]), "orders.a"],
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"channels": []}, "has no channels"),
        ({"channels": [QueueChannel("a"), QueueChannel("a")]}, "declares channel 'a' twice"),
        ({"channels": [QueueChannel("orders")]}, "declares channel 'orders' twice"),
        (
            {"channels": [QueueChannel("a")], "sending": round_robin("b")},
            r"round_robin\('b'\), but 'b' is not one of its channels",
        ),
        ({"channels": [QueueChannel("a")], "receiving": "a"}, "has receiving='a'"),
        (
            {"channels": [DynamicChannel("inner", channels=[QueueChannel("a")])]},
            "takes concrete channel definitions",
        ),
    ],
)
def test_a_dynamic_channel_is_checked_when_declared(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DynamicChannel("orders", **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- retries, dead letters


def test_a_retried_message_goes_back_to_the_concrete_channel_it_came_from(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    messaging = build(
        DynamicChannel(
            "orders",
            channels=tenants(concrete, "a", "b"),
            retry=RetryPolicy(delays=[timedelta(seconds=1)], attempts=2),
        ),
        fail=True,
    )
    closing.append(messaging)
    messaging.send(Place(1))  # round robin: orders.a; the next send would go to orders.b

    messaging.run_until_idle()
    assert held(messaging, "orders.a") == 1
    assert held(messaging, "orders.b") == 0
    (retried,) = messaging.journal.of_kind(RecordKind.RETRIED)
    assert (retried.channel, retried.via) == ("orders", "orders.a")

    messaging.run_until_idle(advance_time=True)
    failed = messaging.journal.of_kind(RecordKind.FAILED)
    assert [(r.attempt, r.via) for r in failed] == [(1, "orders.a"), (2, "orders.a")]
    (letter,) = messaging.dead_letters.list()
    assert letter.channel == "orders"
    assert letter.headers[VIA] == "orders.a"


def test_a_replayed_dead_letter_goes_back_to_its_concrete_channel(
    concrete: ChannelFactory, closing: list[Messaging]
) -> None:
    messaging = build(DynamicChannel("orders", channels=tenants(concrete, "a", "b")), fail=True)
    closing.append(messaging)
    messaging.send(Place(1))  # orders.a
    messaging.send(Place(2))  # orders.b
    messaging.run_until_idle()
    letters = {letter.headers[VIA]: letter for letter in messaging.dead_letters.list()}
    dead = messaging.journal.of_kind(RecordKind.DEAD_LETTERED)
    assert sorted(r.via or "" for r in dead) == ["orders.a", "orders.b"]

    messaging.dead_letters.replay(letters["orders.b"].id)

    assert held(messaging, "orders.b") == 1
    assert held(messaging, "orders.a") == 0
    (replayed,) = messaging.journal.of_kind(RecordKind.REPLAYED)
    assert (replayed.channel, replayed.via) == ("orders", "orders.b")
    messaging.run_until_idle()
    assert messaging.journal.of_kind(RecordKind.FAILED)[-1].via == "orders.b"


def test_the_harness_names_both_channels(closing: list[Messaging]) -> None:
    messaging = build(DynamicChannel("orders", channels=tenants(QueueChannel, "a", "b")))
    closing.append(messaging)
    harness = Harness(messaging)
    messaging.send(Place(1))
    messaging.send(Place(2))

    assert [(p.channel, p.via) for p in harness.pending(channel="orders.b")] == [
        ("orders", "orders.b")
    ]
    assert [p.where for p in harness.pending()] == ["orders[orders.a]", "orders[orders.b]"]
    harness.assert_handled(Place, times=2)
    assert [r.where for r in harness.handled(Place)] == ["orders[orders.a]", "orders[orders.b]"]

    with pytest.raises(FlowAssertionError) as failed:
        harness.assert_handled(Place(3))
    timeline = str(failed.value)
    assert "Place msg-1  orders[orders.a] -> place" in timeline
    assert "Place msg-2  orders[orders.b] -> place" in timeline


# ---------------------------------------------------------------------- fairness, as a property


def tenant_polls(
    concrete: ChannelFactory, tenant_count: int, script: list[int | None]
) -> list[tuple[dict[str, int], str | None]]:
    """Run ``script`` (a tenant's send, or None for one poll) on a round robin over tenants.

    Returns, for each poll, what each tenant had waiting before it and the channel it served.
    """
    names = [f"orders.t{i}" for i in range(tenant_count)]
    messaging = build(
        DynamicChannel(
            "orders",
            channels=[concrete(n) for n in names],
            sending=by_header("tenant", {n: n for n in names}),
        )
    )
    polls: list[tuple[dict[str, int], str | None]] = []
    waiting = dict.fromkeys(names, 0)
    try:
        for step in script:
            if step is not None:
                messaging.send(Place(len(polls)), headers={"tenant": names[step]})
                waiting[names[step]] += 1
                continue
            before = dict(waiting)
            result = messaging.run("orders", limit=1, finish_when_empty=True)
            handled = messaging.journal.of_kind(RecordKind.HANDLED)
            served = handled[-1].via if result.processed else None
            if served is not None:
                waiting[served] -= 1
            polls.append((before, served))
    finally:
        messaging.close()
    return polls


def assert_fair(polls: list[tuple[dict[str, int], str | None]], tenant_count: int) -> None:
    """No tenant with messages waiting goes more than N polls without being served."""
    unserved: dict[str, int] = {}
    for before, served in polls:
        for tenant, count in before.items():
            if count and tenant != served:
                unserved[tenant] = unserved.get(tenant, 0) + 1
                assert unserved[tenant] <= tenant_count, (tenant, polls)
            else:
                unserved[tenant] = 0
        if any(before.values()):
            assert served is not None, "a poll found nothing while messages were waiting"


scripts = st.integers(min_value=1, max_value=5).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=n - 1)), max_size=40),
    )
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(scripts)
def test_round_robin_never_leaves_a_tenant_unpolled_for_more_than_n_polls_in_memory(
    case: tuple[int, list[int | None]],
) -> None:
    tenant_count, script = case
    assert_fair(tenant_polls(QueueChannel, tenant_count, script), tenant_count)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(scripts)
def test_round_robin_never_leaves_a_tenant_unpolled_for_more_than_n_polls_on_sqlite(
    case: tuple[int, list[int | None]],
) -> None:
    tenant_count, script = case
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fair.db"
        polls = tenant_polls(
            lambda name: SqliteChannel(name, path=path, synchronous="NORMAL"), tenant_count, script
        )
    assert_fair(polls, tenant_count)
