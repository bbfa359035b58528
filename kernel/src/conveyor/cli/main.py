"""The ``conveyor`` command: run consumers, list them, and act on dead letters from a shell.

::

    conveyor --app myproject.messaging:messaging run orders --time-limit 1h --memory-limit 256
    conveyor --app myproject.messaging:build list
    conveyor dead-letter list | show ID | replay ID | replay-all | delete ID

``--app`` (or ``CONVEYOR_APP``) names a ``Messaging`` instance or a function that takes no
arguments and returns one; the current directory is importable first, as with uvicorn. Exit codes
are the ones a process manager (systemd, Kubernetes, supervisord) acts on:

* 0: a normal stop (limit, empty, time limit, memory limit, or SIGTERM/SIGINT once the current
  message is finished), so the manager simply starts the consumer again;
* 1: a failure (a consumer stopped on a handler failure, an unknown dead letter);
* 2: a usage or configuration error, which restarting will not fix.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from conveyor.cli import format as fmt
from conveyor.cli import listing
from conveyor.cli.in_memory import (
    empty_in_memory_channels,
    in_memory_channel_error,
    in_memory_letters_error,
)
from conveyor.cli.log_format import JsonFormatter
from conveyor.core.clock import SteppableClock
from conveyor.core.errors import ConfigurationError, ConveyorError
from conveyor.core.handlers import handler_mark
from conveyor.core.interceptors import interceptor_mark
from conveyor.drivers.async_messaging import AsyncMessaging
from conveyor.drivers.messaging import Messaging

__all__ = ["main", "build_parser", "load_app", "UsageError"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_LOGGER = "conveyor.cli"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ENV_APP = "CONVEYOR_APP"
_APP_HELP = "a Messaging, or a function without arguments returning one (default: $CONVEYOR_APP)"
_DESCRIPTION = "Run Conveyor consumers, list them, and act on dead letters."
_DURATION_HELP = "stop after this long: 45s, 30m, 1h30m, 500ms, 1d"
_MEMORY_HELP = "stop once resident memory reaches this many MiB"
_EMPTY_HELP = "stop when nothing is due (default: keep waiting for messages)"
_RAW = argparse.RawDescriptionHelpFormatter
_EXIT_CODES = """exit codes:
  0  normal stop: limit, empty, time or memory limit, SIGTERM/SIGINT once the messages in
     flight are finished (a second signal, or --grace running out, stops at once)
  1  failure: a consumer stopped on a handler failure, an unknown dead letter
  2  usage or configuration error"""

Command = Callable[[Any, argparse.Namespace], int]
App = Messaging | AsyncMessaging


class UsageError(Exception):
    """How conveyor was called or configured cannot work: exit code 2, a message, no traceback.

    ``detail`` carries a traceback only when the user's own code raised while loading the app,
    where the traceback is the useful part.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


def main(argv: list[str] | None = None) -> int:
    """Run the ``conveyor`` command and return its exit code (it does not call ``sys.exit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    with _log_to_stderr(args.log_level, args.log_format):
        try:
            source = "--app" if args.app else _ENV_APP
            messaging, owned = load_app(args.app or os.environ.get(_ENV_APP, ""), source=source)
        except UsageError as error:
            return _fail(EXIT_USAGE, str(error), error.detail)
        try:
            command: Command = args.command
            if isinstance(messaging, AsyncMessaging) and command is not _run:
                raise UsageError(
                    f"conveyor {args.command_name} takes a Messaging; --app names an "
                    f"AsyncMessaging, which conveyor serves with `conveyor run` only. Build a "
                    f"Messaging on the same channels for {args.command_name}."
                )
            if args.command in _READS_LETTERS:
                refusal = in_memory_letters_error(messaging.dead_letter_store)
                if refusal is not None:
                    raise UsageError(refusal)
            return command(messaging, args)
        except (UsageError, ConfigurationError) as error:
            return _fail(EXIT_USAGE, str(error))
        except ConveyorError as error:  # DeadLetterNotFound, a transport that failed
            return _fail(EXIT_FAILURE, str(error))
        except Exception:
            logging.getLogger(_LOGGER).exception("conveyor %s failed", args.command_name)
            return EXIT_FAILURE
        finally:
            if owned:  # built by the app's factory for this command: nobody else closes it
                if isinstance(messaging, AsyncMessaging):
                    asyncio.run(messaging.aclose())
                else:
                    messaging.close()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``--app`` and ``--log-level`` are accepted before or after a command."""
    hidden = argparse.ArgumentParser(add_help=False)  # the same options, after the command
    hidden.add_argument("--app", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    level: dict[str, Any] = {"type": str.upper, "choices": _LEVELS}
    hidden.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS, **level)
    log_format: dict[str, Any] = {"choices": ("text", "json")}
    hidden.add_argument(
        "--log-format", default=argparse.SUPPRESS, help=argparse.SUPPRESS, **log_format
    )
    parser = argparse.ArgumentParser(
        prog="conveyor", description=_DESCRIPTION, epilog=_EXIT_CODES, formatter_class=_RAW
    )
    parser.add_argument("--version", action="version", version=f"conveyor {_version()}")
    parser.add_argument("--app", metavar="MODULE:ATTRIBUTE", help=_APP_HELP)
    parser.add_argument(
        "--log-level", default="INFO", help="log level on stderr (default: INFO)", **level
    )
    parser.add_argument(
        "--log-format",
        default="text",
        help="text, or json: one object per line for log shippers (default: text)",
        **log_format,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    count: dict[str, Any] = {"type": fmt.positive_int, "metavar": "N"}
    as_json: dict[str, Any] = {"action": "store_true", "help": "print JSON for machines"}

    run = _command(commands, hidden, "run", _run, "run consumers until a limit or a signal")
    run.add_argument(
        "channel", nargs="*", metavar="CONSUMER", help="channels and @scheduled endpoints"
    )
    run.add_argument("--all", action="store_true", help="every channel and schedule of the app")
    run.add_argument(
        "--in-memory",
        action="store_true",
        help="run empty in-memory channels anyway (only this process can send to them)",
    )
    run.add_argument("--limit", help="stop after N messages (or ticks)", **count)
    duration: dict[str, Any] = {
        "type": fmt.parse_duration,
        "metavar": "DURATION",
        "help": _DURATION_HELP,
    }
    run.add_argument("--time-limit", **duration)
    run.add_argument("--memory-limit", type=fmt.positive_int, metavar="MB", help=_MEMORY_HELP)
    run.add_argument("--stop-on-failure", action="store_true", help="stop on a failure, exit 1")
    empty: dict[str, Any] = {
        "action": argparse.BooleanOptionalAction,
        "default": False,  # a worker process waits for messages until a limit or a signal
        "help": _EMPTY_HELP,
    }
    run.add_argument("--finish-when-empty", **empty)
    run.add_argument(
        "--concurrency",
        type=fmt.positive_int,
        default=1,
        metavar="N",
        help="messages handled at once: threads, or tasks for an AsyncMessaging (default: 1)",
    )
    run.add_argument(
        "--grace",
        type=fmt.parse_duration,
        metavar="DURATION",
        help="after SIGTERM, how long messages in flight may take before the worker stops "
        "anyway, leaving them to their lease (default: as long as they take)",
    )
    _command(commands, hidden, "list", _list, "list the consumers").add_argument(
        "--json", **as_json
    )

    dead = commands.add_parser("dead-letter", parents=[hidden], help="act on dead letters")
    actions = dead.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = _command(actions, hidden, "list", _dl_list, "dead letters, oldest first")
    listing.add_argument("--limit", help="show at most N", **count)
    listing.add_argument("--offset", type=fmt.non_negative_int, default=0, metavar="N")
    listing.add_argument("--json", **as_json)
    listing.add_argument("--wide", action="store_true", help="full ids, no column cut")
    show = _command(actions, hidden, "show", _dl_show, "one dead letter in full")
    show.add_argument("id")
    show.add_argument("--json", **as_json)
    _command(actions, hidden, "replay", _dl_replay, "send one back").add_argument("id")
    _command(actions, hidden, "replay-all", _dl_replay_all, "send every one back")
    _command(actions, hidden, "delete", _dl_delete, "delete one for good").add_argument("id")
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    hidden: argparse.ArgumentParser,
    name: str,
    function: Command,
    summary: str,
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, parents=[hidden], help=summary, description=summary)
    sub.set_defaults(command=function, command_name=name)
    return sub


# ---------------------------------------------------------------------- loading the app


def load_app(path: str, *, source: str = "--app") -> tuple[App, bool]:
    """Import ``module:attribute`` and return its Messaging, and whether a factory built it.

    ``source`` names where the path came from (``--app`` or ``CONVEYOR_APP``) in messages. A
    value that is not made of names is not echoed: it may be a URL with a password in it.
    """
    if not path:
        raise UsageError(
            f"no app given: pass --app module:attribute (for example --app "
            f"myproject.messaging:messaging) or set {_ENV_APP}."
        )
    module_name, _, attribute = path.rpartition(":") if path.count(":") > 1 else path.partition(":")
    if module_name.endswith(".py") and _dotted(attribute):
        module_name = _module_of_file(module_name, path)
    if not _dotted(module_name) or not _dotted(attribute):
        shown = repr(path) if re.fullmatch(r"[\w.:-]+", path) else "(not shown)"
        raise UsageError(
            f"{source} {shown} must be module:attribute, for example --app "
            f"myproject.messaging:messaging (a Messaging) or myproject.messaging:build (a "
            f"function that returns one)."
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(
            f"cannot import module {module_name!r} (--app {path}): {type(error).__name__}: "
            f"{error}. Run conveyor from your project's directory (it is put on sys.path) or "
            f"install your project into this environment."
        ) from None
    except Exception as error:
        raise _raised(f"importing module {module_name!r}", error) from None
    target: object = module
    parts = attribute.split(".")
    for depth, name in enumerate(parts):
        if not hasattr(target, name):
            owner = (
                f"{module_name}:{'.'.join(parts[:depth])}" if depth else f"module {module_name!r}"
            )
            raise UsageError(_missing(module, path, owner, name))
        target = getattr(target, name)
    if isinstance(target, Messaging | AsyncMessaging):
        return target, False
    if not callable(target) or handler_mark(target) or interceptor_mark(target):
        raise UsageError(
            f"--app {path} is {_kind(target)}, not a Messaging. Point --app at a Messaging "
            f"instance or a function that takes no arguments and returns one."
        )
    required = _required_parameters(target)
    if required:
        raise UsageError(
            f"--app {path} needs arguments ({', '.join(required)}); a factory is called with "
            f"none. Give its parameters defaults, or point --app at a Messaging instance."
        )
    try:
        built = target()
    except Exception as error:
        raise _raised(f"{path}()", error) from None
    if not isinstance(built, Messaging | AsyncMessaging):
        raise UsageError(f"--app {path}() returned {_kind(built)}, not a Messaging.")
    return built, True


def _module_of_file(file: str, path: str) -> str:
    """``examples/shop/app.py`` as the dotted module it is from the current directory.

    A file under the current directory is imported by its dotted name (so its package's relative
    imports work); one outside it cannot be, and the error says which form to use.
    """
    absolute = os.path.abspath(file)
    relative = os.path.relpath(absolute, os.getcwd())
    if not os.path.isfile(absolute):
        raise UsageError(f"--app {path}: no such file {file!r}; --app takes module:attribute.")
    if relative.startswith(".."):
        raise UsageError(
            f"--app {path}: the file is outside the current directory; run conveyor from the "
            f"project's directory, or pass the dotted form module:attribute."
        )
    return relative[: -len(".py")].replace(os.sep, ".")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conveyor")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _raised(what: str, error: Exception) -> UsageError:
    if isinstance(error, ConveyorError):  # the kernel's own messages say how to fix them
        return UsageError(f"{what} raised {type(error).__name__}: {error}")
    return UsageError(
        f"{what} raised {type(error).__name__}: {error}", "".join(traceback.format_exception(error))
    )


def _missing(module: ModuleType, path: str, owner: str, name: str) -> str:
    instances, factories = [], []
    for attribute, value in vars(module).items():
        if attribute.startswith("_"):
            continue
        if isinstance(value, Messaging):
            instances.append(attribute)
        elif (
            inspect.isfunction(value)
            and value.__module__ == module.__name__
            and handler_mark(value) is None
            and interceptor_mark(value) is None
            and not _required_parameters(value)
        ):
            factories.append(attribute)
    found = [
        f"Messaging instances: {', '.join(instances)}" if instances else "",
        f"functions without arguments: {', '.join(factories)}" if factories else "",
    ]
    candidates = "; ".join(part for part in found if part)
    hint = (
        f"it has {candidates}"
        if candidates
        else "it has no Messaging instance and no function without arguments at top level"
    )
    return f"--app {path}: {owner} has no attribute {name!r}; {hint}."


def _required_parameters(function: Callable[..., object]) -> list[str]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return []
    return [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _kind(value: object) -> str:
    text = repr(value)
    return f"{type(value).__qualname__} ({text[:57] + '...' if len(text) > 60 else text})"


# ---------------------------------------------------------------------- commands


def _run(messaging: App, args: argparse.Namespace) -> int:
    """Run the consumers named (or ``--all``); a failure it stops on is logged and exits 1.

    On a real clock the consumers are served together (``Messaging.serve``: threads; an
    ``AsyncMessaging``: tasks on a new event loop), with ``--concurrency`` messages at once.
    """
    log = logging.getLogger(_LOGGER)
    names = _consumers_to_run(messaging, args)
    if not args.in_memory:
        runtimes = messaging.runtimes if isinstance(messaging, Messaging) else messaging.channels
        empty = empty_in_memory_channels(runtimes, names)
        if empty:
            kinds = {n: type(runtimes[n].definition).__name__ for n in empty}
            raise UsageError(in_memory_channel_error(empty, kinds))
    shown = ", ".join(names)
    given = {
        "concurrency": args.concurrency if args.concurrency > 1 else None,
        "limit": args.limit,
        "time limit": args.time_limit,
        "memory limit (MiB)": args.memory_limit,
        "stop on failure": args.stop_on_failure or None,
        "finish when empty": args.finish_when_empty,
        "grace": args.grace,
    }
    settings = ", ".join(f"{key}: {value}" for key, value in given.items() if value is not None)
    noun = "consumer" if len(names) == 1 else "consumers"
    log.info("%s %s started on %r (%s)", noun, shown, messaging.clock, settings or "no limits")
    counts = fmt.OutcomeCounts(*names)
    messaging.journal.subscribe(counts.add, fmt.OutcomeCounts.KINDS)
    limits: dict[str, Any] = {
        "limit": args.limit,
        "time_limit": args.time_limit,
        "memory_limit": args.memory_limit,
        "stop_on_failure": args.stop_on_failure,
        "finish_when_empty": args.finish_when_empty,
    }
    try:
        if isinstance(messaging, AsyncMessaging):
            target: str | list[str] = names[0] if len(names) == 1 else names
            result = asyncio.run(
                messaging.run(target, concurrency=args.concurrency, grace=args.grace, **limits)
            )
        elif isinstance(messaging.clock, SteppableClock):
            if len(names) > 1 or args.concurrency > 1 or args.grace is not None:
                raise UsageError(
                    f"--app runs on {messaging.clock!r}: on virtual time conveyor runs one "
                    f"consumer at a time, without --concurrency or --grace. Give the app a "
                    f"SystemClock to serve several consumers at once."
                )
            result = messaging.run(names[0], **limits)
        else:
            result = messaging.serve(
                names, concurrency=args.concurrency, grace=args.grace, **limits
            )
    except (UsageError, ConfigurationError):
        raise
    except Exception as error:
        log.exception("%s %s stopped on a failure", noun, shown)
        print(f"{shown}: stopped: failure ({type(error).__name__}: {error})")
        return EXIT_FAILURE
    log.info("%s %s stopped: %s", noun, shown, result.stopped_because)
    messages = "message" if result.processed == 1 else "messages"
    print(
        f"{shown}: processed {result.processed} {messages} ({counts}), "
        f"stopped: {result.stopped_because}"
    )
    return EXIT_OK


def _consumers_to_run(messaging: App, args: argparse.Namespace) -> list[str]:
    """The consumers ``run`` was asked for, checked: named ones, or every one with ``--all``."""
    internal: dict[str, str] = getattr(messaging, "internal_channels", {})
    runnable = [name for name in messaging.consumers() if name not in internal]
    aliases: Mapping[str, str] = getattr(messaging, "aliases", {})  # ChannelAlias names
    names: list[str] = list(dict.fromkeys(aliases.get(name, name) for name in args.channel))
    if args.all and names:
        raise UsageError("give consumer names or --all, not both")
    if args.all:
        if not runnable:
            raise UsageError(
                "--all found no consumer: declare a channel with an @asynchronous handler, "
                "or a @scheduled one. See `conveyor list`."
            )
        return runnable
    if not names:
        raise UsageError(
            f"name the consumers to run, or pass --all; consumers: "
            f"{', '.join(runnable) or 'none'}. See `conveyor list`."
        )
    for name in names:
        if name in internal:
            owner = internal[name]
            raise UsageError(
                f"channel {name!r} is internal to dynamic channel {owner!r}, which polls it "
                f"through its receiving strategy; run {owner!r} instead. See `conveyor list`."
            )
        if name not in messaging.consumers():
            raise UsageError(
                f"no consumer named {name!r}; consumers: "
                f"{', '.join(runnable) or 'none'}. See `conveyor list`."
            )
    return names


def _list(messaging: Messaging, args: argparse.Namespace) -> int:
    letters = messaging.dead_letters.list()
    consumers = [listing.consumer_info(messaging, name, letters) for name in messaging.consumers()]
    if args.json:
        print(json.dumps([listing.consumer_to_json(c) for c in consumers], indent=2))
    elif not consumers:
        print("no consumers: declare a channel with an @asynchronous handler, or a @scheduled one")
    else:
        print(
            "\n".join(
                listing.consumer_table(consumers, messaging.clock.now(), fmt.terminal_width())
            )
        )
    return EXIT_OK


def _dl_list(messaging: Messaging, args: argparse.Namespace) -> int:
    letters = messaging.dead_letters.list(limit=args.limit, offset=args.offset)
    if args.json:
        print(json.dumps([fmt.letter_to_json(letter) for letter in letters], indent=2))
        return EXIT_OK
    total = messaging.dead_letters.count()
    if not letters:
        print(
            "no dead letters"
            if total == 0
            else f"no dead letters at offset {args.offset} ({total} in the store)"
        )
        return EXIT_OK
    width = 1_000_000 if args.wide else fmt.terminal_width()
    print("\n".join(fmt.letter_table(letters, width, short_ids=not args.wide)))
    first = args.offset + 1
    print(
        f"({first}-{args.offset + len(letters)} of {total}; "
        f"`conveyor dead-letter show ID` shows one in full)"
    )
    return EXIT_OK


def _dl_show(messaging: Messaging, args: argparse.Namespace) -> int:
    letter = messaging.dead_letters.get(_full_id(messaging, args.id))
    if args.json:
        print(json.dumps(fmt.letter_to_json(letter), indent=2))
    else:
        print(fmt.describe_letter(letter))
    return EXIT_OK


def _dl_replay(messaging: Messaging, args: argparse.Namespace) -> int:
    letter = messaging.dead_letters.get(_full_id(messaging, args.id))
    _warn_if_not_durable(messaging, [letter.channel])
    messaging.dead_letters.replay(letter.id)
    print(
        f"replayed {fmt.printable(letter.id)} to channel {letter.channel}"
        + (f" (endpoint {letter.endpoint_id})" if letter.endpoint_id else "")
    )
    return EXIT_OK


def _dl_replay_all(messaging: Messaging, args: argparse.Namespace) -> int:
    _warn_if_not_durable(messaging, sorted({d.channel for d in messaging.dead_letters.list()}))
    replayed = messaging.dead_letters.replay_all()
    print(f"replayed {replayed} dead letter{'' if replayed == 1 else 's'}")
    return EXIT_OK


def _dl_delete(messaging: Messaging, args: argparse.Namespace) -> int:
    messaging.dead_letters.delete(_full_id(messaging, args.id))
    print(f"deleted {fmt.printable(args.id)}")
    return EXIT_OK


def _full_id(messaging: Messaging, given: str) -> str:
    """The id of the one dead letter ``given`` names: in full, or as ``dead-letter list`` shows it.

    The list prints the end of each message id (uuid v7 ids made close together share their
    start); any unique part from either end of it is accepted, with or without ``@endpoint``.
    """
    ids = [letter.id for letter in messaging.dead_letters.list()]
    if given in ids:
        return given
    found = [i for i in ids if fmt.id_matches(i, given)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UsageError(
            f"{given!r} matches {len(found)} dead letters; give more of the id "
            f"(`conveyor dead-letter list --wide` shows them in full)."
        )
    return given  # the store says it is not there, with its own message


def _warn_if_not_durable(messaging: Messaging, channels: list[str]) -> None:
    """A replay into an in-memory channel is lost when this command exits: say so."""
    for name in channels:
        runtime = messaging.runtimes.get(name)
        if runtime is not None and not runtime.transport.capabilities.durable:
            logging.getLogger(_LOGGER).warning(
                "channel %s is not durable (%s): replayed messages live only in this process "
                "and are lost when the command exits",
                name,
                type(runtime.transport).__qualname__,
            )


_READS_LETTERS = (_dl_list, _dl_show, _dl_replay, _dl_replay_all, _dl_delete)

# ---------------------------------------------------------------------- output


def _fail(code: int, message: str, detail: str | None = None) -> int:
    print(f"conveyor: error: {message}", file=sys.stderr)
    if detail:
        print(detail.rstrip(), file=sys.stderr)
    return code


@contextmanager
def _log_to_stderr(level: str, log_format: str = "text") -> Iterator[None]:
    """Log to stderr for one command, then put logging back as it was (main runs in tests too)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


if __name__ == "__main__":
    sys.exit(main())
