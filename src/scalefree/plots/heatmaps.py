"""The heatmap: final test error over eta0 x weight decay per method (Figures 2, 3 left, 4-6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Rectangle

from scalefree.rundir import DIVERGED_ERROR
from scalefree.rundir.summary import TIMESCALE_AXIS
from scalefree.train.config import fmt_num

from .figure_common import NothingToPlot, Runs, one_group, select_methods, tick_labels
from .layout import finish, new_figure
from .tables import Cell, MethodGrid
from .verdict import Verdict, judge_group

# Bright = low error, darker = worse, near-black grey = diverged: "darker is worse" throughout.
# Perceptually uniform and colour-blind safe; the black best-circle stands out on every colour.
HEATMAP_CMAP = "viridis_r"
DIVERGED_HATCH = "////"


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
    runs: Runs, path: str | Path, *, methods: Sequence[str] | None = None, title: str | None = None
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
    methods = select_methods(summary, methods)
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


__all__ = ["heatmap"]
