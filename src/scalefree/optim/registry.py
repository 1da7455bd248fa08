"""The optimizer registry: the Adam family plus torch.optim baselines, feeding CLI, sweeps and tests.

Every factory is called as ``factory(params, lr=..., weight_decay=..., **options)``; ``options``
lists the extra keywords an entry accepts (``betas``, ``eps``, ``amsgrad``, ``decay_convention``,
...). For the baselines ``weight_decay`` is torch's L2 term (added to the gradient). The Adam family
entries take the classes' defaults (torch's decay_convention="lr") unless ``decay_convention`` is
passed; ``scalefree train``, sweeps and ``check-scale-free`` pass the paper's "schedule".

An entry also carries how the plots show it (``color``, ``order``), so a new optimizer is this one
entry plus its tests: the CLI choices, the sweep grid, the tables' order and the figures' colours
all read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, overload

import torch

from scalefree.errors import UsageError
from scalefree.optim import adam_family as af
from scalefree.registry import Entry, Registry

DEFAULT_COLOR = "tab:gray"
DEFAULT_ORDER = 1000  # after the paper's methods; ties keep the order of registration


@dataclass(frozen=True)
class OptimizerEntry(Entry[torch.optim.Optimizer]):
    """A registered optimizer.

    options: the keywords beyond lr and weight_decay it accepts (anything else is a UsageError).
    adam_family: one of scalefree's Adam weight-decay rules (takes decay_convention; sweeps and
        ``scalefree train`` pass the paper's "schedule").
    scale_free: expected to pass ``check-scale-free`` at eps = 0 (tests check it).
    baseline: a torch.optim optimizer the paper compares against.
    color, order: its matplotlib colour and its position in tables and legends.
    fixed: the options that define the entry (AdamC's decay_convention, CWD's cautious_decay):
        a variant's ``fixed_options``; they are not in ``options``.
    """

    options: frozenset[str] = frozenset()
    adam_family: bool = False
    scale_free: bool = False
    baseline: bool = False
    color: str = DEFAULT_COLOR
    order: int = DEFAULT_ORDER
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "options", frozenset(self.options))
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))

    def own_setting(self, key: str) -> Any:
        """A setting the entry fixes itself (in ``defaults`` or ``fixed``); None: it does not."""
        if key in self.defaults:
            return self.defaults[key]
        return self.fixed.get(key)


class _PlotOrder(Sequence[str]):
    """Live view: the registered names sorted by their entries' ``order`` (then registration)."""

    def __init__(self, registry: OptimizerRegistry) -> None:
        self._registry = registry

    def _names(self) -> tuple[str, ...]:
        entries = list(self._registry)
        ranked = sorted(range(len(entries)), key=lambda i: (entries[i].order, i))
        return tuple(entries[i].name for i in ranked)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._registry)

    def __repr__(self) -> str:
        return f"PlotOrder{self._names()!r}"


class _PlotColors(Mapping[str, str]):
    """Live view: name -> the entry's matplotlib colour."""

    def __init__(self, registry: OptimizerRegistry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> str:
        if name not in self._registry:
            raise KeyError(name)
        return self._registry.get(name).color

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.names())

    def __len__(self) -> int:
        return len(self._registry)


class OptimizerRegistry(Registry[OptimizerEntry]):
    """The registry of optimizers, plus the plot order and colours read from its entries."""

    def __init__(self) -> None:
        super().__init__("optimizer", OptimizerEntry)

    def plot_order(self) -> Sequence[str]:
        """Names in table/legend order; a live view that follows later registrations."""
        return _PlotOrder(self)

    def plot_colors(self) -> Mapping[str, str]:
        """name -> colour; a live view that follows later registrations."""
        return _PlotColors(self)


OPTIMIZERS = OptimizerRegistry()

_ADAM_OPTIONS = frozenset(
    {"betas", "eps", "amsgrad", "maximize", "decay_convention", "foreach", "fused", "capturable",
     "caution"}
)  # fmt: skip


def _family(cls: type[af.AdamFamily], description: str, color: str, **kw: Any) -> None:
    """Register an Adam-family class under its own name, with the options its class takes.

    A variant's ``fixed_options`` (AdamC's convention, CAdamW's caution) define the entry and so
    are not options of it (the entry records them as ``fixed``): ``scalefree train`` passes the
    paper's decay_convention to every family entry that takes one, which would turn AdamC back
    into AdamW."""
    fixed = dict(cls.fixed_options)
    options = _ADAM_OPTIONS | ({"prox_norm", "norm_process_group"} if cls.group_norm else set())
    options |= {"cautious_decay"} if cls.elementwise_decay else set()
    options -= set(fixed)
    OPTIMIZERS.add(
        cls.__name__,
        cls,
        description,
        options=options,
        adam_family=True,
        color=color,
        order=len(OPTIMIZERS),
        fixed=fixed,
        **kw,
    )


# One row per rule: (class, description, colour, scale-free at eps = 0). The paper's six rules
# first, in the order its tables show them (AdamL2 left of AdamW); then the rules proposed since
# 2022 (docs/math.md), each exactly as its paper defines it.
_FAMILY_ROWS = (
    (af.AdamL2, "Adam with the L2 gradient lambda*x added to the gradient (paper Algorithm 1)",
     "tab:blue", False),
    (af.AdamW, "decoupled decay x <- (1 - lambda eta_t) x - u (paper eq. 4)", "tab:red", True),
    (af.AdamProx, "proximal step for (lambda/2)||x||^2: x <- (x - u)/(1 + lambda eta_t) (eq. 5)",
     "tab:green", True),
    (af.AdamProxL2, "proximal step for lambda||x|| (group norm), block soft-threshold",
     "tab:purple", True),
    (af.AdamProxL1, "proximal step for lambda||x||_1, soft-threshold", "tab:brown", True),
    (af.AdamProxD, 'prox of (lambda/2)||x||^2 in the Adam metric D ("Decay No More")',
     "tab:olive", False),
    (af.AdamC, "AdamW with corrected decay s = lambda lr_t^2 / alpha (Defazio 2025, AdamC)",
     "tab:orange", True),
    (af.CWD, "AdamW with cautious weight decay: decay only where u*x >= 0 (Chen et al. 2025)",
     "firebrick", True),
    (af.CAdamW, "cautious AdamW: u masked by 1[m*g > 0], rescaled per tensor (Liang et al. 2024)",
     "teal", True),
)  # fmt: skip
for _cls, _description, _color, _scale_free in _FAMILY_ROWS:
    if _scale_free:
        _family(_cls, _description, _color, scale_free=True)
    else:
        _family(_cls, _description, _color)

_FOREACH = {"maximize", "foreach"}
# torch.optim baselines, one row each: (name, class, description, options beyond _FOREACH,
# defaults, colour, order); order: torch's Adam first, then the others as the paper lists them.
_BASELINE_ROWS = (
    ("SGD", torch.optim.SGD, "torch.optim.SGD, no momentum", set(), {}, "tab:pink", 10),
    ("SGDM", torch.optim.SGD, "torch.optim.SGD with momentum 0.9", set(), {"momentum": 0.9},
     "tab:cyan", 11),
    ("AdaGrad", torch.optim.Adagrad, "torch.optim.Adagrad", {"eps"}, {}, "gold", 12),
    ("RMSProp", torch.optim.RMSprop, "torch.optim.RMSprop", {"eps"}, {}, "black", 13),
    ("Adam", torch.optim.Adam, "torch.optim.Adam (weight_decay is the L2 term)",
     {"betas", "eps", "amsgrad", "fused"}, {}, "tab:gray", 9),
)  # fmt: skip
for _name, _cls, _description, _extra, _defaults, _color, _order in _BASELINE_ROWS:
    OPTIMIZERS.add(_name, _cls, _description, defaults=_defaults, options=_FOREACH | _extra,
                   baseline=True, color=_color, order=_order)  # fmt: skip
del _cls, _description, _color, _scale_free, _name, _extra, _defaults, _order


def accepted_options(name: str) -> frozenset[str]:
    """The keywords beyond lr and weight_decay that optimizer ``name`` takes."""
    return OPTIMIZERS.get(name).options


def build_optimizer(
    name: str, params: Any, lr: float, weight_decay: float = 0.0, **options: Any
) -> torch.optim.Optimizer:
    """Build a registered optimizer. Options left at None are not passed; an option the optimizer
    does not have (e.g. ``amsgrad`` for SGD) is a UsageError rather than silently ignored."""
    entry = OPTIMIZERS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    unsupported = sorted(set(given) - entry.options)
    if unsupported:
        raise UsageError(
            f"optimizer {entry.name} does not take {', '.join(unsupported)}; "
            f"it takes: {', '.join(sorted(entry.options)) or 'lr, weight_decay only'}"
        )
    return entry.build(params, lr=lr, weight_decay=weight_decay, **given)
