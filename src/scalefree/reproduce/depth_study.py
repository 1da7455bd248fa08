"""The depth study's tables from its log folders (``scalefree reproduce depth`` / ``depth-resnet``).

Every run of the folders becomes one row of ``summary.csv`` (method, model, family, depth,
normalization, eta0, weight decay, seed, status, validation and test error, final training loss,
wall time, the update spread |u|/alpha at the last snapshot, and the ``diagnose`` spread at init
and at the end where ``scalefree diagnose`` wrote it). Then, per model x normalization x method:

* the **best cell** is chosen on the validation error of the grid's seed (seed 0) by the sweep's
  own rule (:func:`scalefree.rundir.summary.best_point`), exactly the cell ``--best-seeds``
  reran; its **test error** (the held-out official test split, result.json ``test_split``) is the
  mean over the seeds that ran there, with their sample standard deviation (``best.csv``);
* the **gap** AdamW - AdamL2 of those means, with the standard error of a difference of two
  independent means, sqrt(s_W^2 / n_W + s_L^2 / n_L) (``gaps.csv``; NaN below two seeds a side).

The test split's own sampling noise is stated beside: with n test images and error p, one run's
error has a binomial standard error sqrt(p (1 - p) / n) (about 1.6 points at n = 1017, p = 0.55).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from scalefree.io import atomic_write_text
from scalefree.rundir import load_runs
from scalefree.rundir.read import RunRecord
from scalefree.rundir.summary import PointError, best_point, method_label, seed_mean, seed_std

GRID_SEED = 0


@dataclass(frozen=True)
class StudyRun:
    """One run of the study, as ``summary.csv`` lists it."""

    name: str
    method: str
    model: str
    family: str
    depth: int
    normalization: str  # "BN" or "none"
    eta0: float
    weight_decay: float
    seed: int
    status: str
    val_error: float
    test_error: float
    train_loss: float
    epochs: int
    wall_time_s: float
    update_spread: float
    diagnose_spread_init: float
    diagnose_spread_final: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.normalization, self.method)


@dataclass(frozen=True)
class BestCell:
    """One method's best cell for one model x normalization, over its seeds."""

    model: str
    family: str
    depth: int
    normalization: str
    method: str
    eta0: float
    weight_decay: float
    seeds: int
    test_error_mean: float
    test_error_std: float
    val_error_mean: float
    train_loss_mean: float
    update_spread_mean: float
    diagnose_spread_init: float
    diagnose_spread_final: float


@dataclass(frozen=True)
class Gap:
    """AdamW - AdamL2 of the best cells' mean test errors (negative: AdamW better)."""

    model: str
    family: str
    depth: int
    normalization: str
    gap: float
    gap_se: float
    adamw_seeds: int
    adaml2_seeds: int
    diagnose_spread_init: float
    diagnose_spread_final: float


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _update_spread(path: Path) -> float:
    """|u|/alpha log2 IQR of the run's last statistics snapshot; NaN without readable stats."""
    from scalefree.rundir.stats import load_stats

    try:
        spread = load_stats(path).spread("update_over_alpha")
    except (OSError, ValueError, KeyError):
        return math.nan
    return float(spread[-1]) if len(spread) else math.nan


def diagnosis_spread(path: Path, at: str) -> float:
    """``diagnosis.spread`` of ``diagnose_<at>.json`` in a run directory; NaN where absent."""
    from scalefree.rundir.layout import diagnose_file
    from scalefree.rundir.read import DamagedFile, read_json_object

    try:
        data = read_json_object(diagnose_file(path, at))  # size-capped, never a RecursionError
        return _number(data["diagnosis"]["spread"])
    except (DamagedFile, KeyError, TypeError):
        return math.nan


def study_run(run: RunRecord) -> StudyRun:
    """The row of one run directory (missing numbers are NaN, an unfinished run ``incomplete``)."""
    from scalefree.models import MODELS

    cfg, result = run.config, run.result or {}
    model = str(cfg.get("model"))
    entry = MODELS.get(model) if model in MODELS else None
    final = result.get("final") or {}
    test_split = result.get("test_split") or {}
    completed = run.status == "completed"
    return StudyRun(
        name=run.name,
        method=method_label(cfg),
        model=model,
        family=entry.family if entry else "other",
        depth=entry.depth if entry else 0,
        normalization="BN" if cfg.get("batch_norm", True) else "none",
        eta0=_number(cfg.get("eta0")),
        weight_decay=_number(cfg.get("weight_decay")),
        seed=int(cfg.get("seed", 0)),
        status=run.status,
        val_error=_number(result.get("test_error")) if completed else math.nan,
        test_error=_number(test_split.get("error")) if completed else math.nan,
        train_loss=_number(final.get("train_loss")),
        epochs=int(result.get("epochs_completed") or 0),
        wall_time_s=_number(result.get("wall_time_s")),
        update_spread=_update_spread(run.path) if completed else math.nan,
        diagnose_spread_init=diagnosis_spread(run.path, "init"),
        diagnose_spread_final=diagnosis_spread(run.path, "final"),
    )


def study_runs(folders: Iterable[str | Path]) -> list[StudyRun]:
    """Every run of the log folders, sorted by family, depth, normalization, method, cell, seed."""
    rows = [study_run(r) for folder in folders for r in load_runs(folder)]
    return sorted(
        rows,
        key=lambda r: (
            r.family,
            r.depth,
            r.normalization,
            r.method,
            r.eta0,
            r.weight_decay,
            r.seed,
        ),
    )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return seed_mean(finite)


def best_cells(rows: Sequence[StudyRun]) -> list[BestCell]:
    """Per model x normalization x method, the best cell on the grid seed's validation error,
    summarized over every seed that ran there."""
    out: list[BestCell] = []
    for key in dict.fromkeys(r.key for r in rows):
        mine = [r for r in rows if r.key == key]
        grid = [
            PointError(r.eta0, r.weight_decay, r.val_error if r.status == "completed" else 1.0, 1)
            for r in mine
            if r.seed == GRID_SEED and r.status != "incomplete"
        ]
        best = best_point(grid)
        if best is None:
            continue
        cell = [
            r
            for r in mine
            if r.status == "completed"
            and r.eta0 == best.eta0
            and r.weight_decay == best.weight_decay
        ]
        tests = [r.test_error for r in cell if math.isfinite(r.test_error)]
        first = cell[0]
        out.append(
            BestCell(
                model=first.model,
                family=first.family,
                depth=first.depth,
                normalization=first.normalization,
                method=first.method,
                eta0=best.eta0,
                weight_decay=best.weight_decay,
                seeds=len(tests),
                test_error_mean=seed_mean(tests),
                test_error_std=seed_std(tests),
                val_error_mean=_mean([r.val_error for r in cell]),
                train_loss_mean=_mean([r.train_loss for r in cell]),
                update_spread_mean=_mean([r.update_spread for r in cell]),
                diagnose_spread_init=_mean([r.diagnose_spread_init for r in cell]),
                diagnose_spread_final=_mean([r.diagnose_spread_final for r in cell]),
            )
        )
    return out


def gaps(cells: Sequence[BestCell], a: str = "AdamW", b: str = "AdamL2") -> list[Gap]:
    """``a - b`` per model x normalization where both methods have a best cell. The diagnose
    spreads are ``b``'s (AdamL2's best run: at init the model's, at the end what AdamL2 trained)."""
    by = {(c.model, c.normalization, c.method): c for c in cells}
    out: list[Gap] = []
    for (model, norm, method), cb in by.items():
        ca = by.get((model, norm, a))
        if method != b or ca is None:
            continue
        se = math.sqrt(ca.test_error_std**2 / ca.seeds + cb.test_error_std**2 / cb.seeds)
        out.append(
            Gap(
                model=model,
                family=cb.family,
                depth=cb.depth,
                normalization=norm,
                gap=ca.test_error_mean - cb.test_error_mean,
                gap_se=se,
                adamw_seeds=ca.seeds,
                adaml2_seeds=cb.seeds,
                diagnose_spread_init=cb.diagnose_spread_init,
                diagnose_spread_final=cb.diagnose_spread_final,
            )
        )
    return sorted(out, key=lambda g: (g.family, g.normalization, g.depth))


def to_csv(rows: Sequence[object]) -> str:
    """CSV text of dataclass rows; NaN becomes an empty field (missing, not a number)."""
    if not rows:
        return ""
    buf = io.StringIO()
    names = [f.name for f in fields(rows[0])]  # type: ignore[arg-type]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        values = asdict(row)  # type: ignore[call-overload]
        writer.writerow(
            "" if isinstance(v, float) and math.isnan(v) else v for v in values.values()
        )
    return buf.getvalue()


def binomial_se(error: float, n: int) -> float:
    """Sampling standard error of one run's error on ``n`` test images."""
    return math.sqrt(error * (1 - error) / n) if n > 0 and 0 <= error <= 1 else math.nan


def correlation(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, int]:
    """Pearson r over the pairs where both are finite, and how many pairs; NaN below three."""
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return math.nan, len(pairs)
    x, y = np.array(pairs).T
    if x.std() == 0 or y.std() == 0:
        return math.nan, len(pairs)
    return float(np.corrcoef(x, y)[0, 1]), len(pairs)


def _pct(value: float, digits: int = 1) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.{digits}f}"


def _num(value: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(rows: Sequence[StudyRun], cells: Sequence[BestCell], gap_rows: Sequence[Gap]) -> str:
    """The study's tables in Markdown (errors in percent; spreads in log2 units)."""
    done = sum(r.status == "completed" for r in rows)
    hours = sum(r.wall_time_s for r in rows if math.isfinite(r.wall_time_s)) / 3600
    lines = [
        f"{len(rows)} runs ({done} completed), {hours:.2f} h of run wall time in all.",
        "",
        "Best cell per method (selected on the grid seed's validation error); test error on the "
        "held-out test split, mean +- sample std over the seeds:",
        "",
        "| model | norm | method | eta0 | wd | seeds | test err % | val err % | train loss "
        "| update spread | diag. spread init | diag. spread end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c.model} | {c.normalization} | {c.method} | {c.eta0:g} | {c.weight_decay:g} "
            f"| {c.seeds} | {_pct(c.test_error_mean)} +- {_pct(c.test_error_std)} "
            f"| {_pct(c.val_error_mean)} | {_num(c.train_loss_mean, 3)} "
            f"| {_num(c.update_spread_mean)} | {_num(c.diagnose_spread_init)} "
            f"| {_num(c.diagnose_spread_final)} |"
        )
    lines += [
        "",
        "Gap AdamW - AdamL2 of the mean test errors (negative: AdamW better), +- the standard "
        "error of the difference:",
        "",
        "| model | norm | gap (points) | seeds W/L2 | AdamL2 diag. spread init | end |",
        "|---|---|---|---|---|---|",
    ]
    for g in gap_rows:
        lines.append(
            f"| {g.model} | {g.normalization} | {_pct(g.gap)} +- {_pct(g.gap_se)} "
            f"| {g.adamw_seeds}/{g.adaml2_seeds} | {_num(g.diagnose_spread_init)} "
            f"| {_num(g.diagnose_spread_final)} |"
        )
    for at in ("init", "final"):
        r, n = correlation(
            [getattr(g, f"diagnose_spread_{at}") for g in gap_rows], [g.gap for g in gap_rows]
        )
        lines.append(f"\nPearson r(gap, diagnose spread at {at}) = {_num(r)} over {n} models.")
    return "\n".join(lines) + "\n"


def write_depth_study(folders: str | Path | Sequence[str | Path], out: str | Path) -> list[Path]:
    """summary.csv, best.csv, gaps.csv, depth_study.md and the figures, in ``out``."""
    from scalefree.reproduce.depth_figures import write_figures

    folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = study_runs(folders)
    cells = best_cells(rows)
    gap_rows = gaps(cells)
    written = []
    for name, text in (
        ("summary.csv", to_csv(rows)),
        ("best.csv", to_csv(cells)),
        ("gaps.csv", to_csv(gap_rows)),
        ("depth_study.md", markdown(rows, cells, gap_rows)),
    ):
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written + write_figures(cells, gap_rows, out)


__all__ = [
    "BestCell",
    "Gap",
    "StudyRun",
    "best_cells",
    "binomial_se",
    "correlation",
    "diagnosis_spread",
    "gaps",
    "markdown",
    "study_runs",
    "write_depth_study",
]
