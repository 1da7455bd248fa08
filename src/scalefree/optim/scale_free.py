"""Empirical scale-freeness check (paper Section 3.2).

An optimizer is scale-free when multiplying every coordinate of every gradient by a fixed positive
constant c_i leaves its iterates unchanged. We run the optimizer twice on the same random problem,
f(x) = 1/2 ||A x - b||^2 over two parameter tensors (a matrix and a vector, so group-wise operators
are exercised), once with the true gradients and once with gradients multiplied coordinate-wise by
constants log-uniform in [1e-3, 1e3], and report max over steps of ||x_t - x'_t|| / ||x_t||.

Expected in float64: ~1e-12 or less for AdamW, AdamProx, AdamProxL1, AdamProxL2 (and Adam, AdaGrad,
RMSProp) at eps = 0; O(1) for AdamL2 with lambda > 0, AdamProxD and SGD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from scalefree.optim.registry import OPTIMIZERS, accepted_options, build_optimizer

Factory = Callable[[list[torch.Tensor], float], torch.optim.Optimizer]


@dataclass(frozen=True)
class ScaleFreeResult:
    name: str
    eps: float | None  # None when the optimizer has no eps
    max_rel_diff: float

    @property
    def scale_free(self) -> bool:
        """Exactly scale-free up to rounding."""
        return self.max_rel_diff < 1e-10

    @property
    def verdict(self) -> str:
        if self.scale_free:
            return "scale-free"
        if self.max_rel_diff < 1e-4:
            return "scale-free up to eps"
        return "not scale-free" if self.max_rel_diff < float("inf") else "not scale-free (diverged)"


def _problem(seed: int, dtype: torch.dtype, n: int = 24, d: int = 8):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d * d + d, generator=g, dtype=dtype)
    b = torch.randn(n, generator=g, dtype=dtype)
    x0 = [torch.randn(d, d, generator=g, dtype=dtype), torch.randn(d, generator=g, dtype=dtype)]
    # log-uniform positive constants in [1e-3, 1e3], one per coordinate
    scales = [10 ** (6 * torch.rand(t.shape, generator=g, dtype=dtype) - 3) for t in x0]
    return A, b, x0, scales


def _trajectory(factory: Factory, A, b, x0, scales, steps: int) -> list[torch.Tensor]:
    params = [t.clone().requires_grad_(True) for t in x0]
    opt = factory(params)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        x = torch.cat([p.reshape(-1) for p in params])
        loss = 0.5 * ((A @ x - b) ** 2).sum()
        loss.backward()
        if scales is not None:
            for p, c in zip(params, scales):
                p.grad.mul_(c)
        opt.step()
        out.append(torch.cat([p.detach().reshape(-1) for p in params]).clone())
    return out


def max_relative_difference(
    factory: Factory, steps: int = 100, seed: int = 0, dtype: torch.dtype = torch.float64
) -> float:
    A, b, x0, scales = _problem(seed, dtype)
    plain = _trajectory(factory, A, b, x0, None, steps)
    scaled = _trajectory(factory, A, b, x0, scales, steps)
    worst = 0.0
    for x, y in zip(plain, scaled):
        denom = max(float(x.norm()), 1e-300)
        diff = float((x - y).norm()) / denom
        worst = max(worst, diff if diff == diff else float("inf"))  # NaN (divergence) -> inf
    return worst


def check_scale_free(
    names: Sequence[str] | None = None,
    *,
    factory: Factory | None = None,
    factory_name: str = "custom",
    lr: float = 1e-2,
    weight_decay: float = 1e-2,
    eps_values: Sequence[float] = (0.0, 1e-8),
    steps: int = 100,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    decay_convention: str = "schedule",
) -> list[ScaleFreeResult]:
    """Check registered optimizers (all by default) or a user ``factory(params) -> Optimizer``.

    The Adam family runs in the paper's decay convention by default (s = weight_decay * lr_t /
    alpha), so ``weight_decay`` means what it means in the paper; "lr" gives torch's."""
    results: list[ScaleFreeResult] = []
    if factory is not None:
        return [
            ScaleFreeResult(
                factory_name, None, max_relative_difference(factory, steps, seed, dtype)
            )
        ]
    for name in names or OPTIMIZERS.names():
        name = OPTIMIZERS.canonical(name)
        accepted = accepted_options(name)
        conv = {"decay_convention": decay_convention} if "decay_convention" in accepted else {}
        for eps in eps_values if "eps" in accepted else (None,):
            opts = ({"eps": eps} if eps is not None else {}) | conv

            def make(params, name=name, opts=opts):
                return build_optimizer(name, params, lr=lr, weight_decay=weight_decay, **opts)

            results.append(
                ScaleFreeResult(name, eps, max_relative_difference(make, steps, seed, dtype))
            )
    return results


def format_table(results: Sequence[ScaleFreeResult]) -> str:
    lines = [f"{'optimizer':<12} {'eps':>8} {'max rel. diff':>14}  verdict", "-" * 50]
    for r in results:
        eps = "-" if r.eps is None else f"{r.eps:g}"
        lines.append(f"{r.name:<12} {eps:>8} {r.max_rel_diff:>14.3e}  {r.verdict}")
    return "\n".join(lines)
