"""Decay / no-decay parameter groups (biases and normalization parameters excluded on request)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
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


def normalized_weight_names(model: nn.Module) -> set[str]:
    """Names of the weights of layers followed by a normalization layer: the layers AdamC's
    correction is meant for (Defazio 2025), whose output scale the normalization removes.

    "Followed" is read from registration order (the order ``named_modules`` lists the leaf
    modules, which is the forward order in Sequential models and in ResNet/DenseNet blocks):
    a leaf with a ``weight`` whose next leaf with parameters is a normalization layer.
    Parameterless leaves in between (ReLU, pooling, dropout) do not break the link. Models whose
    forward order differs from their registration order should name the weights instead
    (``param_groups(..., corrected_for=names)``)."""
    leaves = [
        (name, mod)
        for name, mod in model.named_modules()
        if not any(True for _ in mod.children())
        and (is_norm_module(mod) or any(True for _ in mod.parameters(recurse=False)))
    ]
    names: set[str] = set()
    for (name, mod), (_, nxt) in zip(leaves, leaves[1:]):
        weight = getattr(mod, "weight", None)
        if is_norm_module(nxt) and not is_norm_module(mod) and isinstance(weight, nn.Parameter):
            names.add(f"{name}.weight" if name else "weight")
    return names


def param_groups(
    model: nn.Module,
    weight_decay: float,
    exclude_bias_norm: bool = False,
    corrected_for: str | Iterable[str] | None = None,
    *,
    other_convention: str = "lr",
) -> list[dict[str, Any]]:
    """One group decaying everything (the reference code's default), or a decay group and a
    ``weight_decay=0`` group of biases and normalization parameters. Parameters that do not
    require grad are left out.

    ``corrected_for="normalized"`` (or a collection of parameter names) puts the weights of the
    layers followed by normalization (``normalized_weight_names``) in a group of their own with
    ``decay_convention="corrected"`` (AdamC's s = lambda lr_t^2 / alpha, which the paper applies
    to those layers only) and gives the other decaying parameters ``other_convention`` (torch's
    "lr" by default: plain AdamW there). Works with any Adam-family optimizer, e.g.
    ``AdamC(param_groups(model, 0.05, corrected_for="normalized"), lr=1e-3)``."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    skip = no_decay_names(model) if exclude_bias_norm else set()
    decay = [(n, p) for n, p in named if n not in skip]
    no_decay = [p for n, p in named if n in skip]
    if exclude_bias_norm:
        log.info(
            "parameter groups: decay %d tensors (%d values), no decay %d tensors (%d values)",
            len(decay),
            sum(p.numel() for _, p in decay),
            len(no_decay),
            sum(p.numel() for p in no_decay),
        )
    if corrected_for is None:
        groups = [{"params": [p for _, p in decay], "weight_decay": weight_decay}]
    else:
        groups = _corrected_groups(model, decay, weight_decay, corrected_for, other_convention)
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _corrected_groups(model, decay, weight_decay, corrected_for, other_convention):
    """The corrected group (if any weight qualifies) and the rest, in the other convention."""
    if isinstance(corrected_for, str):
        if corrected_for != "normalized":
            raise ValueError(
                f"corrected_for={corrected_for!r}: use 'normalized' (the weights of layers "
                "followed by normalization) or a collection of parameter names"
            )
        chosen = normalized_weight_names(model)
    else:
        chosen = set(corrected_for)
        unknown = sorted(chosen - {n for n, _ in decay})
        if unknown:
            raise ValueError(
                f"corrected_for names parameters that are not decayed parameters of this model: "
                f"{', '.join(unknown)}"
            )
    corrected = [p for n, p in decay if n in chosen]
    rest = [p for n, p in decay if n not in chosen]
    if not corrected:
        log.warning(
            "corrected_for=%r: no parameter qualifies (no normalization layers?)", corrected_for
        )
    log.info(
        "AdamC correction on %d tensors, %s on %d", len(corrected), other_convention, len(rest)
    )
    groups = []
    if corrected:
        groups.append({"params": corrected, "weight_decay": weight_decay,
                       "decay_convention": "corrected"})  # fmt: skip
    if rest:
        groups.append({"params": rest, "weight_decay": weight_decay,
                       "decay_convention": other_convention})  # fmt: skip
    return groups
