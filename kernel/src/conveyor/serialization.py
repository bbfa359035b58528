"""Payloads on the wire: explicit type names and a JSON codec that rebuilds typed values.

A message crosses a broker as bytes plus a *type name*. The name comes from a
:class:`TypeRegistry` (never an import path read from the wire, never pickle), so a consumer can
only ever build the classes it registered. :class:`JsonCodec` turns payloads into compact,
deterministic JSON and back, using the target class's type hints to rebuild nested values and to
say exactly where a body does not fit (``PlaceOrder.lines[2].sku expected a string, ...``).

Speed matters because every message, including those on in-memory channels, goes through the
codec: each class gets an encoder and a decoder *plan* built once per codec instance from its
annotations, and fields that JSON already represents (str, int, float, bool, lists and dicts of
them) pass straight through to :mod:`json`.

Choices worth knowing:

- A ``Union`` of several members decodes as the first member, in the order written, that decodes
  without error; put the most specific member first. ``X | None`` is decoded without trying.
- ``Sequence`` and ``MutableSequence`` decode to ``list``, ``Mapping`` to ``dict``, ``AbstractSet``
  to ``frozenset``. ``float`` accepts JSON integers. Unknown object keys are ignored (a producer may
  add fields before its consumers upgrade); missing fields use the dataclass default.
- ``timedelta`` travels as an ISO 8601 duration (``"-P1DT2H3M4.000005S"``) and round-trips exactly;
  a number of seconds is accepted on decode. Datetimes keep their UTC offset (a ``ZoneInfo``
  becomes a fixed offset). ``Decimal`` travels as a string. Sets are sorted. NaN and infinity are
  refused: they are not JSON.
- Pydantic v2 models and msgspec Structs are delegated to their own library, which is never
  imported here: a class is recognised only when its library is already loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import types
import typing
from collections import abc
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from conveyor.errors import ConfigurationError, SerializationError

__all__ = ["Codec", "JsonCodec", "TypeRegistry", "UnknownMessageType", "JSON_TYPE_NAME"]

#: The type name of payloads that are plain JSON values (messages sent by routing key).
JSON_TYPE_NAME = "json"

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[Any], Any]
_NoneType = type(None)
_JSON_VALUES = (dict, list, str, int, float, bool, _NoneType)
_SCALARS = (str, int, float, bool, _NoneType)
_SUPPORTED = (
    "dataclasses, Enum, datetime, date, time, timedelta, UUID, Decimal, pydantic v2 models, "
    "msgspec Structs, and plain JSON values (dict, list, str, int, float, bool, None)"
)
_DURATION = r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?"


class UnknownMessageType(SerializationError):
    """A type name arrived on the wire that the receiving :class:`TypeRegistry` does not know."""


class TypeRegistry:
    """Explicit names for payload types on the wire (never import paths from the wire).

    A class's name is its ``__conveyor_name__`` (set on the class itself, not inherited), else its
    ``__qualname__``. Two classes may not share a name: that is refused when the second one is
    registered, rather than discovered when a consumer builds the wrong type.
    """

    def __init__(self, types: Iterable[type] = ()) -> None:
        self._types: dict[str, type] = {}
        self._names: dict[type, str] = {}
        for cls in types:
            self.register(cls)

    def register(self, cls: type, name: str | None = None) -> str:
        """Give ``cls`` its name on the wire and return it. Registering it again is harmless."""
        if not isinstance(cls, type):
            raise ConfigurationError(
                f"TypeRegistry.register() takes a class, got {cls!r}. Pass the payload's class."
            )
        known = self._names.get(cls)
        if known is not None and (name is None or name == known):
            return known
        if known is not None:
            raise ConfigurationError(
                f"{_path(cls)} is already registered as {known!r}; it cannot also be {name!r}, "
                f"because a type has exactly one name on the wire. Register it once, with the "
                f"name you want, before it is first sent."
            )
        wanted = (
            (cls.__dict__.get("__conveyor_name__") or cls.__qualname__) if name is None else name
        )
        if not isinstance(wanted, str) or not wanted:
            raise ConfigurationError(
                f"The wire name of {_path(cls)} must be a non-empty string, got {wanted!r}. "
                f'Set __conveyor_name__ = "..." on the class, or pass name="..." to register().'
            )
        if wanted == JSON_TYPE_NAME:
            raise ConfigurationError(
                f"{_path(cls)} cannot take the name {JSON_TYPE_NAME!r}: it is reserved for plain "
                f'JSON payloads. Set __conveyor_name__ = "..." on it, or pass name="...".'
            )
        taken = self._types.get(wanted)
        if taken is not None:
            raise ConfigurationError(
                f"Cannot register {_path(cls)} as {wanted!r}: that name is already taken by "
                f"{_path(taken)}, and a consumer could not tell them apart. Give one of them its "
                f'own name: set __conveyor_name__ = "..." on the class, or pass name="..." to '
                f"TypeRegistry.register()."
            )
        self._types[wanted] = cls
        self._names[cls] = wanted
        return wanted

    def name_of(self, cls: type) -> str:
        """The wire name of ``cls``, registering it first if needed (in-process sends just work)."""
        name = self._names.get(cls)
        return name if name is not None else self.register(cls)

    def type_named(self, name: str) -> type:
        """The class registered under ``name``; :class:`UnknownMessageType` if there is none."""
        cls = self._types.get(name)
        if cls is None:
            known = ", ".join(repr(n) for n in self.names()) or "none"
            raise UnknownMessageType(
                f"No payload type is registered under the name {name!r}. Known names: {known}. "
                f"Register the class on this side too: TypeRegistry([YourClass]) or "
                f"registry.register(YourClass, name={name!r}); a class's name is its "
                f"__conveyor_name__, else its __qualname__."
            )
        return cls

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._types)


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


class _Failure(Exception):
    """Internal: a value that does not fit, with the path to it built up while unwinding."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.path: list[str] = []

    def at(self, step: str) -> _Failure:
        self.path.append(step)
        return self

    def where(self, root: str) -> str:
        return root + "".join(reversed(self.path))


class _Missing:
    """Internal: stands for a required field that is absent from the body."""


class _Never:
    """Internal: a type no JSON value has, so fields without a fast path skip it."""


class JsonCodec:
    """Compact, deterministic JSON for dataclasses and the standard value types.

    Plans are cached on the instance, never globally: two codecs never share state, and building
    a ``Messaging`` twice in one process starts fresh.
    """

    content_type = "application/json"

    def __init__(self, registry: TypeRegistry) -> None:
        self._registry = registry
        self._json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        self._parser = json.JSONDecoder()
        self._top: dict[type, tuple[_Encoder, str]] = {}
        self._by_name: dict[str, tuple[_Decoder, type]] = {}
        self._encoders: dict[type, _Encoder] = {}
        self._decoders: dict[type, _Decoder] = {}
        self._hints: dict[type, dict[str, Any]] = {}

    @property
    def registry(self) -> TypeRegistry:
        """The names this codec writes and accepts."""
        return self._registry

    def encode(self, payload: object) -> tuple[bytes, str]:
        """The body and wire name of ``payload``; plain JSON values are named ``"json"``."""
        cls = type(payload)
        if cls in _JSON_VALUES:
            return self._dump(payload, "payload"), JSON_TYPE_NAME
        entry = self._top.get(cls)
        if entry is None:
            encoder = self._class_encoder(cls)
            if encoder is None:
                raise SerializationError(
                    f"Cannot encode a payload of type {_path(cls)}: the JSON codec encodes "
                    f"{_SUPPORTED}. Make {cls.__qualname__} a dataclass "
                    f"(@dataclass(frozen=True, slots=True)) with annotated fields, or send it "
                    f"through a Codec of your own that knows it."
                )
            entry = self._top[cls] = (encoder, self._registry.name_of(cls))
        encoder, name = entry
        try:
            data = encoder(payload)
        except _Failure as failure:
            raise SerializationError(
                f"Cannot encode {cls.__qualname__}: {failure.where(cls.__qualname__)} "
                f"{failure.reason}. Fix the value or the field's annotation so they agree."
            ) from failure.cause
        except SerializationError:
            raise
        except Exception as exc:  # a pydantic or msgspec serializer refused the value
            raise SerializationError(
                f"Cannot encode {cls.__qualname__}: {exc!r}. Fix the value so its own "
                f"library can serialize it."
            ) from exc
        return self._dump(data, cls.__qualname__), name

    def decode(self, body: bytes, type_name: str) -> object:
        """Rebuild the payload registered as ``type_name``, checking its shape on the way."""
        entry = self._by_name.get(type_name)
        if entry is None and type_name != JSON_TYPE_NAME:
            entry = self._decoder_named(type_name, body)
        try:
            data = self._parse(body.decode())
        except (ValueError, RecursionError) as exc:
            raise SerializationError(
                f"Cannot decode a {type_name!r} message: the body is not UTF-8 JSON ({exc}). "
                f"The producer must send UTF-8 JSON; the raw bytes are kept on this error (.raw).",
                raw=body,
            ) from exc
        if entry is None:
            return data
        decoder, cls = entry
        try:
            return decoder(data)
        except _Failure as failure:
            raise SerializationError(
                f"Cannot decode a {type_name!r} message into {_path(cls)}: "
                f"{failure.where(cls.__qualname__)} {failure.reason}. The producer and this "
                f"consumer disagree on the shape of {cls.__qualname__}: align the annotation "
                f"on both sides, or register another class under {type_name!r}.",
                raw=body,
            ) from failure.cause

    def _parse(self, text: str) -> Any:
        # raw_decode skips the whitespace scans of json.loads (a third of its time on small
        # bodies); anything unusual (whitespace around, trailing data, errors) takes json.loads.
        try:
            data, end = self._parser.raw_decode(text)
        except ValueError:
            return json.loads(text)
        return data if end == len(text) else json.loads(text)

    def _decoder_named(self, type_name: str, body: bytes) -> tuple[_Decoder, type]:
        try:
            cls = self._registry.type_named(type_name)
        except UnknownMessageType as exc:
            raise UnknownMessageType(str(exc), raw=body) from None
        decoder = self._class_decoder(cls)
        if decoder is None:
            raise SerializationError(
                f"Cannot decode {type_name!r}: it names {_path(cls)}, which the JSON codec "
                f"cannot build. It decodes {_SUPPORTED}; make {cls.__qualname__} a dataclass.",
                raw=body,
            )
        entry = self._by_name[type_name] = (decoder, cls)
        return entry

    def _dump(self, data: object, root: str) -> bytes:
        try:
            return self._json.encode(data).encode()
        except (TypeError, ValueError) as exc:
            try:
                where, value = _find_not_json(data, root)
            except RecursionError:
                where, value = "", None
            if not where:
                raise SerializationError(f"Cannot encode {root}: {exc}.") from exc
            what = "NaN or infinity" if isinstance(value, float) else f"a {_path(type(value))}"
            raise SerializationError(
                f"Cannot encode {root}: {where} holds {what}, which is not a JSON value ({exc}). "
                f"Annotate the field with the value's real type (a dataclass, Enum, datetime, "
                f"UUID, Decimal, ...) so the codec converts it, or convert it yourself."
            ) from exc

    # -- class plans ---------------------------------------------------------------------------

    def _class_encoder(self, cls: type) -> _Encoder | None:
        encoder = self._encoders.get(cls)
        if encoder is None:
            if dataclasses.is_dataclass(cls):
                return self._dataclass_encoder(cls)
            encoder = _library_encoder(cls) or _leaf_encoder(cls)
            if encoder is not None:
                self._encoders[cls] = encoder
        return encoder

    def _class_decoder(self, cls: type) -> _Decoder | None:
        decoder = self._decoders.get(cls)
        if decoder is None:
            if dataclasses.is_dataclass(cls):
                return self._dataclass_decoder(cls)
            decoder = _library_decoder(cls) or _leaf_decoder(cls)
            if decoder is not None:
                self._decoders[cls] = decoder
        return decoder

    def _fields(self, cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
        hints = self._hints.get(cls)
        if hints is None:
            try:
                hints = self._hints[cls] = typing.get_type_hints(cls)
            except (NameError, TypeError) as exc:
                raise SerializationError(
                    f"Cannot read the annotations of {_path(cls)}: {exc}. Annotations are "
                    f"resolved in the class's module, so define the classes they name at module "
                    f"level (not inside a function)."
                ) from exc
        return [(f, hints.get(f.name, Any)) for f in dataclasses.fields(cls)]

    def _dataclass_encoder(self, cls: type) -> _Encoder:
        plan: list[tuple[str, _Encoder | None]] = []

        def encode(obj: Any) -> Any:
            try:
                return {n: getattr(obj, n) if e is None else e(getattr(obj, n)) for n, e in plan}
            except Exception as exc:
                if not isinstance(obj, cls):
                    found = _describe_python(obj)
                    raise _Failure(f"expected a {cls.__qualname__}, found {found}") from None
                raise _locate(obj, plan, exc) from None

        self._encoders[cls] = encode  # first, so a recursive class finds itself
        try:
            for f, hint in self._fields(cls):
                plan.append((f.name, self._encoder_for(hint, f"{cls.__qualname__}.{f.name}")))
        except BaseException:
            del self._encoders[cls]
            raise
        return encode

    def _dataclass_decoder(self, cls: type) -> _Decoder:
        plan: list[tuple[str, type, _Decoder, bool]] = []
        expected = f"an object for {cls.__qualname__}"

        def decode(data: Any) -> Any:
            if type(data) is not dict:
                raise _Failure(f"expected {expected}, found {_describe(data)}")
            kwargs = {}
            for name, exact, field_decoder, required in plan:
                try:
                    value = data[name]
                except KeyError:
                    if required:
                        raise _mismatch("a value", _Missing).at("." + name) from None
                    continue
                if type(value) is exact:
                    kwargs[name] = value
                    continue
                try:
                    kwargs[name] = field_decoder(value)
                except _Failure as failure:
                    raise failure.at("." + name) from None
            try:
                return cls(**kwargs)
            except Exception as exc:
                reason = f"could not be built: {cls.__qualname__}(...) raised {exc!r}"
                raise _Failure(reason, exc) from None

        self._decoders[cls] = decode
        try:
            for f, hint in self._fields(cls):
                if not f.init:
                    continue
                required = f.default is dataclasses.MISSING and (
                    f.default_factory is dataclasses.MISSING
                )
                field_decoder = self._decoder_for(hint, f"{cls.__qualname__}.{f.name}")
                exact = hint if hint in (str, int, float, bool) else _Never
                plan.append((f.name, exact, field_decoder, required))
        except BaseException:
            del self._decoders[cls]
            raise
        return decode

    # -- annotation plans ----------------------------------------------------------------------

    def _encoder_for(self, hint: Any, where: str) -> _Encoder | None:
        """How to encode a value annotated ``hint``; None means JSON takes it as it is."""
        hint = _unwrap(hint)
        if hint in _SCALARS:
            return None
        origin, args = _shape(hint)
        if origin is None:
            if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
                return self._encode_any
            encoder = self._class_encoder(hint) if isinstance(hint, type) else None
            if encoder is None:
                raise _unsupported(hint, where)
            return encoder
        if origin is typing.Union or origin is types.UnionType:
            members = [self._encoder_for(a, where) for a in args]
            # The value's own type says which member it is; plain JSON members pass through.
            return None if all(m is None for m in members) else self._encode_any
        if origin is typing.Literal:
            return _enum_value if any(isinstance(a, Enum) for a in args) else None
        if origin in _SETS:
            member = self._encoder_for(args[0], where) or _same
            return lambda v: _sorted([member(x) for x in v])
        if origin in _DICTS:
            value = self._encoder_for(args[1], where)
            if origin is dict and value is None and _unwrap(args[0]) is str:
                return None
            value = value or _same
            key = self._encode_key
            return lambda v: {key(k): value(x) for k, x in v.items()}
        if origin is tuple and not (len(args) == 2 and args[1] is ...):
            items = [self._encoder_for(a, where) or _same for a in args]
            return lambda v: [e(x) for e, x in zip(items, v, strict=True)]
        if origin is tuple or origin in _LISTS:
            item = self._encoder_for(args[0], where)
            if item is None and origin in (list, tuple):
                return None
            each = item or _same
            return lambda v: [each(x) for x in v]
        raise _unsupported(hint, where)

    def _decoder_for(self, hint: Any, where: str) -> _Decoder:
        hint = _unwrap(hint)
        scalar = _SCALAR_DECODERS.get(hint)
        if scalar is not None:
            return scalar
        origin, args = _shape(hint)
        if origin is None:
            if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
                return _same
            decoder = self._class_decoder(hint) if isinstance(hint, type) else None
            if decoder is None:
                raise _unsupported(hint, where)
            return decoder
        if origin is typing.Union or origin is types.UnionType:
            members = [a for a in args if a is not _NoneType]
            decoders = [self._decoder_for(a, where) for a in members]
            return _union_decoder(members, decoders, _NoneType in args)
        if origin is typing.Literal:
            return _literal_decoder(args)
        if origin in _SETS:
            return _collection_decoder(self._decoder_for(args[0], where), _SETS[origin])
        if origin in _DICTS:
            return _dict_decoder(
                self._key_decoder(args[0], where), self._decoder_for(args[1], where)
            )
        if origin is tuple and not (len(args) == 2 and args[1] is ...):
            return _tuple_decoder([self._decoder_for(a, where) for a in args])
        if origin is tuple or origin in _LISTS:
            return _collection_decoder(self._decoder_for(args[0], where), _LISTS.get(origin, _same))
        raise _unsupported(hint, where)

    def _key_decoder(self, hint: Any, where: str) -> _Decoder:
        """Object keys are strings: int and int-valued Enum keys are parsed as integers first."""
        hint = _unwrap(hint)
        if hint is str or hint is Any:
            return _same
        decoder = self._decoder_for(hint, where)
        numeric = hint is int or (
            isinstance(hint, type)
            and issubclass(hint, Enum)
            and all(type(m.value) is int for m in hint)
        )
        if not numeric:
            return decoder

        def decode(text: str) -> Any:
            try:
                number = int(text)
            except ValueError:
                raise _mismatch("an integer key", text) from None
            return decoder(number)

        return decode

    def _encode_any(self, value: Any) -> Any:
        """Encode by the value's own type: for ``Any`` fields and union members."""
        cls = type(value)
        if cls in _SCALARS:
            return value
        if cls is list or cls is tuple or cls is dict:
            out: Any = {} if cls is dict else []
            for step, x in value.items() if cls is dict else enumerate(value):
                try:
                    item = self._encode_any(x)
                except _Failure as failure:
                    raise failure.at(f"[{step!r}]") from None
                if cls is dict:
                    out[self._encode_key(step)] = item
                else:
                    out.append(item)
            return out
        if cls is set or cls is frozenset:
            return _sorted([self._encode_any(x) for x in value])
        encoder = self._class_encoder(cls)
        if encoder is None:
            raise _Failure(f"holds a {_path(cls)}, which the codec cannot encode ({_SUPPORTED})")
        return encoder(value)

    def _encode_key(self, key: Any) -> Any:
        if type(key) is str or type(key) is int:
            return key  # json writes int keys as strings
        encoded = self._encode_any(key)
        if type(encoded) is str or type(encoded) is int:
            return encoded
        raise _Failure(f"has a key {key!r}; keys must encode to strings (str, int, Enum, UUID)")


def _shape(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(origin, args) of an annotation, treating a bare ``list`` as ``list[Any]`` and so on."""
    if hint in _BARE:
        return hint, _BARE[hint]
    origin = typing.get_origin(hint)
    if origin is None:
        return None, ()
    args = typing.get_args(hint)
    if origin in _BARE and not args:
        args = _BARE[origin]
    return origin, args


def _unwrap(hint: Any) -> Any:
    while True:
        if isinstance(hint, typing.NewType):
            hint = hint.__supertype__
        elif typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        else:
            return hint


def _same(value: Any) -> Any:
    return value


_LISTS: dict[Any, Callable[[list[Any]], Any]] = {
    list: _same,
    tuple: tuple,
    abc.Sequence: _same,
    abc.MutableSequence: _same,
}
_SETS: dict[Any, type] = {set: set, abc.MutableSet: set, frozenset: frozenset, abc.Set: frozenset}
_DICTS = {dict, abc.Mapping, abc.MutableMapping}
_BARE: dict[Any, tuple[Any, ...]] = {
    list: (Any,),
    tuple: (Any, ...),
    set: (Any,),
    frozenset: (Any,),
    dict: (Any, Any),
    abc.Sequence: (Any,),
    abc.MutableSequence: (Any,),
    abc.Set: (Any,),
    abc.MutableSet: (Any,),
    abc.Mapping: (Any, Any),
    abc.MutableMapping: (Any, Any),
}


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _sorted(items: list[Any]) -> list[Any]:
    """Sets in a stable order: by value when comparable, else by their JSON text."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, default=repr))


def _locate(obj: Any, plan: list[tuple[str, _Encoder | None]], exc: Exception) -> _Failure:
    """After an encoder failed: find the field, so the message names it."""
    for name, encoder in plan:
        try:
            value = getattr(obj, name)
        except AttributeError as missing:
            return _Failure("is not set", missing).at("." + name)
        try:
            if encoder is not None:
                encoder(value)
        except _Failure as failure:
            return failure.at("." + name)
        except Exception as error:
            reason = f"holds {_describe_python(value)} and could not be encoded: {error!r}"
            return _Failure(reason, error).at("." + name)
    return exc if isinstance(exc, _Failure) else _Failure(f"could not be encoded: {exc!r}", exc)


def _find_not_json(data: Any, where: str) -> tuple[str, Any]:
    cls = type(data)
    if cls is float and not math.isfinite(data):
        return where, data
    if cls in (list, tuple):
        for index, item in enumerate(data):
            found = _find_not_json(item, f"{where}[{index}]")
            if found[0]:
                return found
        return "", None
    if cls is dict:
        for key, item in data.items():
            if type(key) not in _SCALARS:
                return f"{where} (a key)", key
            found = _find_not_json(item, f"{where}[{key!r}]")
            if found[0]:
                return found
        return "", None
    return ("", None) if cls in _SCALARS else (where, data)


# -- leaf types --------------------------------------------------------------------------------


def _library_encoder(cls: type) -> _Encoder | None:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return lambda model: model.model_dump(mode="json")
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(cls, msgspec.Struct):
        return typing.cast(_Encoder, msgspec.to_builtins)
    return None


def _library_decoder(cls: type) -> _Decoder | None:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        validate = cls.model_validate  # type: ignore[attr-defined]
        return _guarded(validate, f"a valid {cls.__qualname__}", pydantic.ValidationError)
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(cls, msgspec.Struct):
        convert = msgspec.convert
        expected = f"a valid {cls.__qualname__}"
        return _guarded(lambda data: convert(data, cls), expected, msgspec.ValidationError)
    return None


def _guarded(build: _Decoder, expected: str, errors: type[Exception]) -> _Decoder:
    def decode(data: Any) -> Any:
        try:
            return build(data)
        except errors as exc:
            raise _Failure(f"expected {expected}, found {_describe(data)}: {exc}", exc) from None

    return decode


def _leaf_encoder(cls: type) -> _Encoder | None:
    if issubclass(cls, Enum):
        return _enum_value
    if issubclass(cls, (datetime, date, time)):
        return cls.isoformat
    if issubclass(cls, timedelta):
        return _duration_text
    if issubclass(cls, (UUID, Decimal)):
        return str
    return None


def _leaf_decoder(cls: type) -> _Decoder | None:
    if issubclass(cls, Enum):
        return _enum_decoder(cls)
    if issubclass(cls, (datetime, date, time)):
        return _text_decoder(cls.fromisoformat, f"an ISO 8601 {cls.__name__} string")
    if issubclass(cls, timedelta):
        return _duration_decoder
    if issubclass(cls, UUID):
        return _text_decoder(cls, "a UUID string")
    if issubclass(cls, Decimal):
        return _decimal_decoder
    return None


def _text_decoder(parse: Callable[[str], Any], expected: str) -> _Decoder:
    def decode(data: Any) -> Any:
        if type(data) is str:
            try:
                return parse(data)
            except ValueError:
                pass
        raise _mismatch(expected, data)

    return decode


def _decimal_decoder(data: Any) -> Decimal:
    if type(data) is str or type(data) is int:
        try:
            return Decimal(data)
        except InvalidOperation:
            pass
    raise _mismatch("a decimal number as a string", data)


def _enum_decoder(cls: type[Enum]) -> _Decoder:
    values = ", ".join(repr(m.value) for m in list(cls)[:10])
    expected = f"one of {cls.__qualname__}'s values {values}"

    def decode(data: Any) -> Any:
        try:
            return cls(data)
        except ValueError:
            raise _mismatch(expected, data) from None

    return decode


def _duration_text(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or value.microseconds:
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        clock += f"{seconds}{fraction}S"
    day = f"{value.days}D" if value.days else ""
    if not (day or clock):
        clock = "0S"
    return f"{sign}P{day}" + (f"T{clock}" if clock else "")


def _duration_decoder(data: Any) -> timedelta:
    if type(data) is int or type(data) is float:
        return timedelta(seconds=data)
    match = re.fullmatch(_DURATION, data) if type(data) is str else None
    if match is None or not any(match.groups()[1:]):
        raise _mismatch("an ISO 8601 duration like 'P1DT2H3M4.5S'", data)
    sign, days, hours, minutes, seconds, fraction = match.groups()
    value = timedelta(
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(6, "0")),
    )
    return -value if sign else value


# -- scalar and generic decoders ---------------------------------------------------------------


def _exact(cls: type, expected: str) -> _Decoder:
    def decode(data: Any) -> Any:
        if type(data) is cls:
            return data
        raise _mismatch(expected, data)

    return decode


def _float_decoder(data: Any) -> float:
    if type(data) is float or type(data) is int:
        return float(data)
    raise _mismatch("a number", data)


_SCALAR_DECODERS: dict[Any, _Decoder] = {
    str: _exact(str, "a string"),
    int: _exact(int, "an integer"),
    float: _float_decoder,
    bool: _exact(bool, "a boolean"),
    _NoneType: _exact(_NoneType, "null"),
}


def _collection_decoder(item: _Decoder, make: Callable[[list[Any]], Any]) -> _Decoder:
    """A JSON array into a list (``make`` is ``_same``), a tuple, a set or a frozenset."""

    def decode(data: Any) -> Any:
        if type(data) is not list:
            raise _mismatch("an array", data)
        try:
            return make([item(x) for x in data])
        except _Failure:
            for index, x in enumerate(data):  # only now, find which item it was
                try:
                    item(x)
                except _Failure as failure:
                    raise failure.at(f"[{index}]") from None
            raise

    return decode


def _tuple_decoder(items: list[_Decoder]) -> _Decoder:
    expected = f"an array of {len(items)} items"

    def decode(data: Any) -> Any:
        if type(data) is not list or len(data) != len(items):
            raise _mismatch(expected, data)
        out = []
        for index, (item, x) in enumerate(zip(items, data, strict=True)):
            try:
                out.append(item(x))
            except _Failure as failure:
                raise failure.at(f"[{index}]") from None
        return tuple(out)

    return decode


def _dict_decoder(key: _Decoder, value: _Decoder) -> _Decoder:
    def decode(data: Any) -> Any:
        if type(data) is not dict:
            raise _mismatch("an object", data)
        out = {}
        for k, x in data.items():
            try:
                out[key(k)] = value(x)
            except _Failure as failure:
                raise failure.at(f"[{k!r}]") from None
        return out

    return decode


def _union_decoder(members: list[Any], decoders: list[_Decoder], optional: bool) -> _Decoder:
    if len(decoders) == 1:
        only = decoders[0]
        return lambda data: None if data is None else only(data)
    names = " | ".join(_hint_name(m) for m in members) + (" | None" if optional else "")

    def decode(data: Any) -> Any:
        if data is None and optional:
            return None
        tried = []
        for member, member_decoder in zip(members, decoders, strict=True):
            try:
                return member_decoder(data)
            except _Failure as failure:
                tried.append(f"as {failure.where(_hint_name(member))} {failure.reason}")
        raise _Failure(f"expected {names}, found {_describe(data)} ({'; '.join(tried)})")

    return decode


def _literal_decoder(values: tuple[Any, ...]) -> _Decoder:
    allowed = {(type(_enum_value(v)), _enum_value(v)): v for v in values}
    expected = "one of " + ", ".join(repr(_enum_value(v)) for v in values)

    def decode(data: Any) -> Any:
        try:
            return allowed[type(data), data]
        except (KeyError, TypeError):
            raise _mismatch(expected, data) from None

    return decode


# -- messages ----------------------------------------------------------------------------------


def _mismatch(expected: str, found: Any) -> _Failure:
    return _Failure(f"expected {expected}, found {_describe(found)}")


def _describe(data: Any) -> str:
    """A JSON value as a person would name it, shortened."""
    if data is _Missing:
        return "nothing (the field is missing)"
    if data is None:
        return "null"
    if type(data) is bool:
        return f"a boolean {json.dumps(data)}"
    if type(data) is int:
        return f"an integer {data}"
    if type(data) is float:
        return f"a number {data!r}"
    if type(data) is str:
        return f"a string {_short(repr(data))}"
    if type(data) is list:
        return f"an array of {len(data)} items"
    if type(data) is dict:
        return f"an object with keys {_short(', '.join(map(repr, data)))}" if data else "{}"
    return _describe_python(data)


def _describe_python(value: Any) -> str:
    return f"a {_path(type(value))} {_short(repr(value))}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _hint_name(hint: Any) -> str:
    return hint.__qualname__ if isinstance(hint, type) else repr(hint).replace("typing.", "")


def _unsupported(hint: Any, where: str) -> SerializationError:
    return SerializationError(
        f"Cannot encode or decode {where}: its annotation {_hint_name(hint)} is not supported. "
        f"The JSON codec handles {_SUPPORTED}, their Optional/Union/Literal/NewType forms, and "
        f"list, tuple, set, frozenset, dict, Sequence and Mapping of them. Make the field's type "
        f"a dataclass, or annotate it typing.Any to carry the raw JSON value."
    )
