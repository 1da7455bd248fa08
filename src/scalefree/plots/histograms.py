"""The update histograms: power-of-two histograms of update magnitudes of each method's best
setting (Figure 3 right, Appendix C)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from scalefree.errors import UsageError
from scalefree.rundir import RunRecord
from scalefree.rundir.stats import QUANTITIES, UpdateStats, iqr_log2, load_stats
from scalefree.train.config import fmt_num

from .figure_common import QUANTITY_LABELS, NothingToPlot, one_group, select_methods
from .layout import finish, new_figure
from .tables import Cell, GroupSummary
from .verdict import eval_size, judge, num_classes


@dataclass(frozen=True)
class HistogramPanel:
    """The histograms of one method: its best setting's run, fractions per chosen epoch."""

    method: str
    run: RunRecord
    cell: Cell
    bin_exponents: np.ndarray
    fractions: dict[int, np.ndarray]  # epoch -> fraction of coordinates per bin (sums to 1)
    spread: dict[int, float]  # epoch -> log2 interquartile range of that epoch's snapshots


def stats_run(cell: Cell) -> tuple[RunRecord, UpdateStats] | None:
    """The first run of a grid cell (completed ones first, lowest seed) that has statistics."""
    ordered = sorted(cell.finished, key=lambda r: (r.status != "completed", r.get("seed", 0)))
    for r in ordered:
        try:
            return r, load_stats(r.path)
        except FileNotFoundError:
            continue
    return None


def default_epochs(available: Sequence[int], k: int = 4) -> list[int]:
    """Up to ``k`` epochs evenly spread from the first to the last recorded (the paper shows
    epochs 1, 100, 200, 300 of 300)."""
    avail = sorted(set(int(e) for e in available))
    if len(avail) <= k:
        return avail
    idx = np.unique(np.round(np.linspace(0, len(avail) - 1, k)).astype(int))
    return [avail[i] for i in idx]


def histogram_data(
    summary: GroupSummary,
    *,
    methods: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
    quantity: str = "update_over_alpha",
    layer: str | None = None,
) -> tuple[list[HistogramPanel], list[str]]:
    """Histogram panels for the best setting of each method, and notes on the methods skipped."""
    if quantity not in QUANTITIES:
        raise UsageError(f"--quantity must be one of {', '.join(QUANTITIES)}, got {quantity!r}")
    panels, notes = [], []
    for method in select_methods(summary, methods):
        best = summary.best(method)
        if best is None:
            notes.append(f"{method}: no finished best setting")
            continue
        found = stats_run(best)
        if found is None:
            notes.append(
                f"{method}: no update statistics for its best setting (train with --store-stats)"
            )
            continue
        run, stats = found
        if layer is not None and layer not in stats.layers:
            raise UsageError(
                f"no layer {layer!r} in the statistics of {run.path}; "
                f"layers: {', '.join(stats.layers)}"
            )
        available = sorted(set(stats.epoch.tolist()))
        chosen = default_epochs(available) if epochs is None else [int(e) for e in epochs]
        missing = [e for e in chosen if e not in available]
        if missing:
            raise UsageError(
                f"{method}: no statistics for epoch(s) {', '.join(map(str, missing))} in "
                f"{run.path}; recorded epochs: {_ranges(available)}"
            )
        fractions = {e: stats.fractions(quantity, epoch=e, layer=layer) for e in chosen}
        spread = {e: float(_spread(stats, quantity, e, layer)) for e in chosen}
        panels.append(
            HistogramPanel(method, run, best, np.asarray(stats.bin_exponents), fractions, spread)
        )
    return panels, notes


def _spread(stats: UpdateStats, quantity: str, epoch: int, layer: str | None) -> float:
    """Mean over the epoch's snapshots of the log2 IQR (``UpdateStats.spread``), for the whole
    model, or of one layer's histograms when ``layer`` is given."""
    sel = stats.epoch == epoch
    if layer is None:
        return float(np.nanmean(stats.spread(quantity)[sel]))
    q = stats.quantities.index(quantity)
    return float(np.nanmean(iqr_log2(stats.counts[sel, q, stats.layers.index(layer)])))


def _ranges(values: Sequence[int]) -> str:
    """1 2 3 7 8 -> '1-3, 7-8' (a long epoch list stays short in an error message)."""
    out, start, prev = [], None, None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = v
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(out)


def histogram(
    runs: Sequence[RunRecord] | GroupSummary,
    path: str | Path,
    *,
    methods: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
    quantity: str = "update_over_alpha",
    layer: str | None = None,
    title: str | None = None,
) -> Figure:
    """Fraction of coordinates per power-of-two bin of the update magnitudes (|u|/alpha unless
    ``quantity`` says otherwise) of each method's best setting, one panel per method side by side,
    the chosen epochs overlaid (paper Figure 3 right, Appendix C Figures 7-12). The leftmost bin
    also holds everything below 2^-27 (zeros included), the rightmost everything >= 1.
    """
    summary = one_group(runs)
    panels, notes = histogram_data(
        summary, methods=methods, epochs=epochs, quantity=quantity, layer=layer
    )
    if not panels:
        raise NothingToPlot(f"nothing to draw for {summary.key.label}: " + "; ".join(notes))
    from matplotlib import colormaps

    verdict = judge(
        [p.cell.mean for p in panels],
        classes=num_classes(summary.key.dataset),
        n_eval=eval_size(summary.runs, summary.key.dataset),
    )
    fig, panel = new_figure(
        4.6 * len(panels) + 0.6, 3.9, verdict.note("runs shown") if verdict.at_chance else None
    )
    axes = panel.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    seq = colormaps["viridis"]
    for ax, p in zip(axes, panels):
        edges = np.append(p.bin_exponents, p.bin_exponents[-1] + 1).astype(float)
        order = sorted(p.fractions)
        for k, e in enumerate(order):
            # Early epochs light, late ones dark; the last one also filled, as the paper's
            # Figure 3 shows the histogram near the end of training.
            color = seq(0.85 - 0.85 * k / max(len(order) - 1, 1))
            last = k == len(order) - 1
            ax.stairs(
                p.fractions[e],
                edges,
                color=color,
                lw=1.8 if last else 1.3,
                fill=False,
                label=f"epoch {e}: IQR {p.spread[e]:.1f}",
            )
            if last:
                ax.stairs(p.fractions[e], edges, color=color, alpha=0.2, fill=True)
        ticks = [x for x in p.bin_exponents if (x - p.bin_exponents[-1]) % 3 == 0]
        ax.xaxis.set_major_locator(FixedLocator([t + 0.5 for t in ticks]))
        ax.set_xticklabels([_bin_label(t, p.bin_exponents) for t in ticks], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("Order of magnitude (power of 2)")
        ax.set_title(
            f"{p.method} (η0={fmt_num(p.cell.eta0)}, "
            f"{summary.decay_axis.symbol}={fmt_num(p.cell.weight_decay)}, "
            f"seed {p.run.get('seed', 0)})",
            fontsize=9.5,
        )
        ax.legend(fontsize=7.5, loc="upper left", title="spread (log2 IQR)", title_fontsize=7.5)
        ax.grid(True, axis="y", alpha=0.3)
    # Shared y axis: set once from every panel's peak (headroom for the legend).
    peak = max(float(f.max()) for p in panels for f in p.fractions.values())
    axes[0].set_ylim(0, min(1.0, peak * 1.15) if peak > 0 else 1.0)
    axes[0].set_ylabel("Fraction of coordinates")
    what = QUANTITY_LABELS.get(quantity, quantity) + (f", layer {layer}" if layer else "")
    panel.suptitle(title or f"Histogram of {what} — {summary.key.label}", fontsize=11)
    return finish(fig, path)


def _bin_label(exp: int, bins: np.ndarray) -> str:
    if exp == bins[0]:
        return f"≤{exp}"
    if exp == bins[-1]:
        return f"≥{exp}"
    return str(exp)


__all__ = ["HistogramPanel", "default_epochs", "histogram", "histogram_data", "stats_run"]
