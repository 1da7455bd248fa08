"""The family's step paths as functions of plain tensors, as ``torch.optim.adam`` builds Adam.

Each path takes the lists of one param group (params, grads, exp_avgs, exp_avg_sqs, max_sqs,
steps; max_sqs empty without AMSGrad) and the group's hyperparameters, and reads the rule from
the same few arguments:

* ``l2``: lambda added to the gradient (AdamL2), 0 otherwise;
* ``decayed(x, u, D, s)``: an elementwise rule's new x from x before the step, the Adam step u,
  D and the decay strength s (``None``: x <- x - u, the rule's post-step, if any, runs after);
* ``caution``: C-AdamW's update mask; ``cautious``: CWD's mask on ``decayed``.

Paths: ``single_tensor_step`` (one tensor at a time: any device, dtype, tensor lr, torch.compile,
eps = 0) and ``multi_tensor_step`` (the same in multi-tensor ops) for the masked rules, which
torch's kernels cannot express; ``torch_step`` for the rest (torch's fused / foreach /
single-tensor Adam with the rule folded into its lr and weight_decay, ``eps0_step`` where
eps = 0 would give 0/0); ``one_pass_step`` for the C++ kernel of ``_kernels``. ``adam_update``
recomputes u from the state. Each tensor's moments go through ``_moments``.

Why u is still written three ways: the masked paths divide m by D and then scale (torch's order),
``eps0_step`` scales m first, and ``adam_update`` takes the bias correction's root with
``math.sqrt`` where the steps use ``** 0.5`` (they differ in the last bit for about 1 value in
1,000). Merging them would change results in the last bit; each path's numbers are kept as they
were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from scalefree.optim import _kernels
from scalefree.optim import _torch_compat as tc
from scalefree.optim.decay import CAUTION_FLOOR, Scalar

Decayed = Callable[[Tensor, Tensor, Tensor, Scalar], Tensor]


def step_value(step: Tensor, p: Tensor) -> float | Tensor:
    """t for bias corrections: a Python float in eager mode (as torch does: exact, fast); a 0-d
    tensor of p's precision when compiling or when the step lives on an accelerator (no host sync,
    no graph break)."""
    if step.device.type == "cpu" and not torch.compiler.is_compiling():
        return float(step)
    return step.to(torch.promote_types(p.dtype, torch.float32))


def _moments(x, grad, m, v, vmax, step, *, beta1, beta2, eps, amsgrad, maximize, l2):
    """One tensor's Adam moments, updated in place with t += 1; returns (g, D, t): the gradient
    the moments saw, D = sqrt(v_hat) + eps (v_max under AMSGrad) and t."""
    g = grad.neg() if maximize else grad
    if l2:
        g = g.add(x, alpha=l2)  # AdamL2: the gradient the moments (and caution) see
    step += 1
    t = step_value(step, x)
    m.lerp_(g, 1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    if amsgrad:
        v = torch.maximum(vmax, v, out=vmax)
    return g, v.sqrt().div_((1 - beta2**t) ** 0.5).add_(eps), t


def _apply_rule(x: Tensor, u: Tensor, d: Tensor, s: Scalar, decayed, cautious: bool) -> None:
    """x <- decayed(x, u, D, s), under CWD only where u * x >= 0 (x - u elsewhere); x - u for a
    rule without an elementwise operator."""
    if decayed is None:
        x.sub_(u)
    elif cautious:  # where u * x < 0 the step is y = x - u, undecayed
        x.copy_(torch.where(u * x >= 0, decayed(x, u, d, s), x - u))
    else:
        x.copy_(decayed(x, u, d, s))


def single_tensor_step(
    params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, *,
    beta1, beta2, lr, eps, amsgrad, maximize,
    l2: Scalar, caution: bool, decayed: Decayed | None, cautious: bool, s: Scalar,
) -> None:  # fmt: skip
    """The masked rules tensor by tensor (u explicit, so that both masks can be applied)."""
    for i, x in enumerate(params):
        g, d, t = _moments(
            x, grads[i], exp_avgs[i], exp_avg_sqs[i], max_sqs[i] if amsgrad else None, steps[i],
            beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad, maximize=maximize, l2=l2,
        )  # fmt: skip
        m = exp_avgs[i]
        u = torch.div(m, d).mul_(lr / (1 - beta1**t))
        if eps == 0:
            u = torch.where(d > 0, u, torch.zeros_like(u))  # 0/0 := 0
        if caution:
            phi = m * g > 0
            kept = phi.sum(dtype=u.dtype) / max(phi.numel(), 1)
            u.mul_(phi).div_(kept.clamp_min(CAUTION_FLOOR))
        _apply_rule(x, u, d, s, decayed, cautious)


def multi_tensor_step(
    params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, *,
    beta1, beta2, lr, eps, amsgrad, maximize,
    l2: Scalar, caution: bool, decayed: Decayed | None, cautious: bool, s: Scalar,
) -> None:  # fmt: skip
    """``single_tensor_step`` in multi-tensor ops (steps on the CPU, float lr and betas, eps > 0)."""
    op = tc.foreach_op
    m, v = exp_avgs, exp_avg_sqs
    g = op("neg")(grads) if maximize else list(grads)
    if l2:
        g = op("add")(g, params, alpha=l2)
    for t in steps:
        t += 1
    ts = [float(t) for t in steps]
    op("lerp_")(m, g, 1 - beta1)
    op("mul_")(v, beta2)
    op("addcmul_")(v, g, g, value=1 - beta2)
    if amsgrad:
        op("maximum_")(max_sqs, v)
    d = op("sqrt")(max_sqs if amsgrad else v)
    op("div_")(d, [(1 - beta2**t) ** 0.5 for t in ts])
    op("add_")(d, eps)
    u = op("div")(m, d)
    op("mul_")(u, [lr / (1 - beta1**t) for t in ts])
    if caution:
        phi = op("mul")(m, g)  # 1[m g > 0] = max(sign(m g), 0)
        op("sign_")(phi)
        op("clamp_min_")(phi, 0.0)
        kept = [
            (c / max(p.numel(), 1)).clamp_min(CAUTION_FLOOR)
            for c, p in zip(op("norm")(phi, 1), phi)
        ]
        op("mul_")(u, phi)
        op("div_")(u, kept)
    if decayed is None:
        op("sub_")(params, u)
        return
    for x, ui, di in zip(params, u, d):
        _apply_rule(x, ui, di, s, decayed, cautious)


def eps0_step(
    params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, *,
    amsgrad, beta1, beta2, lr, weight_decay, decoupled, maximize,
) -> None:  # fmt: skip
    """torch's Adam (decoupled: AdamW) with eps = 0 and 0/0 := 0, tensor by tensor (torch's kernels
    would produce NaN there). Under torch.compile the bias corrections are 0-d tensors."""
    for i, p in enumerate(params):
        _, d, t = _moments(
            p, grads[i], exp_avgs[i], exp_avg_sqs[i], max_sqs[i] if amsgrad else None, steps[i],
            beta1=beta1, beta2=beta2, eps=0.0, amsgrad=amsgrad, maximize=maximize,
            l2=weight_decay if not decoupled else 0.0,
        )  # fmt: skip
        if weight_decay and decoupled:
            p.mul_(1 - lr * weight_decay)
        step = exp_avgs[i] * (lr / (1 - beta1**t)) / d
        p.sub_(torch.where(d > 0, step, torch.zeros_like(step)))


def torch_step(
    kernels: Sequence[str], lists, *, lr, weight_decay, decoupled: bool, beta1, beta2, eps,
    amsgrad: bool, maximize: bool, capturable: bool,
) -> None:  # fmt: skip
    """torch's functional Adam, each parameter on its kernel of ``kernel_choice.choose_kernels``
    ("fused", "foreach", "single", or "eps0": ``eps0_step``), with the rule folded into
    (lr, weight_decay, decoupled)."""
    common = dict(amsgrad=amsgrad, beta1=beta1, beta2=beta2, lr=lr,
                  weight_decay=weight_decay, maximize=maximize)  # fmt: skip
    for kernel in dict.fromkeys(kernels):
        idx = [i for i, k in enumerate(kernels) if k == kernel]
        sub = [[lst[i] for i in idx] if lst else [] for lst in lists]
        if kernel == "eps0":
            eps0_step(*sub, decoupled=decoupled, **common)
            continue
        tc.torch_adam(
            *sub,
            foreach=kernel == "foreach",
            fused=kernel == "fused",
            capturable=capturable,
            decoupled_weight_decay=decoupled,
            eps=eps,
            **common,
        )


def one_pass_step(code: int, group: dict[str, Any], lists, s: Scalar) -> bool:
    """The C++ one-pass kernel of ``_kernels`` (Adam step and operator ``code`` in one pass over
    x, g, m, v); False, with nothing changed, where it does not apply."""
    return _kernels.group_step(code, group, lists, s)


def adam_update(m: Tensor, v: Tensor, step: Tensor, *, lr, beta1, beta2, eps) -> Tensor:
    """u = lr * m_hat / D from the state (v: v_max under AMSGrad), 0 where D = 0."""
    t = float(step)
    d = v.sqrt().div_(math.sqrt(1.0 - float(beta2) ** t)).add_(eps)
    u = m * (float(lr) / (1.0 - float(beta1) ** t)) / d
    return torch.where(d > 0, u, torch.zeros_like(u))


def cautioned_update(u: Tensor, m: Tensor, g: Tensor) -> Tensor:
    """u * phi / max(mean(phi), 1e-3) with phi = 1[m * g > 0] (C-AdamW), as a new tensor."""
    phi = (m * g > 0).to(u.dtype)
    return u * phi / phi.mean().clamp_min(CAUTION_FLOOR)


def adam_updates(param_groups, state, l2_in_gradient: bool) -> dict[Tensor, Tensor]:
    """``AdamFamily.adam_updates``: u of every parameter with state (cautioned under caution,
    phi from m and ``p.grad``; ``l2_in_gradient``: lambda x is part of that gradient)."""
    out: dict[Tensor, Tensor] = {}
    for group in param_groups:
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            st = state.get(p, {})
            if "exp_avg" not in st:
                continue
            v = st["max_exp_avg_sq"] if group["amsgrad"] else st["exp_avg_sq"]
            u = adam_update(st["exp_avg"], v, st["step"], lr=group["lr"], beta1=beta1,
                            beta2=beta2, eps=group["eps"])  # fmt: skip
            if group["caution"] and p.grad is not None:
                g = -p.grad if group["maximize"] else p.grad
                if l2_in_gradient and group["weight_decay"]:
                    g = g + group["weight_decay"] * p
                u = cautioned_update(u, st["exp_avg"], g)
            out[p] = u
    return out
