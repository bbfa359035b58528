"""How a worker process is told to stop, and how every wait in it ends at once when it is.

systemd and Kubernetes send SIGTERM and wait a grace period before SIGKILL; a worker that sleeps
until its next tick (up to a day) or blocks in a long poll is killed mid-work. So every wait of
a worker blocks on one :class:`threading.Event` (``stopping``) instead of sleeping, and the
first SIGTERM or SIGINT sets it: waits end, no new message is taken, those in flight finish.
A second signal sets ``forced``: the worker stops at once and leaves unfinished messages to
their lease.

A Python signal handler must not set an ``Event`` itself: it runs in the main thread between two
bytecodes, possibly while that thread holds the event's internal lock inside ``Event.wait``,
and would deadlock. So the handler only counts the signal, and the C-level wakeup fd
(``signal.set_wakeup_fd``) wakes the main thread, which sets the events from ordinary code.
Worker threads use the same socket to wake the main thread when they stop on their own.
"""

from __future__ import annotations

import select
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

__all__ = ["Stopping"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopping:
    """The stop of one worker: why it stops, and the events its waits block on."""

    __slots__ = ("_lock", "_reader", "_signals", "_writer", "forced", "reason", "stopping")

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.forced = threading.Event()
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._signals = 0  # counted by the handler; read by the main thread only
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def request(self, reason: str) -> None:
        """Stop taking work (the first reason given is the one reported); callable from threads."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
        self.stopping.set()
        self.wake()

    def wake(self) -> None:
        """Wake the main thread from its wait (a worker thread stopped, or asked to stop)."""
        with suppress(OSError):  # the buffer is full: the main thread is awake already
            self._writer.send(b"\0")

    def wait_main(self, seconds: float) -> None:
        """Block the main thread until woken, a signal arrives, or ``seconds`` pass."""
        ready, _, _ = select.select([self._reader], [], [], max(seconds, 0.0))
        if ready:
            with suppress(OSError):
                while self._reader.recv(4096):
                    pass
        self._take_signals()

    def _take_signals(self) -> None:
        if self._signals >= 1:
            self.request("signal")
        if self._signals >= 2:
            self.forced.set()

    @contextmanager
    def signals(self) -> Iterator[Stopping]:
        """Handle SIGTERM and SIGINT in this block (only the main thread can; elsewhere none)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def count(signum: int, frame: FrameType | None) -> None:
            self._signals += 1

        previous = {s: signal.signal(s, count) for s in _SIGNALS}
        old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        try:
            yield self
        finally:
            signal.set_wakeup_fd(old_fd)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
