"""Slow float64 reference for the weight-decay rules proposed since 2022, written from the papers.

Independent of ``scalefree.optim`` and of ``tests/reference/adam_family.py``: one function per rule,
per tensor, in float64, so each line can be checked against its paper.

Notation (docs/math.md): alpha = the lr the group was built with, lr_t = this step's lr,
u = lr_t * m_hat / D (the Adam step, 0/0 := 0), y = x - u, lambda = weight_decay.

* decay strength s, by convention:
  "schedule" s = lambda lr_t / alpha (Zhuang et al. 2022), "lr" s = lambda lr_t (torch AdamW),
  "corrected" s = lambda lr_t^2 / alpha (Defazio 2025, "Why Gradients Rapidly Increase Near the
  End of Training": AdamC).
* ``caution`` (Liang et al. 2024, "Cautious Optimizers"): phi = 1[m * g > 0] with m after this
  step's update and g the gradient the moments saw; u <- u * phi / max(mean(phi), 1e-3), mean per
  tensor. The decay itself is not masked.
* ``cautious_decay`` (Chen et al. 2025, "Cautious Weight Decay"): the decay or proximal operator is
  applied only where u * x >= 0 (x before the step); elsewhere x <- x - u.
* timescale (Wang & Aitchison 2024): lambda such that 1 / s_0 = epochs * iterations per epoch,
  s_0 being the decay strength of the first step (lr_t = alpha).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

ELEMENTWISE = ("AdamW", "AdamProx", "AdamProxL1", "AdamProxD")
NAMES = ("AdamL2", *ELEMENTWISE, "AdamProxL2")
CONVENTIONS = ("schedule", "lr", "corrected")
CAUTION_FLOOR = 1e-3


def strength(weight_decay: float, lr: float, alpha: float, convention: str) -> float:
    """The decay strength s of one step under ``convention``."""
    if convention == "schedule":
        return weight_decay * lr / alpha
    if convention == "lr":
        return weight_decay * lr
    assert convention == "corrected", convention
    return weight_decay * lr * lr / alpha


def weight_decay_for_timescale(
    epochs: float, iterations_per_epoch: int, alpha: float, convention: str
) -> float:
    """lambda whose first-step strength s_0 (lr_0 = alpha) is 1 / (epochs * iterations)."""
    s0 = 1.0 / (epochs * iterations_per_epoch)
    return s0 / strength(1.0, alpha, alpha, convention)


def caution_mask(u: torch.Tensor, m: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """u * phi / max(mean(phi), floor), phi = 1[m * g > 0] (Liang et al. 2024, Algorithm 1)."""
    phi = (m * g > 0).to(u.dtype)
    return u * phi / max(float(phi.mean()), CAUTION_FLOOR)


def decayed(name: str, x, u, D, s, lr, m_hat) -> torch.Tensor:
    """The variant's decay / proximal operator applied to every coordinate (AdamL2: none)."""
    y = x - u
    if name == "AdamL2" or s == 0:
        return y
    if name == "AdamW":
        return (1 - s) * x - u
    if name == "AdamProx":
        return y / (1 + s)
    if name == "AdamProxL1":
        return torch.sign(y) * torch.clamp(y.abs() - s, min=0)
    assert name == "AdamProxD", name
    return D * y / (D + s)  # = (D x - lr m_hat) / (D + s) for the uncautioned u


@dataclass
class Group:
    params: list[torch.Tensor]  # float64, updated in place
    alpha: float
    weight_decay: float
    lr: float = 0.0
    m: list[torch.Tensor] = field(default_factory=list)
    v: list[torch.Tensor] = field(default_factory=list)
    vmax: list[torch.Tensor] = field(default_factory=list)
    t: int = 0

    def __post_init__(self) -> None:
        self.lr = self.lr or self.alpha
        for buf in (self.m, self.v, self.vmax):
            buf[:] = [torch.zeros_like(p) for p in self.params]


class ReferenceRules:
    """The Adam family with ``decay_convention`` in CONVENTIONS, ``caution`` and
    ``cautious_decay``; AdamProxL2 (group norm) takes the conventions and caution only."""

    def __init__(
        self,
        name,
        groups,
        *,
        betas=(0.9, 0.999),
        eps=1e-8,
        amsgrad=False,
        decay_convention="schedule",
        caution=False,
        cautious_decay=False,
    ):
        assert name in NAMES and decay_convention in CONVENTIONS
        assert not (cautious_decay and name not in ELEMENTWISE), name
        self.name, self.groups = name, groups
        self.beta1, self.beta2, self.eps, self.amsgrad = *betas, eps, amsgrad
        self.convention, self.caution, self.cautious_decay = (
            decay_convention,
            caution,
            cautious_decay,
        )

    def adam_step(self, g: Group, i: int, grad: torch.Tensor):
        """Moments and the (possibly cautioned) Adam step u of parameter i; returns u, D, m_hat."""
        x = g.params[i]
        if self.name == "AdamL2":
            grad = grad + g.weight_decay * x
        g.m[i] = self.beta1 * g.m[i] + (1 - self.beta1) * grad
        g.v[i] = self.beta2 * g.v[i] + (1 - self.beta2) * grad * grad
        g.vmax[i] = torch.maximum(g.vmax[i], g.v[i])
        v = g.vmax[i] if self.amsgrad else g.v[i]
        m_hat = g.m[i] / (1 - self.beta1**g.t)
        D = (v / (1 - self.beta2**g.t)).sqrt() + self.eps
        u = g.lr * torch.where(D > 0, m_hat / D, torch.zeros_like(D))
        if self.caution:
            u = caution_mask(u, g.m[i], grad)
        return u, D, m_hat

    def step(self, grads_per_group, lrs=None):
        for k, (g, grads) in enumerate(zip(self.groups, grads_per_group)):
            if lrs is not None:
                g.lr = float(lrs[k])
            g.t += 1
            s = strength(g.weight_decay, g.lr, g.alpha, self.convention)
            steps = [self.adam_step(g, i, grad) for i, grad in enumerate(grads)]
            if self.name == "AdamProxL2":
                self._prox_l2(g, steps, s)
                continue
            for x, (u, D, m_hat) in zip(g.params, steps):
                new = decayed(self.name, x, u, D, s, g.lr, m_hat)
                if self.cautious_decay:
                    new = torch.where(u * x >= 0, new, x - u)
                x.copy_(new)

    @staticmethod
    def _prox_l2(g: Group, steps, s: float) -> None:
        ys = [x - u for x, (u, _, _) in zip(g.params, steps)]
        norm = math.sqrt(sum(float((y * y).sum()) for y in ys))
        shrink = 1.0 if s == 0 else (max(1 - s / norm, 0.0) if norm > 0 else 0.0)
        for x, y in zip(g.params, ys):
            x.copy_(shrink * y)


def run_rules(name, init, *, alphas, weight_decays, grads, lrs, **kwargs) -> ReferenceRules:
    """Replay a recorded run: ``grads[t][k][i]`` and ``lrs[t][k]`` as in adam_family.run_reference."""
    groups = [
        Group([torch.as_tensor(x, dtype=torch.float64).clone() for x in ps], float(a), float(wd))
        for ps, a, wd in zip(init, alphas, weight_decays)
    ]
    ref = ReferenceRules(name, groups, **kwargs)
    for t, gs in enumerate(grads):
        ref.step([[torch.as_tensor(x, dtype=torch.float64) for x in grp] for grp in gs], lrs[t])
    return ref
