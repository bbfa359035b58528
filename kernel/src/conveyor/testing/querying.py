"""Querying the journal from a harness: ``sent()``, ``handled(by=...)``, ``failed()``, ...

Each query settles first, so a negative answer is as exact as a positive one, and returns
:class:`Matches`, whose ``one()`` fails with the full explanation instead of an ``IndexError``.
Failures and dead letters a query returns count as asserted: a test that looked them up has
noticed them, and strict teardown leaves them alone. The ``assert_*`` methods of ``Harness``
run these same queries; what a query selects is a :class:`~conveyor.testing.query.Query`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, overload

from typing_extensions import TypeVar

from conveyor.core.journal import Record, RecordKind
from conveyor.testing.explanations import miscounted
from conveyor.testing.matching import MessageMatcher, as_matcher
from conveyor.testing.query import ExceptionSpec, Query
from conveyor.testing.report import FlowAssertionError
from conveyor.testing.settling import SettlingHarness

__all__ = ["Matches", "QueryingHarness", "M"]

M = TypeVar("M", default=object)
"""The message type a query names: ``published(OrderPlaced)`` answers ``Matches[OrderPlaced]``."""

_K = RecordKind
_SENT = frozenset({_K.SENT})
_PUBLISHED = frozenset({_K.PUBLISHED})
_ASKED = frozenset({_K.ASKED})
_HANDLED = frozenset({_K.HANDLED})
_FAILED = frozenset({_K.FAILED})
_RETRIED = frozenset({_K.RETRIED})
_EXPIRED = frozenset({_K.EXPIRED})
_DEAD = frozenset({_K.DEAD_LETTERED})


class Matches(Sequence[Record[M]], Generic[M]):
    """The records a query selected, oldest first, with :meth:`one` for single matches."""

    __slots__ = ("_explain_one", "_records")

    def __init__(self, records: Sequence[Record], explain_one: Callable[[int], str]) -> None:
        self._records: list[Record[M]] = list(records)  # type: ignore[arg-type]
        self._explain_one = explain_one

    def one(self) -> Record[M]:
        """The single matching record; fails, with the full explanation, on zero or several."""
        __tracebackhide__ = True
        if len(self._records) != 1:
            raise FlowAssertionError(self._explain_one(len(self._records)))
        return self._records[0]

    def payloads(self) -> list[M]:
        """The matched messages themselves."""
        return [r.payload for r in self._records]

    @overload
    def __getitem__(self, index: int) -> Record[M]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Record[M]]: ...
    def __getitem__(self, index: int | slice) -> Record[M] | Sequence[Record[M]]:
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Matches):
            return self._records == other._records
        if isinstance(other, Sequence):
            return list(self._records) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Matches({self._records!r})"


class QueryingHarness(SettlingHarness):
    """A ``Messaging`` under test whose journal answers queries, settling first."""

    def select(self, query: Query, *, settle: bool = True) -> list[Record]:
        """Records matching ``query``, after settling; failures returned count as asserted."""
        __tracebackhide__ = True
        if settle:
            self.settle()
        found = query.select(self.journal.records)
        self.acknowledge(found)
        return found

    def acknowledge(self, records: Sequence[Record]) -> None:
        """Mark failures and dead letters as asserted, so strict teardown accepts them."""
        last = len(self.journal) and self.journal.last(1)[0].seq
        self._acknowledged.note_asserted(records, last)

    def query(
        self,
        verb: str,
        kinds: frozenset[RecordKind],
        message: MessageMatcher,
        *,
        by: object = None,
        headers: Mapping[str, str] | None = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
        attempt_label: str = "attempt",
        extra: tuple[str, ...] = (),
    ) -> Query:
        return Query(
            verb,
            kinds,
            as_matcher(message),
            self.endpoint_of(by) if by is not None else None,
            headers,
            exception,
            match,
            attempt,
            attempt_label,
            extra,
        )

    def matches(self, query: Query) -> Matches[Any]:
        __tracebackhide__ = True
        return self._matched(query, self.select(query))

    def _matched(self, query: Query, found: list[Record]) -> Matches[Any]:
        """``found`` as the answer to ``query``; ``one()`` explains itself with the query."""
        return Matches(found, lambda count: self.explain_count(query, found, exactly=1))

    def explain_count(self, query: Query, found: list[Record], *, exactly: int) -> str:
        """The failure text for ``query`` matching ``found``, not ``exactly`` times."""
        return miscounted(self.snapshot(), query, found, exactly=exactly)

    # ------------------------------------------------------------------ one query per verb

    @overload
    def sent(self, message: type[M], *, headers: Mapping[str, str] | None = None) -> Matches[M]: ...
    @overload
    def sent(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches[Any]: ...
    def sent(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches[Any]:
        """Commands sent (by the test or by handlers), after settling."""
        return self.matches(self.query("sent", _SENT, message, headers=headers))

    @overload
    def published(
        self, message: type[M], *, headers: Mapping[str, str] | None = None
    ) -> Matches[M]: ...
    @overload
    def published(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches[Any]: ...
    def published(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches[Any]:
        """Events published, after settling."""
        return self.matches(self.query("published", _PUBLISHED, message, headers=headers))

    @overload
    def asked(
        self, message: type[M], *, headers: Mapping[str, str] | None = None
    ) -> Matches[M]: ...
    @overload
    def asked(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches[Any]: ...
    def asked(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches[Any]:
        """Queries asked, after settling."""
        return self.matches(self.query("asked", _ASKED, message, headers=headers))

    @overload
    def handled(
        self,
        message: type[M],
        *,
        by: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Matches[M]: ...
    @overload
    def handled(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Matches[Any]: ...
    def handled(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Matches[Any]:
        """Successful handlings (one record per handler that returned), after settling."""
        return self.matches(self.query("handled", _HANDLED, message, by=by, headers=headers))

    @overload
    def failed(
        self,
        message: type[M],
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
    ) -> Matches[M]: ...
    @overload
    def failed(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
    ) -> Matches[Any]: ...
    def failed(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
    ) -> Matches[Any]:
        """Failed attempts (instant retries included), after settling."""
        return self.matches(
            self.query(
                "failed", _FAILED, message, by=by, exception=exception, match=match, attempt=attempt
            )
        )

    @overload
    def retried(self, message: type[M], *, by: object = None) -> Matches[M]: ...
    @overload
    def retried(self, message: MessageMatcher = None, *, by: object = None) -> Matches[Any]: ...
    def retried(self, message: MessageMatcher = None, *, by: object = None) -> Matches[Any]:
        """Delayed retries scheduled (each record has the ``delay``), after settling."""
        return self.matches(self.query("retried", _RETRIED, message, by=by))

    @overload
    def expired(self, message: type[M], *, by: object = None) -> Matches[M]: ...
    @overload
    def expired(self, message: MessageMatcher = None, *, by: object = None) -> Matches[Any]: ...
    def expired(self, message: MessageMatcher = None, *, by: object = None) -> Matches[Any]:
        """Copies whose time to live ran out before they were handled, after settling."""
        return self.matches(self.query("expired", _EXPIRED, message, by=by))

    @overload
    def dead_lettered(
        self,
        message: type[M],
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
    ) -> Matches[M]: ...
    @overload
    def dead_lettered(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
    ) -> Matches[Any]: ...
    def dead_lettered(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
    ) -> Matches[Any]:
        """Copies put in the dead-letter store, after settling."""
        return self.matches(self.query("dead-lettered", _DEAD, message, by=by, exception=exception))
