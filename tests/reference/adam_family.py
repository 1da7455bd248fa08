"""Slow, readable float64 reference for the Adam weight-decay family, written from DESIGN section 3.

It shares no code with ``scalefree.optim``: plain per-tensor arithmetic, state in a dict, the decay
strength computed from the group's own initial lr. Tests feed it and the package the same random
gradients and compare parameters and state.
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

    def step(self, grads_per_group):
        for g, grads in zip(self.groups, grads_per_group):
            g.t += 1
            t = g.t
            eta = g.lr / g.alpha
            s = g.weight_decay * (eta if self.convention == "schedule" else g.lr)
            ys, ds, mhats = [], [], []
            for i, x in enumerate(g.params):
                grad = -grads[i] if self.maximize else grads[i]
                if self.name == "AdamL2":
                    grad = grad + g.weight_decay * x
                g.m[i] = self.beta1 * g.m[i] + (1 - self.beta1) * grad
                g.v[i] = self.beta2 * g.v[i] + (1 - self.beta2) * grad * grad
                g.vmax[i] = torch.maximum(g.vmax[i], g.v[i])
                v = g.vmax[i] if self.amsgrad else g.v[i]
                m_hat = g.m[i] / (1 - self.beta1**t)
                v_hat = v / (1 - self.beta2**t)
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
