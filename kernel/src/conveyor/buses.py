"""Narrow bus interfaces for application code.

Application services depend on ``CommandBus`` (or ``EventBus``, ``QueryBus``) rather than on
``Messaging``, so a test can hand them any object with the same verbs, and the composition root
decides whether a bus is synchronous or goes through a channel first
(``messaging.command_bus("outbox")``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["CommandBus", "EventBus", "QueryBus"]


@runtime_checkable
class CommandBus(Protocol):
    def send(self, command: object, **options: Any) -> object: ...


@runtime_checkable
class EventBus(Protocol):
    def publish(self, event: object, **options: Any) -> None: ...


@runtime_checkable
class QueryBus(Protocol):
    def ask(self, query: object, **options: Any) -> Any: ...
