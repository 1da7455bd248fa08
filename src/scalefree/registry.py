"""One registry type for everything with a name: optimizers, models, datasets.

The same entries feed the CLI choices, the sweep grid, the plots and the parametrized tests, so
adding an optimizer or a model is one entry, not five edits. Each kind has its own typed entry
(``OptimizerEntry`` in scalefree.optim.registry, ``ModelEntry`` in scalefree.models,
``DatasetEntry`` here): a capability is a field with a type, so a typo is an AttributeError or a
ValueError at the call, never a silently empty filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from scalefree.errors import UsageError

T = TypeVar("T")
E = TypeVar("E", bound="Entry[Any]")


class UnknownNameError(UsageError):
    """A name that is not in a registry (a usage error: the CLI exits with code 2)."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A named factory. ``defaults`` are keyword arguments the factory is called with unless
    overridden. Subclasses add typed fields; their ``bool`` fields are the capabilities that
    ``Registry.names(capability)`` filters on."""

    name: str
    factory: Callable[..., T]
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def build(self, *args: Any, **kwargs: Any) -> T:
        return self.factory(*args, **{**self.defaults, **kwargs})

    @classmethod
    def capabilities(cls) -> tuple[str, ...]:
        """Names of this entry type's boolean fields (what ``names(capability)`` accepts)."""
        return tuple(f.name for f in fields(cls) if f.type in (bool, "bool"))

    @property
    def tags(self) -> frozenset[str]:
        """The capabilities this entry has, as names (read-only, derived from the typed fields;
        kept so that ``"adam_family" in entry.tags`` written against the old string tags still
        reads the same answer)."""
        return frozenset(c for c in self.capabilities() if getattr(self, c))


@dataclass(frozen=True)
class DatasetEntry(Entry[T]):
    """A dataset: its factory takes (dataroot, *, download, synthetic_sizes) and returns the raw
    data. ``cifar``: one of the CIFAR sets; ``downloadable``: ``--download`` can fetch its files
    (rank 0 does, before the others read them)."""

    cifar: bool = False
    downloadable: bool = False


class Registry(Generic[E]):
    """Ordered name -> entry map of one entry type. Lookup is exact first, then case-insensitive."""

    def __init__(self, kind: str, entry_type: type[E] = Entry) -> None:  # type: ignore[assignment]
        self.kind = kind
        self.entry_type = entry_type
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        if not isinstance(entry, self.entry_type):
            raise TypeError(
                f"the {self.kind} registry takes {self.entry_type.__name__} entries, "
                f"not {type(entry).__name__}"
            )
        if entry.name.lower() in {n.lower() for n in self._entries}:
            raise ValueError(f"{self.kind} {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def add(self, name: str, factory: Callable[..., Any], description: str, **kw: Any) -> E:
        """Register ``entry_type(name, factory, description, **kw)``."""
        return self.register(self.entry_type(name, factory, description, **kw))

    def unregister(self, name: str) -> E:
        """Remove an entry (exact or case-insensitive name) and return it."""
        entry = self.get(name)
        del self._entries[entry.name]
        return entry

    @contextmanager
    def registered(self, entry: E) -> Iterator[E]:
        """Register ``entry`` for the duration of a ``with`` block (tests, notebooks)."""
        self.register(entry)
        try:
            yield entry
        finally:
            self._entries.pop(entry.name, None)

    def get(self, name: str) -> E:
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

    def names(self, capability: str | None = None) -> tuple[str, ...]:
        """All names in registration order, or those whose boolean field ``capability`` is True.

        An unknown capability is a ValueError naming the ones this registry's entries have."""
        if capability is None:
            return tuple(self._entries)
        known = self.entry_type.capabilities()
        if capability not in known:
            raise ValueError(
                f"{self.kind} entries have no capability {capability!r}; "
                f"they have: {', '.join(known) or 'none'}"
            )
        return tuple(n for n, e in self._entries.items() if getattr(e, capability))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n in self._entries)

    def __iter__(self) -> Iterator[E]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
