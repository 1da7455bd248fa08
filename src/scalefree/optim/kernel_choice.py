"""Which kernel steps each parameter: torch's fused, foreach or single-tensor Adam, or eps0.

The choice is torch's own (``torch.optim.Adam``'s defaults and flags) plus two rules of the
family: eps = 0 takes the per-tensor path that defines 0/0 = 0, and the fused kernel runs only on
the layouts it updates correctly (``_fused_safe``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from scalefree.optim import _torch_compat as tc

_FUSED_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def _fused_safe(p: Tensor, grad: Tensor, states: list[Tensor]) -> bool:
    """The fused kernel treats each tensor as flat memory: correct only for a dense parameter whose
    gradient and states have its strides. (torch's fused CPU Adam on a strided view such as
    ``b[..., 0]`` writes into ``b[..., 1]``.)"""
    stride = p.stride()
    if any(t.stride() != stride for t in (grad, *states)):
        return False
    if p.is_contiguous():
        return True
    expected = 1  # non-overlapping and dense: strides are a permutation of a contiguous layout
    for st, size in sorted((st, size) for size, st in zip(p.shape, stride) if size != 1):
        if st != expected:
            return False
        expected *= size
    return True


def _check_fused(params, grads, states) -> None:
    """``fused=True``: an error for a layout the fused kernel would corrupt."""
    for i, (p, g, st) in enumerate(zip(params, grads, states)):
        if not _fused_safe(p, g, st):
            raise RuntimeError(
                f"`fused=True` cannot update parameter {i} of this group (shape "
                f"{tuple(p.shape)}, strides {p.stride()}, gradient strides {g.stride()}): the "
                "fused kernel needs a dense parameter whose gradient and state have the same "
                "strides. Make the parameter contiguous, or pass fused=False."
            )


def choose_kernels(group: dict[str, Any], params, grads, states, compiling: bool) -> list[str]:
    """One of "eps0", "fused", "foreach", "single" per parameter.

    eps = 0 takes the per-tensor path that defines 0/0 = 0. ``fused=True`` uses torch's fused kernel
    (an error for a layout it would corrupt); ``foreach=True`` the multi-tensor kernel;
    ``foreach=False`` the single-tensor loop, as in torch. Default: fused for each parameter it is
    correct for (supported device and dtype, dense, matching strides), else torch's default
    (foreach on GPUs, the single-tensor loop on CPU and with a tensor lr without ``capturable``).
    Under torch.compile the default skips fused (torch's fused kernel is opaque to the compiler,
    a graph break), and foreach without ``capturable`` compiles the single-tensor formulation
    (no recompile when a scheduler changes a float lr); the compiler fuses either.
    """
    n = len(params)
    if group["eps"] == 0:
        return ["eps0"] * n
    tensor_hyper = isinstance(group["lr"], Tensor) or isinstance(group["betas"][0], Tensor)
    other = "single" if tensor_hyper and not group["capturable"] else "foreach"
    if group["fused"]:
        _check_fused(params, grads, states)
        return ["fused"] * n
    if group["foreach"] is False:
        return ["single"] * n
    if group["foreach"]:
        # Compiled, torch's foreach kernel bakes a float lr into the graph (one recompile per lr
        # change, as torch.optim.AdamW(foreach=True) does); the single-tensor formulation keeps
        # it an input, and the compiler fuses the loop anyway.
        return ["single" if compiling and not group["capturable"] else other] * n
    # Not fused: torch's default, foreach on devices with multi-tensor kernels, else single.
    multi = tc.foreach_supported_devices()
    default = [
        "single" if other == "single" or p.device.type not in multi else other for p in params
    ]
    if group["fused"] is False or compiling:
        return default
    fused = tc.fused_supported_devices()
    return [
        "fused"
        if p.device.type in fused and p.dtype in _FUSED_DTYPES and _fused_safe(p, g, st)
        else k
        for p, g, st, k in zip(params, grads, states, default)
    ]
