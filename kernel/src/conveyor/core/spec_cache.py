"""What a list of handler specs composes into: composed once, shared by every kernel built from it.

A test suite builds a ``Messaging`` per test, nearly always from the same module-level handlers:
reading them, building the routing tables and naming their payload types cost more than the rest
of a fresh kernel. The routing tables, the endpoint table and the payload types' wire names are
pure functions of the specs, so they are composed once per list of specs and shared
(:func:`catalogue`), with the JSON codec's plans; ``conveyor.drivers.dispatch`` shares each
handler's composed call the same way.

No global registry (DESIGN rule 4): the caches are ``functools.lru_cache`` on pure functions,
bounded, holding nothing but what they computed. They are keyed by the *identity* of the specs
(:class:`SpecsKey`): ``read_handlers`` returns the very same spec objects for unchanged handlers,
so a key costs one pass over ids rather than hashing every field of 50 specs. Only lists whose
handlers are all module-level functions are cached (:func:`cacheable`): those live as long as
their module, so a cache entry keeps nothing alive that would otherwise be freed (not a handler
object, whose methods are new per instance anyway, nor a closure made inside a test).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass

from conveyor.core.codec.serialization import JsonPlans
from conveyor.core.codec.type_registry import TypeRegistry
from conveyor.core.errors import ConfigurationError
from conveyor.core.registry import HandlerSpec
from conveyor.core.routing import Router

__all__ = ["Catalogue", "SpecsKey", "cacheable", "catalogue"]


class SpecsKey:
    """A cache key equal only to a key over the very same spec objects, in the same order.

    It holds the specs, so their ids cannot be reused by other objects while the key lives.
    """

    __slots__ = ("_hash", "_ids", "specs")

    def __init__(self, specs: tuple[HandlerSpec, ...]) -> None:
        self.specs = specs
        self._ids = tuple(map(id, specs))
        self._hash = hash(self._ids)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpecsKey) and self._ids == other._ids


def cacheable(specs: tuple[HandlerSpec, ...]) -> bool:
    """Whether every handler is a module-level function (so caching keeps nothing alive)."""
    return all(
        type(spec.function) is types.FunctionType and "<locals>" not in spec.function.__qualname__
        for spec in specs
    )


@dataclass(frozen=True, slots=True, eq=False)
class Catalogue:
    """The routing, endpoint table and payload names of one list of specs; shared, never changed.

    Attributes:
        router: the routing tables (its lookup memo is a pure function of the specs too).
        endpoints: each spec by endpoint id; a kernel keeps its own copy.
        types: the payload types' wire names, registered in the specs' order, or why they
            clash; a kernel copies it (:meth:`registry`), since sending a new type registers it.
        plans: the JSON codec's plans, by class, shared by the kernels' default codecs.
    """

    router: Router
    endpoints: Mapping[str, HandlerSpec]
    types: TypeRegistry | ConfigurationError
    plans: JsonPlans

    def registry(self) -> TypeRegistry:
        """A registry of its own for one kernel, starting with the specs' payload types.

        Raises:
            ConfigurationError: two payload types share one wire name. Raised here, not when
                the catalogue is composed, so bootstrap reports its errors in the same order
                as when each kernel registered the types itself.
        """
        if isinstance(self.types, ConfigurationError):
            raise ConfigurationError(*self.types.args)
        return self.types.copy()


def catalogue(specs: tuple[HandlerSpec, ...]) -> Catalogue:
    """The catalogue of ``specs``: composed once per list of module-level handlers, else afresh.

    Raises:
        ConfigurationError: two handlers for one command or query (nothing is cached then).
    """
    if cacheable(specs):
        return _shared(SpecsKey(specs))
    return _compose(specs)


@functools.lru_cache(maxsize=64)
def _shared(key: SpecsKey) -> Catalogue:
    return _compose(key.specs)


def _compose(specs: tuple[HandlerSpec, ...]) -> Catalogue:
    router = Router(list(specs))
    registry = TypeRegistry()
    types: TypeRegistry | ConfigurationError = registry
    try:
        for spec in specs:
            for message_type in spec.message_types:
                registry.register(message_type)
    except ConfigurationError as clash:
        types = clash
    return Catalogue(router, {s.endpoint_id: s for s in specs}, types, JsonPlans())
