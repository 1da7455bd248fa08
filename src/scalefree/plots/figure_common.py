"""What every figure shares: method colours, axis ticks, the one-group rule, NothingToPlot.

The figures (:mod:`scalefree.plots.heatmaps`, :mod:`~scalefree.plots.curves`,
:mod:`~scalefree.plots.histograms`, :mod:`~scalefree.plots.correlation`; all re-exported by
:mod:`scalefree.plots.figures`) take their colours, tick labels and axis spans from here, so
AdamL2 / AdamW and an eta0 axis read the same in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scalefree.errors import UsageError
from scalefree.optim.registry import OPTIMIZERS
from scalefree.rundir import RunRecord
from scalefree.train.config import fmt_num

from .tables import GroupSummary, summarize

# What a figure is drawn from: run records (of one experiment configuration), or their summary.
Runs = Sequence[RunRecord] | GroupSummary

# One colour per method in every figure, so AdamL2 / AdamW read the same everywhere: each
# optimizer entry's colour, read live from the registry.
METHOD_COLORS = OPTIMIZERS.plot_colors()
QUANTITY_LABELS = {
    "update_over_alpha": "|u| / α (update without α)",
    "update": "|u| (update)",
    "grad": "|∇f| (gradient)",
    "param": "|x| (parameter)",
}
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


def one_group(runs: Runs) -> GroupSummary:
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


def select_methods(summary: GroupSummary, methods: Sequence[str] | None) -> list[str]:
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


def min_span(ax, span: float, lo_limit: float, hi_limit: float) -> None:
    """Widen the y axis to at least ``span`` around its data, inside [lo_limit, hi_limit], so a
    flat series is drawn flat instead of zoomed into its noise."""
    lo, hi = ax.get_ylim()
    if hi - lo >= span:
        return
    mid = 0.5 * (lo + hi)
    lo = min(max(lo_limit, mid - 0.5 * span), hi_limit - span)
    ax.set_ylim(lo, lo + span)


__all__ = [
    "METHOD_COLORS",
    "MIN_ACC_SPAN",
    "MIN_SPREAD_SPAN",
    "QUANTITY_LABELS",
    "NothingToPlot",
    "Runs",
    "axis_scale",
    "method_color",
    "min_span",
    "one_group",
    "scaled_labels",
    "select_methods",
    "tick_labels",
]
