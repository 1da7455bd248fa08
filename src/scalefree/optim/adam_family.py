"""The Adam weight-decay family of Zhuang, Liu, Cutkosky, Orabona (TMLR 2022), one shared core.

Symbols (per parameter group) and the arguments they come from:

* alpha   = ``initial_lr``: the group's learning rate at construction (kept per group; the
  reference code keeps one global value, which is wrong for groups with different lrs);
* lr_t    = ``lr``: the group's current learning rate (an LR scheduler may change it);
* eta_t   = lr_t / alpha: the schedule multiplier (eta_0 = 1);
* lambda  = ``weight_decay``; beta1, beta2 = ``betas``; eps = ``eps``.

Every variant first takes the Adam step (t counts steps from 1)::

    g     = grad f            (+ lambda * x   for AdamL2 only)
    m     = beta1 * m + (1 - beta1) * g
    v     = beta2 * v + (1 - beta2) * g^2        (AMSGrad: v_max = max(v_max, v), used below)
    m_hat = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)
    D     = sqrt(v_hat) + eps                     (eps = 0 allowed: 0/0 := 0)
    u     = lr_t * m_hat / D
    s     = lambda * eta_t   (decay_convention="schedule": the paper's and the reference code's)
          = lambda * lr_t    (decay_convention="lr": torch.optim.AdamW's)

and then applies its decay or proximal operator:

==========  ===================================================  ===========================
name        update of x                                          source
==========  ===================================================  ===========================
AdamL2      x <- x - u                                           paper, Algorithm 1
AdamW       x <- (1 - s) x - u                                   paper, eq. (4)
AdamProx    x <- (x - u) / (1 + s)                               paper, eq. (5)
AdamProxL2  y = x - u;  x <- max(1 - s / ||y||, 0) y             paper, Section 5
AdamProxL1  y = x - u;  x <- sign(y) max(|y| - s, 0)             paper, Section 5
AdamProxD   x <- (D x - lr_t m_hat) / (D + s)                    "Decay No More" (seed 004)
==========  ===================================================  ===========================

How it runs fast: the Adam part is torch's own fused (or foreach) Adam kernel
(``torch.optim.adam.adam``); AdamL2 and AdamW are *exactly* torch's math (AdamL2 = Adam with
weight_decay = lambda; AdamW = torch AdamW with weight_decay = lambda / alpha under the "schedule"
convention, lambda under "lr"). AdamProx is also exactly torch AdamW's update, with lr' = lr_t/(1+s)
and weight_decay' = s/lr_t. AdamProxL1/L2/D apply their operator as a post-step on y = x - u (an
in-place soft-threshold; one norm and one scale; D/(D+s) tensor by tensor). With eps = 0 the
kernels would turn 0/0 into NaN, so that case takes a per-tensor path that defines 0/0 = 0.

Deviations from the paper, stated: AdamProxD with D = 0 and s > 0 maps the coordinate to 0 (the
exact minimizer of its proximal problem); AdamProxL2 takes the norm over the whole parameter group
by default (``prox_norm="group"``, the paper's lambda ||x||), per tensor with ``prox_norm="tensor"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.adam import adam as _torch_adam
from torch.optim.optimizer import _get_fused_kernels_supported_devices, _get_scalar_dtype

from scalefree.optim import _kernels

DECAY_CONVENTIONS = ("schedule", "lr")
PROX_NORMS = ("group", "tensor")
VARIANTS = ("AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD")


class AdamFamily(Optimizer):
    """Adam with one of the weight-decay rules above; use the named subclasses.

    Args:
        params: iterable of parameters or parameter-group dicts.
        lr: alpha, the initial learning rate (default 1e-3).
        betas: (beta1, beta2) in [0, 1) (default (0.9, 0.999)).
        eps: added to sqrt(v_hat); 0 is allowed and gives exact scale-freeness (default 1e-8).
        weight_decay: lambda >= 0 (default 0).
        decay_convention: "schedule" (s = lambda * lr_t / alpha, default) or "lr" (s = lambda * lr_t).
        amsgrad: use max(v) over time (Reddi et al. 2018).
        maximize: maximize the objective instead of minimizing it.
        foreach, fused: force torch's multi-tensor or fused Adam kernel; default: fused where
            torch supports it for the parameters' device and dtype, else foreach.
        prox_norm: AdamProxL2 only; "group" (default) or "tensor".
    """

    variant: str = ""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decay_convention: str = "schedule",
        amsgrad: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        prox_norm: str = "group",
    ) -> None:
        if self.variant not in VARIANTS:
            raise TypeError("use one of the named optimizers: " + ", ".join(VARIANTS))
        if isinstance(lr, Tensor) or not 0.0 <= lr or not math.isfinite(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps or not math.isfinite(eps):
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        if not 0.0 <= weight_decay or not math.isfinite(weight_decay):
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if decay_convention not in DECAY_CONVENTIONS:
            raise ValueError(
                f"Invalid decay_convention: {decay_convention!r} (expected 'schedule' or 'lr')"
            )
        if prox_norm not in PROX_NORMS:
            raise ValueError(f"Invalid prox_norm: {prox_norm!r} (expected 'group' or 'tensor')")
        if foreach and fused:
            raise ValueError("foreach and fused cannot both be True")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decay_convention=decay_convention,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
            prox_norm=prox_norm,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        # alpha is per group and fixed at construction; LR schedulers use setdefault, so they keep it.
        group.setdefault("initial_lr", float(group["lr"]))
        if (
            group["initial_lr"] <= 0
            and group["weight_decay"] > 0
            and group["decay_convention"] == "schedule"
        ):
            raise ValueError(
                "decay_convention='schedule' needs a positive initial lr (s = lambda * lr / lr_0)"
            )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("initial_lr", float(group["lr"]))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def decay_strength(group: dict[str, Any]) -> float:
        """s for this step: lambda * lr_t / alpha ("schedule") or lambda * lr_t ("lr")."""
        lr = float(group["lr"])
        if group["decay_convention"] == "lr":
            return group["weight_decay"] * lr
        alpha = float(group["initial_lr"])
        return group["weight_decay"] * lr / alpha if alpha > 0 else 0.0

    def _gather(self, group: dict[str, Any]) -> tuple[bool, list[list[Tensor]]]:
        """Parameters with gradients and their state; decides fused vs foreach for the group."""
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{self.variant} does not support sparse gradients")
            if torch.is_complex(p):
                raise RuntimeError(f"{self.variant} does not support complex parameters")
            params.append(p)
        fused = bool(params) and self._use_fused(group, params)
        lists: list[list[Tensor]] = [params, [], [], [], [], []]
        cpu = torch.device("cpu")
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
            # Fused kernels want a float32 step on the parameter's device; the others a CPU step
            # (no device sync per bias correction). A loaded state_dict may hold either.
            want = p.device if fused else cpu
            if state["step"].device != want:
                state["step"] = state["step"].to(
                    want, torch.float32 if fused else _get_scalar_dtype()
                )
            lists[1].append(p.grad)
            lists[2].append(state["exp_avg"])
            lists[3].append(state["exp_avg_sq"])
            if group["amsgrad"]:
                lists[4].append(state["max_exp_avg_sq"])
            lists[5].append(state["step"])
        return fused, lists

    @staticmethod
    def _use_fused(group: dict[str, Any], params: list[Tensor]) -> bool:
        if group["fused"] is not None:
            return bool(group["fused"]) and group["eps"] > 0
        if group["foreach"] or group["eps"] == 0:
            return False
        supported = _get_fused_kernels_supported_devices()
        return all(
            p.device.type in supported
            and p.dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16)
            for p in params
        )

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            fused, (params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps) = self._gather(group)
            if not params:
                continue
            s = self.decay_strength(group)
            tensors = (params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps)
            if _kernels.group_step(self.variant, group, tensors, s):
                continue  # Adam step and decay/prox in one compiled pass
            self._adam_step(group, fused, params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, s)
            if s > 0:
                self._prox(group, params, exp_avg_sqs, max_sqs, steps, s)
        return loss

    def _adam_step(
        self, group, fused, params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, s
    ) -> None:
        beta1, beta2 = group["betas"]
        lam = group["weight_decay"]
        lr = float(group["lr"])
        # The decays that coincide with torch's own kernels are folded into them.
        if self.variant == "AdamL2":
            wd, decoupled = lam, False
        elif self.variant == "AdamW":
            # torch AdamW multiplies x by (1 - lr_t * wd) before the step: wd = s / lr_t.
            wd, decoupled = (s / lr if lr > 0 else 0.0), True
        elif self.variant == "AdamProx":
            # (x - u) / (1 + s) = x (1 - lr' wd') - lr' m_hat / D with lr' = lr_t / (1 + s) and
            # wd' = s / lr_t: exactly torch AdamW's update, so no separate prox pass is needed.
            wd, decoupled = (s / lr if lr > 0 else 0.0), True
            lr = lr / (1.0 + s)
        else:
            wd, decoupled = 0.0, False
        tensors = (params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps)
        common = dict(amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=lr, weight_decay=wd,
                      maximize=group["maximize"])  # fmt: skip
        if group["eps"] == 0:
            _adam_eps0(*tensors, decoupled=decoupled, **common)
            return
        _torch_adam(
            *tensors,
            foreach=None if fused else (group["foreach"] if group["foreach"] is not None else True),
            fused=fused or None,
            decoupled_weight_decay=decoupled,
            eps=group["eps"],
            **common,
        )

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        """Proximal post-step on y = x - u (x now holds y). AdamL2/AdamW/AdamProx are complete."""
        v = self.variant
        if v == "AdamProxL1":
            # sign(y) max(|y| - s, 0) is softshrink: one in-place pass per tensor, no temporaries.
            for p in params:
                torch._C._nn.softshrink(p, s, out=p)
        elif v == "AdamProxL2":
            norms = torch._foreach_norm(params)
            if group["prox_norm"] == "group":
                total = torch.linalg.vector_norm(torch.stack(norms))
                torch._foreach_mul_(params, _shrink(total, s))  # one scalar for the whole group
            else:
                torch._foreach_mul_(params, list(_shrink(torch.stack(norms), s).unbind()))
        elif v == "AdamProxD":
            # x <- (D x - lr m_hat) / (D + s) = y * D / (D + s), with D from the state after this
            # step. With c = sqrt(1 - beta2^t): D c = sqrt(v) + c eps, so D / (D + s) =
            # (sqrt(v) + c eps) / (sqrt(v) + c (eps + s)). Tensor by tensor, so the one
            # temporary stays in cache; D = 0 and s > 0 give 0, the prox problem's minimizer.
            beta2, eps = group["betas"][1], group["eps"]
            sq = max_sqs if group["amsgrad"] else exp_avg_sqs
            for x, v, t in zip(params, sq, steps):
                c = math.sqrt(1.0 - beta2 ** float(t))
                d = v.sqrt().add_(c * eps)
                x.mul_(d)
                x.div_(d.add_(c * s))

    @staticmethod
    def _denominators(group, params, exp_avg_sqs, max_sqs, steps) -> list[Tensor]:
        """D = sqrt(v_hat) + eps for each parameter (v_max under AMSGrad)."""
        beta2 = group["betas"][1]
        sq = max_sqs if group["amsgrad"] else exp_avg_sqs
        out = []
        for v, t in zip(sq, steps):
            bc2 = 1.0 - beta2 ** float(t)
            out.append((v.sqrt() / math.sqrt(bc2)).add_(group["eps"]))
        return out

    @torch.no_grad()
    def adam_updates(self) -> dict[Tensor, Tensor]:
        """u = lr_t * m_hat / D for every parameter with state, from the current state.

        After a ``step()``, this is the Adam step that was just taken (before the decay or prox),
        i.e. the "update" of the paper's Figure 3 and Appendix C.
        """
        out: dict[Tensor, Tensor] = {}
        for group in self.param_groups:
            beta1 = group["betas"][0]
            live = [p for p in group["params"] if p in self.state and "exp_avg" in self.state[p]]
            if not live:
                continue
            denoms = self._denominators(
                group,
                live,
                [self.state[p]["exp_avg_sq"] for p in live],
                [self.state[p].get("max_exp_avg_sq") for p in live],
                [self.state[p]["step"] for p in live],
            )
            for p, d in zip(live, denoms):
                st = self.state[p]
                bc1 = 1.0 - beta1 ** float(st["step"])
                u = st["exp_avg"] * (float(group["lr"]) / bc1) / d
                out[p] = torch.where(d > 0, u, torch.zeros_like(u))
        return out


def _shrink(norm: Tensor, s: float) -> Tensor:
    """max(1 - s / ||y||, 0), with ||y|| = 0 -> 0 (y is 0 then anyway)."""
    return torch.where(norm > 0, (1.0 - s / norm).clamp_min(0.0), torch.zeros_like(norm))


def _adam_eps0(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_sqs,
    steps,
    *,
    amsgrad,
    beta1,
    beta2,
    lr,
    weight_decay,
    decoupled,
    maximize,
) -> None:
    """Per-tensor Adam with eps = 0 and 0/0 := 0 (torch's kernels would produce NaN there)."""
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay and not decoupled:
            g = g.add(p, alpha=weight_decay)
        elif weight_decay:
            p.mul_(1.0 - lr * weight_decay)
        steps[i] += 1
        t = float(steps[i])
        exp_avgs[i].lerp_(g, 1.0 - beta1)
        exp_avg_sqs[i].mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        v = exp_avg_sqs[i]
        if amsgrad:
            torch.maximum(max_sqs[i], v, out=max_sqs[i])
            v = max_sqs[i]
        denom = v.sqrt() / math.sqrt(1.0 - beta2**t)
        step = exp_avgs[i] * (lr / (1.0 - beta1**t)) / denom
        p.sub_(torch.where(denom > 0, step, torch.zeros_like(step)))


def _variant(name: str, doc: str) -> type[AdamFamily]:
    return type(
        name, (AdamFamily,), {"variant": name, "__doc__": doc + "\n\n" + AdamFamily.__doc__}
    )


AdamL2 = _variant(
    "AdamL2", "Adam on f + (lambda/2)||x||^2: x <- x - u with lambda x inside g (Algorithm 1)."
)
AdamW = _variant(
    "AdamW", "Decoupled weight decay: x <- (1 - s) x - u (paper eq. (4); Loshchilov & Hutter)."
)
AdamProx = _variant(
    "AdamProx", "Proximal Adam for (lambda/2)||x||^2: x <- (x - u) / (1 + s) (paper eq. (5))."
)
AdamProxL2 = _variant(
    "AdamProxL2", "Proximal Adam for lambda ||x|| (group norm): block soft-threshold of y = x - u."
)
AdamProxL1 = _variant(
    "AdamProxL1", "Proximal Adam for lambda ||x||_1: soft-threshold of y = x - u by s."
)
AdamProxD = _variant(
    "AdamProxD",
    "Prox of (lambda/2)||x||^2 in the adaptive metric D: x <- (D x - lr m_hat) / (D + s) (seed 004).",
)
