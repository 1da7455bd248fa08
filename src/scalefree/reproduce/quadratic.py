"""Paper Figure 1 / Corollary 1: GD vs AdamW on two quadratics that differ by a diagonal rescaling.

Zhuang, Liu, Cutkosky, Orabona, "Understanding AdamW through Proximal Methods and Scale-Freeness"
(TMLR 2022), Section 3, Corollary 1: for ``f(x) = 1/2 x^T H x + b^T x + c`` with H diagonal and
positive definite, a scale-free algorithm cannot tell f apart from the same problem with its Hessian
rescaled coordinate-wise, so its iterates, and hence its convergence, do not depend on the condition
number. Figure 1 shows GD (not scale-free) and AdamW (scale-free) with tuned step sizes on two such
quadratics, with condition numbers 1 and 1e5, sharing the minimizer and the start point.

Setup. ``f_k(x) = 1/2 sum_i h_{k,i} (x_i - x*_i)^2`` for k in {well, ill}:

- well-conditioned: ``h_well = (1, ..., 1)`` (condition number 1);
- ill-conditioned: ``h_ill = Lambda h_well`` with ``Lambda = diag(10^(5 (i-1)/(d-1)))``, i = 1..d
  (log-spaced from 1 to ``condition_number``), i.e. a diagonal rescaling of the first Hessian;
- both share the minimizer x* and the start point x_0 ~ N(0, I) (drawn from ``seed``).

The paper gives the condition numbers and that the step sizes are tuned, nothing else. Chosen here
and not from the paper: dimension d = 10, x* = 0, x_0 ~ N(0, I), ``iters`` = 500 (the paper's
axis spans about 10^0..10^2.5 iterations), weight decay 0 by default, betas = (0.9, 0.999),
eps = 0, step sizes tuned on half-decade log grids (AdamW 1e-4..10, GD 1e-7..10) by the fewest
iterations to reach distance ``tol`` = 1e-6 to x*, ties and misses broken by the lowest final
distance. Why these:

- x* = 0: the methods only see ``x - x*`` (through the gradient), so in exact arithmetic the
  choice of x* is immaterial; in floating point, distances below ~1e-16 |x*| are rounding noise
  and, once Adam's second moment decays there, its steps turn into noise-driven jumps of size ~lr
  that differ between the two problems. With x* = 0 the comparison keeps full relative precision
  all the way down, so "identical curves" can be checked to ~1e-13.
- weight decay 0: AdamW's weight decay shrinks x towards 0, so for x* != 0 it converges to a point
  other than x* and "distance to the minimizer" would stall. Any ``weight_decay`` keeps the two
  AdamW curves identical (the decay acts on x, not on the gradient; see the tests), it just
  changes what they converge to unless x* = 0.

Distances are Euclidean, ``||x_t - x*||_2``; curves have ``iters + 1`` points (t = 0 is x_0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scalefree.optim import AdamW
from scalefree.reproduce import common

METHODS: tuple[str, ...] = ("GD", "AdamW")
# Result keys; the ill-conditioned problem's condition number is ``config.condition_number``.
PROBLEMS: tuple[str, ...] = ("well-conditioned", "ill-conditioned")


@dataclass(frozen=True)
class QuadraticConfig:
    """Settings of the Figure 1 experiment (see the module docstring for what the paper fixes).

    Args:
        dim: d, the number of coordinates.
        condition_number: kappa of the ill-conditioned Hessian (the paper: 1e5).
        iters: T, iterations per run (also the tuning budget).
        seed: seeds the start point x_0 ~ N(0, I).
        weight_decay: AdamW's lambda (per-step decay factor 1 - lambda at a constant step size).
        betas: AdamW's (beta1, beta2).
        tol: the distance to x* whose first crossing ranks step sizes ("iterations to 1e-6").
        adamw_lrs, gd_lrs: the step-size grids searched for each method and problem.
    """

    dim: int = 10
    condition_number: float = 1e5
    iters: int = 500
    seed: int = 0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    tol: float = 1e-6
    adamw_lrs: tuple[float, ...] = common.log_grid(-4, 1)
    gd_lrs: tuple[float, ...] = common.log_grid(-7, 1)

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2, got {self.dim}")
        if not (math.isfinite(self.condition_number) and self.condition_number >= 1):
            raise ValueError(f"condition_number must be >= 1, got {self.condition_number}")
        if self.iters < 1:
            raise ValueError(f"iters must be >= 1, got {self.iters}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay < 1):
            raise ValueError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        if not (math.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol}")
        if not self.adamw_lrs or not self.gd_lrs:
            raise ValueError("the step-size grids must not be empty")


@dataclass
class QuadraticResult:
    """What the experiment measured. Dict keys: method in METHODS, then problem in PROBLEMS.

    Attributes:
        config: the settings used.
        curves: ``||x_t - x*||_2`` for t = 0..iters with the tuned step size.
        tuned_lr: the tuned step size.
        iters_to_tol: first t with distance <= tol, None if never within ``iters``.
        grid: per step size on the grid, ``(lr, iters_to_tol or None, final distance)``.
        adamw_rel_diff, gd_rel_diff: max relative difference between the method's two curves
            (``common.max_relative_difference``): ~1e-13 means identical up to rounding.
        gd_closed_form_iters: GD's iterations to ``tol`` with no budget, from the exact solution
            ``x_t - x* = (1 - lr h)^t (x_0 - x*)``, minimized over ``gd_lrs`` (None: never).
    """

    config: QuadraticConfig
    curves: dict[str, dict[str, np.ndarray]]
    tuned_lr: dict[str, dict[str, float]]
    iters_to_tol: dict[str, dict[str, int | None]]
    grid: dict[str, dict[str, list[tuple[float, int | None, float]]]]
    adamw_rel_diff: float
    gd_rel_diff: float
    gd_closed_form_iters: dict[str, int | None] = field(default_factory=dict)

    def to_json(self) -> dict:
        return common.json_ready(
            {
                "experiment": "quadratic",
                "paper": "Zhuang et al. 2022, Figure 1 / Corollary 1",
                "config": self.config.__dict__,
                "tuned_lr": self.tuned_lr,
                "iters_to_tol": self.iters_to_tol,
                "adamw_rel_diff": self.adamw_rel_diff,
                "gd_rel_diff": self.gd_rel_diff,
                "gd_closed_form_iters": self.gd_closed_form_iters,
                "grid": self.grid,
                "curves": self.curves,
            }
        )


def make_problems(
    config: QuadraticConfig,
) -> tuple[dict[str, common.DiagonalQuadratic], torch.Tensor]:
    """The two quadratics (keys PROBLEMS) and the shared start point x_0."""
    d = config.dim
    h_well = torch.ones(d, dtype=torch.float64)
    rescaling = torch.logspace(0, math.log10(config.condition_number), d, dtype=torch.float64)
    minimizer = torch.zeros(d, dtype=torch.float64)
    gen = torch.Generator().manual_seed(config.seed)
    x0 = torch.randn(d, generator=gen, dtype=torch.float64)
    problems = {
        PROBLEMS[0]: common.DiagonalQuadratic(PROBLEMS[0], h_well, minimizer),
        PROBLEMS[1]: common.DiagonalQuadratic(PROBLEMS[1], rescaling * h_well, minimizer),
    }
    return problems, x0


def gd_factory() -> common.OptimizerFactory:
    """Plain gradient descent: ``x <- x - lr grad f(x)`` (torch.optim.SGD, no momentum)."""
    return lambda params, lr: torch.optim.SGD(params, lr=lr)


def adamw_factory(config: QuadraticConfig) -> common.OptimizerFactory:
    """scalefree AdamW with eps = 0 and the config's betas and weight decay.

    eps = 0 because eps is the one thing that breaks scale-freeness: ``m_hat / (sqrt(v_hat) + eps)``
    is invariant to multiplying a coordinate's gradients by c > 0 only when eps = 0 (with eps > 0
    the update changes once sqrt(v_hat) is comparable to eps, i.e. for small-gradient coordinates).
    """
    return lambda params, lr: AdamW(
        params, lr=lr, betas=config.betas, eps=0.0, weight_decay=config.weight_decay
    )


def tune(
    problem: common.DiagonalQuadratic,
    x0: torch.Tensor,
    factory: common.OptimizerFactory,
    lrs: tuple[float, ...],
    iters: int,
    tol: float,
) -> tuple[float, np.ndarray, list[tuple[float, int | None, float]]]:
    """Best step size on ``lrs`` (``common.tuning_key``), its curve, and the grid's outcomes."""
    best: tuple[tuple, float, np.ndarray] | None = None
    table = []
    for lr in lrs:
        curve = common.run_optimizer(problem, x0, factory, lr, iters)
        key = common.tuning_key(curve, tol)
        table.append((lr, common.first_hit(curve, tol), float(curve[-1])))
        if best is None or key < best[0]:
            best = (key, lr, curve)
    assert best is not None
    return best[1], best[2], table


def run_quadratic(config: QuadraticConfig | None = None) -> QuadraticResult:
    """Tune GD and AdamW on both problems and measure their curves (a few seconds on one core)."""
    config = config or QuadraticConfig()
    problems, x0 = make_problems(config)
    factories = {"GD": gd_factory(), "AdamW": adamw_factory(config)}
    grids = {"GD": config.gd_lrs, "AdamW": config.adamw_lrs}
    curves: dict[str, dict[str, np.ndarray]] = {m: {} for m in METHODS}
    tuned: dict[str, dict[str, float]] = {m: {} for m in METHODS}
    hits: dict[str, dict[str, int | None]] = {m: {} for m in METHODS}
    grid: dict[str, dict[str, list]] = {m: {} for m in METHODS}
    for method in METHODS:
        for key, problem in problems.items():
            lr, curve, table = tune(
                problem, x0, factories[method], grids[method], config.iters, config.tol
            )
            curves[method][key], tuned[method][key], grid[method][key] = curve, lr, table
            hits[method][key] = common.first_hit(curve, config.tol)
    closed_form: dict[str, int | None] = {}
    for key, problem in problems.items():
        found = [common.gd_iters_closed_form(problem, x0, lr, config.tol) for lr in config.gd_lrs]
        found = [n for n in found if n is not None]
        closed_form[key] = min(found) if found else None
    return QuadraticResult(
        config=config,
        curves=curves,
        tuned_lr=tuned,
        iters_to_tol=hits,
        grid=grid,
        adamw_rel_diff=common.max_relative_difference(*curves["AdamW"].values()),
        gd_rel_diff=common.max_relative_difference(*curves["GD"].values()),
        gd_closed_form_iters=closed_form,
    )


def format_kappa(kappa: float) -> str:
    """``1e5`` rather than ``1e+05``; non powers of ten as ``%g``."""
    exponent = math.log10(kappa)
    return f"1e{round(exponent)}" if kappa > 10 and exponent == round(exponent) else f"{kappa:g}"


def problem_label(config: QuadraticConfig, key: str) -> str:
    kappa = 1.0 if key == PROBLEMS[0] else config.condition_number
    return f"kappa = {format_kappa(kappa)}"


def plot_quadratic(result: QuadraticResult, path: str | Path) -> None:
    """Distance to the minimizer vs iteration, log-log, one line per (method, problem).

    The x axis is logarithmic from t = 1 with a short linear stretch for t in [0, 1] (symlog), so
    the common start point x_0 is visible too.
    """
    config = result.config
    fig = common.new_figure()
    ax = fig.add_subplot()
    t = np.arange(config.iters + 1)
    # Exact zeros (GD with lr = 1/h on kappa = 1 lands on x* in one step) cannot sit on a log axis;
    # draw them at a floor below machine precision and say so in the legend.
    floor = 1e-17
    colors = {"GD": "tab:blue", "AdamW": "tab:orange"}
    # AdamW's two curves coincide: draw kappa = 1 wide and kappa = 1e5 dashed on top of it.
    styles = {
        PROBLEMS[0]: {"linestyle": "-", "linewidth": 4.0, "alpha": 0.45},
        PROBLEMS[1]: {"linestyle": "--", "linewidth": 1.6, "alpha": 1.0},
    }
    for method in METHODS:
        for key in PROBLEMS:
            curve = result.curves[method][key]
            lr = result.tuned_lr[method][key]
            label = f"{method}, {problem_label(config, key)}, lr = {lr:.3g}"
            if np.any(curve == 0):
                label += " (exact 0 drawn at 1e-17)"
            ax.plot(t, np.maximum(curve, floor), color=colors[method], label=label, **styles[key])
    ax.axhline(config.tol, color="gray", linestyle=":", linewidth=1, label=f"tol = {config.tol:g}")
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.3)
    ax.set_xlim(0, config.iters * 1.05)
    ax.set_yscale("log")
    ax.set_ylim(floor / 3, None)
    ax.set_xlabel("iteration t")
    ax.set_ylabel(r"distance to the minimizer $\|x_t - x^*\|_2$")
    ax.set_title(
        f"GD vs AdamW (eps = 0) on a quadratic (d = {config.dim}) and its diagonal rescaling\n"
        "Zhuang et al. 2022, Fig. 1; step sizes tuned per problem",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.14, 0.1))
    common.save_figure(fig, path)


def summary_table(result: QuadraticResult) -> str:
    """Iterations to tol per method and problem, tuned step sizes."""
    config = result.config
    rows = []
    for method in METHODS:
        for key in PROBLEMS:
            hit = result.iters_to_tol[method][key]
            extra = ""
            if method == "GD" and hit is None and result.gd_closed_form_iters.get(key) is not None:
                extra = f" (exact: {result.gd_closed_form_iters[key]:.3g})"
            rows.append(
                [
                    method,
                    problem_label(config, key),
                    f"{result.tuned_lr[method][key]:.3g}",
                    common.format_iters(hit, config.iters) + extra,
                ]
            )
    return common.format_table(["method", "problem", "tuned lr", f"iters to {config.tol:g}"], rows)


def verdict(result: QuadraticResult) -> str:
    """One line: does AdamW ignore the rescaling while GD does not?"""
    adamw = result.iters_to_tol["AdamW"]
    gd = result.iters_to_tol["GD"]
    adamw_same = result.adamw_rel_diff < 1e-8 and adamw[PROBLEMS[0]] == adamw[PROBLEMS[1]]
    gd_same = gd[PROBLEMS[0]] == gd[PROBLEMS[1]]
    if adamw_same and not gd_same:
        return (
            "reproduced: AdamW's curves coincide on both problems (scale-free), "
            "GD's depend on the condition number"
        )
    return "NOT reproduced: " + (
        "AdamW's curves differ between the problems"
        if not adamw_same
        else "GD is unaffected by the rescaling at these settings"
    )


def save_quadratic(result: QuadraticResult, out_dir: str | Path, plot: bool = True) -> list[Path]:
    """Write ``quadratic.json`` (atomically) and, unless ``plot`` is False, ``quadratic.png``."""
    draw = (lambda path: plot_quadratic(result, path)) if plot else None
    return common.save_outputs(out_dir, "quadratic", result.to_json(), draw)
