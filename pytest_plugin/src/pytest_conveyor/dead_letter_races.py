"""Races on a dead-letter store: many replays of one letter, and a replay against a delete.

The kernel claims a letter (``DeadLetterStore.claim``) before it sends the message back, so
however many operators act on one letter at once, the message is sent at most once, and a
delete racing a replay ends in exactly one of the two. These helpers run such races, in threads
or in processes (for a store that processes share), and count what happened; they are
pytest-free so that the tests of a third-party store can run them too.

Every party's first call on the store waits at a barrier until all parties made theirs, so the
races overlap on every trial instead of by luck of the scheduler: a replay that read the letter
and sent it before taking it out of the store would send once per party, every time.
"""

from __future__ import annotations

import importlib
import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

from conveyor import DeadLetter, DeadLetterStore, Messaging
from conveyor.core.errors import DeadLetterNotFound
from conveyor.transports.seam import Transport

__all__ = [
    "Outcome",
    "Verb",
    "check_races",
    "letter",
    "race_in_processes",
    "race_in_threads",
    "sent_by_message",
]

Verb = Literal["replay", "delete"]

#: How long a party waits for the others at the barrier before the race is declared broken.
_BARRIER_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the parties of one trial did with one letter.

    Attributes:
        letter_id: the letter they raced for.
        replayed: replay calls that returned.
        deleted: delete calls that returned.
        not_found: calls refused with ``DeadLetterNotFound`` (another party had it).
        errors: any other exception, as ``type: message``.
    """

    letter_id: str
    replayed: int
    deleted: int
    not_found: int
    errors: tuple[str, ...] = ()

    @property
    def exactly_one(self) -> bool:
        """Exactly one party got the letter and every other was told it was gone."""
        return self.replayed + self.deleted == 1 and not self.errors


def letter(n: int | str, *, channel: str, endpoint_id: str, body: bytes) -> DeadLetter:
    """A letter of message ``race-<n>`` to plant in a store before a trial."""
    return DeadLetter(
        id=f"race-{n}@{endpoint_id}",
        message_id=f"race-{n}",
        channel=channel,
        endpoint_id=endpoint_id,
        message_type="Race",
        body=body,
        headers={"cv-id": f"race-{n}", "cv-type": "Race", "cv-endpoint": endpoint_id},
        reason="failed",
    )


class _Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


class _Gated:
    """A store whose first call (of any kind) after ``arm`` waits until every party made one."""

    def __init__(self, store: DeadLetterStore) -> None:
        self._store = store
        self._barrier: _Barrier | None = None

    def arm(self, barrier: _Barrier) -> None:
        self._barrier = barrier

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def first_call(*args: Any, **kwargs: Any) -> Any:
            barrier, self._barrier = self._barrier, None
            if barrier is not None:
                barrier.wait(_BARRIER_TIMEOUT)
            return attribute(*args, **kwargs)

        return first_call


def _act(messaging: Messaging, verb: Verb, letter_id: str) -> str:
    try:
        if verb == "replay":
            messaging.dead_letters.replay(letter_id)
        else:
            messaging.dead_letters.delete(letter_id)
    except DeadLetterNotFound:
        return "not found"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return verb


def _outcome(letter_id: str, results: Sequence[str]) -> Outcome:
    counted = Counter(results)
    return Outcome(
        letter_id=letter_id,
        replayed=counted["replay"],
        deleted=counted["delete"],
        not_found=counted["not found"],
        errors=tuple(r for r in results if r not in ("replay", "delete", "not found")),
    )


def race_in_threads(
    store: DeadLetterStore,
    build: Callable[[DeadLetterStore], Messaging],
    letter_ids: Sequence[str],
    verbs: Sequence[Verb],
) -> list[Outcome]:
    """One trial per letter: one thread per verb acts on it at once, each with its own Messaging.

    Args:
        store: the store the letters are planted in, shared by every party.
        build: a Messaging on the channel the letters came from, with ``dead_letters=`` the
            store it is given (the shared store behind a gate).
        letter_ids: the planted letters, one per trial.
        verbs: what each party does, for example ``["replay"] * 4`` or ``["replay", "delete"]``.
    """
    gates = [_Gated(store) for _ in verbs]
    parties = [build(gate) for gate in gates]
    outcomes = []
    for letter_id in letter_ids:
        barrier = threading.Barrier(len(verbs))
        results: list[str] = [""] * len(verbs)
        for gate in gates:
            gate.arm(barrier)

        def run(index: int, letter_id: str = letter_id, results: list[str] = results) -> None:
            results[index] = _act(parties[index], verbs[index], letter_id)

        threads = [threading.Thread(target=run, args=(index,)) for index in range(len(verbs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.append(_outcome(letter_id, results))
    return outcomes


def race_in_processes(
    app: str, argument: str, letter_ids: Sequence[str], verbs: Sequence[Verb]
) -> list[Outcome]:
    """As :func:`race_in_threads`, with one process per verb, started once for every trial.

    Args:
        app: ``"module:function"``; ``function(argument, gate)`` builds the process's Messaging
            with ``dead_letters=gate(store)``.
        argument: a string for ``function`` (a database path or a server URL).
    """
    context = multiprocessing.get_context("spawn")
    barriers = [context.Barrier(len(verbs)) for _ in letter_ids]
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(app, argument, verb, list(letter_ids), barriers, results, index),
        )
        for index, verb in enumerate(verbs)
    ]
    for worker in workers:
        worker.start()
    collected: dict[tuple[int, int], str] = {}
    for _ in range(len(verbs) * len(letter_ids)):
        trial, index, result = results.get(timeout=_BARRIER_TIMEOUT * 2)
        collected[(trial, index)] = result
    for worker in workers:
        worker.join(_BARRIER_TIMEOUT)
    return [
        _outcome(letter_id, [collected[(trial, index)] for index in range(len(verbs))])
        for trial, letter_id in enumerate(letter_ids)
    ]


def _worker(
    app: str,
    argument: str,
    verb: Verb,
    letter_ids: list[str],
    barriers: list[_Barrier],
    results: Any,
    index: int,
) -> None:
    module, _, function = app.partition(":")
    factory = getattr(importlib.import_module(module), function)
    gates: list[_Gated] = []

    def gate(store: DeadLetterStore) -> DeadLetterStore:
        gates.append(_Gated(store))
        return gates[-1]

    messaging = factory(argument, gate)
    try:
        for trial, letter_id in enumerate(letter_ids):
            for each in gates:
                each.arm(barriers[trial])
            results.put((trial, index, _act(messaging, verb, letter_id)))
    finally:
        messaging.close()


def sent_by_message(transport: Transport, channel: str) -> Counter[str]:
    """Receive and ack everything on ``channel``; how many copies of each message id arrived."""
    sent: Counter[str] = Counter()
    while True:
        found = transport.receive(channel, lease=timedelta(minutes=1), max_messages=100)
        if not found:
            return sent
        for delivery in found:
            sent[delivery.message.headers.get("cv-id", "")] += 1
            transport.ack(delivery)


def check_races(
    app: str, argument: str, verbs: Sequence[Verb], *, processes: bool, trials: int = 20
) -> list[Outcome]:
    """Plant ``trials`` letters, race ``verbs`` on each, and check that each ended in one.

    Args:
        app: ``"module:function"`` as for :func:`race_in_processes`; its Messaging declares the
            channel ``"orders"`` with an endpoint ``"place"``.
        argument: the string handed to the app's function.
        verbs: one party each, for example ``["replay"] * 3`` or ``["replay", "delete"]``.
        processes: race in processes (True) or in threads of this process (False).

    Raises:
        AssertionError: a letter was taken by no party or by several, a party failed otherwise,
            or a message was sent other than once per replay that returned.
    """
    module, _, function = app.partition(":")
    factory = getattr(importlib.import_module(module), function)
    observer: Messaging = factory(argument, lambda store: store)
    try:
        tag = "p" if processes else "t"
        ids = [
            observer.dead_letters.store.add(
                letter(f"{tag}{n}", channel="orders", endpoint_id="place", body=b"{}")
            )
            for n in range(trials)
        ]
        if processes:
            outcomes = race_in_processes(app, argument, ids, verbs)
        else:
            built: list[Messaging] = []

            def make(gated: DeadLetterStore) -> Messaging:
                built.append(factory(argument, lambda _: gated))
                return built[-1]

            try:
                outcomes = race_in_threads(observer.dead_letters.store, make, ids, verbs)
            finally:
                for messaging in built:
                    messaging.close()
        sent = sent_by_message(observer.channels["orders"].transport, "orders")
    finally:
        observer.close()
    wrong = [o for o in outcomes if not o.exactly_one or o.not_found != len(verbs) - 1]
    assert not wrong, f"letters not taken by exactly one party: {wrong}"
    expected = Counter({o.letter_id.split("@")[0]: 1 for o in outcomes if o.replayed})
    assert sent == expected, f"sent {dict(sent)}, expected once per replay: {dict(expected)}"
    return outcomes
