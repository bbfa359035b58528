"""Claim-then-send: replays and deletes of one letter never send it twice, nor send a deleted one.

Also: adding the n-th letter reads no other letter, ``add`` never overwrites and returns the id
it used, "not found" errors list a bounded sample, and any stored ``cv-replayed`` value replays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from failure_kit import ChargeCard, Flaky, PaymentDeclined, build

from conveyor import (
    DeadLetter,
    DeadLetterStore,
    InMemoryDeadLetterStore,
    Messaging,
    TransportError,
    asynchronous,
    command_handler,
)
from conveyor.core.errors import DeadLetterNotFound
from conveyor.core.journal import ExceptionInfo
from conveyor.core.lifecycle import MAX_REPLAYED
from conveyor.core.wire import H
from conveyor.transports.seam import WireMessage
from pytest_conveyor.dead_letter_races import letter, race_in_threads, sent_by_message

TRIALS = 20


@asynchronous("orders")
@command_handler(endpoint_id="charge")
def charge(command: ChargeCard) -> None:
    raise PaymentDeclined("declined")


def plant(store: DeadLetterStore, trials: int = TRIALS) -> list[str]:
    return [
        store.add(letter(n, channel="orders", endpoint_id="charge", body=b'{"order_id":"o"}'))
        for n in range(trials)
    ]


def parties(store: DeadLetterStore) -> tuple[list[Messaging], Any]:
    built: list[Messaging] = []

    def make(gated: DeadLetterStore) -> Messaging:
        built.append(build([charge], ["orders"], dead_letters=gated))
        return built[-1]

    return built, make


def sent(built: list[Messaging]) -> Counter[str]:
    total: Counter[str] = Counter()
    for messaging in built:
        total += sent_by_message(messaging.channels["orders"].transport, "orders")
    return total


def test_concurrent_replays_of_one_letter_send_it_once() -> None:
    store = InMemoryDeadLetterStore()
    ids = plant(store)
    built, make = parties(store)

    outcomes = race_in_threads(store, make, ids, ["replay"] * 4)

    assert [(o.replayed, o.not_found, o.errors) for o in outcomes] == [(1, 3, ())] * TRIALS
    assert sent(built) == Counter({f"race-{n}": 1 for n in range(TRIALS)})
    assert store.count() == 0


def test_a_delete_racing_a_replay_ends_in_exactly_one_of_the_two() -> None:
    store = InMemoryDeadLetterStore()
    ids = plant(store)
    built, make = parties(store)

    outcomes = race_in_threads(store, make, ids, ["replay", "delete"])

    assert all(o.exactly_one and o.not_found == 1 for o in outcomes), outcomes
    copies = sent(built)
    replayed = {o.letter_id.split("@")[0] for o in outcomes if o.replayed}
    assert copies == Counter(dict.fromkeys(replayed, 1))  # no deleted letter was sent
    assert store.count() == 0


class FailingSend:
    """Wraps a transport so that its next send raises."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def send(self, *args: object, **kwargs: object) -> None:
        raise TransportError("broker down")


def test_a_letter_whose_send_fails_is_put_back() -> None:
    store = InMemoryDeadLetterStore()
    [letter_id] = plant(store, 1)
    messaging = build([charge], ["orders"], dead_letters=store)
    runtime = messaging.runtimes["orders"]
    healthy = runtime.transport
    object.__setattr__(runtime, "transport", FailingSend(healthy))
    try:
        with pytest.raises(TransportError):
            messaging.dead_letters.replay(letter_id)
    finally:
        object.__setattr__(runtime, "transport", healthy)

    assert [d.id for d in store.list()] == [letter_id]
    messaging.dead_letters.replay(letter_id)
    assert store.count() == 0


@pytest.mark.parametrize(
    "stored",
    ["not a number", "", "-3", "1e9", "9" * 4300, "9" * 5000, "\u0663", " 7 ", "nan"],
)
def test_any_stored_replay_count_can_be_replayed(stored: str) -> None:
    store = InMemoryDeadLetterStore()
    planted = letter(1, channel="orders", endpoint_id="charge", body=b'{"order_id":"o"}')
    letter_id = store.add(replace(planted, headers={**planted.headers, H.REPLAYED: stored}))
    messaging = build([charge], ["orders"], dead_letters=store)

    messaging.dead_letters.replay(letter_id)

    [delivery] = messaging.channels["orders"].transport.receive(
        "orders", lease=timedelta(minutes=1)
    )
    count = int(delivery.message.headers[H.REPLAYED])
    assert 1 <= count <= MAX_REPLAYED + 1


def test_add_never_overwrites_and_returns_the_id_it_used() -> None:
    store = InMemoryDeadLetterStore()
    first = letter(1, channel="orders", endpoint_id="charge", body=b"1")

    ids = [store.add(replace(first, body=str(n).encode())) for n in range(3)]

    assert ids == ["race-1@charge", "race-1@charge#2", "race-1@charge#3"]
    assert [(d.id, d.body) for d in store.list()] == list(zip(ids, [b"0", b"1", b"2"], strict=True))


class CountingStore(InMemoryDeadLetterStore):
    """Counts every read of the store other than ``add``."""

    reads = 0

    def get(self, letter_id: str) -> DeadLetter:
        CountingStore.reads += 1
        return super().get(letter_id)

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        CountingStore.reads += 1
        return super().list(limit=limit, offset=offset)


def test_dead_lettering_reads_nothing_from_the_store_and_uses_the_id_add_returned() -> None:
    store = CountingStore()
    messaging = build([charge_handler()], ["orders"], dead_letters=store)
    for _ in range(3):  # three deliveries of one message: three letters of one copy
        messaging.channels["orders"].transport.send("orders", _wire())
    messaging.run_until_idle()

    assert CountingStore.reads == 0
    ids = [d.id for d in store.list()]
    assert ids == ["msg-1@charge", "msg-1@charge#2", "msg-1@charge#3"]
    details = [r.detail or "" for r in messaging.journal if r.kind.value == "dead_lettered"]
    assert [d.rsplit("dead letter ", 1)[1] for d in details] == ids


def charge_handler() -> object:
    flaky = Flaky(None, PaymentDeclined)

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    return charge


def _wire() -> WireMessage:
    """The wire form of one ChargeCard, as the kernel sends it."""
    return WireMessage(
        b'{"order_id":"o-1"}',
        {H.ID: "msg-1", H.TYPE: "ChargeCard", H.ENDPOINT: "charge"},
    )


@pytest.fixture
def many_letters() -> InMemoryDeadLetterStore:
    store = InMemoryDeadLetterStore()
    for n in range(1000):
        store.add(letter(n, channel="orders", endpoint_id="charge", body=b""))
    return store


def test_not_found_lists_a_bounded_sample(many_letters: InMemoryDeadLetterStore) -> None:
    with pytest.raises(DeadLetterNotFound) as raised:
        many_letters.claim("nope")

    assert str(raised.value) == (
        "no dead letter with id 'nope'; the store holds 1000: race-0@charge, race-1@charge, "
        "race-2@charge, race-3@charge, race-4@charge and 995 more. List them with "
        "messaging.dead_letters.list() or `conveyor dead-letter list`."
    )


def test_the_in_memory_store_formats_a_traceback_when_the_letter_is_first_read() -> None:
    try:
        raise PaymentDeclined("declined for o-1")
    except PaymentDeclined as error:
        failure = ExceptionInfo.capture(error)
    store = InMemoryDeadLetterStore()
    planted = letter(1, channel="orders", endpoint_id="charge", body=b"{}")
    first = store.add(planted, failure=failure)
    second = store.add(planted, failure=failure)  # the same id: kept as "<id>#2"

    assert failure.text is None  # nothing formatted while adding
    assert [found.traceback for found in store.list()] == [failure.traceback] * 2
    assert store.get(first).traceback == store.claim(second).traceback == failure.traceback
    assert failure.traceback.rstrip().endswith("PaymentDeclined: declined for o-1")
