"""Reading a flow out of the journal: copies, their states, what is pending, what caused what.

The journal is the single source of truth for tests (DESIGN rule 6): every step of every message
is a record. This module folds those records into the shapes assertions need: each *copy* of a
message for one endpoint with its current state, the copies still waiting on a channel (and
when they are due), and the causal parent of each message. It is pure: records in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from conveyor.core.journal import Record, RecordKind
from conveyor.core.lifecycle import TRANSITIONS, CopyState

__all__ = [
    "CopyKey",
    "Copy",
    "Pending",
    "FINAL_KINDS",
    "FAILURE_KINDS",
    "BUS_KINDS",
    "fold_copies",
    "pending_copies",
    "causal_parents",
    "ancestors",
    "causal_depths",
    "first_bus_records",
]

CopyKey = tuple[str, str]
"""A copy of a message for one endpoint: ``(message id, endpoint id)``."""

FINAL_KINDS = frozenset(kind for kind, state in TRANSITIONS.items() if state is CopyState.FINAL)
"""Records after which a copy has nothing more to do (until a dead letter is replayed); the
kernel's own transition table (``conveyor.core.lifecycle.TRANSITIONS``) says which."""

_WAITING_NAMES = {RecordKind.RETRIED: "retry"}
_WAITING = {
    kind: _WAITING_NAMES.get(kind, kind.value)
    for kind, state in TRANSITIONS.items()
    if state is CopyState.WAITING
}

FAILURE_KINDS = frozenset({RecordKind.FAILED, RecordKind.EXPIRED})
"""Records strict teardown counts as failures a test must assert (or allow)."""

BUS_KINDS = frozenset({RecordKind.SENT, RecordKind.PUBLISHED, RecordKind.ASKED})
"""Records of a message entering the bus: sent, published or asked."""

_BUS_ENDPOINTS = frozenset({"cv-bus:command", "cv-bus:event"})


@dataclass(frozen=True, slots=True)
class Copy:
    """One copy of a message for one endpoint, with every record about it, in order.

    Attributes:
        key: ``(message id, endpoint id)``.
        records: the copy's records, oldest first.
        state: the kind of its last record that changed its state; ``"routed"`` for a message
            an asynchronous bus consumer has routed on.
    """

    key: CopyKey
    records: tuple[Record, ...]
    state: str

    @property
    def message_id(self) -> str:
        return self.key[0]

    @property
    def endpoint_id(self) -> str:
        return self.key[1]

    @property
    def payload(self) -> object:
        return next((r.payload for r in self.records if r.payload is not None), None)

    @property
    def message_type(self) -> str:
        return self.records[0].message_type

    @property
    def is_final(self) -> bool:
        return self.state in _FINAL_STATES

    def outcomes(self) -> list[int]:
        """How many final outcomes each life of the copy had (a replay starts a new life).

        Exactly one per finished life is the rule; an expiry or rejection and the dead letter
        it leads to count as one outcome.
        """
        counts = [0]
        previous: RecordKind | None = None
        for record in self.records:
            if record.kind is RecordKind.REPLAYED:
                counts.append(0)
            elif record.kind in FINAL_KINDS and not (
                record.kind is RecordKind.DEAD_LETTERED
                and previous in (RecordKind.EXPIRED, RecordKind.REJECTED)
            ):
                counts[-1] += 1
            previous = record.kind
        return counts

    @property
    def retry_delays(self) -> list[object]:
        return [r.delay for r in self.records if r.kind is RecordKind.RETRIED]

    @property
    def last(self) -> Record:
        return self.records[-1]


_FINAL_STATES = frozenset({kind.value for kind in FINAL_KINDS} | {"routed", "raised"})


@dataclass(frozen=True, slots=True)
class Pending:
    """A copy waiting on a channel: queued, delayed, or waiting for a retry.

    Attributes:
        message_id: the message's id.
        message_type: its type name.
        payload: the payload, when the journal has it.
        channel: the channel it waits on.
        endpoint_id: the endpoint it is for.
        attempt: the delivery attempt it waits for.
        due: when it becomes receivable (at or before now: it is runnable).
        state: why it waits: "queued", "retry", "forwarded", "replayed", "requeued", "released".
        via: the concrete channel behind a dynamic ``channel``, when known.
    """

    message_id: str
    message_type: str
    payload: object
    channel: str
    endpoint_id: str
    attempt: int
    due: datetime
    state: str
    via: str | None = None

    @property
    def where(self) -> str:
        """``orders``, or ``orders[orders.tenant-a]`` on a dynamic channel."""
        return f"{self.channel}[{self.via}]" if self.via else self.channel


def fold_copies(records: Iterable[Record]) -> dict[CopyKey, Copy]:
    """Every copy that reached a channel or a handler, with its state, in order of first record."""
    grouped: dict[CopyKey, list[Record]] = {}
    open_bus: dict[str, CopyKey] = {}
    routed: set[CopyKey] = set()
    for record in records:
        if record.endpoint_id is None:
            continue
        key = (record.message_id, record.endpoint_id)
        grouped.setdefault(key, []).append(record)
        if record.endpoint_id in _BUS_ENDPOINTS:
            if record.kind is RecordKind.QUEUED:
                open_bus[record.message_id] = key
        elif record.message_id in open_bus:
            routed.add(open_bus.pop(record.message_id))
    return {
        key: Copy(key, tuple(found), _state(found, key in routed)) for key, found in grouped.items()
    }


def _state(records: list[Record], routed: bool) -> str:
    state = "routed" if routed else records[-1].kind.value
    for record in records:
        if record.kind in FINAL_KINDS:
            state = record.kind.value
        elif record.kind in _WAITING:
            state = _WAITING[record.kind]
        elif record.kind is RecordKind.FAILED:
            # A failed synchronous call raised to its caller; an asynchronous failure is
            # followed by its resolution, or the message was released back to its channel.
            state = "raised" if record.channel is None else "released"
    if routed and state in _WAITING.values():
        return "routed"
    return state


def pending_copies(
    copies: Mapping[CopyKey, Copy], held: Mapping[str, int] | None = None
) -> list[Pending]:
    """Copies still waiting on a channel, oldest first.

    ``held`` maps channel names to how many messages their transport still stores; a channel
    whose transport holds nothing has nothing pending, whatever the journal suggests.
    """
    found = []
    for copy in copies.values():
        if copy.is_final:
            continue
        last = next(
            (
                r
                for r in reversed(copy.records)
                if r.kind in _WAITING or r.kind is RecordKind.FAILED
            ),
            None,
        )
        if last is None or last.channel is None:
            continue
        if held is not None and held.get(last.channel, 1) == 0:
            continue
        due = last.at + last.delay if last.delay is not None else last.at
        attempt = last.attempt + 1 if last.kind is RecordKind.RETRIED else last.attempt
        found.append(
            Pending(
                copy.message_id,
                copy.message_type,
                copy.payload,
                last.channel,
                copy.endpoint_id,
                attempt,
                due,
                copy.state,
                last.via,
            )
        )
    return found


def causal_parents(records: Iterable[Record]) -> dict[str, str | None]:
    """Each message id with the id of the message that caused it (None for a test's own)."""
    parents: dict[str, str | None] = {}
    for record in records:
        if record.message_id not in parents or (
            parents[record.message_id] is None and record.causation_id is not None
        ):
            parents[record.message_id] = record.causation_id
    return parents


def ancestors(message_id: str, parents: Mapping[str, str | None]) -> list[str]:
    """The chain of causes of a message, nearest first."""
    chain: list[str] = []
    current = parents.get(message_id)
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain


def causal_depths(parents: Mapping[str, str | None]) -> dict[str, int]:
    """How deep each message sits in its causal tree (0 for what the test sent)."""
    return {message_id: len(ancestors(message_id, parents)) for message_id in parents}


def first_bus_records(records: Iterable[Record]) -> dict[str, Record]:
    """Each message id with the record of it being sent, published or asked (the first one)."""
    found: dict[str, Record] = {}
    for record in records:
        if record.kind in BUS_KINDS and record.message_id not in found:
            found[record.message_id] = record
    return found
