"""When each lease this transport granted runs out, so a stale receipt is never renewed.

SQS does not fence ``ChangeMessageVisibility`` by lease: once a visibility timeout has run out
and the message was received again, the old receipt handle may still change its visibility
(moto accepts any handle the message ever had; on AWS stale handles are no reliable fence
either). A handler whose lease ran out would then extend the lease another consumer now holds.
So the transport remembers, for each delivery it handed out, when its lease ends on the
injected clock, and refuses to renew a delivery whose lease ended, or that was settled, with
``StaleReceipt``: its handler no longer owns the message. Only the deliveries still leased are
kept, so the book stays as small as the messages in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from conveyor.core.errors import StaleReceipt
from conveyor.transports.seam import Delivery

__all__ = ["LeaseBook"]


class LeaseBook:
    """Receipt handle -> the instant its lease ends; safe for the async twin's thread pool.

    A lease ends at its visibility timeout (measured from when the receive returned, so up to
    one round trip after SQS's own end), and at once when this transport receives the same
    message again under another receipt: then the old receipt is stale for certain.
    """

    def __init__(self) -> None:
        self._ends: dict[str, datetime] = {}
        self._message_of: dict[str, str] = {}  # receipt -> SQS MessageId
        self._receipt_of: dict[str, str] = {}  # SQS MessageId -> its current receipt
        self._lock = threading.Lock()

    def granted(self, leases: Iterable[tuple[str, str]], until: datetime, now: datetime) -> None:
        """Record leases (receipt, message id) ending at ``until``; forget ended ones."""
        with self._lock:
            for receipt in [r for r, end in self._ends.items() if end <= now]:
                self._forget(receipt)
            for receipt, message_id in leases:
                earlier = self._receipt_of.get(message_id)
                if earlier is not None:
                    self._forget(earlier)  # received again: the earlier receipt is stale
                self._ends[receipt] = until
                self._message_of[receipt] = message_id
                self._receipt_of[message_id] = receipt

    def _forget(self, receipt: str) -> None:
        self._ends.pop(receipt, None)
        message_id = self._message_of.pop(receipt, None)
        if message_id is not None and self._receipt_of.get(message_id) == receipt:
            del self._receipt_of[message_id]

    def check_renewable(self, delivery: Delivery, now: datetime) -> None:
        """Raise ``StaleReceipt`` unless the lease of ``delivery`` is still running.

        Raises:
            StaleReceipt: the lease ended, or the delivery was settled (or never leased here).
        """
        with self._lock:
            end = self._ends.get(delivery.receipt)
        if end is None or now >= end:
            raise StaleReceipt(
                f"cannot renew delivery {delivery.delivery_count} of a message on channel "
                f"{delivery.channel!r}: the lease no longer holds (its visibility timeout ran "
                f"out, or it was settled already), and SQS would extend whoever's lease it is "
                f"now. Renew before the lease ends, and keep handlers idempotent."
            )

    def renewed(self, receipt: str, until: datetime) -> None:
        with self._lock:
            if receipt in self._ends:
                self._ends[receipt] = until

    def __len__(self) -> int:
        """How many leases it keeps (those not yet forgotten as ended)."""
        with self._lock:
            return len(self._ends)

    def settled(self, receipt: str) -> None:
        """An acknowledged or released delivery: nothing left to renew."""
        with self._lock:
            self._forget(receipt)
