"""Encoding plans: turning a payload class's values into what :mod:`json` writes.

Every message goes through the codec, so the work of reading a class's annotations is done once:
:class:`EncoderPlans` builds, per class, a function that turns an instance into plain JSON values,
and keeps it. A field JSON already represents (str, int, float, bool, lists and dicts of them) gets
no function at all and is passed straight through. The plans belong to one codec instance, never
to the process, so two codecs never share state.

Values are converted by their annotation where it says enough, and by their own type where it
does not (``Any``, unions). When :mod:`json` still refuses the result, :func:`find_not_json` finds
the offending value so the error can name where it is (never what it is: errors are logged).

The encoder refuses what a consumer could not read back the same: float NaN and infinity, naive
datetimes (another process would read them in its own local time) and signalling NaN decimals
(they raise on every comparison). The decoder refuses the same values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from conveyor.core.codec.json_annotations import (
    DICTS,
    JSON_SCALARS,
    LISTS,
    SETS,
    AnnotatedFields,
    identity,
    shape,
    unwrap,
)
from conveyor.core.codec.json_mismatch import (
    KEY_STEP,
    SUPPORTED,
    Mismatch,
    class_path,
    describe_python,
    unsupported,
)
from conveyor.core.codec.plan_table import PlanTable

__all__ = ["Encoder", "EncoderPlans", "enum_value", "find_not_json"]

#: Turns one value into plain JSON values; raises :class:`Mismatch` when the value does not fit.
Encoder = Callable[[Any], Any]


class EncoderPlans(PlanTable[Encoder]):
    """Encoders by class, built on first use from the class's annotations.

    Codecs may share one (kernels built from the same handlers do, ``conveyor.core.spec_cache``),
    from several threads: a dataclass's plan is built under a lock and published only once it
    is complete, with the plans it needed, so no reader ever finds a plan half built.
    """

    def __init__(self, fields: AnnotatedFields) -> None:
        super().__init__()
        self._fields = fields

    def class_encoder(self, cls: type) -> Encoder | None:
        """The encoder of instances of ``cls``; None if the codec cannot encode them."""
        return self.plan_of(cls)

    def _leaf_plan(self, cls: type) -> Encoder | None:
        return _library_encoder(cls) or _leaf_encoder(cls)

    def _dataclass_plan(self, cls: type) -> Encoder:
        plan: list[tuple[str, Encoder | None]] = []

        def encode(obj: Any) -> Any:
            try:
                return {n: getattr(obj, n) if e is None else e(getattr(obj, n)) for n, e in plan}
            except Exception as exc:
                if not isinstance(obj, cls):
                    found = describe_python(obj)
                    raise Mismatch(f"expected a {cls.__qualname__}, found {found}") from None
                raise _locate(obj, plan, exc) from None

        self._building[cls] = encode  # first, so a recursive class finds itself
        try:
            for f, hint in self._fields.of(cls):
                plan.append((f.name, self._encoder_for(hint, f"{cls.__qualname__}.{f.name}")))
        except BaseException:
            del self._building[cls]
            raise
        return encode

    def _encoder_for(self, hint: Any, where: str) -> Encoder | None:
        """How to encode a value annotated ``hint``; None means JSON takes it as it is."""
        hint = unwrap(hint)
        if hint in JSON_SCALARS:
            return None
        origin, args = shape(hint)
        if origin is None:
            if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
                return self._encode_any
            encoder = self.class_encoder(hint) if isinstance(hint, type) else None
            if encoder is None:
                raise unsupported(hint, where)
            return encoder
        if origin is typing.Union or origin is types.UnionType:
            members = [self._encoder_for(a, where) for a in args]
            # The value's own type says which member it is; plain JSON members pass through.
            return None if all(m is None for m in members) else self._encode_any
        if origin is typing.Literal:
            return enum_value if any(isinstance(a, Enum) for a in args) else None
        if origin in SETS:
            member = self._encoder_for(args[0], where) or identity
            return lambda v: _sorted([member(x) for x in v])
        if origin in DICTS:
            value = self._encoder_for(args[1], where)
            if origin is dict and value is None and unwrap(args[0]) is str:
                return None
            value = value or identity
            key = self._encode_key
            return lambda v: {key(k): value(x) for k, x in v.items()}
        if origin is tuple and not (len(args) == 2 and args[1] is ...):
            items = [self._encoder_for(a, where) or identity for a in args]
            return lambda v: [e(x) for e, x in zip(items, v, strict=True)]
        if origin is tuple or origin in LISTS:
            item = self._encoder_for(args[0], where)
            if item is None and origin in (list, tuple):
                return None
            each = item or identity
            return lambda v: [each(x) for x in v]
        raise unsupported(hint, where)

    def _encode_any(self, value: Any) -> Any:
        """Encode by the value's own type: for ``Any`` fields and union members."""
        cls = type(value)
        if cls in JSON_SCALARS:
            return value
        if cls is list or cls is tuple or cls is dict:
            out: Any = {} if cls is dict else []
            for step, x in value.items() if cls is dict else enumerate(value):
                try:
                    item = self._encode_any(x)
                except Mismatch as failure:
                    raise failure.at(f"[{step!r}]") from None
                if cls is dict:
                    out[self._encode_key(step)] = item
                else:
                    out.append(item)
            return out
        if cls is set or cls is frozenset:
            return _sorted([self._encode_any(x) for x in value])
        encoder = self.class_encoder(cls)
        if encoder is None:
            raise Mismatch(
                f"holds a {class_path(cls)}, which the codec cannot encode ({SUPPORTED})"
            )
        return encoder(value)

    def _encode_key(self, key: Any) -> Any:
        if type(key) is str or type(key) is int:
            return key  # json writes int keys as strings
        encoded = self._encode_any(key)
        if type(encoded) is str or type(encoded) is int:
            return encoded
        raise Mismatch(
            f"has a key of type {class_path(type(key))}; keys must encode to strings (str, int, "
            f"Enum, UUID)"
        )


def enum_value(value: Any) -> Any:
    """An Enum member as its value, as it travels in JSON; any other value as it is."""
    return value.value if isinstance(value, Enum) else value


def _sorted(items: list[Any]) -> list[Any]:
    """Sets in a stable order: by value when comparable, else by their JSON text."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, default=repr))


def _locate(obj: Any, plan: list[tuple[str, Encoder | None]], exc: Exception) -> Mismatch:
    """After an encoder failed: find the field, so the message names it."""
    for name, encoder in plan:
        try:
            value = getattr(obj, name)
        except AttributeError as missing:
            return Mismatch("is not set", missing).at("." + name)
        try:
            if encoder is not None:
                encoder(value)
        except Mismatch as failure:
            return failure.at("." + name)
        except Exception as error:
            reason = (
                f"holds {describe_python(value)} and could not be encoded "
                f"({type(error).__qualname__})"
            )
            return Mismatch(reason, error).at("." + name)
    if isinstance(exc, Mismatch):
        return exc
    return Mismatch(f"could not be encoded ({type(exc).__qualname__})", exc)


def find_not_json(data: Any, where: str, payload: Any = None) -> tuple[str, Any]:
    """The path to the first value in encoded ``data`` that JSON cannot hold, and that value.

    ``payload`` is what ``data`` was encoded from, walked alongside it only to name the steps: a
    dictionary encoded from a dataclass has field names for keys (``Order.lines[2].price``); any
    other dictionary's keys are values, shown as ``[<key>]``. The path is empty when every value
    is plain JSON.
    """
    cls = type(data)
    if cls is float:
        return ("", None) if math.isfinite(data) else (where, data)
    if cls in JSON_SCALARS:
        return "", None
    if cls is list or cls is tuple:
        same = type(payload) in (list, tuple) and len(payload) == len(data)
        for index, item in enumerate(data):
            found = find_not_json(item, f"{where}[{index}]", payload[index] if same else None)
            if found[0]:
                return found
        return "", None
    if cls is dict:
        fields = dataclasses.is_dataclass(payload) and not isinstance(payload, type)
        values = (
            list(payload.values()) if type(payload) is dict and len(payload) == len(data) else None
        )
        for index, (key, item) in enumerate(data.items()):
            if type(key) not in JSON_SCALARS:
                return f"{where} (a key)", key
            if fields:
                found = find_not_json(item, f"{where}.{key}", getattr(payload, key, None))
            else:
                found = find_not_json(item, where + KEY_STEP, values[index] if values else None)
            if found[0]:
                return found
        return "", None
    return where, data


# -- leaf types --------------------------------------------------------------------------------


def _library_encoder(cls: type) -> Encoder | None:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return lambda model: model.model_dump(mode="json")
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(cls, msgspec.Struct):
        return typing.cast(Encoder, msgspec.to_builtins)
    return None


def _leaf_encoder(cls: type) -> Encoder | None:
    if issubclass(cls, Enum):
        return enum_value
    if issubclass(cls, datetime):
        return _aware_text
    if issubclass(cls, (date, time)):
        return cls.isoformat
    if issubclass(cls, timedelta):
        return _duration_text
    if issubclass(cls, UUID):
        return str
    if issubclass(cls, Decimal):
        return _decimal_text
    return None


def _aware_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise Mismatch(
            "holds a datetime without a timezone, which another process would read in its own "
            "local time; make it aware (datetime(..., tzinfo=UTC) or .replace(tzinfo=UTC))"
        )
    return value.isoformat()


def _decimal_text(value: Decimal) -> str:
    if value.is_snan():
        raise Mismatch(
            "holds a signalling NaN Decimal, which raises on every comparison; use "
            "Decimal('NaN') or None"
        )
    return str(value)


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
