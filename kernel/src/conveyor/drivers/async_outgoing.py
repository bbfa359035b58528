"""Outgoing copies in the asyncio driver: held by the collecting scope, sent when it succeeds.

Every entry of the asyncio driver (a top-level verb, a consumed message, a tick, an error
handler) opens a collecting scope, so a copy is held first and sent with ``await`` when the work
that produced it is done; the one exception is a top-level ``send`` to an asynchronous handler
outside any transaction, whose scope would hold and flush that one copy and nothing else, so it
is sent at once (``AsyncDispatch.queue_from_top``). The copy itself is built as the sync driver
builds it (``conveyor.drivers.outgoing.pending_copy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from conveyor.core.clock import Clock, pause
from conveyor.core.collector import PendingSend, Scope
from conveyor.core.delivery import DeliveryOptions
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers.channel_runtime import AsyncChannelRuntime
from conveyor.drivers.outgoing import held_until, pending_copy, record_queued, send_again_after
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes

__all__ = ["AsyncOutgoing"]


class AsyncOutgoing:
    """The sending side of one ``AsyncMessaging``."""

    __slots__ = ("_channels", "_clock", "_recorder", "_scopes")

    def __init__(
        self,
        channels: Mapping[str, AsyncChannelRuntime],
        clock: Clock,
        scopes: Scopes,
        recorder: Recorder,
    ) -> None:
        self._channels = channels
        self._clock = clock
        self._scopes = scopes
        self._recorder = recorder

    def queue_copy(self, spec: HandlerSpec, message: Message, options: DeliveryOptions) -> None:
        """Hold a copy of ``message`` for the asynchronous handler ``spec``."""
        self.enqueue(
            spec.channels[0],
            spec.endpoint_id,
            message,
            spec.channels[1:],
            options.for_handler(spec, self._clock, message.payload),
        )

    async def send_copy(
        self, spec: HandlerSpec, message: Message, options: DeliveryOptions
    ) -> None:
        """Send a copy for ``spec`` now, held by no scope (a top-level send, no transaction)."""
        channels = spec.channels
        handler_options = options.for_handler(spec, self._clock, message.payload)
        await self.transmit(
            pending_copy(
                self._channels, channels[0], spec.endpoint_id, message, channels[1:],
                handler_options,
            )
        )  # fmt: skip

    def enqueue(
        self,
        channel: str,
        endpoint: str,
        message: Message,
        slip: tuple[str, ...],
        options: DeliveryOptions,
    ) -> None:
        """Hold a copy for ``endpoint`` in the innermost collecting scope."""
        pending = pending_copy(self._channels, channel, endpoint, message, slip, options)
        scope = self._scopes.current()
        collector = scope.collector() if scope is not None else None
        if collector is None:  # every entry of the asyncio driver opens one
            raise RuntimeError("an AsyncMessaging copy was made outside any collecting scope")
        collector.buffer.append(pending)

    def discard(self, scope: Scope) -> None:
        """Drop what a failed scope held, with an UNSENT record for each copy."""
        buffer, scope.buffer = scope.buffer, []
        for pending in buffer:
            self._recorder.unsent(pending)

    async def flush(self, scope: Scope) -> None:
        """Send what a succeeded scope held, in order."""
        buffer, scope.buffer = scope.buffer, []
        for index, pending in enumerate(buffer):
            try:
                await self.transmit(pending)
            except BaseException:  # what did not leave says so; the attempt fails
                for unsent in buffer[index:]:
                    self._recorder.unsent(unsent)
                raise

    async def transmit(self, pending: PendingSend) -> None:
        runtime = self._channels[pending.channel]
        try:
            await self._send(runtime, pending)
        except Exception as error:
            send_retry = runtime.definition.send_retry
            if send_retry is None:
                raise
            attempt = 1
            while True:  # the channel's send_retry, as the sync driver's
                await pause(self._clock, send_again_after(send_retry, error, attempt, pending))
                attempt += 1
                try:
                    await self._send(runtime, pending)
                    break
                except Exception as again:
                    error = again
        record_queued(self._recorder, pending)

    async def _send(self, runtime: AsyncChannelRuntime, pending: PendingSend) -> None:
        await runtime.transport.send(
            pending.channel,
            pending.wire,
            available_at=self.held_until(runtime, pending.available_at),
            priority=pending.priority,
            expires_at=pending.expires_at,
        )

    def held_until(self, runtime: AsyncChannelRuntime, due: datetime | None) -> datetime | None:
        if due is None or runtime.max_delay is None:
            return due  # no clock read where there is nothing to cap
        return held_until(runtime, due, self._clock.now())
