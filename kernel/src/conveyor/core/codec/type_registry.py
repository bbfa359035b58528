"""Payload type names on the wire: which class a consumer builds for which name.

A message crosses a broker as bytes plus a *type name*. The name comes from a :class:`TypeRegistry`
(never an import path read from the wire, never pickle), so a consumer can only ever build the
classes it registered. The registry is independent of any codec: every
:class:`~conveyor.core.codec.serialization.Codec` that names its payloads can share it. It is
importable from :mod:`conveyor.core.codec.serialization` too, where it has always been.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.core.errors import ConfigurationError

__all__ = ["TypeRegistry", "JSON_TYPE_NAME"]

#: The type name of payloads that are plain JSON values (messages sent by routing key).
JSON_TYPE_NAME = "json"


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

    def copy(self) -> TypeRegistry:
        """A registry with the same names that goes its own way from now on.

        Kernels built from the same handlers start from one registry of their payload types
        (``conveyor.core.spec_cache``); each registers what it sends later in its own copy.
        """
        twin = TypeRegistry()
        twin._types = dict(self._types)
        twin._names = dict(self._names)
        return twin

    def name_of(self, cls: type) -> str:
        """The wire name of ``cls``, registering it first if needed (in-process sends just work)."""
        name = self._names.get(cls)
        return name if name is not None else self.register(cls)

    def type_named(self, name: str) -> type:
        """The class registered under ``name``; :class:`UnknownMessageType` if there is none."""
        cls = self._types.get(name)
        if cls is None:
            # Imported here, not at the top: conveyor.core.codec.serialization, the error's public
            # home (dead letters name it conveyor.core.codec.serialization.UnknownMessageType),
            # imports this module to re-export TypeRegistry.
            from conveyor.core.codec.serialization import UnknownMessageType

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


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
