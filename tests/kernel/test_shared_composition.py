"""Kernels built from the same handlers share what is pure, and nothing else (issue 21).

A test suite builds a ``Messaging`` per test; reading 50 handlers and composing their routing,
payload names and calls was most of that. Those are composed once per list of module-level
handlers and shared; each kernel still owns what it changes (its type registry, its endpoint
table), and a handler changed between two builds is read again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from conveyor import (
    ConfigurationError,
    Messaging,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.codec.json_annotations import AnnotatedFields
from conveyor.core.codec.json_decoding import DecoderPlans
from conveyor.core.codec.json_encoding import EncoderPlans
from conveyor.core.codec.serialization import JsonCodec, JsonPlans, TypeRegistry
from conveyor.core.registry import read_handlers
from conveyor.core.spec_cache import cacheable, catalogue


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class Unrelated:
    value: int


@command_handler
def place(command: PlaceOrder) -> None:
    return None


@event_handler
def placed(event: OrderPlaced) -> None:
    return None


def build(*handlers: object) -> Messaging:
    return Messaging(handlers=list(handlers), clock=VirtualClock())


def test_two_kernels_from_the_same_handlers_share_routing_and_read_them_once() -> None:
    first, second = build(place, placed), build(place, placed)
    assert first.handlers == second.handlers
    assert all(a is b for a, b in zip(first.handlers, second.handlers, strict=True))
    assert first.router is second.router


def test_each_kernel_registers_the_types_it_sends_in_its_own_registry() -> None:
    first, second = build(place, placed), build(place, placed)
    assert first.types is not second.types
    first.types.register(Unrelated)
    assert "Unrelated" in first.types.names()
    assert "Unrelated" not in second.types.names()
    assert "Unrelated" not in build(place, placed).types.names()


def test_each_kernel_owns_its_endpoint_table() -> None:
    first, second = build(place, placed), build(place, placed)
    first.endpoints.pop("place")
    assert "place" in second.endpoints


def test_an_option_added_between_two_builds_is_read() -> None:
    @command_handler
    def charge(command: PlaceOrder) -> None:
        return None

    assert build(charge).handlers[0].channels == ()
    asynchronous("payments")(charge)
    assert Messaging(handlers=[charge], channels=["payments"]).handlers[0].channels == ("payments",)


def test_a_handler_listed_at_another_place_gets_its_own_position() -> None:
    specs, _ = read_handlers([placed, place])
    assert [s.position for s in specs] == [0, 1]
    assert specs[1].name == "place"


def test_handlers_made_inside_a_function_are_not_kept() -> None:
    @event_handler
    def local(event: OrderPlaced) -> None:
        return None

    specs, _ = read_handlers([place, local])
    assert not cacheable(tuple(specs))
    assert catalogue(tuple(specs)) is not catalogue(tuple(specs))


def test_module_level_handlers_are_kept() -> None:
    specs, _ = read_handlers([place, placed])
    assert cacheable(tuple(specs))
    assert catalogue(tuple(specs)) is catalogue(tuple(specs))


@dataclass(frozen=True)
class Twin:
    value: int


def _twin() -> type:
    @dataclass(frozen=True)
    class Twin:
        value: int

    Twin.__qualname__ = "Twin"  # the module-level Twin's wire name
    return Twin


@event_handler
def on_twin(event: Twin) -> None:
    return None


def test_a_wire_name_clash_is_reported_by_every_build() -> None:
    def on_other(event: object) -> None:
        return None

    on_other.__annotations__ = {"event": _twin(), "return": None}
    on_other.__qualname__ = "on_other"  # module-level as far as the cache can tell
    handler = event_handler(on_other)
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="already taken"):
            build(on_twin, handler)


def test_kernels_from_the_same_handlers_share_their_codec_plans() -> None:
    first, second = build(place, placed), build(place, placed)
    assert isinstance(first.codec, JsonCodec)
    assert isinstance(second.codec, JsonCodec)
    body, name = first.codec.encode(PlaceOrder("o-1"))
    assert second.codec.decode(body, name) == PlaceOrder("o-1")
    assert first.codec._encoders is second.codec._encoders
    assert first.codec._decoders is second.codec._decoders
    assert first.codec.registry is not second.codec.registry


def test_a_codec_of_its_own_shares_no_plans() -> None:
    registry = TypeRegistry()
    assert JsonCodec(registry)._encoders is not JsonCodec(registry)._encoders


@dataclass(frozen=True)
class Inner:
    value: int


@dataclass(frozen=True)
class Outer:
    inner: Inner
    note: str


class _Watching(AnnotatedFields):
    """Looks at what other threads could see while a plan is half built."""

    def __init__(self) -> None:
        self.plans: JsonPlans | None = None
        self.seen_while_building: list[tuple[object, object]] = []

    def of(self, cls: type) -> Any:
        if cls is Inner and self.plans is not None:  # an Outer plan is being built right now
            encoders, decoders = self.plans.encoders._complete, self.plans.decoders._complete
            self.seen_while_building.append((encoders.get(Outer), decoders.get(Outer)))
        return super().of(cls)


def test_a_plan_is_published_only_once_complete() -> None:
    """Other threads read plans without the lock: a half-built one must not be there to read."""
    fields = _Watching()
    plans = JsonPlans()
    plans.encoders = EncoderPlans(fields)
    plans.decoders = DecoderPlans(fields)
    fields.plans = plans
    codec = JsonCodec(TypeRegistry([Outer]), plans=plans)

    body, name = codec.encode(Outer(Inner(1), "x"))
    assert codec.decode(body, name) == Outer(Inner(1), "x")
    building_encoder, building_decoder = fields.seen_while_building
    assert building_encoder[0] is None  # encoding: Outer's encoder not readable yet
    assert building_decoder[0] is not None  # decoding: the encoder is done and published
    assert building_decoder[1] is None  # ... and Outer's decoder not readable yet
    assert plans.encoders.class_encoder(Outer) is not None


def test_plans_built_by_many_threads_at_once_are_whole() -> None:
    plans = JsonPlans()
    results: list[object] = []
    barrier = threading.Barrier(8)

    def encode() -> None:
        barrier.wait()
        codec = JsonCodec(TypeRegistry([Outer]), plans=plans)
        results.append(codec.encode(Outer(Inner(2), "y")))

    threads = [threading.Thread(target=encode) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(b'{"inner":{"value":2},"note":"y"}', "Outer")] * 8
