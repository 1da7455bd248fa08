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

The figures live one per module (:mod:`scalefree.plots.heatmaps`, :mod:`~scalefree.plots.curves`,
:mod:`~scalefree.plots.histograms`, :mod:`~scalefree.plots.correlation`) over what they share
(:mod:`scalefree.plots.figure_common`); this module gathers their public names.
"""

from __future__ import annotations

from .correlation import (
    CorrelationPoint,
    correlation,
    correlation_data,
    correlation_note,
    draw_correlation,
    final_spread,
)
from .curves import Curve, curve_data, curves
from .figure_common import (
    METHOD_COLORS,
    MIN_ACC_SPAN,
    MIN_SPREAD_SPAN,
    QUANTITY_LABELS,
    NothingToPlot,
    axis_scale,
    method_color,
    one_group,
    scaled_labels,
    tick_labels,
)
from .heatmaps import heatmap
from .histograms import HistogramPanel, default_epochs, histogram, histogram_data, stats_run
from .layout import DPI, finish, new_figure, save_png  # noqa: F401 - re-exported

__all__ = [
    "CorrelationPoint",
    "Curve",
    "HistogramPanel",
    "METHOD_COLORS",
    "MIN_ACC_SPAN",
    "MIN_SPREAD_SPAN",
    "NothingToPlot",
    "QUANTITY_LABELS",
    "axis_scale",
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
    "method_color",
    "one_group",
    "save_png",
    "scaled_labels",
    "stats_run",
    "tick_labels",
]
