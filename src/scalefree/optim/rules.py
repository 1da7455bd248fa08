"""The rules of the family: one ``AdamFamily`` subclass each (the table in
``scalefree.optim.adam_family``'s docstring), and the variants "rule with fixed options".

A rule says what it is with class attributes (``kernel_code``, ``decay_in_gradient``,
``folds_decay``, ``elementwise_decay``, ``max_decay_strength``, ``group_norm``) and implements the
hooks they name: ``_fold_decay`` (how torch's Adam kernel takes the decay), ``_decayed`` (the
elementwise new x) and ``_prox`` (the post-step on y = x - u).
"""

from __future__ import annotations

import torch
from torch import Tensor

from scalefree.optim import _kernels
from scalefree.optim import _torch_compat as tc
from scalefree.optim.decay import decay_per_lr
from scalefree.optim.family import AdamFamily
from scalefree.optim.functional import step_value
from scalefree.optim.variants import with_options

__all__ = [
    "AdamL2",
    "AdamW",
    "AdamProx",
    "AdamProxL2",
    "AdamProxL1",
    "AdamProxD",
    "AdamC",
    "CWD",
    "CAdamW",
]


def _shrink(norm: Tensor, s: float | Tensor) -> Tensor:
    """max(1 - s / ||y||, 0), with ||y|| = 0 -> 0 (y is 0 then anyway)."""
    return torch.where(norm > 0, (1.0 - s / norm).clamp_min(0.0), torch.zeros_like(norm))


def _prox_l2(group, params: list[Tensor], s, process_group) -> None:
    """Block soft-threshold of y by s: over the whole group (the squared norm summed over
    ``process_group`` when the parameters are shards), or tensor by tensor."""
    norms = tc.foreach_norm(params) if params else []
    if group["prox_norm"] == "tensor":
        if params:
            tc.foreach_mul_(params, list(_shrink(torch.stack(norms), s).unbind()))
        return
    if process_group is None:
        total = torch.linalg.vector_norm(torch.stack(norms))
    else:
        if any(tc.is_dtensor(p) for p in params):
            raise ValueError(
                "AdamProxL2: these parameters are DTensors (FSDP2 / tensor parallel), whose norms "
                "are global already; pass norm_process_group=None"
            )
        if params:
            acc = torch.promote_types(norms[0].dtype, torch.float32)
            sq = torch.stack([n.to(acc) for n in norms]).square().sum()
        else:  # this rank holds no parameter of the group but must join the all-reduce
            sq = torch.zeros((), dtype=torch.float64, device=tc.collective_device(process_group))
        tc.all_reduce_sum_(sq, process_group)
        total = sq.sqrt()
    if params:
        tc.foreach_mul_(params, _shrink(total, s).to(params[0].dtype))


class AdamL2(AdamFamily):
    """Adam on f + (lambda/2)||x||^2: x <- x - u with lambda x inside g (Algorithm 1).

    Defaults are torch.optim.Adam's (weight_decay=0); ``AdamL2(p, lr, weight_decay=wd)`` equals
    ``torch.optim.Adam(p, lr, weight_decay=wd)``. decay_convention does not affect it.

    Examples:
        >>> import torch
        >>> from scalefree.optim import AdamL2
        >>> x = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = AdamL2([x], lr=0.1, weight_decay=0.5)
        >>> x.grad = torch.tensor([0.5, 0.5])  # the moments see g + lambda x = (1, -0.5)
        >>> opt.step()  # a first Adam step moves each coordinate by lr against its sign
        >>> x.detach()
        tensor([ 0.9000, -1.9000])
    """

    kernel_code = _kernels.L2
    decay_in_gradient = True
    folds_decay = True
    option_defaults = {"weight_decay": 0.0}  # torch.optim.Adam's

    def _fold_decay(self, group, s):
        return group["lr"], group["weight_decay"], False  # torch Adam's L2 term: g + lambda x


class AdamW(AdamFamily):
    """Decoupled weight decay: x <- (1 - s) x - u (paper eq. (4); Loshchilov & Hutter).

    With the defaults, ``AdamW(p, ...)`` equals ``torch.optim.AdamW(p, ...)`` for the same
    arguments.

    Examples:
        One step from x = (1, -2) with g = (0.5, 0.5): u = lr * sign(g) = 0.1 on a first step,
        s = lambda * lr = 0.05 (torch's convention), and torch.optim.AdamW agrees.

        >>> import torch
        >>> from scalefree.optim import AdamW
        >>> x, y = torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([1.0, -2.0])
        >>> x.grad = torch.tensor([0.5, 0.5])
        >>> AdamW([x], lr=0.1, weight_decay=0.5).step()
        >>> x.detach()  # (1 - s) x - u
        tensor([ 0.8500, -2.0000])
        >>> y.requires_grad_().grad = torch.tensor([0.5, 0.5])
        >>> torch.optim.AdamW([y], lr=0.1, weight_decay=0.5).step()
        >>> torch.allclose(x, y)
        True
    """

    kernel_code = _kernels.W
    folds_decay = True
    max_decay_strength = 1.0
    elementwise_decay = True

    def _fold_decay(self, group, s):
        # torch AdamW: x <- (1 - lr_t wd) x with wd = s / lr_t, i.e. (1 - s) x.
        return group["lr"], decay_per_lr(group), True

    def _decayed(self, x, u, d, s):
        return x * (1 - s) - u


class AdamProx(AdamFamily):
    """Proximal Adam for (lambda/2)||x||^2: x <- (x - u) / (1 + s) (paper eq. (5)).

    Examples:
        >>> import torch
        >>> from scalefree.optim import AdamProx
        >>> w = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = w.weight.copy_(torch.tensor([[1.0, -2.0]]))
        >>> opt = AdamProx(w.parameters(), lr=0.1, weight_decay=0.5)
        >>> w(torch.tensor([[0.5, 0.5]])).sum().backward()  # g = (0.5, 0.5)
        >>> opt.step()
        >>> w.weight.detach()  # (x - u) / (1 + s), u = 0.1, s = 0.05
        tensor([[ 0.8571, -2.0000]])
    """

    kernel_code = _kernels.PROX
    folds_decay = True
    elementwise_decay = True

    def _fold_decay(self, group, s):
        # (x - u) / (1 + s) = x (1 - lr' wd') - lr' m_hat / D with lr' = lr_t / (1 + s) and
        # wd' = s / lr_t: exactly torch AdamW's update, so no separate prox pass is needed.
        return group["lr"] / (1 + s), decay_per_lr(group), True

    def _decayed(self, x, u, d, s):
        return (x - u) / (1 + s)


class AdamProxL2(AdamFamily):
    """Proximal Adam for lambda ||x|| (group norm): block soft-threshold of y = x - u.

    Sharded parameters: under ZeroRedundancyOptimizer pass norm_process_group (e.g.
    torch.distributed.group.WORLD) so the group norm is global; FSDP2 DTensors need nothing.

    Examples:
        The threshold s = 0.05 shrinks y = x - u by the norm of the whole group, here two
        tensors: y = (0.9, -2.1) and (2.9); per tensor with ``prox_norm="tensor"``.

        >>> import torch
        >>> from scalefree.optim import AdamProxL2
        >>> a, b = torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([3.0], requires_grad=True)
        >>> a.grad, b.grad = torch.tensor([0.5, 0.5]), torch.tensor([1.0])
        >>> AdamProxL2([a, b], lr=0.1, weight_decay=0.5).step()
        >>> a.detach(), b.detach()
        (tensor([ 0.8878, -2.0716]), tensor([2.8607]))
    """

    kernel_code = _kernels.PROX_L2
    group_norm = True

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        _prox_l2(group, params, s, self.norm_process_group)


class AdamProxL1(AdamFamily):
    """Proximal Adam for lambda ||x||_1: soft-threshold of y = x - u by s.

    Examples:
        A coordinate with |y| <= s becomes exactly 0 (a sparse solution):

        >>> import torch
        >>> from scalefree.optim import AdamProxL1
        >>> x = torch.tensor([1.0, -2.0, 0.12], requires_grad=True)
        >>> x.grad = torch.tensor([0.5, 0.5, 0.5])
        >>> AdamProxL1([x], lr=0.1, weight_decay=0.5).step()  # s = 0.05, y = (0.9, -2.1, 0.02)
        >>> x.detach()
        tensor([ 0.8500, -2.0500,  0.0000])
    """

    kernel_code = _kernels.PROX_L1
    elementwise_decay = True

    def _decayed(self, x, u, d, s):
        y = x - u
        return y.sign() * (y.abs() - s).clamp_min(0.0)

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        if not isinstance(s, Tensor) and not torch.compiler.is_compiling():
            for p in params:
                tc.softshrink_(p, s)  # one in-place pass per tensor, no temporaries
        else:  # tensor lr, or symbolic s under torch.compile (clamp(y, -s, s) would
            for p in params:  # specialize on s and recompile whenever the lr changes)
                magnitude = (p.abs() - s).clamp_min_(0.0)
                p.sign_().mul_(magnitude)


class AdamProxD(AdamFamily):
    """Prox of (lambda/2)||x||^2 in the adaptive metric D: x <- (D x - lr m_hat) / (D + s)
    ("Decay No More").

    Examples:
        The decay is weaker where D is large: D = |g| on a first step.

        >>> import torch
        >>> from scalefree.optim import AdamProxD
        >>> x = torch.tensor([1.0, 1.0], requires_grad=True)
        >>> opt = AdamProxD([x], lr=0.1, weight_decay=0.5)
        >>> x.grad = torch.tensor([0.05, 5.0])
        >>> opt.step()
        >>> x.detach()  # D y / (D + s): y = 0.9 times 0.05 / 0.1 and 5 / 5.05
        tensor([0.4500, 0.8911])
    """

    kernel_code = _kernels.PROX_D
    elementwise_decay = True

    def _decayed(self, x, u, d, s):
        # D y / (D + s): the prox in the metric D of y = x - u (u possibly cautioned); y where
        # D + s = 0 (no decay this step and a zero denominator).
        y = x - u
        ds = d + s
        return torch.where(ds > 0, y * d / ds, y)

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        # x <- (D x - lr m_hat) / (D + s) = y * D / (D + s), with D from the state after this
        # step. With c = sqrt(1 - beta2^t): D c = sqrt(v) + c eps, so D / (D + s) =
        # (sqrt(v) + c eps) / (sqrt(v) + c (eps + s)). Tensor by tensor, so the one
        # temporary stays in cache; D = 0 and s > 0 give 0, the prox problem's minimizer.
        beta2, eps = group["betas"][1], group["eps"]
        sq = max_sqs if group["amsgrad"] else exp_avg_sqs
        for x, v2, t in zip(params, sq, steps):
            c = (1 - beta2 ** step_value(t, x)) ** 0.5
            d = v2.sqrt().add_(c * eps)
            x.mul_(d)
            x.div_(d.add_(c * s))


_ADAMC_DOC = """AdamW with corrected decay (Defazio 2025, "Why Gradients Rapidly Increase Near the End of
    Training"): x <- (1 - s) x - u with s = lambda * lr_t^2 / alpha (decay_convention="corrected").

    Where the meaning of weight_decay differs: at lr_t = alpha, s = lambda * lr_t exactly as in
    torch.optim.AdamW, so ``AdamC(params, lr, weight_decay=wd)`` starts as ``AdamW`` with the same
    arguments; as an LR scheduler lowers lr_t, the decay falls with lr_t^2 (AdamW: lr_t), so the
    equilibrium weight norm of a normalized layer (||x||^2 ~ lr_t^2 / s) no longer shrinks with
    lr_t, and its gradient norm (~ 1 / ||x||) no longer grows at the end of training. alpha is the lr the group
    was built with (``group["alpha"]``), so build it with the peak lr, as for any scheduler.

    The paper applies the correction to layers followed by normalization (their weights'
    scale does not matter, only the effective step); give the other parameters their own group:
    ``param_groups(model, wd, corrected_for="normalized")`` returns such groups (the others with
    ``decay_convention="lr"``, i.e. plain AdamW there).

    Examples:
        >>> import torch
        >>> from scalefree.optim import AdamC
        >>> opt = AdamC([torch.zeros(2, requires_grad=True)], lr=0.1, weight_decay=0.5)
        >>> group = opt.param_groups[0]
        >>> round(float(opt.decay_strength(group)), 6)  # at lr_t = alpha: lambda * lr_t
        0.05
        >>> group["lr"] = 0.05  # as an LR scheduler would set it
        >>> round(float(opt.decay_strength(group)), 6)  # lambda * lr_t^2 / alpha (AdamW: 0.025)
        0.0125
    """
AdamC = with_options(AdamW, "AdamC", _ADAMC_DOC, decay_convention="corrected")
CWD = with_options(
    AdamW,
    "CWD",
    """AdamW with cautious weight decay (Chen et al. 2025, "Cautious Weight Decay"): the decay
    only where the update and the weight agree in sign, x <- x - u - s * 1[u * x >= 0] * x
    (x before the step). = ``AdamW(..., cautious_decay=True)``.

    Examples:
        u = (0.1, 0.1) agrees in sign with x only in the first coordinate, so only that one decays:

        >>> import torch
        >>> from scalefree.optim import CWD
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> x.grad = torch.ones(2)
        >>> CWD([x], lr=0.1, weight_decay=0.5).step()
        >>> x.detach()  # (1 - s) * 1 - 0.1 and -2 - 0.1, s = 0.05
        tensor([ 0.8500, -2.1000])
    """,
    cautious_decay=True,
)
CAdamW = with_options(
    AdamW,
    "CAdamW",
    """Cautious AdamW, C-AdamW (Liang et al. 2024, "Cautious Optimizers"): the Adam step masked
    where it disagrees with the gradient, u <- u * phi / max(mean(phi), 1e-3) with
    phi = 1[m * g > 0] per tensor (m after this step's update), then x <- (1 - s) x - u; the decay
    itself is not masked. = ``AdamW(..., caution=True)``. The mask is the paper's m * g.

    Examples:
        A zero gradient coordinate has phi = 0; the kept half of the step is scaled by 2:

        >>> import torch
        >>> from scalefree.optim import CAdamW
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = CAdamW([x], lr=0.1, weight_decay=0.5)
        >>> x.grad = torch.tensor([0.5, 0.0])
        >>> opt.step()
        >>> x.detach()  # (1 - s) x - u * phi / mean(phi), u = (0.1, 0), s = 0.05
        tensor([ 0.7500, -1.9000])
    """,
    caution=True,
)


_DEFAULTS_NOTE = (
    "Defaults are torch's (decay_convention='lr', weight_decay={wd}); the paper and "
    "``scalefree train`` use decay_convention='schedule' (s = weight_decay * lr_t / alpha)."
)
for _cls in (AdamW, AdamProx, AdamProxL2, AdamProxL1, AdamProxD, CWD, CAdamW):
    _cls.__doc__ = f"{_cls.__doc__}\n\n{_DEFAULTS_NOTE.format(wd=1e-2)}\n\n{AdamFamily.__doc__}"
for _cls in (AdamL2, AdamC):
    _cls.__doc__ = f"{_cls.__doc__}\n{AdamFamily.__doc__}"
del _cls
