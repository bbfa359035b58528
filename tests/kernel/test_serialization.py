"""The JSON codec and the type registry: what crosses the wire and what comes back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, Literal, NewType
from uuid import UUID

import pytest

from conveyor.core.codec.serialization import Codec, JsonCodec, TypeRegistry, UnknownMessageType
from conveyor.core.errors import ConfigurationError, SerializationError

# -- payload types (module level: annotations resolve against module globals) ------------------


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


Sku = NewType("Sku", str)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True, slots=True)
class Line:
    sku: Sku
    quantity: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class Order:
    order_id: UUID
    lines: list[Line]
    placed_at: datetime
    color: Color = Color.RED
    note: str | None = None


@dataclass
class Mutable:
    """Neither frozen nor slotted, with defaults and a field computed after init."""

    name: str
    count: int = 0
    tags: list[str] = field(default_factory=list)
    label: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.label = f"{self.name}#{self.count}"


@dataclass(frozen=True)
class Everything:
    when: datetime
    day: date
    at: time
    took: timedelta
    ratio: float
    flag: bool
    level: Level
    kind: Literal["a", "b"]
    raw: Any
    seq: Sequence[int]
    mapping: Mapping[str, Decimal]
    pair: tuple[int, str]
    many: tuple[int, ...]
    unique: set[str]
    frozen: frozenset[Color]
    by_color: dict[Color, int]
    by_level: dict[Level, str]
    by_number: dict[int, str]
    by_id: dict[UUID, date]
    maybe: int | None
    number_or_text: int | str
    bare: list  # type: ignore[type-arg]


@dataclass(frozen=True, slots=True)
class Cash:
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Card:
    number: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Pay:
    by: Card | Cash


@dataclass(frozen=True, slots=True)
class Tree:
    name: str
    children: list[Tree] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


@dataclass(frozen=True, slots=True)
class Renamed:
    __conveyor_name__ = "orders.renamed.v2"
    value: int


@dataclass(frozen=True, slots=True)
class RenamedChild(Renamed):
    pass


@dataclass(frozen=True, slots=True)
class WithFloat:
    value: float


@dataclass(frozen=True, slots=True)
class WithAny:
    value: Any


@dataclass(frozen=True, slots=True)
class WithText:
    value: str


class NotAPayload:
    pass


@dataclass(frozen=True, slots=True)
class HoldsUnsupported:
    thing: NotAPayload


def round_trip(payload: object, codec: JsonCodec | None = None) -> object:
    codec = codec or JsonCodec(TypeRegistry())
    body, name = codec.encode(payload)
    return codec.decode(body, name)


def failure(body: bytes, name: str, registry: TypeRegistry) -> SerializationError:
    with pytest.raises(SerializationError) as caught:
        JsonCodec(registry).decode(body, name)
    return caught.value


# -- round trips -------------------------------------------------------------------------------


def test_a_flat_dataclass_is_compact_json_named_by_its_qualname() -> None:
    codec = JsonCodec(TypeRegistry())

    body, name = codec.encode(PlaceOrder("o-1"))

    assert (body, name) == (b'{"order_id":"o-1"}', "PlaceOrder")
    assert codec.decode(body, name) == PlaceOrder("o-1")


def test_nested_dataclasses_round_trip_with_their_types() -> None:
    order = Order(
        order_id=UUID(int=7),
        lines=[Line(Sku("apple"), 2, Decimal("1.10")), Line(Sku("pear"), 1, Decimal("0.5"))],
        placed_at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        color=Color.GREEN,
    )

    decoded = round_trip(order)

    assert decoded == order
    assert isinstance(decoded, Order)
    assert isinstance(decoded.lines[0], Line)
    assert decoded.lines[0].price == Decimal("1.10")
    assert str(decoded.lines[0].price) == "1.10"


def test_a_mutable_dataclass_uses_its_defaults_and_recomputes_init_false_fields() -> None:
    codec = JsonCodec(TypeRegistry([Mutable]))

    decoded = codec.decode(b'{"name":"box","label":"ignored"}', "Mutable")

    assert decoded == Mutable("box")
    assert isinstance(decoded, Mutable)
    assert decoded.label == "box#0"
    assert round_trip(Mutable("box", 3, ["a"])) == Mutable("box", 3, ["a"])


def test_every_supported_kind_round_trips() -> None:
    value = Everything(
        when=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        day=date(2024, 2, 29),
        at=time(23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-3))),
        took=timedelta(days=1, seconds=2, microseconds=3),
        ratio=2.5,
        flag=True,
        level=Level.HIGH,
        kind="b",
        raw={"free": [1, "two", None]},
        seq=[1, 2, 3],
        mapping={"a": Decimal("0.1")},
        pair=(1, "x"),
        many=(1, 2),
        unique={"b", "a"},
        frozen=frozenset({Color.RED, Color.GREEN}),
        by_color={Color.GREEN: 1},
        by_level={Level.LOW: "low"},
        by_number={10: "ten", 2: "two"},
        by_id={UUID(int=1): date(2020, 1, 1)},
        maybe=None,
        number_or_text="text",
        bare=[1, "a"],
    )

    decoded = round_trip(value)

    assert decoded == value
    assert isinstance(decoded, Everything)
    assert type(decoded.many) is tuple
    assert type(decoded.frozen) is frozenset
    assert type(decoded.unique) is set
    assert type(decoded.by_level) is dict
    assert list(decoded.by_level) == [Level.LOW]
    assert type(next(iter(decoded.by_number))) is int


def test_aware_datetimes_keep_their_offset_and_microseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    when = datetime(2024, 3, 31, 1, 59, 59, 999999, tzinfo=plus_two)
    codec = JsonCodec(TypeRegistry())

    body, name = codec.encode(when)
    decoded = codec.decode(body, name)

    assert body == b'"2024-03-31T01:59:59.999999+02:00"'
    assert isinstance(decoded, datetime)
    assert decoded.utcoffset() == timedelta(hours=2)
    assert decoded.isoformat() == when.isoformat()


def test_naive_datetimes_are_refused_both_ways() -> None:
    """Another process would read a naive datetime in its own local time."""
    codec = JsonCodec(TypeRegistry([Order]))
    naive = Order(UUID(int=1), [], datetime(2024, 1, 1, 0, 0, 0, 1))

    with pytest.raises(SerializationError) as encoding:
        codec.encode(naive)
    decoding = failure(
        b'{"order_id":"00000000-0000-0000-0000-000000000001","lines":[],'
        b'"placed_at":"2024-01-01T00:00:00.000001"}',
        "Order",
        TypeRegistry([Order]),
    )

    assert "Order.placed_at holds a datetime without a timezone" in str(encoding.value)
    assert "tzinfo=UTC" in str(encoding.value)
    assert (
        "Order.placed_at expected an ISO 8601 datetime string with a UTC offset, found a "
        "datetime without one"
    ) in str(decoding)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(seconds=1, microseconds=500000), "PT1.5S"),
        (timedelta(microseconds=1), "PT0.000001S"),
        (timedelta(days=3), "P3D"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "P1DT2H3M4S"),
        (timedelta(days=-1, microseconds=5), "-PT23H59M59.999995S"),
        (-timedelta(hours=1, minutes=2), "-PT1H2M"),
        (timedelta.max, "P999999999DT23H59M59.999999S"),
        (timedelta.min, "-P999999999D"),
    ],
)
def test_timedeltas_travel_as_iso_durations_and_round_trip_exactly(
    duration: timedelta, text: str
) -> None:
    codec = JsonCodec(TypeRegistry())

    body, name = codec.encode(duration)

    assert json.loads(body) == text
    assert codec.decode(body, name) == duration


def test_a_timedelta_also_decodes_from_seconds() -> None:
    codec = JsonCodec(TypeRegistry())
    _, name = codec.encode(timedelta(0))

    assert codec.decode(b"90", name) == timedelta(seconds=90)


@pytest.mark.parametrize(
    "amount",
    ["0.1", "1.10", "-0", "1E+3", "3.141592653589793238462643383279502884197", "NaN"],
)
def test_decimals_are_exact_strings(amount: str) -> None:
    codec = JsonCodec(TypeRegistry([Cash]))

    body, _ = codec.encode(Cash(Decimal(amount)))
    decoded = codec.decode(body, "Cash")

    assert json.loads(body) == {"amount": amount}
    assert isinstance(decoded, Cash)
    assert str(decoded.amount) == amount


def test_floats_accept_json_integers() -> None:
    codec = JsonCodec(TypeRegistry([WithFloat]))

    decoded = codec.decode(b'{"value":3}', "WithFloat")

    assert decoded == WithFloat(3.0)
    assert isinstance(decoded, WithFloat)
    assert type(decoded.value) is float


def test_a_union_of_dataclasses_decodes_as_the_first_member_that_fits() -> None:
    codec = JsonCodec(TypeRegistry([Pay]))

    assert round_trip(Pay(Card("4111", Decimal("5"))), codec) == Pay(Card("4111", Decimal("5")))
    assert round_trip(Pay(Cash(Decimal("5"))), codec) == Pay(Cash(Decimal("5")))


def test_a_union_that_fits_no_member_says_what_each_member_expected() -> None:
    error = failure(b'{"by":{"amount":1.5}}', "Pay", TypeRegistry([Pay]))

    assert "Pay.by expected Card | Cash, found an object with 1 key" in str(error)
    assert "as Card.number expected a value, found nothing (the field is missing)" in str(error)
    assert "as Cash.amount expected a decimal number as a string" in str(error)
    assert "found a number)" in str(error)


def test_union_order_decides_when_several_members_fit() -> None:
    """Unknown keys are ignored, so Card's body also fits Cash: the member written first wins."""

    @dataclass(frozen=True, slots=True)
    class LooseFirst:
        by: Cash | Card

    codec = JsonCodec(TypeRegistry([LooseFirst]))
    body, name = codec.encode(LooseFirst(Card("4111", Decimal("5"))))

    assert codec.decode(body, name) == LooseFirst(Cash(Decimal("5")))


def test_a_recursive_dataclass_round_trips() -> None:
    tree = Tree("root", [Tree("a", [Tree("a1")]), Tree("b")])

    assert round_trip(tree) == tree


def test_enums_travel_by_value() -> None:
    codec = JsonCodec(TypeRegistry())

    body, name = codec.encode(Color.GREEN)

    assert (body, name) == (b'"green"', "Color")
    assert codec.decode(body, name) is Color.GREEN
    assert round_trip(Level.HIGH) is Level.HIGH


@pytest.mark.parametrize("payload", [{"a": [1, 2.5, None]}, [1, "x"], "text", 5, 2.5, True, None])
def test_plain_json_values_are_named_json_and_decoded_as_is(payload: object) -> None:
    codec = JsonCodec(TypeRegistry())

    body, name = codec.encode(payload)

    assert name == "json"
    assert codec.decode(body, name) == payload


def test_msgspec_structs_round_trip() -> None:
    msgspec = pytest.importorskip("msgspec")

    class Shipment(msgspec.Struct, frozen=True):  # type: ignore[misc, call-arg]
        __conveyor_name__ = "shipments.Shipment"
        sku: str
        at: datetime
        amount: Decimal

    shipment = Shipment(sku="a", at=datetime(2024, 1, 1, tzinfo=UTC), amount=Decimal("1.1"))
    codec = JsonCodec(TypeRegistry([Shipment]))

    body, name = codec.encode(shipment)

    assert name == "shipments.Shipment"
    assert codec.decode(body, name) == shipment
    with pytest.raises(SerializationError, match=r"Shipment expected a valid .*Shipment.*\$\.sku"):
        codec.decode(b'{"sku":1,"at":"2024-01-01T00:00:00Z","amount":"1"}', name)


def test_pydantic_models_round_trip() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Invoice(pydantic.BaseModel):  # type: ignore[misc]
        number: int
        issued: date
        total: Decimal

    invoice = Invoice(number=1, issued=date(2024, 1, 1), total=Decimal("9.99"))
    codec = JsonCodec(TypeRegistry([Invoice]))

    body, name = codec.encode(invoice)

    assert json.loads(body) == {"number": 1, "issued": "2024-01-01", "total": "9.99"}
    assert codec.decode(body, name) == invoice
    with pytest.raises(SerializationError, match=r"Invoice expected a valid .*Invoice"):
        codec.decode(b'{"number":"x"}', name)


def test_the_codec_never_imports_pydantic_or_msgspec_itself() -> None:
    script = (
        "import sys\n"
        "from dataclasses import dataclass\n"
        "from conveyor.core.codec.serialization import JsonCodec, TypeRegistry\n"
        "@dataclass\n"
        "class A:\n"
        "    x: int\n"
        "codec = JsonCodec(TypeRegistry([A]))\n"
        "assert codec.decode(*codec.encode(A(1))) == A(1)\n"
        "print(sorted({'pydantic', 'msgspec'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


# -- determinism -------------------------------------------------------------------------------


def test_the_same_payload_always_gives_the_same_bytes() -> None:
    def build(order: list[str]) -> Everything:
        return Everything(
            when=datetime(2024, 1, 1, tzinfo=UTC),
            day=date(2024, 1, 1),
            at=time(1),
            took=timedelta(1),
            ratio=1.0,
            flag=False,
            level=Level.LOW,
            kind="a",
            raw=None,
            seq=(),
            mapping={},
            pair=(1, "a"),
            many=(),
            unique=set(order),
            frozen=frozenset(Color(c) for c in ["green", "red"][:: 1 if order[0] < "m" else -1]),
            by_color={},
            by_level={},
            by_number={},
            by_id={},
            maybe=1,
            number_or_text=1,
            bare=[],
        )

    forward = JsonCodec(TypeRegistry()).encode(build(["a", "b", "zebra", "m"]))
    backward = JsonCodec(TypeRegistry()).encode(build(["zebra", "m", "b", "a"]))

    assert forward == backward
    assert b'"unique":["a","b","m","zebra"]' in forward[0]
    assert b'"frozen":["green","red"]' in forward[0]
    assert b" " not in forward[0]


def test_sets_of_unorderable_items_are_ordered_by_their_json() -> None:
    codec = JsonCodec(TypeRegistry([WithAny]))

    body, _ = codec.encode(WithAny({(2, "b"), (1, "a"), ("z",)}))

    assert body == b'{"value":[["z"],[1,"a"],[2,"b"]]}'


# -- errors: decoding --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b'{"order_id":"o-1"} trailing', b"", b"\xff\xfe"])
def test_undecodable_bodies_raise_and_keep_the_raw_bytes(body: bytes) -> None:
    error = failure(body, "PlaceOrder", TypeRegistry([PlaceOrder]))

    assert error.raw == body
    assert "Cannot decode a 'PlaceOrder' message: the body is not UTF-8 JSON" in str(error)


def test_json_with_surrounding_whitespace_still_decodes() -> None:
    codec = JsonCodec(TypeRegistry([PlaceOrder]))

    assert codec.decode(b' \n{"order_id":"o-1"}\n', "PlaceOrder") == PlaceOrder("o-1")


def test_a_wrong_field_type_names_the_path_and_keeps_the_raw_bytes() -> None:
    body = json.dumps(
        {
            "order_id": str(UUID(int=1)),
            "placed_at": "2024-01-01T00:00:00+00:00",
            "lines": [
                {"sku": "a", "quantity": 1, "price": "1"},
                {"sku": "b", "quantity": 1, "price": "1"},
                {"sku": 42, "quantity": 1, "price": "1"},
            ],
        }
    ).encode()

    error = failure(body, "Order", TypeRegistry([Order]))

    assert error.raw == body
    assert str(error).startswith(
        f"Cannot decode a 'Order' message into {__name__}.Order: "
        "Order.lines[2].sku expected a string, found an integer."
    )


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"[]", "Order expected an object for Order, found an array of 0 items"),
        (b'{"order_id":"nope"}', "Order.order_id expected a UUID string, found a string."),
        (
            b'{"order_id":"00000000-0000-0000-0000-000000000001","lines":[]}',
            "Order.placed_at expected a value, found nothing (the field is missing)",
        ),
        (
            b'{"order_id":"00000000-0000-0000-0000-000000000001","lines":[],'
            b'"placed_at":"2024-01-01T00:00:00Z","color":"blue"}',
            "Order.color expected one of Color's values 'red', 'green', found a string.",
        ),
        (
            b'{"order_id":"00000000-0000-0000-0000-000000000001","lines":{},'
            b'"placed_at":"2024-01-01"}',
            "Order.lines expected an array, found {}",
        ),
    ],
)
def test_shape_errors_say_what_was_expected_and_what_was_found(body: bytes, text: str) -> None:
    error = failure(body, "Order", TypeRegistry([Order]))

    assert text in str(error)
    assert error.raw == body


def test_nested_collection_and_key_errors_name_the_index_or_key() -> None:
    registry = TypeRegistry([Everything])
    good = JsonCodec(registry).encode(
        Everything(
            when=datetime(2024, 1, 1, tzinfo=UTC),
            day=date(2024, 1, 1),
            at=time(1),
            took=timedelta(1),
            ratio=1.0,
            flag=False,
            level=Level.LOW,
            kind="a",
            raw=None,
            seq=[],
            mapping={},
            pair=(1, "a"),
            many=(),
            unique=set(),
            frozen=frozenset(),
            by_color={},
            by_level={},
            by_number={},
            by_id={},
            maybe=None,
            number_or_text=1,
            bare=[],
        )
    )[0]

    def broken(**changes: object) -> str:
        body = json.dumps({**json.loads(good), **changes}).encode()
        return str(failure(body, "Everything", registry))

    assert "Everything.by_number[<key>] expected an integer key, found a string." in broken(
        by_number={"x": "y"}
    )
    assert "Everything.mapping[<key>] expected a decimal number as a string" in broken(
        mapping={"a": 1.5}
    )
    assert "Everything.pair expected an array of 2 items, found an array of 3 items" in broken(
        pair=[1, "a", 2]
    )
    assert "Everything.many[1] expected an integer, found a boolean." in broken(many=[1, True])
    assert "Everything.kind expected one of 'a', 'b', found a string." in broken(kind="c")
    assert "Everything.took expected an ISO 8601 duration" in broken(took="1 day")
    assert "Everything.maybe expected an integer, found a string." in broken(maybe="1")


def test_a_constructor_that_refuses_the_values_is_a_serialization_error() -> None:
    error = failure(b'{"value":-1}', "Positive", TypeRegistry([Positive]))

    assert "Positive could not be built: Positive(...) raised ValueError" in str(error)
    assert isinstance(error.__cause__, ValueError)


def test_an_unknown_type_name_lists_the_known_names_and_how_to_register() -> None:
    registry = TypeRegistry([PlaceOrder, Line])

    with pytest.raises(UnknownMessageType) as caught:
        JsonCodec(registry).decode(b"{}", "CancelOrder")

    error = caught.value
    assert isinstance(error, SerializationError)
    assert error.raw == b"{}"
    assert "No payload type is registered under the name 'CancelOrder'" in str(error)
    assert "Known names: 'Line', 'PlaceOrder'" in str(error)
    assert "registry.register(YourClass, name='CancelOrder')" in str(error)


def test_the_registry_raises_unknown_message_type_itself() -> None:
    with pytest.raises(UnknownMessageType, match="Known names: none"):
        TypeRegistry().type_named("Anything")


# -- errors: encoding --------------------------------------------------------------------------


def test_an_unsupported_payload_type_names_it_and_says_how_to_fix() -> None:
    with pytest.raises(SerializationError) as caught:
        JsonCodec(TypeRegistry()).encode(NotAPayload())

    text = str(caught.value)
    assert f"Cannot encode a payload of type {__name__}.NotAPayload" in text
    assert "dataclasses, Enum, datetime" in text
    assert "Make NotAPayload a dataclass" in text


def test_an_unsupported_field_annotation_names_the_field() -> None:
    with pytest.raises(SerializationError, match=r"HoldsUnsupported\.thing: its annotation"):
        JsonCodec(TypeRegistry()).encode(HoldsUnsupported(NotAPayload()))


def test_a_field_holding_a_value_json_cannot_take_is_named() -> None:
    codec = JsonCodec(TypeRegistry())

    with pytest.raises(SerializationError, match=r"WithText\.value holds a builtins\.object"):
        codec.encode(WithText(object()))  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match=r"WithAny\.value holds a .*NotAPayload"):
        codec.encode(WithAny(NotAPayload()))
    with pytest.raises(SerializationError, match=r"WithAny\.value\[1\] holds a .*NotAPayload"):
        codec.encode(WithAny([1, NotAPayload()]))
    with pytest.raises(SerializationError, match=r"payload\[<key>\] holds a datetime\.datetime"):
        codec.encode({"when": datetime(2024, 1, 1)})


def test_a_value_of_the_wrong_type_for_its_annotation_is_named() -> None:
    codec = JsonCodec(TypeRegistry())
    order = Order(UUID(int=1), [Line(Sku("a"), 1, Decimal(1)), "oops"], datetime(2024, 1, 1))  # type: ignore[list-item]

    with pytest.raises(SerializationError, match=r"Order\.lines expected a Line, found a builtins"):
        codec.encode(order)


def test_nan_and_infinity_are_refused() -> None:
    with pytest.raises(SerializationError, match=r"WithFloat\.value holds NaN or infinity"):
        JsonCodec(TypeRegistry()).encode(WithFloat(float("nan")))


@dataclass(frozen=True, slots=True)
class WithSpan:
    span: timedelta


@pytest.mark.parametrize("value", [b"1e20", b"-1e20", b'"Infinity"', b'"P999999999999D"'])
def test_a_duration_past_what_a_timedelta_holds_is_a_serialization_error(value: bytes) -> None:
    """Issue 11: ``1e20`` seconds or ``Infinity`` raised ``OverflowError`` out of ``consume()``."""
    body = b'{"span":' + value + b"}"
    with pytest.raises(SerializationError, match=r"WithSpan\.span expected an ISO 8601 duration"):
        JsonCodec(TypeRegistry([WithSpan])).decode(body, "WithSpan")


@pytest.mark.parametrize(
    ("value", "body", "type_name", "found"),
    [
        (WithFloat(float("nan")), b'{"value":NaN}', "WithFloat", "NaN is not a JSON number"),
        (WithFloat(float("inf")), b'{"value":Infinity}', "WithFloat", "Infinity is not a JSON"),
        (WithFloat(float("inf")), b'{"value":1e400}', "WithFloat", "past the range of a float"),
        (Cash(Decimal("sNaN")), b'{"amount":"sNaN"}', "Cash", "not a signalling NaN"),
    ],
)
def test_the_decoder_refuses_what_the_encoder_refuses(
    value: object, body: bytes, type_name: str, found: str
) -> None:
    """Issue 11: a consumer must not accept a value its own producer could never have sent."""
    codec = JsonCodec(TypeRegistry([WithFloat, Cash]))
    with pytest.raises(SerializationError):
        codec.encode(value)
    with pytest.raises(SerializationError, match=found) as refused:
        codec.decode(body, type_name)
    assert refused.value.raw == body


# -- the registry ------------------------------------------------------------------------------


def test_conveyor_name_overrides_the_qualname_and_is_not_inherited() -> None:
    registry = TypeRegistry([Renamed])
    codec = JsonCodec(registry)

    body, name = codec.encode(Renamed(1))

    assert name == "orders.renamed.v2"
    assert registry.type_named("orders.renamed.v2") is Renamed
    assert codec.decode(body, name) == Renamed(1)
    assert registry.name_of(RenamedChild) == "RenamedChild"


def test_registering_twice_is_harmless_and_name_of_registers_on_first_use() -> None:
    registry = TypeRegistry()

    assert registry.register(PlaceOrder) == "PlaceOrder"
    assert registry.register(PlaceOrder) == "PlaceOrder"
    assert registry.register(PlaceOrder, name="PlaceOrder") == "PlaceOrder"
    assert registry.name_of(Line) == "Line"
    assert registry.register(Cash, name="payments.cash") == "payments.cash"
    assert registry.names() == ["Line", "PlaceOrder", "payments.cash"]
    assert registry.type_named("payments.cash") is Cash


def test_a_name_clash_names_both_classes_and_the_fix() -> None:
    Other = type("PlaceOrder", (), {"__module__": "billing.commands"})
    registry = TypeRegistry([PlaceOrder])

    with pytest.raises(ConfigurationError) as caught:
        registry.register(Other)

    text = str(caught.value)
    assert "Cannot register billing.commands.PlaceOrder as 'PlaceOrder'" in text
    assert f"already taken by {__name__}.PlaceOrder" in text
    assert "__conveyor_name__ = " in text
    assert 'name="..."' in text
    assert registry.register(Other, name="billing.PlaceOrder") == "billing.PlaceOrder"


def test_a_class_keeps_one_name() -> None:
    registry = TypeRegistry([PlaceOrder])

    with pytest.raises(ConfigurationError, match="already registered as 'PlaceOrder'"):
        registry.register(PlaceOrder, name="orders.place")


def test_the_json_name_is_reserved() -> None:
    with pytest.raises(ConfigurationError, match="reserved for plain JSON payloads"):
        TypeRegistry().register(PlaceOrder, name="json")


def test_json_codec_is_a_codec() -> None:
    codec = JsonCodec(TypeRegistry())

    assert isinstance(codec, Codec)
    assert codec.content_type == "application/json"
