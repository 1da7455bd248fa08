"""The optimizer registry: the Adam family plus torch.optim baselines, feeding CLI, sweeps and tests.

Every factory is called as ``factory(params, lr=..., weight_decay=..., **options)``; ``options``
lists the extra keywords an entry accepts (``betas``, ``eps``, ``amsgrad``, ``decay_convention``,
...). For the baselines ``weight_decay`` is torch's L2 term (added to the gradient). The Adam family
entries take the classes' defaults (torch's decay_convention="lr") unless ``decay_convention`` is
passed; ``scalefree train``, sweeps and ``check-scale-free`` pass the paper's "schedule".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from scalefree.errors import UsageError
from scalefree.optim import adam_family as af
from scalefree.registry import Entry, Registry

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")

_ADAM_OPTIONS = frozenset(
    {"betas", "eps", "amsgrad", "maximize", "decay_convention", "foreach", "fused", "capturable"}
)

_FAMILY = {
    "AdamL2": (
        "Adam with the L2 gradient lambda*x added to the gradient (paper Algorithm 1)",
        set(),
    ),
    "AdamW": ("decoupled decay x <- (1 - lambda eta_t) x - u (paper eq. 4)", {"scale_free"}),
    "AdamProx": (
        "proximal step for (lambda/2)||x||^2: x <- (x - u)/(1 + lambda eta_t) (eq. 5)",
        {"scale_free"},
    ),
    "AdamProxL2": (
        "proximal step for lambda||x|| (group norm), block soft-threshold",
        {"scale_free"},
    ),
    "AdamProxL1": ("proximal step for lambda||x||_1, soft-threshold", {"scale_free"}),
    "AdamProxD": ("prox of (lambda/2)||x||^2 in the Adam metric D (seed 004)", set()),
}
for _name, (_desc, _tags) in _FAMILY.items():
    _opts = _ADAM_OPTIONS | (
        {"prox_norm", "norm_process_group"} if _name == "AdamProxL2" else set()
    )
    OPTIMIZERS.register(
        Entry(
            _name,
            getattr(af, _name),
            _desc,
            defaults={},
            tags=frozenset({"adam_family", *_tags}) | {f"opt:{o}" for o in _opts},
        )
    )


def _baseline(name: str, factory: Any, desc: str, options: Iterable[str], **defaults: Any) -> None:
    OPTIMIZERS.register(
        Entry(
            name,
            factory,
            desc,
            defaults=defaults,
            tags=frozenset({"baseline"}) | {f"opt:{o}" for o in options},
        )
    )


_baseline("SGD", torch.optim.SGD, "torch.optim.SGD, no momentum", {"maximize", "foreach"})
_baseline(
    "SGDM",
    torch.optim.SGD,
    "torch.optim.SGD with momentum 0.9",
    {"maximize", "foreach"},
    momentum=0.9,
)
_baseline("AdaGrad", torch.optim.Adagrad, "torch.optim.Adagrad", {"eps", "maximize", "foreach"})
_baseline("RMSProp", torch.optim.RMSprop, "torch.optim.RMSprop", {"eps", "maximize", "foreach"})
_baseline(
    "Adam",
    torch.optim.Adam,
    "torch.optim.Adam (weight_decay is the L2 term)",
    {"betas", "eps", "amsgrad", "maximize", "foreach", "fused"},
)


def accepted_options(name: str) -> frozenset[str]:
    entry = OPTIMIZERS.get(name)
    return frozenset(t[4:] for t in entry.tags if t.startswith("opt:"))


def build_optimizer(
    name: str, params: Any, lr: float, weight_decay: float = 0.0, **options: Any
) -> torch.optim.Optimizer:
    """Build a registered optimizer. Options left at None are not passed; an option the optimizer
    does not have (e.g. ``amsgrad`` for SGD) is a UsageError rather than silently ignored."""
    entry = OPTIMIZERS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    unsupported = sorted(set(given) - accepted_options(entry.name))
    if unsupported:
        raise UsageError(
            f"optimizer {entry.name} does not take {', '.join(unsupported)}; "
            f"it takes: {', '.join(sorted(accepted_options(entry.name))) or 'lr, weight_decay only'}"
        )
    return entry.build(params, lr=lr, weight_decay=weight_decay, **given)
