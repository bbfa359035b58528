"""Helpers for the RabbitMQ adapter's tests (imported by them; not collected by pytest).

``TcpProxy`` sits between a client and the broker and can cut every connection through it at
once, as a crashed process or a broken network would: the broker sees the TCP connection die
without an AMQP goodbye, and the client sees its socket fail.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from conveyor.transports.seam import Delivery, Transport

__all__ = ["TcpProxy", "real_wait", "poll_receive", "read_line", "ready_count", "SETTLE"]

SETTLE = 0.04  # seconds: a delayed message's hops through the ladder, under the precision


def real_wait(duration: timedelta) -> None:
    """The harness's clock is the broker's: advancing it is waiting (plus the hops' margin)."""
    end = time.monotonic() + duration.total_seconds() + SETTLE
    while time.monotonic() < end:
        time.sleep(0.005)


def poll_receive(transport: Transport, channel: str, lease: timedelta) -> Delivery:
    """The broker requeues a dead connection's messages asynchronously: long-poll for one."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = transport.receive(channel, lease=lease, wait=timedelta(milliseconds=200))
        if found:
            return found[0]
    pytest.fail(f"nothing was redelivered on {channel!r} within 10 s")


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the broker of ``url``; ``cut()`` kills what goes through."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = parts._replace(
            netloc=f"{parts.netloc.rpartition('@')[0]}@127.0.0.1:{self.port}"
        ).geturl()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._refusing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while True:
                try:
                    for key, _ in selector.select(timeout=1):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            raise OSError("closed")
                        key.data.sendall(data)
                except (OSError, ValueError):
                    break
        for sock in (a, b):
            with contextlib.suppress(OSError):
                sock.close()

    def cut(self) -> None:
        """Kill every connection through the proxy at once (a RST, no AMQP close)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    sock.shutdown(socket.SHUT_RDWR)

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, new connections are closed at once (the broker looks down)."""
        self._refusing = refusing

    def close(self) -> None:
        self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()


def read_line(process: subprocess.Popen[str], deadline: float) -> str:
    """The child's next stdout line, or a test failure once ``time.monotonic()`` passes
    ``deadline`` (read unbuffered from the pipe, so a line never waits in a buffer)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                pytest.fail(f"{process.args!r} printed no line before the deadline")
            byte = os.read(fd, 1)
            if not byte:
                _, err = process.communicate(timeout=5)
                pytest.fail(f"{process.args!r} exited early ({process.returncode}):\n{err}")
            line += byte
    return line.decode().strip()


def ready_count(url: str, queue: str) -> int:
    """Messages ready for delivery on ``queue`` (not those held unacknowledged by a consumer)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        method = connection.channel().queue_declare(queue, passive=True).method
        return int(method.message_count)
    finally:
        connection.close()
