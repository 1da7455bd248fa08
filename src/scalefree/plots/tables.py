"""Summary tables of a sweep: final test error per (method, eta0, weight decay), seeds averaged.

This is the data behind every heatmap of the paper (Figures 2, 3 left, 4, 5, 6): for each
experiment configuration (dataset, model, batch norm, ...), the final top-1 test error of every
optimizer at every grid point (initial step size eta0 x weight decay lambda), and the best point per
optimizer (the paper's black circle).

Conventions: the summary model's rules (:mod:`scalefree.rundir.summary`), the same the sweep's
boundary extension uses, so the tables circle the point the sweep extends toward:

* a diverged (or failed) run counts as test error ``DIVERGED_ERROR`` = 1.1 and enters the mean;
* an incomplete run (no ``result.json`` yet) is left out of the mean and counted next to it
  (``mean_of_finished``), so a half-finished sweep is visible as such rather than silently
  averaged over fewer seeds;
* mean and sample standard deviation (ddof = 1) over seeds; the std of a single seed is NaN, not 0,
  since one run says nothing about seed variance;
* the best setting of a method is its lowest mean error (ties: more seeds, then smaller eta0, then
  smaller weight decay); it is flagged when it lies on an extendable edge of the searched grid,
  where the paper extends the grid ("we always extend the grid to ensure that the final
  best-performing hyperparameters fall into the interior", Section 4).

Runs are grouped by (dataset, model, batch norm) plus any other setting that differs between runs
of a folder (e.g. ``loss_multiplier`` in the paper's Figure 4), so two different experiments never
share a cell.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalefree.io import atomic_write_text
from scalefree.optim.registry import OPTIMIZERS
from scalefree.rundir import DIVERGED_ERROR, RunRecord
from scalefree.rundir.summary import (
    WEIGHT_DECAY_AXIS,
    DecayAxis,
    Edge,
    best_point,
    decay_axis,
    decay_value,
    extendable_edges,
    method_label,
    seed_mean,
    seed_std,
)
from scalefree.train.config import EXECUTION_FIELDS, RunConfig, config_fields, fmt_num

# Methods in the order the paper shows them (AdamL2 left of AdamW), read live from the optimizer
# registry's entries; unregistered names follow alphabetically.
METHOD_ORDER = OPTIMIZERS.plot_order()
# Settings that are the axes of a sweep or are averaged over, hence never split a group; the
# switches of a method's rule (cautious_decay, caution) are part of its method label instead
# (rundir.summary.method_label), and a decay timescale is the decay axis's value.
_SWEPT = frozenset(
    {
        "optim_method",
        "eta0",
        "weight_decay",
        "decay_timescale",
        "cautious_decay",
        "caution",
        "seed",
        "init_seed",
    }
)
_BASE = ("dataset", "model", "batch_norm")
_DEFAULTS = RunConfig().to_dict()
_FIELDS = tuple(f.name for f in config_fields())


def method_sort_key(method: str) -> tuple[int, str]:
    """Registry order; a method with switches (``AdamW+CWD``) right after its optimizer."""
    base = method.partition("+")[0]
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), method)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, order=True)
class GroupKey:
    """One experiment configuration: everything but the swept settings and the seed."""

    dataset: str
    model: str
    batch_norm: bool
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """Human-readable, e.g. ``CIFAR10 ResNet110 (no BN, loss_multiplier=10)``."""
        notes = ["BN" if self.batch_norm else "no BN"]
        notes += [f"{k}={_fmt_value(v)}" for k, v in self.extra]
        return f"{self.dataset} {self.model} ({', '.join(notes)})"

    @property
    def slug(self) -> str:
        """File-name safe, reading like the run names, e.g. ``CIFAR10_ResNet110_NoBN``."""
        parts = [self.dataset, self.model] + ([] if self.batch_norm else ["NoBN"])
        parts += [f"{k}_{_fmt_value(v)}" for k, v in self.extra]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts))

    @property
    def depth(self) -> int | None:
        """Number of layers from the model name (ResNet110 -> 110, DenseNetBC100 -> 100)."""
        m = re.search(r"(\d+)$", self.model)
        return int(m.group(1)) if m else None

    @property
    def family(self) -> str:
        """Model name without its depth (ResNet110 -> ResNet)."""
        return re.sub(r"\d+$", "", self.model)


def _fmt_value(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "_".join(_fmt_value(x) for x in v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_num(v)
    return str(v)


def group_runs(runs: Iterable[RunRecord]) -> dict[GroupKey, list[RunRecord]]:
    """Split runs into experiment configurations (see the module docstring), sorted by key."""
    runs = list(runs)
    by_base: dict[tuple, list[RunRecord]] = {}
    for r in runs:
        base = tuple(r.get(k, _DEFAULTS[k]) for k in _BASE)
        by_base.setdefault(base, []).append(r)
    groups: dict[GroupKey, list[RunRecord]] = {}
    for (dataset, model, bn), members in by_base.items():
        # Only the settings that actually vary inside this configuration name the group, so the
        # usual single-experiment folder gets short labels like "CIFAR10 ResNet20 (no BN)".
        candidates = [
            f for f in _FIELDS if f not in EXECUTION_FIELDS and f not in _SWEPT and f not in _BASE
        ]
        varying = [
            f for f in candidates if len({_hashable(r.get(f, _DEFAULTS[f])) for r in members}) > 1
        ]
        # Grids on different decay axes (weight decay, timescale) are different experiments.
        axis_varies = len({decay_axis(r.config).field for r in members}) > 1
        for r in members:
            extra = tuple((f, _hashable(r.get(f, _DEFAULTS[f]))) for f in varying)
            if axis_varies:
                extra += (("decay_axis", decay_axis(r.config).field),)
            key = GroupKey(str(dataset), str(model), bool(bn), extra)
            groups.setdefault(key, []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: _group_sort_key(kv[0])))


def _group_sort_key(key: GroupKey) -> tuple:
    return (key.dataset, key.family, key.depth or 0, key.model, key.batch_norm, repr(key.extra))


@dataclass(frozen=True, eq=False)
class Cell:
    """One grid point of one method: every seed run at (eta0, weight decay). On a timescale
    grid (:attr:`MethodGrid.decay_axis`), ``weight_decay`` holds the decay timescale in epochs:
    the value on the grid's decay axis."""

    method: str
    eta0: float
    weight_decay: float
    finished: tuple[RunRecord, ...] = ()
    incomplete: tuple[RunRecord, ...] = ()

    @property
    def errors(self) -> np.ndarray:
        """Final test error of each finished run (diverged and failed as DIVERGED_ERROR)."""
        return np.array([r.test_error for r in self.finished], dtype=float)

    @property
    def n(self) -> int:
        """Finished runs (seeds) behind the mean."""
        return len(self.finished)

    @property
    def n_diverged(self) -> int:
        return sum(r.status == "diverged" for r in self.finished)

    @property
    def n_failed(self) -> int:
        return sum(r.status == "failed" for r in self.finished)

    @property
    def n_incomplete(self) -> int:
        return len(self.incomplete)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(int(r.get("seed", 0)) for r in self.finished))

    @property
    def mean(self) -> float:
        """Mean over the finished seeds (summary model: ``mean_of_finished``); NaN if none."""
        return seed_mean(self.errors)

    @property
    def std(self) -> float:
        return seed_std(self.errors)

    @property
    def all_diverged(self) -> bool:
        return self.n > 0 and self.n_diverged + self.n_failed == self.n


@dataclass(frozen=True)
class MethodGrid:
    """A method's eta0 x weight-decay grid (rows eta0 ascending, columns weight decay ascending).

    ``decay_axis`` says what the columns are: the weight decay, or the decay timescale in epochs
    (``weight_decays`` then holds timescales; :func:`scalefree.rundir.summary.decay_axis`)."""

    method: str
    eta0s: tuple[float, ...]
    weight_decays: tuple[float, ...]
    cells: dict[tuple[float, float], Cell]
    decay_axis: DecayAxis = WEIGHT_DECAY_AXIS

    def cell(self, eta0: float, weight_decay: float) -> Cell | None:
        return self.cells.get((eta0, weight_decay))

    def matrix(self, what: str = "mean") -> np.ndarray:
        """(rows, cols) array of a Cell attribute (``mean``, ``std``, ``n``); NaN where no runs."""
        out = np.full((len(self.eta0s), len(self.weight_decays)), np.nan)
        for i, e in enumerate(self.eta0s):
            for j, w in enumerate(self.weight_decays):
                c = self.cells.get((e, w))
                if c is not None and c.n:
                    out[i, j] = getattr(c, what)
        return out

    @property
    def best(self) -> Cell | None:
        """Lowest mean error; None when nothing finished or everything diverged.

        Ties go to more seeds, then the smaller eta0 and weight decay (summary model, rule 3)."""
        return best_point(self.cells.values())

    def best_index(self) -> tuple[int, int] | None:
        """(row, column) of the best cell in :meth:`matrix`."""
        b = self.best
        if b is None:
            return None
        return self.eta0s.index(b.eta0), self.weight_decays.index(b.weight_decay)

    @property
    def best_edges(self) -> tuple[Edge, ...]:
        """The extendable edges of the grid on which the best point lies (summary model, rule 4:
        the lowest or highest eta0, the highest weight decay, the lowest one unless it is 0;
        single-value axes have none), the edges the sweep would extend."""
        b = self.best
        if b is None:
            return ()
        point = (b.eta0, b.weight_decay)
        return extendable_edges(point, self.eta0s, self.weight_decays, self.decay_axis)

    @property
    def best_on_boundary(self) -> bool:
        """True when the best point lies on an extendable edge (see :attr:`best_edges`)."""
        return bool(self.best_edges)


@dataclass(frozen=True)
class GroupSummary:
    """Every method's grid for one experiment configuration."""

    key: GroupKey
    runs: tuple[RunRecord, ...]
    grids: dict[str, MethodGrid] = field(default_factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.grids)

    @property
    def decay_axis(self) -> DecayAxis:
        """The decay axis of the group's grids (one per group: group_runs splits on it)."""
        return next(iter(self.grids.values())).decay_axis if self.grids else WEIGHT_DECAY_AXIS

    @property
    def n_incomplete(self) -> int:
        return sum(r.status == "incomplete" for r in self.runs)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    def best(self, method: str) -> Cell | None:
        return self.grids[method].best if method in self.grids else None


def summarize_group(key: GroupKey, runs: Sequence[RunRecord]) -> GroupSummary:
    by_setting: dict[tuple[str, float, float], list[RunRecord]] = {}
    for r in runs:
        k = (method_label(r.config), float(r.get("eta0")), decay_value(r.config))
        by_setting.setdefault(k, []).append(r)
    axis = decay_axis(runs[0].config) if runs else WEIGHT_DECAY_AXIS
    grids: dict[str, MethodGrid] = {}
    for method in sorted({k[0] for k in by_setting}, key=method_sort_key):
        cells = {}
        for (m, e, w), rs in by_setting.items():
            if m != method:
                continue
            rs = sorted(rs, key=lambda r: int(r.get("seed", 0)))
            cells[(e, w)] = Cell(
                method=m,
                eta0=e,
                weight_decay=w,
                finished=tuple(r for r in rs if r.status != "incomplete"),
                incomplete=tuple(r for r in rs if r.status == "incomplete"),
            )
        grids[method] = MethodGrid(
            method=method,
            eta0s=tuple(sorted({e for e, _ in cells})),
            weight_decays=tuple(sorted({w for _, w in cells})),
            cells=cells,
            decay_axis=axis,
        )
    return GroupSummary(key=key, runs=tuple(runs), grids=grids)


def summarize(runs: Iterable[RunRecord]) -> list[GroupSummary]:
    """One :class:`GroupSummary` per experiment configuration in ``runs``."""
    return [summarize_group(k, rs) for k, rs in group_runs(runs).items()]


# ---------------------------------------------------------------------------------- formatting
def fmt_error(x: float, digits: int = 4) -> str:
    """Test error as a fraction, the reference scripts' unit (diverged = 1.1)."""
    if math.isnan(x):
        return ""
    return f"{x:.{digits}f}"


def fmt_cell(c: Cell | None, digits: int = 4) -> str:
    """``mean ± std (n)`` with divergence and missing seeds spelled out."""
    if c is None:
        return ""
    if not c.n:
        return f"({c.n_incomplete} running)" if c.n_incomplete else ""
    notes = []
    if c.all_diverged:
        text = fmt_num(DIVERGED_ERROR)
        notes.append("diverged")
    else:
        text = fmt_error(c.mean, digits)
        if c.n > 1:
            text += f" ± {fmt_error(c.std, digits)}"
    notes.append(f"n={c.n}")
    if c.n_diverged + c.n_failed and not c.all_diverged:
        notes.append(f"{c.n_diverged + c.n_failed} div")
    if c.n_incomplete:
        notes.append(f"+{c.n_incomplete} running")
    return f"{text} ({', '.join(notes)})"


def _row_head(s: GroupSummary, method: str) -> dict[str, Any]:
    """The columns that say whose row it is, first in both CSV files."""
    return {
        "dataset": s.key.dataset,
        "model": s.key.model,
        "batch_norm": s.key.batch_norm,
        "group": s.key.label,
        "method": method,
    }


def cell_rows(summaries: Sequence[GroupSummary]) -> list[dict[str, Any]]:
    """Long format: one row per (group, method, eta0, weight decay)."""
    rows = []
    for s in summaries:
        for method, g in s.grids.items():
            best = g.best
            for (e, w), c in sorted(g.cells.items()):
                rows.append(
                    _row_head(s, method)
                    | {
                        "eta0": e,
                        g.decay_axis.field: w,
                        "mean_test_error": c.mean,
                        "std_test_error": c.std,
                        "n_runs": c.n,
                        "n_diverged": c.n_diverged,
                        "n_failed": c.n_failed,
                        "n_incomplete": c.n_incomplete,
                        "seeds": " ".join(str(x) for x in c.seeds),
                        "is_best": c is best,
                    }
                )
    return rows


def best_rows(summaries: Sequence[GroupSummary]) -> list[dict[str, Any]]:
    """One row per (group, method): its best setting."""
    rows = []
    for s in summaries:
        for method, g in s.grids.items():
            b = g.best
            rows.append(
                _row_head(s, method)
                | {
                    "eta0": b.eta0 if b else math.nan,
                    g.decay_axis.field: b.weight_decay if b else math.nan,
                    "mean_test_error": b.mean if b else math.nan,
                    "std_test_error": b.std if b else math.nan,
                    "n_runs": b.n if b else 0,
                    "best_on_grid_boundary": g.best_on_boundary,
                    "n_settings": len(g.cells),
                    "n_incomplete_runs": sum(c.n_incomplete for c in g.cells.values()),
                }
            )
    return rows


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text; NaN becomes an empty field so spreadsheets read it as missing. The columns are
    those of the first row, then any other row's new ones (a timescale grid's ``decay_timescale``
    next to a weight-decay grid's ``weight_decay``), empty where a row has none."""
    buf = io.StringIO()
    if not rows:
        return ""
    fieldnames = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=fieldnames, restval="", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                k: (
                    ""
                    if isinstance(v, float) and math.isnan(v)
                    else (repr(v) if isinstance(v, float) else v)
                )
                for k, v in r.items()
            }
        )
    return buf.getvalue()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` escaped, line breaks flattened)."""

    def esc(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(esc(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def best_table(summary: GroupSummary) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the best-setting table of one group (for Markdown and HTML)."""
    header = [
        "method",
        "eta0",
        summary.decay_axis.column,
        "test error (mean ± std)",
        "runs",
        "note",
    ]
    rows = []
    for method, g in summary.grids.items():
        b = g.best
        if b is None:
            finished = sum(c.n for c in g.cells.values())
            note = "every run diverged" if finished else "no finished runs"
            rows.append([method, "", "", "", "0", note])
            continue
        notes = []
        if g.best_on_boundary:
            notes.append("best on grid edge: extend the grid")
        if b.n_diverged + b.n_failed:
            notes.append(f"{b.n_diverged + b.n_failed} of {b.n} seeds diverged")
        text = fmt_error(b.mean) + (f" ± {fmt_error(b.std)}" if b.n > 1 else "")
        rows.append(
            [method, fmt_num(b.eta0), fmt_num(b.weight_decay), text, str(b.n), "; ".join(notes)]
        )
    return header, rows


def grid_table(grid: MethodGrid) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one method's grid: rows eta0, columns weight decay; best in bold."""
    best = grid.best
    header = [f"eta0 \\ {grid.decay_axis.column}"] + [fmt_num(w) for w in grid.weight_decays]
    rows = []
    for e in grid.eta0s:
        row = [fmt_num(e)]
        for w in grid.weight_decays:
            c = grid.cell(e, w)
            text = fmt_cell(c)
            row.append(f"**{text}**" if c is not None and c is best else text)
        rows.append(row)
    return header, rows


def summary_markdown(summaries: Sequence[GroupSummary]) -> str:
    """Markdown: per group, the best-setting table and each method's full grid."""
    out = [
        "# Final test error per setting\n",
        f"Test error is a fraction; diverged or failed runs count as {fmt_num(DIVERGED_ERROR)}; "
        "mean ± sample std over seeds (n = finished runs); incomplete runs are left out.\n",
    ]
    for s in summaries:
        out.append(f"## {s.key.label}\n")
        counts = ", ".join(
            f"{s.count(st)} {st}"
            for st in ("completed", "diverged", "failed", "incomplete")
            if s.count(st)
        )
        out.append(f"{len(s.runs)} runs: {counts}.\n")
        out.append("### Best setting per method\n")
        out.append(markdown_table(*best_table(s)))
        for method, g in s.grids.items():
            column = g.decay_axis.column
            out.append(f"### {method}: test error over eta0 (rows) x {column} (columns)\n")
            out.append(markdown_table(*grid_table(g)))
    return "\n".join(out)


def write_summary(runs: Iterable[RunRecord], out_dir: str | Path) -> dict[str, Path]:
    """Write ``summary.csv`` (every cell), ``best.csv`` (best per method) and ``summary.md``.

    Returns ``{"csv": ..., "best_csv": ..., "markdown": ...}``. Every file is written atomically.
    """
    out_dir = Path(out_dir)
    summaries = summarize(runs)
    paths = {
        "csv": out_dir / "summary.csv",
        "best_csv": out_dir / "best.csv",
        "markdown": out_dir / "summary.md",
    }
    atomic_write_text(paths["csv"], to_csv(cell_rows(summaries)))
    atomic_write_text(paths["best_csv"], to_csv(best_rows(summaries)))
    atomic_write_text(paths["markdown"], summary_markdown(summaries))
    return paths


__all__ = [
    "Cell",
    "GroupKey",
    "GroupSummary",
    "MethodGrid",
    "best_rows",
    "cell_rows",
    "group_runs",
    "summarize",
    "summary_markdown",
    "write_summary",
]
