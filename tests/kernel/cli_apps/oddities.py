"""Attributes ``--app`` can point at by mistake, each with its own error message."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor import Messaging, QueueChannel, asynchronous, command_handler, event_handler

ANSWER = 42
messaging = Messaging()


@dataclass(frozen=True)
class Noticed:
    what: str


@event_handler
def on_noticed(event: Noticed) -> None:
    """A handler: never offered as an app, though it is a public function."""


@asynchronous("nowhere")
@command_handler
def misplaced(command: Noticed) -> None:
    """Asynchronous on a channel that ``misconfigured`` does not declare."""


def make() -> Messaging:
    return Messaging([on_noticed])


def needs_settings(settings: str) -> Messaging:
    return Messaging()


def not_a_factory() -> dict[str, str]:
    return {}


def explodes() -> Messaging:
    raise RuntimeError("database is down")


def misconfigured() -> Messaging:
    return Messaging([misplaced], [QueueChannel("orders")])


def _private() -> Messaging:
    return Messaging()
