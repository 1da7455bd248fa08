"""Pieces shared by the dataset-free paper experiments: diagonal quadratics, runs, curves, output.

No global state: torch and matplotlib are used through explicit objects (generators, Figure).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalefree.io import atomic_write_bytes, atomic_write_json

OptimizerFactory = Callable[[list[torch.Tensor], float], torch.optim.Optimizer]
"""``factory(params, lr)`` builds a fresh optimizer for one run."""


@dataclass(frozen=True)
class DiagonalQuadratic:
    """``f(x) = 1/2 sum_i h_i (x_i - x*_i)^2``; ``gradient(x) = h * (x - x*)``.

    Args:
        name: a short key, e.g. ``"kappa=1e5"``.
        hessian: the diagonal h > 0, float64, shape (d,) (or (P, d) for P problems run together).
        minimizer: x*, float64, broadcastable against ``hessian``.
    """

    name: str
    hessian: torch.Tensor
    minimizer: torch.Tensor

    @property
    def condition_number(self) -> float:
        return float(self.hessian.max() / self.hessian.min())

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        # Closed form rather than autograd: exact, and several times cheaper per step at this size.
        return self.hessian * (x - self.minimizer)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x) - f(x*)`` (f* = 0 here), over the last dimension."""
        return 0.5 * (self.hessian * (x - self.minimizer) ** 2).sum(-1)


def distance(x: torch.Tensor, minimizer: torch.Tensor, ord: float = 2) -> torch.Tensor:
    """``||x - x*||`` over the last dimension (``ord=2`` Euclidean, ``ord=math.inf`` max-norm)."""
    return torch.linalg.vector_norm(x - minimizer, ord=ord, dim=-1)


def run_optimizer(
    problem: DiagonalQuadratic,
    x0: torch.Tensor,
    factory: OptimizerFactory,
    lr: float,
    iters: int,
    ord: float = 2,
) -> np.ndarray:
    """Run ``iters`` full-gradient steps from x_0; return ``||x_t - x*||`` for t = 0..iters.

    A run whose iterates blow up (non-finite, or 1e12 times the initial distance) is stopped early
    and the rest of its curve is ``inf``: a diverged step size, not worth finishing.
    """
    x = torch.nn.Parameter(x0.clone())
    opt = factory([x], lr)
    trajectory = torch.empty(iters + 1, x0.numel(), dtype=x0.dtype)
    trajectory[0] = x0
    blowup = 1e12 * float((x0 - problem.minimizer).abs().max()) + 1.0
    last = iters
    for t in range(1, iters + 1):
        with torch.no_grad():
            x.grad = problem.gradient(x)
        opt.step()
        trajectory[t] = x.detach()
        # A host sync every step costs more than the step itself; check every 64 steps instead.
        if t % 64 == 0 and not float((x.detach() - problem.minimizer).abs().max()) < blowup:
            last = t
            break
    dist = distance(trajectory[: last + 1], problem.minimizer, ord).numpy()
    curve = np.full(iters + 1, np.inf)
    curve[: last + 1] = np.where(np.isfinite(dist), dist, np.inf)
    return curve


def gd_curve_closed_form(
    problem: DiagonalQuadratic, x0: torch.Tensor, lr: float, iters: int, ord: float = 2
) -> np.ndarray:
    """GD's ``||x_t - x*||``, t = 0..iters, from ``x_t - x* = (1 - lr h)^t (x_0 - x*)`` (exact)."""
    rate = 1.0 - lr * problem.hessian.numpy()
    err = (x0 - problem.minimizer).numpy()
    t = np.arange(iters + 1)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        curve = np.linalg.norm(np.power(rate, t) * err, ord=ord, axis=-1)
    return np.where(np.isfinite(curve), curve, np.inf)


def gd_iters_closed_form(
    problem: DiagonalQuadratic,
    x0: torch.Tensor,
    lr: float,
    tol: float,
    ord: float = 2,
    cap: int = 10**15,
) -> int | None:
    """Fewest GD iterations to ``||x_t - x*|| <= tol``, from ``x_t - x* = (1 - lr h)^t (x_0 - x*)``.

    Exact, so it answers "how many iterations would GD need" far beyond any simulated budget. None
    when GD does not converge at this step size (some ``|1 - lr h_i| >= 1`` where x_0 != x*) or
    needs more than ``cap`` iterations. The distance is non-increasing in t when every
    ``|1 - lr h_i| <= 1``, so doubling then bisection finds the first crossing.
    """
    rate = np.abs(1.0 - lr * problem.hessian.numpy())
    err = np.abs((x0 - problem.minimizer).numpy())
    moving = err > 0
    rate, err = rate[moving], err[moving]

    def dist(t: int) -> float:
        # rate**t underflows cleanly to 0, which is the exact answer at double precision.
        return float(np.linalg.norm(rate**t * err, ord=ord))

    if dist(0) <= tol:
        return 0
    if np.any(rate >= 1.0):
        return None
    hi = 1
    while dist(hi) > tol:
        hi *= 2
        if hi > cap:
            return None
    lo = hi // 2  # dist(lo) > tol (lo = 0 when hi = 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if dist(mid) > tol else (lo, mid)
    return hi


def log_grid(lo_exp: int, hi_exp: int, per_decade: int = 2) -> tuple[float, ...]:
    """Step sizes ``10**(k / per_decade)`` for ``lo_exp <= k / per_decade <= hi_exp``.

    Whole powers of ten are exact (``10.0**k``) so that, e.g., step size 1 is exactly 1.0.
    """
    if per_decade < 1 or hi_exp < lo_exp:
        raise ValueError(f"bad grid: 10^{lo_exp}..10^{hi_exp} with {per_decade} per decade")
    values = []
    for k in range(lo_exp * per_decade, hi_exp * per_decade + 1):
        exact = k % per_decade == 0
        values.append(10.0 ** (k // per_decade) if exact else 10.0 ** (k / per_decade))
    return tuple(values)


def first_hit(curve: np.ndarray, tol: float) -> int | None:
    """The first index ``t`` with ``curve[t] <= tol`` (``curve[0]`` is the start: t = iterations).

    None when the curve never gets there (non-finite values never count as reaching it).
    """
    hits = np.flatnonzero(np.isfinite(curve) & (curve <= tol))
    return int(hits[0]) if hits.size else None


def max_relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``max_t |a_t - b_t| / max(|a_t|, |b_t|)``: 0 for identical curves, at most 1 for finite ones.

    Symmetric in its arguments and defined where one curve is exactly 0 (the ratio is then 1), which
    a ratio against one fixed curve is not. Points where both are 0 count as equal; a non-finite
    point in either curve (a diverged run) gives ``inf``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"curves differ in length: {a.shape} vs {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.inf
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    ratio = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    return float(ratio.max(initial=0.0))


def tuning_key(curve: np.ndarray, tol: float) -> tuple[int, float, float]:
    """Sort key of a tuning run: reaches ``tol`` first, else has the lowest final value.

    (0, iterations, final) for runs that reach ``tol``; (1, 0, final) for the rest, with a diverged
    run (non-finite final value) ranked last.
    """
    final = float(curve[-1])
    if not math.isfinite(final):
        final = math.inf
    hit = first_hit(curve, tol)
    return (0, hit, final) if hit is not None else (1, 0, final)


def json_ready(obj: Any) -> Any:
    """Plain JSON types: arrays and tuples to lists, non-finite floats to None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Render a matplotlib ``Figure`` to PNG and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())


def save_outputs(
    out_dir: str | os.PathLike, stem: str, data: Any, draw: Callable[[Path], None] | None
) -> list[Path]:
    """Write ``<stem>.json`` (atomically) and, when ``draw`` is given, ``<stem>.png`` drawn by
    ``draw(path)``; returns the paths written, the JSON first."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.json"]
    atomic_write_json(paths[0], data)
    if draw is not None:
        paths.append(out_dir / f"{stem}.png")
        draw(paths[1])
    return paths


def new_figure(figsize: tuple[float, float] = (6.4, 4.4)) -> Any:
    """A matplotlib Figure on the Agg canvas, without pyplot (no global backend or figure state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def format_iters(hit: int | None, budget: int) -> str:
    """``"275"``, or ``"> 500"`` when the target was not reached within the budget."""
    return str(hit) if hit is not None else f"> {budget}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
