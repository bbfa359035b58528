"""Setting a delivery aside in the dead-letter store, with why, so nothing is ever dropped.

Two kinds of delivery end here: those whose handling failed for good or whose time to live ran out
(``conveyor.drivers.failure_resolution``, ``conveyor.drivers.consumption``), and poison messages,
rejected before any handler ran because they cannot be handled on this channel at all (malformed
headers, an undecodable body, an unknown type, no such endpoint, an unknown channel in a sequence).
A letter keeps the original bytes and headers, so even a message that no longer decodes can be
inspected and replayed (``conveyor.drivers.replay``). Each letter is journaled as DEAD_LETTERED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.wire import Envelope, H
from conveyor.stores.dead_letters import DeadLetter
from conveyor.transports.seam import Delivery

if TYPE_CHECKING:
    from conveyor.drivers.messaging import ChannelRuntime, Messaging

__all__ = ["DeadLettering"]


class DeadLettering:
    """Stores the dead letters of one ``Messaging``'s consumers and rejects poison messages."""

    __slots__ = ("_messaging",)

    def __init__(self, messaging: Messaging) -> None:
        self._messaging = messaging

    def reject(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope | None,
        reason: str,
        error: Exception | None,
    ) -> Outcome:
        """Set aside a message that cannot be handled here, with why; never drop it."""
        m = self._messaging
        wire = delivery.message.headers
        message_id = envelope.headers.id if envelope else wire.get(H.ID, delivery.receipt)
        type_name = envelope.type_name if envelope else wire.get(H.TYPE, "?")
        endpoint = envelope.endpoint if envelope else wire.get(H.ENDPOINT)
        detail = reason
        if reason == "no endpoint":
            known = [s.endpoint_id for s in m.handlers if runtime.name in s.channels]
            detail = (
                f"no endpoint {endpoint!r} on channel {runtime.name!r}; endpoints here: "
                f"{', '.join(known) or 'none'}"
            )
        info = ExceptionInfo.capture(error) if error is not None else None
        m.journal.append(
            m.clock.now(),
            RecordKind.REJECTED,
            message_id,
            type_name,
            channel=runtime.name,
            endpoint_id=endpoint,
            exception=info,
            detail=detail,
        )
        self.store_letter(
            runtime,
            delivery,
            envelope,
            endpoint,
            reason,
            info,
            envelope.headers.attempt if envelope else delivery.delivery_count,
            None,
            detail=detail,
            message_id=message_id,
            type_name=type_name,
        )
        runtime.transport.ack(delivery)
        return Outcome.REJECTED

    def store_letter(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope | None,
        endpoint: str | None,
        reason: str,
        info: ExceptionInfo | None,
        attempts: int,
        message: Message | None,
        *,
        detail: str = "",
        message_id: str | None = None,
        type_name: str | None = None,
    ) -> None:
        """Add the delivery to the dead-letter store and journal it; the caller acknowledges.

        ``message`` is the decoded message when there is one (its record then names its type
        and payload); a poison message has none, and its record is built from the wire.
        """
        m = self._messaging
        now = m.clock.now()
        letter_id = m.dead_letters.new_id(
            message_id or (envelope.headers.id if envelope else delivery.receipt),
            endpoint or runtime.name,
        )
        letter = DeadLetter(
            id=letter_id,
            message_id=message_id or (envelope.headers.id if envelope else delivery.receipt),
            channel=runtime.name,
            endpoint_id=endpoint,
            message_type=type_name or (envelope.type_name if envelope else "?"),
            body=delivery.message.body,
            headers=dict(delivery.message.headers),
            reason=detail or reason,
            exception_type=info.qualified_name if info else None,
            exception_message=info.message if info else None,
            traceback=info.traceback if info else None,
            attempts=attempts,
            first_failed_at=(
                envelope.first_failed_at if envelope and envelope.first_failed_at else now
            ),
            last_failed_at=now,
            replayed=_replay_count(delivery.message.headers),
        )
        m.dead_letter_store.add(letter)
        if message is not None:
            m._record(
                RecordKind.DEAD_LETTERED,
                message,
                endpoint_id=endpoint,
                channel=runtime.name,
                attempt=attempts,
                exception=info,
                detail=f"{reason}; dead letter {letter_id}",
            )
        else:
            m.journal.append(
                now,
                RecordKind.DEAD_LETTERED,
                letter.message_id,
                letter.message_type,
                channel=runtime.name,
                endpoint_id=endpoint,
                attempt=attempts,
                exception=info,
                detail=f"{letter.reason}; dead letter {letter_id}",
            )


def _replay_count(wire: Mapping[str, str]) -> int:
    try:
        return max(int(wire.get(H.REPLAYED, "0")), 0)
    except ValueError:
        return 0
