"""What a test has taken notice of, so that strict teardown reports only what it has not.

A failure is noticed when an assertion matched its copy (a failed attempt, a retry or a dead
letter of the same message for the same endpoint; one such assertion covers every failure the
copy had so far) or when its exception reached the test through a call such as ``send``. A dead
letter is noticed when an assertion matched it; a pending copy, when the test looked at it.
Kept apart from the harness, the rules are plain: journal records in, what is left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.core.journal import Record, RecordKind
from conveyor.testing.flow import FAILURE_KINDS, CopyKey, Pending

__all__ = ["Acknowledgements", "letter_id"]

_K = RecordKind


class Acknowledgements:
    """The failures, dead letters and pending copies one test has noticed."""

    __slots__ = ("_failures", "_inspected", "_letters", "_raised")

    def __init__(self) -> None:
        # A copy's failures up to this journal seq were matched by an assertion.
        self._failures: dict[CopyKey, int] = {}
        self._letters: set[int] = set()
        self._raised: set[int] = set()
        self._inspected: set[CopyKey] = set()

    def note_raised(self, error: BaseException, records: Iterable[Record]) -> None:
        """Count the failed attempts whose exception (or one in its chain) reached the test."""
        chain: list[BaseException] = []
        current: BaseException | None = error
        while current is not None and current not in chain:
            chain.append(current)
            current = current.__cause__ or current.__context__
        for record in records:
            if (
                record.kind is _K.FAILED
                and record.exception is not None
                and any(record.exception.error is e for e in chain)
            ):
                self._raised.add(record.seq)

    def note_asserted(self, records: Iterable[Record], last_seq: int) -> None:
        """Count the failures and dead letters an assertion matched, as of ``last_seq``."""
        for record in records:
            if record.kind is _K.DEAD_LETTERED:
                self._letters.add(record.seq)
            if record.endpoint_id is not None and (
                record.kind in FAILURE_KINDS or record.kind in (_K.RETRIED, _K.DEAD_LETTERED)
            ):
                self._failures[(record.message_id, record.endpoint_id)] = last_seq

    def note_inspected(self, pending: Iterable[Pending]) -> None:
        """Count the pending copies the test looked at."""
        self._inspected.update((p.message_id, p.endpoint_id) for p in pending)

    def unasserted_failures(self, records: Iterable[Record]) -> list[Record]:
        """Failed attempts and expiries that no assertion matched and no test call raised."""
        return [
            r
            for r in records
            if r.kind in FAILURE_KINDS
            and r.seq not in self._raised
            and self._failures.get((r.message_id, r.endpoint_id or ""), 0) < r.seq
        ]

    def unasserted_dead_letters(self, records: Iterable[Record]) -> list[Record]:
        """Dead-lettered records that no assertion matched, whether or not still in the store."""
        return [r for r in records if r.kind is _K.DEAD_LETTERED and r.seq not in self._letters]

    def uninspected(self, pending: Iterable[Pending]) -> list[Pending]:
        """The pending copies the test did not look at."""
        return [p for p in pending if (p.message_id, p.endpoint_id) not in self._inspected]


def letter_id(record: Record) -> str:
    """The dead-letter id a DEAD_LETTERED record names (``...; dead letter <id>``)."""
    _, found, named = record.detail.rpartition("dead letter ")
    return named if found else ""
