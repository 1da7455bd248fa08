"""The learning curves: training loss and test accuracy of each method's best setting (Figure 3
middle)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator, ScalarFormatter

from scalefree.train.config import fmt_num

from .figure_common import (
    MIN_ACC_SPAN,
    NothingToPlot,
    Runs,
    method_color,
    min_span,
    one_group,
    select_methods,
)
from .layout import finish, new_figure
from .tables import Cell, GroupSummary
from .verdict import eval_size, judge, num_classes

SHORT_SERIES = 30  # curves with at most this many points get a marker on each


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
    for method in select_methods(summary, methods):
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
    runs: Runs, path: str | Path, *, methods: Sequence[str] | None = None, title: str | None = None
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
    min_span(ax_acc, MIN_ACC_SPAN, 0.0, 100.0)
    ax_loss.set_title("Training loss (log scale)", fontsize=10)
    ax_acc.set_title(f"{split} accuracy", fontsize=10)
    handles, labels = ax_acc.get_legend_handles_labels()
    panel.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize=8)
    panel.suptitle(title or f"Best setting per method — {summary.key.label}", fontsize=11)
    return finish(fig, path)


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


__all__ = ["Curve", "curve_data", "curves"]
