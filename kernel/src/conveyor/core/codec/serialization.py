"""Payloads on the wire: explicit type names and a JSON codec that rebuilds typed values.

A message crosses a broker as bytes plus a *type name*. The name comes from a
:class:`TypeRegistry` (never an import path read from the wire, never pickle), so a consumer can
only ever build the classes it registered. :class:`JsonCodec` turns payloads into compact,
deterministic JSON and back, using the target class's type hints to rebuild nested values and to
say exactly where a body does not fit (``PlaceOrder.lines[2].sku expected a string, ...``).

Speed matters because every message, including those on in-memory channels, goes through the codec:
each class gets an encoder and a decoder *plan* built once per codec instance from its annotations
(:mod:`conveyor.core.codec.json_encoding`, :mod:`conveyor.core.codec.json_decoding`), and fields
that JSON already represents (str, int, float, bool, lists and dicts of them) pass straight through
to :mod:`json`. This module is the public face: the :class:`Codec` seam, the JSON codec itself, and
the names (including :class:`TypeRegistry`, from :mod:`conveyor.core.codec.type_registry`) that the
rest of the kernel and its users import.

Choices worth knowing:

- A ``Union`` of several members decodes as the first member, in the order written, that decodes
  without error; put the most specific member first. ``X | None`` is decoded without trying.
- ``Sequence`` and ``MutableSequence`` decode to ``list``, ``Mapping`` to ``dict``, ``AbstractSet``
  to ``frozenset``. ``float`` accepts JSON integers. Unknown object keys are ignored (a producer may
  add fields before its consumers upgrade); missing fields use the dataclass default.
- ``timedelta`` travels as an ISO 8601 duration (``"-P1DT2H3M4.000005S"``) and round-trips exactly;
  a number of seconds is accepted on decode. Datetimes keep their UTC offset (a ``ZoneInfo``
  becomes a fixed offset); naive datetimes are refused both ways, since another process would read
  them in its own local time. ``Decimal`` travels as a string (a signalling NaN is refused). Sets
  are sorted. Float NaN and infinity are refused both ways: they are not JSON.
- Decoding never raises anything but :class:`SerializationError` (which keeps the raw bytes),
  whatever the body holds: a value out of range, a structure nested deeper than Python's recursion
  limit, or an exception from a class's own constructor or a validating library. Its message names
  the field path, the expected type and the kind of value found, never a payload value.
- Pydantic v2 models and msgspec Structs are delegated to their own library, which is never
  imported here: a class is recognised only when its library is already loaded.
"""

from __future__ import annotations

import json
from types import NoneType
from typing import Any, Protocol, runtime_checkable

from conveyor.core.codec.json_annotations import AnnotatedFields
from conveyor.core.codec.json_decoding import Decoder, DecoderPlans
from conveyor.core.codec.json_encoding import Encoder, EncoderPlans, find_not_json
from conveyor.core.codec.json_mismatch import SUPPORTED, Mismatch, class_path
from conveyor.core.codec.type_registry import JSON_TYPE_NAME, TypeRegistry
from conveyor.core.errors import SerializationError

__all__ = [
    "Codec",
    "JsonCodec",
    "JsonPlans",
    "TypeRegistry",
    "UnknownMessageType",
    "JSON_TYPE_NAME",
]

_JSON_VALUES = (dict, list, str, int, float, bool, NoneType)


class UnknownMessageType(SerializationError):
    """A type name arrived on the wire that the receiving :class:`TypeRegistry` does not know."""


@runtime_checkable
class Codec(Protocol):
    """Turns payloads into a body plus a type name, and back. Transports only ever see bytes."""

    content_type: str

    def encode(self, payload: object) -> tuple[bytes, str]:
        """The body and the type name of ``payload``; :class:`SerializationError` if impossible."""
        ...

    def decode(self, body: bytes, type_name: str) -> object:
        """The payload of that type in ``body``; :class:`SerializationError` keeps ``raw=body``."""
        ...


class JsonPlans:
    """The JSON codec's encoding and decoding plans, by class, built on first use.

    A plan depends only on its class (whose annotations do not change once it is defined), so
    codecs given the same ``JsonPlans`` share what each builds: kernels built from the same
    handlers do (``conveyor.core.spec_cache``), so a test suite builds each plan once rather
    than once per test. The plans are safe to share between threads.
    """

    __slots__ = ("decoders", "encoders")

    def __init__(self) -> None:
        fields = AnnotatedFields()
        self.encoders = EncoderPlans(fields)
        self.decoders = DecoderPlans(fields)


class JsonCodec:
    """Compact, deterministic JSON for dataclasses and the standard value types.

    Args:
        registry: the payload types' names on the wire.
        plans: encoding and decoding plans to share with other codecs (see
            :class:`JsonPlans`); by default the codec has its own. Names stay per codec,
            since each has its own registry.
    """

    content_type = "application/json"

    def __init__(self, registry: TypeRegistry, *, plans: JsonPlans | None = None) -> None:
        self._registry = registry
        self._json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        self._parser = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite_float)
        self._top: dict[type, tuple[Encoder, str]] = {}
        self._by_name: dict[str, tuple[Decoder, type]] = {}
        plans = plans if plans is not None else JsonPlans()
        self._encoders = plans.encoders
        self._decoders = plans.decoders

    @property
    def registry(self) -> TypeRegistry:
        """The names this codec writes and accepts."""
        return self._registry

    def encode(self, payload: object) -> tuple[bytes, str]:
        """The body and wire name of ``payload``; plain JSON values are named ``"json"``."""
        cls = type(payload)
        if cls in _JSON_VALUES:
            return self._dump(payload, "payload", payload), JSON_TYPE_NAME
        entry = self._top.get(cls)
        if entry is None:
            encoder = self._encoders.class_encoder(cls)
            if encoder is None:
                raise SerializationError(
                    f"Cannot encode a payload of type {class_path(cls)}: the JSON codec encodes "
                    f"{SUPPORTED}. Make {cls.__qualname__} a dataclass "
                    f"(@dataclass(frozen=True, slots=True)) with annotated fields, or send it "
                    f"through a Codec of your own that knows it."
                )
            entry = self._top[cls] = (encoder, self._registry.name_of(cls))
        encoder, name = entry
        try:
            data = encoder(payload)
        except Mismatch as failure:
            raise SerializationError(
                f"Cannot encode {cls.__qualname__}: {failure.where(cls.__qualname__)} "
                f"{failure.reason}. Fix the value or the field's annotation so they agree."
            ) from failure.cause
        except SerializationError:
            raise
        except RecursionError as exc:
            raise SerializationError(
                f"Cannot encode {cls.__qualname__}: {_TOO_DEEP} (or it refers to itself)."
            ) from exc
        except Exception as exc:  # a pydantic or msgspec serializer refused the value
            raise SerializationError(
                f"Cannot encode {cls.__qualname__}: its own library refused it "
                f"({type(exc).__qualname__}; the message is kept on __cause__, not repeated "
                f"here, since it may quote payload values). Fix the value so its library can "
                f"serialize it."
            ) from exc
        return self._dump(data, cls.__qualname__, payload), name

    def decode(self, body: bytes, type_name: str) -> object:
        """Rebuild the payload registered as ``type_name``, checking its shape on the way.

        Raises:
            SerializationError: for any body that is not a valid ``type_name`` (never another
                exception); ``.raw`` holds ``body``.
        """
        entry = self._by_name.get(type_name)
        if entry is None and type_name != JSON_TYPE_NAME:
            entry = self._decoder_named(type_name, body)
        try:
            # raw_decode skips decode's whitespace scans (a third of its time on small bodies); a
            # body with anything unusual (whitespace around, trailing data, errors) takes decode.
            text = body.decode()
            try:
                data, end = self._parser.raw_decode(text)
            except ValueError:
                end = -1
            if end != len(text):
                data = self._parser.decode(text)
        except UnicodeDecodeError as exc:
            raise _unreadable(type_name, body, f"byte {exc.start} is not UTF-8") from exc
        except RecursionError as exc:
            raise _unreadable(type_name, body, _TOO_DEEP) from exc
        except ValueError as exc:
            raise _unreadable(type_name, body, str(exc)) from exc
        if entry is None:
            return data
        decoder, cls = entry
        try:
            return decoder(data)
        except Mismatch as failure:
            raise SerializationError(
                f"Cannot decode a {type_name!r} message into {class_path(cls)}: "
                f"{failure.where(cls.__qualname__)} {failure.reason}. The producer and this "
                f"consumer disagree on the shape of {cls.__qualname__}: align the annotation "
                f"on both sides, or register another class under {type_name!r}.",
                raw=body,
            ) from failure.cause
        except RecursionError as exc:
            raise SerializationError(
                f"Cannot decode a {type_name!r} message into {class_path(cls)}: {_TOO_DEEP}. "
                f"Send flatter data, or split it into several messages.",
                raw=body,
            ) from exc
        except Exception as exc:  # a guard this codec lacks: still a SerializationError
            raise SerializationError(
                f"Cannot decode a {type_name!r} message into {class_path(cls)}: decoding raised "
                f"{type(exc).__qualname__} (kept on __cause__). Please report it to Conveyor.",
                raw=body,
            ) from exc

    def _decoder_named(self, type_name: str, body: bytes) -> tuple[Decoder, type]:
        try:
            cls = self._registry.type_named(type_name)
        except UnknownMessageType as exc:
            raise UnknownMessageType(str(exc), raw=body) from None
        try:
            decoder = self._decoders.class_decoder(cls)
        except SerializationError as exc:  # an annotation no plan can be built for
            raise SerializationError(str(exc), raw=body) from exc
        if decoder is None:
            raise SerializationError(
                f"Cannot decode {type_name!r}: it names {class_path(cls)}, which the JSON codec "
                f"cannot build. It decodes {SUPPORTED}; make {cls.__qualname__} a dataclass.",
                raw=body,
            )
        entry = self._by_name[type_name] = (decoder, cls)
        return entry

    def _dump(self, data: object, root: str, payload: object) -> bytes:
        try:
            return self._json.encode(data).encode()
        except RecursionError as exc:
            raise SerializationError(f"Cannot encode {root}: {_TOO_DEEP}.") from exc
        except (TypeError, ValueError) as exc:
            try:
                where, value = find_not_json(data, root, payload)
            except RecursionError:
                where, value = "", None
            if not where:
                raise SerializationError(
                    f"Cannot encode {root}: it holds a value JSON cannot take "
                    f"({type(exc).__qualname__})."
                ) from exc
            what = "NaN or infinity" if isinstance(value, float) else f"a {class_path(type(value))}"
            raise SerializationError(
                f"Cannot encode {root}: {where} holds {what}, which is not a JSON value. "
                f"Annotate the field with the value's real type (a dataclass, Enum, datetime, "
                f"UUID, Decimal, ...) so the codec converts it, or convert it yourself."
            ) from exc


_TOO_DEEP = "it is nested deeper than Python's recursion limit lets the codec follow"


def _unreadable(type_name: str, body: bytes, reason: str) -> SerializationError:
    return SerializationError(
        f"Cannot decode a {type_name!r} message: the body is not UTF-8 JSON ({reason}). "
        f"The producer must send UTF-8 JSON; the raw bytes are kept on this error (.raw).",
        raw=body,
    )


def _not_json(constant: str) -> Any:
    """``json`` reads NaN and Infinity by default; the encoder never writes them, so neither."""
    raise ValueError(f"{constant} is not a JSON number; JSON has no NaN or infinity")


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0:  # inf - inf is nan, and nan != 0: cheaper than math.isfinite
        raise ValueError("a number is past the range of a float (it would read as infinity)")
    return value
