"""Argument checks of the family's constructor, with torch.optim.Adam's exact messages."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import Tensor

from scalefree.optim import _torch_compat as tc


def check_hyper(lr, betas, eps, weight_decay, foreach, fused, capturable) -> tuple:
    """torch.optim.Adam's argument checks and messages (plus: finite values); the betas with
    one-element tensors made 0-d."""
    if isinstance(lr, Tensor):
        if foreach and not capturable:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr or not math.isfinite(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps or not math.isfinite(eps):
        raise ValueError(f"Invalid epsilon value: {eps}")
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if isinstance(b, Tensor) and b.numel() != 1:
            raise ValueError(f"Tensor betas[{i}] must be 1-element")
        if not 0.0 <= b < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b}")
    if isinstance(betas[0], Tensor) != isinstance(betas[1], Tensor):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, b in enumerate(betas):
        if isinstance(b, Tensor) and foreach and not capturable:
            raise ValueError(
                f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True"
            )
    if not 0.0 <= weight_decay or not math.isfinite(weight_decay):
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    return tuple(b.squeeze() if isinstance(b, Tensor) and b.dim() else b for b in betas)


def check_torch_flags(cls: type, differentiable: Any, decoupled: Any) -> None:
    """torch.optim.Adam/AdamW's ``differentiable`` and ``decoupled_weight_decay``: accepted with
    the values this rule has (False; decoupled = the decay is not in the gradient)."""
    if differentiable:
        raise ValueError(
            f"{cls.__name__} does not support differentiable=True: its steps update the "
            "parameters and states in place (and the one-pass kernel is not autograd-aware), so "
            "no hypergradient flows through them; use torch.optim.Adam/AdamW(differentiable=True)"
        )
    own = not cls.decay_in_gradient
    if decoupled is not None and bool(decoupled) != own:
        raise ValueError(
            f"{cls.__name__} has decoupled_weight_decay={own} by its rule; "
            f"decoupled_weight_decay={decoupled} is a different optimizer "
            f"({'AdamW' if decoupled else 'AdamL2'}); omit the argument"
        )


def check_sharded(name: str, group, params: list[Tensor], group_norm: bool, process_group) -> None:
    """A group norm must be global: refuse the sharded layouts that would make it local."""
    if not group_norm or not any(tc.is_flat_param(p) for p in params):
        return
    if group["prox_norm"] == "tensor":
        raise ValueError(
            f"{name} with prox_norm='tensor' cannot run on FSDP flat parameters (FSDP1 "
            "flattens many tensors into one shard, so per-tensor norms do not exist there); "
            "use prox_norm='group' with norm_process_group, FSDP2 (fully_shard), or "
            "FSDP(use_orig_params=True) without sharding"
        )
    if process_group is None and tc.distributed_world_size() > 1:
        raise ValueError(
            f"{name} on FSDP flat parameters sees one shard per rank, so its group norm "
            "would be a per-shard norm; pass norm_process_group=<the FSDP process group> "
            "(e.g. torch.distributed.group.WORLD) so the squared norm is summed over ranks"
        )


def check_masks(cls: Any, group: dict[str, Any], elementwise_rules: Callable[[], str]) -> None:
    """Refuse the masked rules where they have no meaning for rule ``cls`` (see ``caution`` and
    ``cautious_decay`` in ``AdamFamily``'s docstring): before a step could silently ignore them.
    ``elementwise_rules()`` names the rules that take cautious_decay."""
    name = cls.__name__
    if group["cautious_decay"] and not cls.elementwise_decay:
        why = (
            "its decay is inside the gradient (lambda x), there is no separate decay to mask"
            if cls.decay_in_gradient
            else "its operator is not elementwise (a norm over the group), so it cannot be "
            "applied to some coordinates only"
        )
        raise ValueError(
            f"{name} does not take cautious_decay=True: {why}. Cautious weight decay "
            f"(Chen et al. 2025) applies to {elementwise_rules()}"
        )
    masked_ok = cls.elementwise_decay or cls.decay_in_gradient or not cls.folds_decay
    if (group["caution"] or group["cautious_decay"]) and not masked_ok:
        raise ValueError(
            f"{name} folds its decay into torch's Adam kernel (folds_decay, _fold_decay) but "
            "has no elementwise form, so caution/cautious_decay cannot be applied to it; "
            "override _decayed(x, u, d, s) and set elementwise_decay = True, or leave these "
            "options False"
        )
