"""The correlation figure: AdamW's advantage over AdamL2 against depth, beside the spread of
their updates (the correlation claimed in Section 4.1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from scalefree.rundir import RunRecord
from scalefree.rundir.stats import load_stats

from .figure_common import MIN_SPREAD_SPAN, QUANTITY_LABELS, NothingToPlot, method_color, min_span
from .layout import finish, new_figure
from .tables import Cell, GroupKey, summarize
from .verdict import eval_size, judge, num_classes


@dataclass(frozen=True)
class CorrelationPoint:
    """One experiment configuration (model) in the correlation figure."""

    key: GroupKey
    depth: int
    baseline_error: float  # best mean test error of the baseline (AdamL2)
    method_error: float  # best mean test error of the scale-free method (AdamW)
    advantage: float  # baseline_error - method_error: > 0 when AdamW is better
    advantage_std: float  # standard error of the difference (NaN with one seed each)
    baseline_spread: float  # log2 IQR of the baseline's updates at its final recorded epoch
    method_spread: float
    noise: float = math.nan  # an advantage smaller than this is noise (2 s.d. of the difference)
    at_chance: bool = False  # both methods' best settings at chance: nothing learned yet
    baseline: str = "AdamL2"  # the names compared, and the histogram whose spread is drawn
    method: str = "AdamW"
    quantity: str = "update_over_alpha"

    @property
    def series(self) -> str:
        """Points of one series share everything but depth (e.g. CIFAR10 ResNet, no BN)."""
        notes = ["BN" if self.key.batch_norm else "no BN"]
        notes += [f"{k}={v}" for k, v in self.key.extra]
        return f"{self.key.dataset} {self.key.family} ({', '.join(notes)})"


def final_spread(cell: Cell, quantity: str = "update_over_alpha") -> float:
    """Spread of a grid cell's updates at the final recorded epoch: the mean of
    ``UpdateStats.spread`` over that epoch's snapshots, averaged over the seeds with statistics.
    NaN when no run of the cell recorded statistics."""
    values = []
    for r in cell.finished:
        try:
            stats = load_stats(r.path)
        except FileNotFoundError:
            continue
        last = stats.epoch == stats.epoch.max()
        values.append(float(np.nanmean(stats.spread(quantity)[last])))
    return float(np.mean(values)) if values else math.nan


def correlation_data(
    runs: Sequence[RunRecord],
    *,
    baseline: str = "AdamL2",
    method: str = "AdamW",
    quantity: str = "update_over_alpha",
) -> list[CorrelationPoint]:
    """For every experiment configuration with a finished best setting of both methods: the
    advantage of ``method`` over ``baseline`` and the spread of both methods' updates."""
    points = []
    for s in summarize(runs):
        b, m = s.best(baseline), s.best(method)
        if b is None or m is None or s.key.depth is None:
            continue
        se = math.sqrt(b.std**2 / b.n + m.std**2 / m.n) if b.n > 1 and m.n > 1 else math.nan
        verdict = judge(
            [b.mean, m.mean],
            classes=num_classes(s.key.dataset),
            n_eval=eval_size(s.runs, s.key.dataset),
            seed_std=2.0 * se,
        )
        points.append(
            CorrelationPoint(
                key=s.key,
                depth=s.key.depth,
                baseline_error=b.mean,
                method_error=m.mean,
                advantage=b.mean - m.mean,
                advantage_std=se,
                baseline_spread=final_spread(b, quantity),
                method_spread=final_spread(m, quantity),
                noise=verdict.noise,
                at_chance=verdict.at_chance,
                baseline=baseline,
                method=method,
                quantity=quantity,
            )
        )
    return sorted(points, key=lambda p: (p.series, p.depth))


def correlation(
    runs: Sequence[RunRecord],
    path: str | Path,
    *,
    baseline: str = "AdamL2",
    method: str = "AdamW",
    quantity: str = "update_over_alpha",
    title: str | None = None,
) -> Figure:
    """Left: test-error advantage of ``method`` (AdamW) over ``baseline`` (AdamL2), each at its
    best setting, against network depth, with error bars at the noise level of the difference.
    Right: the spread (log2 interquartile range at the final epoch) of each method's update
    magnitudes against depth. The paper's Section 4.1 claim is that the advantage grows with depth
    together with the spread of AdamL2's updates, while AdamW's stays concentrated (Figure 3,
    Appendix C). A note says when the points are at chance or their advantages within noise."""
    points = correlation_data(runs, baseline=baseline, method=method, quantity=quantity)
    if not points:
        raise NothingToPlot(
            f"no model has finished runs of both {baseline} and {method}; the correlation needs "
            "both methods swept on the same model(s)"
        )
    return draw_correlation(points, path, title=title)


def draw_correlation(
    points: Sequence[CorrelationPoint], path: str | Path, *, title: str | None = None
) -> Figure:
    """The figure of :func:`correlation` from its points (see there), which name the methods
    compared and the histogram (all the same)."""
    if not points:
        raise NothingToPlot("no correlation points to draw")
    compared = {(p.baseline, p.method, p.quantity) for p in points}
    if len(compared) > 1:
        raise ValueError(f"the points compare different things: {sorted(compared)}")
    ((baseline, method, quantity),) = compared
    fig, panel = new_figure(11.0, 4.2, correlation_note(points, method))
    ax_adv, ax_spread = panel.subplots(1, 2)
    series = sorted({p.series for p in points})
    styles = ["-", "--", ":", "-."]
    depths = sorted({p.depth for p in points})
    for k, name in enumerate(series):
        pts = [p for p in points if p.series == name]
        ls = styles[k % len(styles)]
        _advantage_series(ax_adv, pts, ls, name)
        d = np.array([p.depth for p in pts], float)
        for meth, attr, marker in (
            (baseline, "baseline_spread", "o"),
            (method, "method_spread", "s"),
        ):
            sp = np.array([getattr(p, attr) for p in pts])
            if np.isfinite(sp).any():
                lab = meth if len(series) == 1 else f"{meth}, {name}"
                ax_spread.plot(d, sp, marker=marker, ls=ls, color=method_color(meth), label=lab)
    ax_adv.axhline(0.0, color="gray", lw=0.8)
    ax_adv.set_ylabel(f"{baseline} − {method} test error (percentage points)")
    ax_adv.set_title(
        f"Advantage of {method} over {baseline} (best settings; bars: noise level)", fontsize=10
    )
    ax_spread.set_ylabel(f"log2 IQR of {QUANTITY_LABELS.get(quantity, quantity)}")
    ax_spread.set_title("Spread of update magnitudes at the final epoch", fontsize=10)
    if not ax_spread.lines:
        ax_spread.text(
            0.5,
            0.5,
            "no update statistics recorded\n(train with --store-stats)",
            ha="center",
            va="center",
            transform=ax_spread.transAxes,
            color="gray",
        )
    for ax in (ax_adv, ax_spread):
        if len(depths) > 1:
            ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(depths))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(x) for x in depths])
        ax.set_xlabel("Depth (layers)")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    ax_adv.margins(x=0.12, y=0.2)  # room for the value labels left of the points
    ax_spread.margins(x=0.12, y=0.1)
    min_span(ax_adv, 2.0, -math.inf, math.inf)
    min_span(ax_spread, MIN_SPREAD_SPAN, 0.0, math.inf)
    panel.suptitle(
        title or f"{method} vs {baseline}: advantage and update spread against depth", fontsize=11
    )
    return finish(fig, path)


def _advantage_series(ax, pts: Sequence[CorrelationPoint], ls: str, name: str) -> None:
    """One series of the left panel: points with noise-level error bars, each labelled with its
    value, "(noise)" when below the noise level, "(chance)" when both methods are at chance."""
    d = np.array([p.depth for p in pts], float)
    adv = 100 * np.array([p.advantage for p in pts])
    noise = 100 * np.array([p.noise for p in pts])
    ax.errorbar(
        d,
        adv,
        yerr=np.where(np.isfinite(noise), noise, 0),
        marker="o",
        ls=ls,
        color="black",
        capsize=3,
        label=name,
    )
    for k, (p, x, y, n) in enumerate(zip(pts, d, adv, noise)):
        tag = " (chance)" if p.at_chance else (" (noise)" if abs(y) < n else "")
        # Beside the point, clear of its error bar: inward, so no label leaves the axes.
        inward = 1 if k == 0 and len(pts) > 1 else -1
        ax.annotate(
            f"{y:+.2f}{tag}",
            (x, y),
            textcoords="offset points",
            xytext=(7 * inward, 4),
            ha="left" if inward > 0 else "right",
            va="bottom",
            fontsize=8,
            color="gray" if tag else "black",
        )


def correlation_note(points: Sequence[CorrelationPoint], method: str) -> str | None:
    """The note for the figure and the report: every point at chance, or every advantage within
    its noise level; None when some depth shows something."""
    if all(p.at_chance for p in points):
        return (
            "Both methods are at chance at every depth: nothing has been learned yet, so the "
            "advantages and spreads shown are noise. Train longer or check the setup."
        )
    if all(abs(p.advantage) < p.noise for p in points):
        return (
            f"{method}'s advantage is within the noise level at every depth (error bars: two "
            "standard deviations of the difference): no depth shows a distinguishable advantage."
        )
    return None


__all__ = [
    "CorrelationPoint",
    "correlation",
    "correlation_data",
    "correlation_note",
    "draw_correlation",
    "final_spread",
]
