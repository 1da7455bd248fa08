"""One registry type for everything with a name: optimizers, models, datasets.

The same entries feed the CLI choices, the sweep grid and the parametrized tests, so adding an
optimizer or a model is one entry, not five edits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from scalefree.errors import UsageError

T = TypeVar("T")


class UnknownNameError(UsageError):
    """A name that is not in a registry (a usage error: the CLI exits with code 2)."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A named factory. ``defaults`` are keyword arguments the factory is called with unless overridden;
    ``tags`` are free-form labels (e.g. "baseline", "scale_free") that tests and sweeps can filter on."""

    name: str
    factory: Callable[..., T]
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "tags", frozenset(self.tags))

    def build(self, *args: Any, **kwargs: Any) -> T:
        return self.factory(*args, **{**self.defaults, **kwargs})


class Registry(Generic[T]):
    """Ordered name -> Entry map. Lookup is exact first, then case-insensitive."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, entry: Entry[T]) -> Entry[T]:
        if entry.name.lower() in {n.lower() for n in self._entries}:
            raise ValueError(f"{self.kind} {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def add(self, name: str, factory: Callable[..., T], description: str, **kw: Any) -> Entry[T]:
        return self.register(Entry(name, factory, description, **kw))

    def get(self, name: str) -> Entry[T]:
        if name in self._entries:
            return self._entries[name]
        for key, entry in self._entries.items():
            if key.lower() == name.lower():
                return entry
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}"
        )

    def canonical(self, name: str) -> str:
        return self.get(name).name

    def names(self, tag: str | None = None) -> tuple[str, ...]:
        return tuple(n for n, e in self._entries.items() if tag is None or tag in e.tags)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n in self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
