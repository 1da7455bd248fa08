"""Decay / no-decay parameter groups (biases and normalization parameters excluded on request)."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from scalefree.optim._torch_compat import norm_layer_base

log = logging.getLogger(__name__)

NORM_TYPES: tuple[type[nn.Module], ...] = (
    *norm_layer_base(),
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def is_norm_module(module: nn.Module) -> bool:
    return isinstance(module, NORM_TYPES)


def no_decay_names(model: nn.Module) -> set[str]:
    """Names of biases and of every parameter of a normalization layer."""
    names: set[str] = set()
    for mod_name, module in model.named_modules():
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if is_norm_module(module) or p_name == "bias":
                names.add(full)
    return names


def param_groups(
    model: nn.Module, weight_decay: float, exclude_bias_norm: bool = False
) -> list[dict[str, Any]]:
    """One group decaying everything (the reference code's default), or a decay group and a
    ``weight_decay=0`` group of biases and normalization parameters. Parameters that do not
    require grad are left out."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not exclude_bias_norm:
        return [{"params": [p for _, p in named], "weight_decay": weight_decay}]
    skip = no_decay_names(model)
    decay = [p for n, p in named if n not in skip]
    no_decay = [p for n, p in named if n in skip]
    log.info(
        "parameter groups: decay %d tensors (%d values), no decay %d tensors (%d values)",
        len(decay),
        sum(p.numel() for p in decay),
        len(no_decay),
        sum(p.numel() for p in no_decay),
    )
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups
