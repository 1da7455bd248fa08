"""The run's optimizer, built from its RunConfig and the optimizer registry.

The schedules are registry entries of their own (:mod:`scalefree.train.schedulers`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from scalefree.errors import UsageError
from scalefree.optim import param_groups
from scalefree.optim.adam_family import CONVENTIONS
from scalefree.optim.registry import OPTIMIZERS, build_optimizer
from scalefree.train.config import RunConfig


def optimizer_options(config: RunConfig) -> dict[str, Any]:
    """The keywords beyond lr and weight_decay that ``config`` gives its optimizer.

    The Adam family always gets betas, eps, amsgrad and decay_convention (the paper's "schedule"
    rather than the classes' torch default), unless the registry entry fixes one itself (AdamC's
    "corrected") and the config leaves it at its default. Other optimizers get a setting only
    when it differs from the default, and refuse it when they do not take it. The switches
    cautious_decay and caution are passed only when on, so runs without them build exactly the
    optimizer they always did; an optimizer that does not take them refuses them (build_optimizer).
    """
    entry = OPTIMIZERS.get(config.optim_method)
    accepted, defaults = entry.options, RunConfig()
    options: dict[str, Any] = {}
    for key in ("betas", "eps", "amsgrad", "decay_convention"):
        value, default = getattr(config, key), getattr(defaults, key)
        if entry.own_setting(key) is not None and value == default:
            continue  # the entry's own choice (e.g. AdamC's convention) stands
        if key in accepted and (entry.adam_family or value != default):
            options[key] = value
        elif value != default:
            raise UsageError(f"--{key.replace('_', '-')} does not apply to optimizer {entry.name}")
    for key in ("cautious_decay", "caution"):
        if getattr(config, key):
            options[key] = True
    return options


def active_convention(config: RunConfig) -> str:
    """The decay convention the optimizer of ``config`` runs with (its entry's own, when the
    entry fixes one and the config leaves --decay-convention at its default)."""
    entry = OPTIMIZERS.get(config.optim_method)
    own = entry.own_setting("decay_convention")
    return optimizer_options(config).get("decay_convention", own or config.decay_convention)


def resolved_weight_decay(config: RunConfig, batches_per_epoch: int) -> float:
    """lambda of the run: --weight-decay, or the one --decay-timescale sets.

    Wang & Aitchison (2024) read decoupled decay as an EMA of the updates with timescale 1/s
    steps; --decay-timescale E asks for 1/s_0 = E * N, N = optimizer steps per epoch of this run
    and s_0 the first step's strength (lr_0 = eta0) in the active convention. Solving
    s_0 = strength(lambda, eta0, eta0) = lambda * strength(1, eta0, eta0) for lambda (every
    convention's strength is linear in lambda) gives schedule: 1/(E N); lr and corrected:
    1/(eta0 E N). The convention's own formula is used, so a new convention needs no edit here.
    """
    if config.decay_timescale is None:
        return config.weight_decay
    per_lambda = CONVENTIONS[active_convention(config)].strength(1.0, config.eta0, config.eta0)
    return 1.0 / (config.decay_timescale * batches_per_epoch * float(per_lambda))


def make_optimizer(
    config: RunConfig, model: nn.Module, batches_per_epoch: int | None = None
) -> torch.optim.Optimizer:
    """The run's optimizer; ``batches_per_epoch`` (optimizer steps per epoch) is needed to turn
    --decay-timescale into lambda (:func:`resolved_weight_decay`)."""
    if config.decay_timescale is not None and batches_per_epoch is None:
        raise ValueError("make_optimizer: --decay-timescale needs batches_per_epoch")
    wd = resolved_weight_decay(config, batches_per_epoch or 1)
    groups = param_groups(model, wd, exclude_bias_norm=config.no_decay_bias_norm)
    name = OPTIMIZERS.canonical(config.optim_method)
    return build_optimizer(
        name, groups, lr=config.eta0, weight_decay=wd, **optimizer_options(config)
    )


__all__ = [
    "active_convention",
    "make_optimizer",
    "optimizer_options",
    "resolved_weight_decay",
]
