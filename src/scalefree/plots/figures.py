"""The paper's figures from run directories: heatmaps, curves, update histograms, correlation.

One function per figure; each takes :class:`~scalefree.rundir.RunRecord` objects (from
:func:`scalefree.rundir.load_runs`), returns the matplotlib ``Figure`` and saves it as PNG to
``path`` atomically. Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never
through ``pyplot``: no global state, no GUI backend, nothing left open after a call.

* :func:`heatmap`: final test error over eta0 x weight decay per method (Figures 2, 3 left, 4-6);
* :func:`curves`: training loss and test accuracy of each method's best setting (Figure 3 middle);
* :func:`histogram`: power-of-two histograms of update magnitudes (Figure 3 right, Appendix C);
* :func:`correlation`: AdamW's advantage over AdamL2 against depth, beside the spread of their
  updates (the correlation claimed in Section 4.1).

When the runs cannot support a figure (no finished runs, no statistics recorded, ...) the function
raises :class:`NothingToPlot`, a :class:`~scalefree.errors.UsageError` whose message says what is
missing and how to get it; the report turns it into a note instead of a figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Rectangle
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

from scalefree.errors import UsageError
from scalefree.optim.registry import OPTIMIZERS
from scalefree.rundir import DIVERGED_ERROR, RunRecord
from scalefree.rundir.summary import TIMESCALE_AXIS
from scalefree.train.config import fmt_num
from scalefree.train.stats import QUANTITIES, UpdateStats, iqr_log2, load_stats

from .layout import DPI, finish, new_figure, save_png  # noqa: F401 - re-exported
from .tables import Cell, GroupKey, GroupSummary, MethodGrid, summarize
from .verdict import Verdict, eval_size, judge, judge_group, num_classes

# One colour per method in every figure, so AdamL2 / AdamW read the same everywhere: each
# optimizer entry's colour, read live from the registry.
METHOD_COLORS = OPTIMIZERS.plot_colors()
QUANTITY_LABELS = {
    "update_over_alpha": "|u| / α (update without α)",
    "update": "|u| (update)",
    "grad": "|∇f| (gradient)",
    "param": "|x| (parameter)",
}
# Bright = low error, darker = worse, near-black grey = diverged: "darker is worse" throughout.
# Perceptually uniform and colour-blind safe; the black best-circle stands out on every colour.
HEATMAP_CMAP = "viridis_r"
DIVERGED_HATCH = "////"
SHORT_SERIES = 30  # curves with at most this many points get a marker on each
MIN_ACC_SPAN = 10.0  # percentage points: an accuracy axis never zooms in further
MIN_SPREAD_SPAN = 1.0  # log2 units: nor does the update-spread axis


class NothingToPlot(UsageError):
    """The runs do not contain what a figure needs (the message names what and how to fix it)."""


# Methods with switches of their rule (``AdamW+CWD``; rundir.summary.method_label) are not
# registry entries: they take the colour of their last switch, so they differ from the optimizer
# they are built on.
SWITCH_COLORS = {"CWD": "darkorange", "Caution": "teal"}


def method_color(method: str) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return SWITCH_COLORS.get(method.rpartition("+")[2], "tab:gray")


def one_group(runs: Sequence[RunRecord] | GroupSummary) -> GroupSummary:
    """The single experiment configuration of ``runs``; several are a usage error, since a heatmap
    or curve mixing e.g. two models would be meaningless."""
    if isinstance(runs, GroupSummary):
        return runs
    summaries = summarize(runs)
    if not summaries:
        raise NothingToPlot("no runs to plot")
    if len(summaries) > 1:
        labels = "; ".join(s.key.label for s in summaries)
        raise UsageError(
            f"the runs mix {len(summaries)} experiment configurations ({labels}); "
            "select one (e.g. --model, --dataset, --batch-norm/--no-batch-norm)"
        )
    return summaries[0]


def _select_methods(summary: GroupSummary, methods: Sequence[str] | None) -> list[str]:
    if methods is None:
        return list(summary.methods)
    missing = [m for m in methods if m not in summary.grids]
    if missing:
        raise NothingToPlot(
            f"no runs of {', '.join(missing)} in {summary.key.label}; "
            f"available: {', '.join(summary.methods)}"
        )
    return list(methods)


# ------------------------------------------------------------------------------------ heatmap
def axis_scale(values: Sequence[float]) -> float:
    """Power of ten to factor out of tick labels, as the paper's "(*0.001)" axes do."""
    positive = [v for v in values if v > 0]
    if not positive:
        return 1.0
    return 10.0 ** math.floor(math.log10(max(positive)) + 1e-9)


def scaled_labels(values: Sequence[float], scale: float) -> list[str]:
    return [f"{v / scale:.4g}" for v in values]


def tick_labels(values: Sequence[float]) -> tuple[list[str], str]:
    """Tick labels for a grid axis and the axis-label suffix.

    Like the paper, a power of ten is factored out ("0.05 0.1 0.5 1 5" with "(×0.001)") while the
    grid spans a few decades; wider grids would give labels like "0.0001 (×0.01)", so they get
    compact scientific labels ("1e-5") instead.
    """
    scale = axis_scale(values)
    labels = scaled_labels(values, scale)
    if max(len(x) for x in labels) <= 5:
        return labels, f" (×{fmt_num(scale)})"
    sci = ["0" if v == 0 else np.format_float_scientific(v, trim="-", exp_digits=1) for v in values]
    return sci, ""


def _decay_ticks(g: MethodGrid) -> tuple[list[str], str]:
    """The decay axis's tick labels: weight decays like the paper's (a power of ten factored
    out); timescales in epochs as they are typed (10, 50, 200), which need no factor."""
    if g.decay_axis is TIMESCALE_AXIS:
        return [fmt_num(v) for v in g.weight_decays], ""
    return tick_labels(g.weight_decays)


def _heatmap_norm(grids: Sequence[MethodGrid], verdict: Verdict) -> Normalize:
    """Shared colour scale over the panels, spanning the cells where no seed diverged.

    Cells with diverged seeds (1.1 averaged in) lie above it and take the colormap's "over"
    colour, their value still written in the cell: stretching the scale to 1.1 would wash out the
    differences among the runs that trained, which is what the figure is for. But the scale never
    stretches noise into colour: when every cell is at chance it runs from 0 to chance (all cells
    take the "worst" colour), and it is never narrower than the noise level (centred on the
    cells), so equal results look equal."""
    clean = [
        c.mean for g in grids for c in g.cells.values() if c.n and not (c.n_diverged or c.n_failed)
    ]
    if not clean:
        return Normalize(0.0, DIVERGED_ERROR)
    lo, hi = min(clean), max(clean)
    if verdict.at_chance:
        return Normalize(0.0, max(hi, verdict.chance_error))
    span = max(verdict.noise, 1e-3)
    if hi - lo < span:
        mid = 0.5 * (lo + hi)
        lo = max(0.0, mid - 0.5 * span)
        hi = lo + span
    return Normalize(lo, hi)


def heatmap(
    runs: Sequence[RunRecord] | GroupSummary,
    path: str | Path,
    *,
    methods: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Final top-1 test error over initial step size eta0 (rows) x weight decay (columns), one
    panel per method on a shared colour scale; the best setting of each method is circled in black
    (paper Figures 2, 3 left, 4, 5, 6). Diverged runs count as 1.1 and are hatched. When no cell
    rises above chance or above noise (:mod:`scalefree.plots.verdict`), a note under the panels
    says so.

    The best marker is an ``Ellipse`` patch with gid ``"best"`` centred on (column, row) of the
    panel's image; each panel's image array holds the mean errors (rows eta0 ascending); cells with
    diverged or failed seeds carry a hatched ``Rectangle`` with gid ``"diverged"``.
    """
    summary = one_group(runs)
    methods = _select_methods(summary, methods)
    grids = [summary.grids[m] for m in methods]
    if not any(np.isfinite(g.matrix()).any() for g in grids):
        raise NothingToPlot(f"no finished runs in {summary.key.label} yet")
    verdict = judge_group(summary, methods)
    norm = _heatmap_norm(grids, verdict)
    cmap = _colormap()

    max_rows = max(len(g.eta0s) for g in grids)
    max_cols = max(len(g.weight_decays) for g in grids)
    # Square cells (as in the paper) big enough for "0.615 / (1/2 div)"; the circle stays round.
    # Panels never narrower than their three-line title, even for a 1 x 1 grid.
    cell_in = 0.62
    panel_w = max(2.6, 1.0 + cell_in * max_cols)
    fig, panel = new_figure(
        panel_w * len(grids) + 1.2, 2.5 + cell_in * max_rows, verdict.note("grid cells")
    )
    axes = panel.subplots(1, len(grids), squeeze=False)[0]
    image = None
    fontsize = 8 if max_cols <= 7 else 6.5
    for ax, g in zip(axes, grids):
        image = _heatmap_panel(ax, g, norm, cmap, fontsize, verdict.meaningful)
    cbar = panel.colorbar(image, ax=list(axes), extend="max", shrink=0.85, pad=0.03)
    cbar.set_label("Final test error", fontsize=9)
    chance = verdict.chance_error
    on_scale = chance is not None and norm.vmin <= chance <= norm.vmax
    if on_scale:
        cbar.ax.axhline(chance, color="white", lw=1.5, ls="--", gid="chance")
    # The legend of the encodings, once, under the panels (kept inside the constrained layout).
    panel.supxlabel(
        f"○ best setting per method   ▨ hatched: diverged seeds (counted as "
        f"{fmt_num(DIVERGED_ERROR)})   — no run"
        + (f"   -- on the colour bar: chance ({chance:.2f})" if on_scale else ""),
        fontsize=8,
        color="dimgray",
    )
    panel.suptitle(title or f"Final top-1 test error — {summary.key.label}", fontsize=11)
    return finish(fig, path)


def _heatmap_panel(ax, g: MethodGrid, norm: Normalize, cmap, fontsize: float, meaningful: bool):
    """One method's grid: image, cell texts, hatching of diverged cells, the best circle (dashed
    grey when the cells are at chance or within noise: a "best" that is not better)."""
    data = g.matrix()
    image = ax.imshow(
        np.ma.masked_invalid(data), cmap=cmap, norm=norm, aspect="equal", interpolation="nearest"
    )
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            cell = g.cell(g.eta0s[i], g.weight_decays[j])
            _annotate_cell(ax, i, j, cell, data[i, j], norm, cmap, fontsize)
            if cell is not None and cell.n_diverged + cell.n_failed:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        fill=False,
                        hatch=DIVERGED_HATCH,
                        edgecolor="#9a9a9a",
                        lw=0,
                        gid="diverged",
                    )
                )
    best = g.best_index()
    if best is not None:
        i, j = best
        ax.add_patch(
            Ellipse(
                (j, i),
                0.9,
                0.9,
                fill=False,
                edgecolor="black" if meaningful else "#b0b0b0",
                linestyle="-" if meaningful else "--",
                linewidth=2.2,
                gid="best",
            )
        )
    (e_labels, e_unit), (w_labels, w_unit) = tick_labels(g.eta0s), _decay_ticks(g)
    ax.set_yticks(range(len(g.eta0s)), e_labels)
    ax.set_xticks(range(len(g.weight_decays)), w_labels)
    ax.set_ylabel(f"Initial step size η0{e_unit}")
    ax.set_xlabel(f"{g.decay_axis.label}{w_unit}")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    b = g.best
    sub = (
        f"best {b.mean:.4f}\n(η0={fmt_num(b.eta0)}, {g.decay_axis.symbol}={fmt_num(b.weight_decay)})"
        if b
        else "no finished run"
    )
    ax.set_title(f"{g.method}\n{sub}", fontsize=9.5)
    return image


def _colormap():
    from matplotlib import colormaps

    # bad: no run at this grid point; over: diverged seeds (see _heatmap_norm).
    return colormaps[HEATMAP_CMAP].with_extremes(bad="#f0f0f0", over="#3a3a3a")


def _annotate_cell(
    ax, i: int, j: int, cell: Cell | None, value: float, norm, cmap, fontsize: float
) -> None:
    if cell is None or not cell.n:
        running = cell.n_incomplete if cell is not None else 0
        ax.text(
            j,
            i,
            "running" if running else "—",
            ha="center",
            va="center",
            fontsize=fontsize - 1,
            color="#888888",
        )
        return
    if cell.all_diverged:
        text, color = fmt_num(DIVERGED_ERROR), "white"
    else:
        text = f"{value:.3f}"
        r, g, b, _ = cmap(norm(value)) if value <= norm.vmax else cmap.get_over()
        color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
        if cell.n_diverged + cell.n_failed:
            text += f"\n{cell.n_diverged + cell.n_failed}/{cell.n} div"
    ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)


# ------------------------------------------------------------------------------------- curves
@dataclass(frozen=True)
class Curve:
    """Seed-averaged learning curve of one method's best setting."""

    method: str
    cell: Cell
    epochs: np.ndarray
    train_loss: np.ndarray  # mean over the seeds that reached each epoch
    test_acc: np.ndarray
    test_acc_lo: np.ndarray  # min / max over seeds (the band)
    test_acc_hi: np.ndarray
    train_loss_lo: np.ndarray
    train_loss_hi: np.ndarray


def curve_data(summary: GroupSummary, methods: Sequence[str] | None = None) -> list[Curve]:
    """Learning curves of each method's best setting, averaged over its seeds by epoch."""
    out = []
    for method in _select_methods(summary, methods):
        best = summary.best(method)
        if best is None:
            continue
        per_epoch: dict[int, list[tuple[float, float]]] = {}
        for r in best.finished:
            for row in r.metrics:
                loss, acc = row.get("train_loss"), row.get("test_acc")
                if loss is None or acc is None:
                    continue
                per_epoch.setdefault(int(row["epoch"]), []).append((float(loss), float(acc)))
        if not per_epoch:
            continue
        epochs = np.array(sorted(per_epoch))
        vals = [np.array(per_epoch[e]) for e in epochs]
        loss = [v[:, 0][np.isfinite(v[:, 0])] for v in vals]

        def stat(arrs, fn):
            return np.array([fn(a) if a.size else np.nan for a in arrs])

        acc = [v[:, 1] for v in vals]
        out.append(
            Curve(
                method=method,
                cell=best,
                epochs=epochs,
                train_loss=stat(loss, np.mean),
                train_loss_lo=stat(loss, np.min),
                train_loss_hi=stat(loss, np.max),
                test_acc=stat(acc, np.mean),
                test_acc_lo=stat(acc, np.min),
                test_acc_hi=stat(acc, np.max),
            )
        )
    return out


def curves(
    runs: Sequence[RunRecord] | GroupSummary,
    path: str | Path,
    *,
    methods: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Training loss (log scale) and test accuracy against epoch for the best setting of each
    method (paper Figure 3, middle): mean over seeds, with the min-max band when there are several.
    Short series (up to 30 evaluations) get a marker on every point, so a one-epoch run shows; the
    accuracy panel has a dashed chance line, and a note says when no curve ends above chance.
    """
    summary = one_group(runs)
    data = curve_data(summary, methods)
    if not data:
        raise NothingToPlot(
            f"no method in {summary.key.label} has a finished best setting with metrics.jsonl"
        )
    split = _eval_split(summary)
    classes = num_classes(summary.key.dataset)
    verdict = judge(
        [1.0 - float(c.test_acc[-1]) for c in data],
        classes=classes,
        n_eval=eval_size(summary.runs, summary.key.dataset),
    )
    fig, panel = new_figure(10.5, 4.0, verdict.note("final accuracies of the best settings"))
    ax_loss, ax_acc = panel.subplots(1, 2)
    for c in data:
        color = method_color(c.method)
        label = (
            f"{c.method} (η0={fmt_num(c.cell.eta0)}, "
            f"{summary.decay_axis.symbol}={fmt_num(c.cell.weight_decay)}"
            f"{', n=' + str(c.cell.n) if c.cell.n > 1 else ''})"
        )
        style = dict(color=color, label=label, lw=1.6)
        if len(c.epochs) <= SHORT_SERIES:
            style |= dict(marker="o", markersize=4)
        pos = np.where(c.train_loss > 0, c.train_loss, np.nan)  # log axis: drop non-positive
        ax_loss.plot(c.epochs, pos, **style)
        ax_acc.plot(c.epochs, 100 * c.test_acc, **style)
        if c.cell.n > 1:
            ax_loss.fill_between(
                c.epochs, c.train_loss_lo, c.train_loss_hi, color=color, alpha=0.2, lw=0
            )
            ax_acc.fill_between(
                c.epochs, 100 * c.test_acc_lo, 100 * c.test_acc_hi, color=color, alpha=0.2, lw=0
            )
    if classes:
        ax_acc.axhline(
            100 / classes, color="gray", ls="--", lw=1, label=f"chance ({100 / classes:g}%)"
        )
    ax_loss.set_yscale("log")
    _readable_log_ticks(ax_loss, np.concatenate([c.train_loss for c in data]))
    ax_loss.set_ylabel("Training loss")
    ax_acc.set_ylabel(f"{split} accuracy (%)")
    epochs = np.concatenate([c.epochs for c in data])
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
        if epochs.min() == epochs.max():  # one evaluation: a readable axis around it
            ax.set_xlim(epochs.min() - 1, epochs.max() + 1)
    _min_span(ax_acc, MIN_ACC_SPAN, 0.0, 100.0)
    ax_loss.set_title("Training loss (log scale)", fontsize=10)
    ax_acc.set_title(f"{split} accuracy", fontsize=10)
    handles, labels = ax_acc.get_legend_handles_labels()
    panel.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize=8)
    panel.suptitle(title or f"Best setting per method — {summary.key.label}", fontsize=11)
    return finish(fig, path)


def _min_span(ax, span: float, lo_limit: float, hi_limit: float) -> None:
    """Widen the y axis to at least ``span`` around its data, inside [lo_limit, hi_limit], so a
    flat series is drawn flat instead of zoomed into its noise."""
    lo, hi = ax.get_ylim()
    if hi - lo >= span:
        return
    mid = 0.5 * (lo + hi)
    lo = min(max(lo_limit, mid - 0.5 * span), hi_limit - span)
    ax.set_ylim(lo, lo + span)


def _readable_log_ticks(ax, values: np.ndarray) -> None:
    """Within less than a decade matplotlib labels log-axis minor ticks as "2.306 x 10^0";
    plain evenly spaced numbers read better there (short or barely-training runs)."""
    v = values[np.isfinite(values) & (values > 0)]
    if v.size and v.max() / v.min() < 10:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.yaxis.set_minor_locator(NullLocator())


def _eval_split(summary: GroupSummary) -> str:
    splits = {(r.result or {}).get("eval_split") for r in summary.runs} - {None}
    return "Validation" if splits == {"val"} else "Test"


# ---------------------------------------------------------------------------------- histogram
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
    for method in _select_methods(summary, methods):
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


# -------------------------------------------------------------------------------- correlation
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
    return draw_correlation(
        points, path, baseline=baseline, method=method, quantity=quantity, title=title
    )


def draw_correlation(
    points: Sequence[CorrelationPoint],
    path: str | Path,
    *,
    baseline: str = "AdamL2",
    method: str = "AdamW",
    quantity: str = "update_over_alpha",
    title: str | None = None,
) -> Figure:
    """The figure of :func:`correlation` from its points (see there)."""
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
    _min_span(ax_adv, 2.0, -math.inf, math.inf)
    _min_span(ax_spread, MIN_SPREAD_SPAN, 0.0, math.inf)
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
    "Curve",
    "HistogramPanel",
    "NothingToPlot",
    "correlation",
    "correlation_data",
    "correlation_note",
    "curve_data",
    "curves",
    "default_epochs",
    "draw_correlation",
    "final_spread",
    "heatmap",
    "histogram",
    "histogram_data",
    "one_group",
    "save_png",
]
