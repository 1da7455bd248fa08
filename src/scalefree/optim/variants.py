"""Variants as data: "rule X with options Y" is a subclass whose constructor has the family's
real signature with Y as its defaults (``with_options``), so ``help()`` and ``inspect.signature``
show them and the registry entry records them (``fixed_options``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def init_with_defaults(cls: type, family_init: Callable[..., None]) -> Callable[..., None]:
    """An ``__init__`` for ``cls`` with the family's signature (``family_init``'s) and ``cls``'s
    own defaults (its ``option_defaults`` and ``fixed_options`` and those of its bases), shown by
    ``inspect.signature`` and ``help()``."""
    changed: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        changed.update(klass.__dict__.get("option_defaults", {}))
        changed.update(klass.__dict__.get("fixed_options", {}))
    sig = inspect.signature(family_init)
    unknown = set(changed) - set(sig.parameters)
    if unknown:
        raise TypeError(f"{cls.__name__}: no such AdamFamily option(s): {sorted(unknown)}")
    sig = sig.replace(
        parameters=[
            p.replace(default=changed[p.name]) if p.name in changed else p
            for p in sig.parameters.values()
        ]
    )

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        family_init(*bound.args, **bound.kwargs)

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def with_options(base: type, name: str, doc: str, **fixed: Any) -> type:
    """The variant "``base`` with these options": a subclass named ``name`` whose constructor has
    the family's real signature with ``fixed`` as its defaults, recorded as ``fixed_options``
    (the registry entry takes them from there). ``with_options(AdamW, "CWD", doc,
    cautious_decay=True)`` is CWD."""
    attrs = {"__doc__": doc, "__module__": base.__module__, "__qualname__": name}
    return type(name, (base,), {**attrs, "fixed_options": fixed})


def subclasses(base: type) -> tuple[type, ...]:
    """Every subclass of ``base`` defined so far, breadth first (direct subclasses first)."""
    out: list[type] = []
    todo = list(base.__subclasses__())
    while todo:
        cls = todo.pop(0)
        if cls not in out:
            out.append(cls)
            todo.extend(cls.__subclasses__())
    return tuple(out)
