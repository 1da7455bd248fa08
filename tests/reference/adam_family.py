"""Slow, readable float64 reference for the Adam weight-decay family, written from docs/math.md sections 2-4.

It shares no code with ``scalefree.optim``: plain per-tensor arithmetic, state in a dict, the decay
strength computed from the group's own initial lr. Tests feed it and the package the same random
gradients and compare parameters and state.

alpha is always given explicitly (the lr the group was built with); the lr (and, for schedulers
that cycle momentum such as OneCycleLR, beta1) of each step can be passed per step, as recorded
from the optimizer under test just before its step: ``run_reference`` replays such a recording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

NAMES = ("AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD")


@dataclass
class RefGroup:
    params: list[torch.Tensor]  # float64, updated in place
    alpha: float  # initial lr of the group
    lr: float  # current lr (a scheduler may change it)
    weight_decay: float
    betas: tuple[float, float] | None = None  # per-group override of ReferenceAdam's betas
    m: list[torch.Tensor] = field(default_factory=list)
    v: list[torch.Tensor] = field(default_factory=list)
    vmax: list[torch.Tensor] = field(default_factory=list)
    t: int = 0


class ReferenceAdam:
    def __init__(
        self,
        name,
        groups,
        *,
        betas=(0.9, 0.999),
        eps=1e-8,
        amsgrad=False,
        maximize=False,
        decay_convention="schedule",
        prox_norm="group",
    ):
        assert name in NAMES
        self.name, self.groups = name, groups
        self.beta1, self.beta2 = betas
        self.eps, self.amsgrad, self.maximize = eps, amsgrad, maximize
        self.convention, self.prox_norm = decay_convention, prox_norm
        for g in groups:
            g.m = [torch.zeros_like(p) for p in g.params]
            g.v = [torch.zeros_like(p) for p in g.params]
            g.vmax = [torch.zeros_like(p) for p in g.params]

    def decay_strength(self, g: RefGroup) -> float:
        """s = lambda * lr_t / alpha ("schedule") or lambda * lr_t ("lr")."""
        return decay_strength(g.weight_decay, g.lr, g.alpha, self.convention)

    def step(self, grads_per_group, lrs=None, betas=None):
        """One step; ``lrs`` / ``betas`` (one entry per group) set that step's lr / betas first."""
        for k, (g, grads) in enumerate(zip(self.groups, grads_per_group)):
            if lrs is not None:
                g.lr = float(lrs[k])
            if betas is not None:
                g.betas = (float(betas[k][0]), float(betas[k][1]))
            beta1, beta2 = g.betas if g.betas is not None else (self.beta1, self.beta2)
            g.t += 1
            t = g.t
            s = self.decay_strength(g)
            ys, ds, mhats = [], [], []
            for i, x in enumerate(g.params):
                grad = -grads[i] if self.maximize else grads[i]
                if self.name == "AdamL2":
                    grad = grad + g.weight_decay * x
                g.m[i] = beta1 * g.m[i] + (1 - beta1) * grad
                g.v[i] = beta2 * g.v[i] + (1 - beta2) * grad * grad
                g.vmax[i] = torch.maximum(g.vmax[i], g.v[i])
                v = g.vmax[i] if self.amsgrad else g.v[i]
                m_hat = g.m[i] / (1 - beta1**t)
                v_hat = v / (1 - beta2**t)
                D = v_hat.sqrt() + self.eps
                ratio = torch.where(D > 0, m_hat / D, torch.zeros_like(D))  # 0/0 := 0
                u = g.lr * ratio
                ys.append(x - u)
                ds.append(D)
                mhats.append(m_hat)
            if self.name == "AdamProxL2" and self.prox_norm == "group":
                norm = math.sqrt(sum(float((y * y).sum()) for y in ys))
                shrink_all = max(1 - s / norm, 0.0) if norm > 0 else 0.0
            for i, x in enumerate(g.params):
                y, D = ys[i], ds[i]
                if self.name == "AdamL2":
                    new = y
                elif self.name == "AdamW":
                    new = (1 - s) * x + (y - x)
                elif self.name == "AdamProx":
                    new = y / (1 + s)
                elif self.name == "AdamProxL1":
                    new = torch.sign(y) * torch.clamp(y.abs() - s, min=0)
                elif self.name == "AdamProxL2":
                    if self.prox_norm == "group":
                        new = shrink_all * y
                    else:
                        n = float(y.norm())
                        new = (max(1 - s / n, 0.0) if n > 0 else 0.0) * y
                    if s == 0:
                        new = y
                else:  # AdamProxD: (D x - lr m_hat) / (D + s); with D = 0 it is -lr m_hat / s
                    if s == 0:
                        new = y
                    else:
                        new = (D * x - g.lr * mhats[i]) / (D + s)
                x.copy_(new)


def decay_strength(weight_decay: float, lr: float, alpha: float, convention: str) -> float:
    """The decay strength s of one step (docs/math.md section 3), in float64."""
    if convention == "schedule":
        return weight_decay * lr / alpha
    assert convention == "lr", convention
    return weight_decay * lr


def run_reference(
    name,
    init,
    *,
    alphas,
    weight_decays,
    grads,
    lrs,
    betas=None,
    **kwargs,
) -> ReferenceAdam:
    """Replay a recorded run in float64.

    ``init``: per group, the initial parameters; ``alphas`` / ``weight_decays``: per group;
    ``grads[t][k][i]``: the gradient of parameter i of group k at step t; ``lrs[t][k]`` (and
    optionally ``betas[t][k]``): the hyperparameters group k used at step t. Other keyword
    arguments go to ``ReferenceAdam``. Returns the reference after the last step.
    """
    groups = [
        RefGroup(
            [torch.as_tensor(x, dtype=torch.float64).clone() for x in ps],
            alpha=float(a),
            lr=float(a),
            weight_decay=float(wd),
        )
        for ps, a, wd in zip(init, alphas, weight_decays)
    ]
    ref = ReferenceAdam(name, groups, **kwargs)
    for t, gs in enumerate(grads):
        gs64 = [[torch.as_tensor(x, dtype=torch.float64) for x in grp] for grp in gs]
        ref.step(gs64, lrs=lrs[t], betas=None if betas is None else betas[t])
    return ref
