"""Decoding plans: rebuilding typed values from parsed JSON, checking their shape on the way.

A consumer trusts nothing in a body, so every value is checked against its annotation as it is
rebuilt, and a value that does not fit says where it is. Nothing a body holds escapes as anything
but a :class:`Mismatch`: every conversion (dates, durations, decimals, enums, a class's own
constructor, a validating library) is guarded, because a consumer must be able to dead-letter a
message it cannot read and go on to the next one. Doing that on every message is only
affordable because the checks are planned ahead: :class:`DecoderPlans` builds, per class, one
function from the class's annotations and keeps it, and a field whose JSON value already has the
annotated type (str, int, float, bool) is taken without a call. The plans belong to one codec
instance, never to the process, so two codecs never share state.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from types import NoneType
from typing import Any
from uuid import UUID

from conveyor.core.codec.json_annotations import (
    DICTS,
    LISTS,
    SETS,
    AnnotatedFields,
    identity,
    shape,
    unwrap,
)
from conveyor.core.codec.json_encoding import enum_value
from conveyor.core.codec.json_mismatch import (
    KEY_STEP,
    Mismatch,
    Missing,
    describe,
    expected_but_found,
    hint_name,
    unsupported,
)
from conveyor.core.codec.plan_table import PlanTable

__all__ = ["Decoder", "DecoderPlans"]

#: Rebuilds one value from parsed JSON; raises :class:`Mismatch` when the value does not fit.
Decoder = Callable[[Any], Any]

_DURATION = r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?"


class _Never:
    """Internal: a type no JSON value has, so fields without a fast path skip it."""


class DecoderPlans(PlanTable[Decoder]):
    """Decoders by class, built on first use from the class's annotations.

    Shared like :class:`~conveyor.core.codec.json_encoding.EncoderPlans`, and as safely: a
    dataclass's plan is published only once it is complete.
    """

    def __init__(self, fields: AnnotatedFields) -> None:
        super().__init__()
        self._fields = fields

    def class_decoder(self, cls: type) -> Decoder | None:
        """The decoder of ``cls`` from parsed JSON; None if the codec cannot build it."""
        return self.plan_of(cls)

    def _leaf_plan(self, cls: type) -> Decoder | None:
        return _library_decoder(cls) or _leaf_decoder(cls)

    def _dataclass_plan(self, cls: type) -> Decoder:
        plan: list[tuple[str, type, Decoder, bool]] = []
        expected = f"an object for {cls.__qualname__}"

        def decode(data: Any) -> Any:
            if type(data) is not dict:
                raise Mismatch(f"expected {expected}, found {describe(data)}")
            kwargs = {}
            for name, exact, field_decoder, required in plan:
                try:
                    value = data[name]
                except KeyError:
                    if required:
                        raise expected_but_found("a value", Missing).at("." + name) from None
                    continue
                if type(value) is exact:
                    kwargs[name] = value
                    continue
                try:
                    kwargs[name] = field_decoder(value)
                except Mismatch as failure:
                    raise failure.at("." + name) from None
            try:
                return cls(**kwargs)
            except RecursionError:
                raise
            except Exception as exc:
                raise _refused(f"{cls.__qualname__}(...)", exc) from None

        self._building[cls] = decode  # first, so a recursive class finds itself
        try:
            for f, hint in self._fields.of(cls):
                if not f.init:
                    continue
                required = f.default is dataclasses.MISSING and (
                    f.default_factory is dataclasses.MISSING
                )
                field_decoder = self._decoder_for(hint, f"{cls.__qualname__}.{f.name}")
                exact = hint if hint in (str, int, float, bool) else _Never
                plan.append((f.name, exact, field_decoder, required))
        except BaseException:
            del self._building[cls]
            raise
        return decode

    def _decoder_for(self, hint: Any, where: str) -> Decoder:
        hint = unwrap(hint)
        scalar = _SCALAR_DECODERS.get(hint)
        if scalar is not None:
            return scalar
        origin, args = shape(hint)
        if origin is None:
            if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
                return identity
            decoder = self.class_decoder(hint) if isinstance(hint, type) else None
            if decoder is None:
                raise unsupported(hint, where)
            return decoder
        if origin is typing.Union or origin is types.UnionType:
            members = [a for a in args if a is not NoneType]
            decoders = [self._decoder_for(a, where) for a in members]
            return _union_decoder(members, decoders, NoneType in args)
        if origin is typing.Literal:
            return _literal_decoder(args)
        if origin in SETS:
            return _collection_decoder(self._decoder_for(args[0], where), SETS[origin])
        if origin in DICTS:
            return _dict_decoder(
                self._key_decoder(args[0], where), self._decoder_for(args[1], where)
            )
        if origin is tuple and not (len(args) == 2 and args[1] is ...):
            return _tuple_decoder([self._decoder_for(a, where) for a in args])
        if origin is tuple or origin in LISTS:
            return _collection_decoder(
                self._decoder_for(args[0], where), LISTS.get(origin, identity)
            )
        raise unsupported(hint, where)

    def _key_decoder(self, hint: Any, where: str) -> Decoder:
        """Object keys are strings: int and int-valued Enum keys are parsed as integers first."""
        hint = unwrap(hint)
        if hint is str or hint is Any:
            return identity
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
                raise expected_but_found("an integer key", text) from None
            return decoder(number)

        return decode


# -- leaf types --------------------------------------------------------------------------------


def _library_decoder(cls: type) -> Decoder | None:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        validate = cls.model_validate  # type: ignore[attr-defined]
        return _guarded(validate, cls, pydantic.ValidationError, _pydantic_errors)
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(cls, msgspec.Struct):
        convert = msgspec.convert
        return _guarded(
            lambda data: convert(data, cls), cls, msgspec.ValidationError, _msgspec_error
        )
    return None


def _guarded(
    build: Decoder, cls: type, errors: type[Exception], explain: Callable[[Any], str]
) -> Decoder:
    """A library's validation as a decoder: whatever it raises becomes a :class:`Mismatch`.

    A validator may raise anything (pydantic passes a ``KeyError`` from a validator through), and
    the libraries' own messages quote the input, so only the locations and error kinds are kept.
    """
    expected = f"a valid {cls.__qualname__}"

    def decode(data: Any) -> Any:
        try:
            return build(data)
        except RecursionError:
            raise
        except errors as exc:
            found = describe(data)
            raise Mismatch(f"expected {expected}, found {found} ({explain(exc)})", exc) from None
        except Exception as exc:
            raise _refused(f"{cls.__qualname__} validation", exc) from None

    return decode


def _pydantic_errors(exc: Any) -> str:
    try:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        parts = [
            f"{'.'.join(str(step) for step in error['loc']) or '(root)'}: {error['type']}"
            for error in errors[:5]
        ]
    except Exception:  # an unexpected shape: say only that it failed
        return "pydantic refused it"
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "pydantic refused " + "; ".join(parts) + more


_MSGSPEC_KIND = re.compile(r"(Expected `[^`]*`(?:, got `[^`]*`)?|Object missing required field)")
_MSGSPEC_PATH = re.compile(r" - at `(\$[^`]*)`$")


def _msgspec_error(exc: Any) -> str:
    # msgspec's messages quote some inputs ("Invalid enum value 'x'"): keep only the kinds it
    # names ("Expected `str`, got `int`") and the path, which holds field names and indices.
    text = str(exc)
    kind = _MSGSPEC_KIND.match(text)
    path = _MSGSPEC_PATH.search(text)
    where = f" at {path.group(1)}" if path else ""
    return f"msgspec: {kind.group(1) if kind else 'refused the value'}{where}"


def _refused(what: str, exc: BaseException) -> Mismatch:
    """A class's own code refused the values: name the exception, never its text.

    The text often quotes the value it refused; it stays on the error's ``__cause__``.
    """
    return Mismatch(
        f"could not be built: {what} raised {type(exc).__qualname__} (its message is kept on "
        f"the error's __cause__, not repeated here, since it may quote payload values)",
        exc,
    )


def _leaf_decoder(cls: type) -> Decoder | None:
    if issubclass(cls, Enum):
        return _enum_decoder(cls)
    if issubclass(cls, datetime):
        return _datetime_decoder(cls)
    if issubclass(cls, (date, time)):
        return _text_decoder(cls.fromisoformat, f"an ISO 8601 {cls.__name__} string")
    if issubclass(cls, timedelta):
        return _duration_decoder
    if issubclass(cls, UUID):
        return _text_decoder(cls, "a UUID string")
    if issubclass(cls, Decimal):
        return _decimal_decoder
    return None


def _text_decoder(parse: Callable[[str], Any], expected: str) -> Decoder:
    def decode(data: Any) -> Any:
        if type(data) is str:
            try:
                return parse(data)
            except (ValueError, OverflowError, TypeError):
                pass
        raise expected_but_found(expected, data)

    return decode


def _datetime_decoder(cls: type[datetime]) -> Decoder:
    """Aware datetimes only, as the encoder writes them: a naive one means another local time."""
    parse = _text_decoder(cls.fromisoformat, "an ISO 8601 datetime string with a UTC offset")

    def decode(data: Any) -> Any:
        value = parse(data)
        if value.tzinfo is None or value.utcoffset() is None:
            raise Mismatch(
                "expected an ISO 8601 datetime string with a UTC offset, found a datetime "
                "without one (the producer must send aware datetimes, such as tzinfo=UTC)"
            )
        return value

    return decode


def _decimal_decoder(data: Any) -> Decimal:
    if type(data) is str or type(data) is int:
        try:
            value = Decimal(data)
        except (ArithmeticError, ValueError):
            pass
        else:
            if not value.is_snan():  # a signalling NaN raises on every comparison
                return value
    raise expected_but_found("a decimal number as a string (not a signalling NaN)", data)


def _enum_decoder(cls: type[Enum]) -> Decoder:
    values = ", ".join(repr(m.value) for m in list(cls)[:10])
    expected = f"one of {cls.__qualname__}'s values {values}"

    def decode(data: Any) -> Any:
        try:
            return cls(data)
        except RecursionError:
            raise
        except Exception:  # ValueError, or anything a custom _missing_ raises
            raise expected_but_found(expected, data) from None

    return decode


#: The longest duration a ``timedelta`` holds, in seconds, which a number of seconds must not pass.
_MAX_SECONDS = timedelta.max.total_seconds()


def _duration_decoder(data: Any) -> timedelta:
    expected = "an ISO 8601 duration like 'P1DT2H3M4.5S' (or seconds) of at most 999999999 days"
    if type(data) is int or type(data) is float:
        if -_MAX_SECONDS <= data <= _MAX_SECONDS:  # false for NaN too
            try:
                return timedelta(seconds=data)
            except OverflowError:  # rounding at the very edge
                pass
        raise expected_but_found(expected, data)
    match = re.fullmatch(_DURATION, data) if type(data) is str else None
    if match is None or not any(match.groups()[1:]):
        raise expected_but_found(expected, data)
    sign, days, hours, minutes, seconds, fraction = match.groups()
    try:
        value = timedelta(
            days=int(days or 0),
            hours=int(hours or 0),
            minutes=int(minutes or 0),
            seconds=int(seconds or 0),
            microseconds=int((fraction or "0").ljust(6, "0")),
        )
    except (OverflowError, ValueError):  # past timedelta.max, or too many digits for int()
        raise expected_but_found(expected, data) from None
    return -value if sign else value


# -- scalar and generic decoders ---------------------------------------------------------------


def _exact(cls: type, expected: str) -> Decoder:
    def decode(data: Any) -> Any:
        if type(data) is cls:
            return data
        raise expected_but_found(expected, data)

    return decode


def _float_decoder(data: Any) -> float:
    if type(data) is float:
        return data  # finite: the parser refuses NaN, Infinity and numbers past float's range
    if type(data) is int:
        try:
            return float(data)
        except OverflowError:
            raise expected_but_found("a number within a float's range", data) from None
    raise expected_but_found("a number", data)


_SCALAR_DECODERS: dict[Any, Decoder] = {
    str: _exact(str, "a string"),
    int: _exact(int, "an integer"),
    float: _float_decoder,
    bool: _exact(bool, "a boolean"),
    NoneType: _exact(NoneType, "null"),
}


def _collection_decoder(item: Decoder, make: Callable[[list[Any]], Any]) -> Decoder:
    """A JSON array into a list (``make`` is ``identity``), a tuple, a set or a frozenset."""

    def decode(data: Any) -> Any:
        if type(data) is not list:
            raise expected_but_found("an array", data)
        try:
            return make([item(x) for x in data])
        except TypeError:  # a set of items that cannot be hashed (a dict held as Any)
            raise Mismatch(
                "expected items that can be put in a set, found unhashable ones"
            ) from None
        except Mismatch:
            for index, x in enumerate(data):  # only now, find which item it was
                try:
                    item(x)
                except Mismatch as failure:
                    raise failure.at(f"[{index}]") from None
            raise

    return decode


def _tuple_decoder(items: list[Decoder]) -> Decoder:
    expected = f"an array of {len(items)} items"

    def decode(data: Any) -> Any:
        if type(data) is not list or len(data) != len(items):
            raise expected_but_found(expected, data)
        out = []
        for index, (item, x) in enumerate(zip(items, data, strict=True)):
            try:
                out.append(item(x))
            except Mismatch as failure:
                raise failure.at(f"[{index}]") from None
        return tuple(out)

    return decode


def _dict_decoder(key: Decoder, value: Decoder) -> Decoder:
    def decode(data: Any) -> Any:
        if type(data) is not dict:
            raise expected_but_found("an object", data)
        out = {}
        for k, x in data.items():
            try:
                out[key(k)] = value(x)
            except Mismatch as failure:
                raise failure.at(KEY_STEP) from None
            except TypeError:  # a key that decoded to something unhashable
                raise Mismatch("expected keys that can key a dict").at(KEY_STEP) from None
        return out

    return decode


def _union_decoder(members: list[Any], decoders: list[Decoder], optional: bool) -> Decoder:
    if len(decoders) == 1:
        only = decoders[0]
        return lambda data: None if data is None else only(data)
    names = " | ".join(hint_name(m) for m in members) + (" | None" if optional else "")

    def decode(data: Any) -> Any:
        if data is None and optional:
            return None
        tried = []
        for member, member_decoder in zip(members, decoders, strict=True):
            try:
                return member_decoder(data)
            except Mismatch as failure:
                tried.append(f"as {failure.where(hint_name(member))} {failure.reason}")
        raise Mismatch(f"expected {names}, found {describe(data)} ({'; '.join(tried)})")

    return decode


def _literal_decoder(values: tuple[Any, ...]) -> Decoder:
    allowed = {(type(enum_value(v)), enum_value(v)): v for v in values}
    expected = "one of " + ", ".join(repr(enum_value(v)) for v in values)

    def decode(data: Any) -> Any:
        try:
            return allowed[type(data), data]
        except (KeyError, TypeError):
            raise expected_but_found(expected, data) from None

    return decode
