"""Acknowledgements sent as batched deletes: one ``DeleteMessageBatch`` for up to 10 acks.

An ack deletes the message, and SQS takes up to 10 deletes of a queue in one call. So ``ack``
hands the receipt to a :class:`DeleteBatcher`, which sends it together with the acks around it:
at once when 10 of a queue are waiting (by the thread whose ack made ten); during the next
receive, in parallel with its ``ReceiveMessage`` call (:meth:`DeleteBatcher.during`), which
hands out nothing before the deletes are done; after ``delay`` from a background thread when no
receive comes; and on ``flush`` and ``close``. A consumer that receives batches of 10 deletes
them in one call instead of ten; one that handles a message at a time makes the same three calls
per message, but its delete no longer adds a round trip of its own.

What it changes: ``ack`` returns before SQS deleted the message. Since a receive hands out
nothing before the acks made before it are sent, a consumer killed mid-handler has its earlier
messages deleted; a process killed within ``delay`` of its last ack (with no receive after it)
gets that message back after its visibility timeout and handles it again (at least once, as
when a process dies just before acking). A delete SQS refuses is logged and the message comes
back the same way. SQS never fenced a delete by its lease, so ``ack`` could not report a stale
receipt before either. ``delay`` stays far under the shortest lease (one second), so an
acknowledged message does not become visible again while its delete waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from conveyor_sqs.errors import Where, translate

__all__ = ["DeleteBatcher", "DEFAULT_ACK_DELAY", "MAX_ACK_DELAY"]

_log = logging.getLogger("conveyor.sqs")
_MAX_BATCH = 10

DEFAULT_ACK_DELAY = timedelta(milliseconds=50)
"""How long an ack waits for others to share its ``DeleteMessageBatch`` call, by default."""

MAX_ACK_DELAY = timedelta(milliseconds=500)
"""The longest an ack may wait for its delete: half the shortest lease SQS grants."""


@dataclass(frozen=True, slots=True)
class _Ack:
    queue: str
    receipt: str


class DeleteBatcher:
    """The deletes of acknowledged messages not yet sent, per queue URL; safe for many threads.

    Args:
        client: the boto3 SQS client (thread-safe; the background thread shares it).
        where: region and endpoint, for what is logged when a delete fails.
        delay: how long an ack may wait for others to share its call.
    """

    def __init__(self, client: Any, where: Where, delay: timedelta) -> None:
        self._client = client
        self._where = where
        self._delay = delay.total_seconds()
        self._pending: dict[str, list[_Ack]] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._helper: ThreadPoolExecutor | None = None

    def add(self, url: str, queue: str, receipt: str) -> None:
        """Delete the message of ``receipt`` from the queue at ``url`` soon."""
        full: list[_Ack] | None = None
        with self._changed:
            waiting = self._pending.setdefault(url, [])
            waiting.append(_Ack(queue, receipt))
            if len(waiting) >= _MAX_BATCH:
                full = self._pending.pop(url)
            else:
                self._changed.notify()
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="conveyor-sqs-deletes", daemon=True
                    )
                    self._thread.start()
        if full is not None:
            self._delete(url, full)

    def flush(self) -> None:
        """Send every waiting delete now."""
        self._send(self._take())

    @contextmanager
    def during(self) -> Iterator[None]:
        """Send the waiting deletes while the body runs (a receive's call); done when it ends."""
        taken = self._take()
        if not taken:
            yield
            return
        with self._changed:
            if self._helper is None:
                self._helper = ThreadPoolExecutor(1, thread_name_prefix="conveyor-sqs-deletes")
            sending = self._helper.submit(self._send, taken)
        try:
            yield
        finally:
            sending.result()

    def _take(self) -> dict[str, list[_Ack]]:
        with self._changed:
            taken, self._pending = self._pending, {}
        return taken

    def _send(self, taken: dict[str, list[_Ack]]) -> None:
        for url, acks in taken.items():
            for start in range(0, len(acks), _MAX_BATCH):
                self._delete(url, acks[start : start + _MAX_BATCH])

    def close(self) -> None:
        """Send what waits and stop the background thread."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._helper is not None:
            self._helper.shutdown()
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                while not self._pending and not self._stop.is_set():
                    self._changed.wait()
            self._stop.wait(self._delay)  # let the acks that follow share the call
            self.flush()

    def _delete(self, url: str, acks: list[_Ack]) -> None:
        queue = acks[0].queue
        entries = [{"Id": str(n), "ReceiptHandle": ack.receipt} for n, ack in enumerate(acks)]
        try:
            answer = self._client.delete_message_batch(QueueUrl=url, Entries=entries)
        except Exception as error:
            action = f"deleting {len(acks)} acknowledged messages"
            detail = translate(error, where=self._where, queue=queue, action=action)
            _log.warning("%s; they come back after their visibility timeout", detail)
            return
        failed = answer.get("Failed", [])
        if failed:
            codes = ", ".join(sorted({str(f.get("Code")) for f in failed}))
            _log.warning(
                "%s refused to delete %d of %d acknowledged messages (%s); they come back after "
                "their visibility timeout",
                self._where.queue(queue),
                len(failed),
                len(acks),
                codes,
            )
