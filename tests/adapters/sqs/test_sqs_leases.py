"""The lease book that keeps SqsTransport from renewing a stale receipt (SQS does not fence it).

No server needed: the book is the transport's own record of when each lease it granted ends.
The conformance suite checks the same promise against the server
(``renewing_a_stale_receipt_raises_stale_receipt``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.core.errors import StaleReceipt
from conveyor.transports.seam import Delivery, WireMessage
from conveyor_sqs.leases import LeaseBook

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def delivery(receipt: str) -> Delivery:
    return Delivery("orders", WireMessage(b"x"), receipt, 1)


def test_a_running_lease_can_be_renewed_until_it_ends() -> None:
    book = LeaseBook()
    book.granted([("r-1", "m-1")], T0 + 2 * SECOND, now=T0)

    book.check_renewable(delivery("r-1"), T0 + SECOND)
    with pytest.raises(StaleReceipt, match="lease no longer holds"):
        book.check_renewable(delivery("r-1"), T0 + 2 * SECOND)


def test_a_renewal_moves_the_end() -> None:
    book = LeaseBook()
    book.granted([("r-1", "m-1")], T0 + 2 * SECOND, now=T0)
    book.renewed("r-1", T0 + 5 * SECOND)

    book.check_renewable(delivery("r-1"), T0 + 4 * SECOND)


@pytest.mark.parametrize("receipt", ["settled", "never-leased"])
def test_a_settled_or_unknown_receipt_is_stale(receipt: str) -> None:
    book = LeaseBook()
    book.granted([("settled", "m-1")], T0 + 2 * SECOND, now=T0)
    book.settled("settled")

    with pytest.raises(StaleReceipt):
        book.check_renewable(delivery(receipt), T0)


def test_ended_leases_are_forgotten_when_new_ones_are_granted() -> None:
    book = LeaseBook()
    book.granted([("old", "m-1")], T0 + SECOND, now=T0)
    book.granted([("new", "m-2")], T0 + 3 * SECOND, now=T0 + 2 * SECOND)

    assert len(book) == 1
    book.check_renewable(delivery("new"), T0 + 2 * SECOND)


def test_a_message_received_again_makes_its_earlier_receipt_stale_at_once() -> None:
    book = LeaseBook()
    book.granted([("first", "m-1")], T0 + 2 * SECOND, now=T0)
    book.granted([("second", "m-1")], T0 + 4 * SECOND, now=T0 + SECOND)

    with pytest.raises(StaleReceipt):
        book.check_renewable(delivery("first"), T0 + SECOND)
    book.check_renewable(delivery("second"), T0 + SECOND)
    book.settled("first")  # settling a stale receipt leaves the current one alone
    book.check_renewable(delivery("second"), T0 + SECOND)
