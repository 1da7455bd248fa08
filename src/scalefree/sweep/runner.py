"""Run sweeps: dispatch the runs that need it, report each as it finishes, extend the grid, summarize.

:func:`run_sweeps` takes one or more :class:`~scalefree.sweep.grid.Sweep` (a preset is several:
one per model / loss multiplier) and an executor, and runs them together, so the workers stay
busy across experiments:

1. round 0: every config of every sweep. Each run is first checked in the launcher
   (:func:`~scalefree.sweep.tasks.precheck`): finished runs (result.json exists) are skipped and
   counted, runs locked by another launch are reported as running elsewhere, the rest go to the
   executor, which calls ``train(config, resume=True)`` (an interrupted run continues from its
   checkpoint).
2. with ``extend_boundary``, up to ``max_extensions`` more rounds: for each sweep and method whose
   grid points all have a result, if the best point lies on an extendable edge
   (:func:`~scalefree.sweep.grid.boundary_extension`), the next grid value beyond that edge is
   added and its new points are run. A method with unfinished points (running elsewhere, failed
   to start) is not extended in this launch; rerunning the same command picks it up.
3. with ``best_seeds``, one more round: each method's best point on the grid seeds (selected
   exactly as the extension selects, so a rerun of the same command selects the same point) is
   run with every seed of ``best_seeds`` it does not have yet (the paper's protocol: the grid with
   one seed, the best setting again with several). A method whose grid is unfinished is not
   reseeded in this launch; one whose best still lies on an edge after the last extension round
   allowed (``max_extensions``) is reseeded there, with a note that says so.
4. the summary tables (``summary.csv``, ``best.csv``, ``summary.md``: scalefree.plots.tables) of
   every run in each log folder are written into that folder.

Nothing is retried silently: failed runs stay failed until ``retry_failed``; diverged runs stay
diverged.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from scalefree.rundir import run_dir_of
from scalefree.rundir.write import finished_result
from scalefree.sweep.executors import Executor
from scalefree.sweep.grid import (
    Extension,
    Sweep,
    best_point,
    boundary_extension,
    mean_error,
    missing_points,
    new_points,
)
from scalefree.sweep.progress import SweepProgress
from scalefree.sweep.tasks import RunTask, TaskResult, precheck
from scalefree.trackers.base import TrackerSettings
from scalefree.train.config import RunConfig, fmt_num


@dataclass
class SweepReport:
    """Everything that happened in one launch."""

    results: list[TaskResult] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)  # with their final (extended) axes
    notes: list[str] = field(default_factory=list)
    rounds: int = 0
    planned: list[RunConfig] = field(default_factory=list)  # every config, in launch order
    summaries: dict[str, dict[str, Path]] = field(default_factory=dict)  # log folder -> files
    not_awaited: int = 0  # runs handed to an executor that does not wait (slurm --slurm-no-wait)
    trackers: TrackerSettings | None = None  # passed to every run (scalefree.trackers)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        """2: a usage error stopped runs; 1: a run failed or was interrupted; else 0."""
        if self.count("error"):
            return 2
        if self.count("failed") or self.count("interrupted"):
            return 1
        return 0

    def summary_line(self) -> str:
        c = Counter(r.status for r in self.results)
        ran = [
            f"{c[s]} {s}"
            for s in ("completed", "diverged", "failed", "interrupted", "error")
            if c[s]
        ]
        parts = [f"{len(self.results) + self.not_awaited} runs"]
        if ran or not self.not_awaited:
            parts.append("ran " + (", ".join(ran) if ran else "none"))
        if c["skipped"]:
            prev = Counter(r.previous for r in self.results if r.status == "skipped")
            detail = ", ".join(f"{n} {s}" for s, n in sorted(prev.items()))
            parts.append(f"skipped {c['skipped']} already finished ({detail})")
        if c["running_elsewhere"]:
            parts.append(f"{c['running_elsewhere']} running elsewhere")
        if self.not_awaited:
            parts.append(f"{self.not_awaited} submitted, not awaited")
        if self.rounds:
            parts.append(f"{self.rounds} extension round(s)")
        return "; ".join(parts)


def format_result(r: TaskResult, index: int, total: int) -> str:
    """One progress line: ``[ 3/12] completed    0.0912    512.3s  NAME`` (columns named by
    :func:`scalefree.sweep.progress.progress_header`)."""
    width = len(str(total))
    err = f"{r.test_error:.4f}" if r.test_error is not None else "-"
    status = r.status if r.status != "skipped" else f"skipped ({r.previous})"
    line = f"[{index:>{width}}/{total}] {status:<19} {err:>10} {r.wall_time_s:>9.1f}s  {r.name}"
    if r.message and r.status in ("failed", "error", "interrupted", "running_elsewhere"):
        line += f"  ({r.message.splitlines()[0]})"
    return line


def run_sweeps(
    sweeps: Sequence[Sweep],
    executor: Executor,
    *,
    retry_failed: bool = False,
    extend_boundary: bool = False,
    max_extensions: int = 3,
    best_seeds: Sequence[int] = (),
    dry_run: bool = False,
    write_tables: bool = True,
    progress: str = "plain",
    out: TextIO | None = None,
    err: TextIO | None = None,
    trackers: TrackerSettings | None = None,
) -> SweepReport:
    """Run (or, with ``dry_run``, list) the sweeps; see the module docstring.

    Progress goes to ``out`` (one line per finished run under a header, a bar, or nothing:
    ``progress`` is one of PROGRESS_MODES); with ``dry_run`` the run names go to
    ``out``, one per line (finished ones annotated), and every other message to ``err``.
    ``trackers`` are passed to every run (:mod:`scalefree.trackers`).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    info: Callable[[str], None] = (
        (lambda s: print(s, file=err, flush=True))
        if dry_run
        else (lambda s: print(s, file=out, flush=True))
    )
    report = SweepReport(sweeps=list(sweeps))
    report.trackers = trackers
    configs = _unique(c for s in report.sweeps for c in s.configs())
    _run_round(configs, executor, report, info, out, retry_failed, dry_run, 0, progress)

    if extend_boundary:
        for round_no in range(1, max_extensions + 1):
            new_configs = _extend(report, info, quiet=dry_run)
            if not new_configs:
                break
            report.rounds = round_no
            _run_round(
                new_configs,
                executor,
                report,
                info,
                out,
                retry_failed,
                dry_run,
                round_no,
                progress,
            )
        else:
            _note_remaining_edges(report, info, max_extensions)
    if best_seeds:
        reseeded = _best_seed_configs(report, best_seeds, info, extend_boundary)
        if reseeded:
            _run_round(reseeded, executor, report, info, out, retry_failed, dry_run, -1, progress)

    if dry_run:
        info(f"dry run: {_plan_line(report)}")
        return report
    if write_tables:
        _write_tables(report, info)
    for note in report.notes:
        info(f"note: {note}")
    info(f"sweep {'submitted' if report.not_awaited else 'done'}: {report.summary_line()}")
    return report


def _unique(configs) -> list[RunConfig]:
    seen: dict[str, RunConfig] = {}
    for c in configs:
        seen.setdefault(str(run_dir_of(c)), c)
    return list(seen.values())


def _run_round(
    configs: list[RunConfig],
    executor: Executor,
    report: SweepReport,
    info: Callable[[str], None],
    out: TextIO,
    retry_failed: bool,
    dry_run: bool,
    round_no: int,
    progress: str = "plain",
) -> None:
    seen = {str(run_dir_of(p)) for p in report.planned}
    configs = [c for c in configs if str(run_dir_of(c)) not in seen]
    report.planned += configs
    tasks = [RunTask(c, retry_failed=retry_failed, trackers=report.trackers) for c in configs]
    decided = {id(t): precheck(t) for t in tasks}
    to_run = [t for t in tasks if decided[id(t)] is None]
    held = [r for r in decided.values() if r is not None]
    finished = sum(r.status == "skipped" for r in held)
    elsewhere = len(held) - finished
    what = {0: "runs", -1: "runs of the best points with more seeds"}.get(
        round_no, f"new runs (extension round {round_no})"
    )
    info(
        f"{len(tasks)} {what}: {len(to_run)} to run, {finished} already finished, "
        f"{elsewhere} running elsewhere; executor {executor.name}"
    )
    if dry_run:
        for t in tasks:
            r = decided[id(t)]
            note = "" if r is None else f"  # {r.previous or r.status}"
            print(f"{t.config.run_name()}{note}", file=out, flush=True)
        report.results += held
        return
    for r in held:
        if r.status == "running_elsewhere":
            info(f"running elsewhere ({r.message or 'locked'}): {r.name}")
    report.results += held
    done = [0]
    display = SweepProgress(progress, len(to_run), info)

    def on_result(r: TaskResult) -> None:
        done[0] += 1
        display.result(format_result(r, done[0], len(to_run)))

    try:
        returned = executor.run(to_run, on_result)
    finally:
        display.close()
    report.results += returned
    report.not_awaited += len(to_run) - len(returned)


def result_table(sweep: Sweep, method: str) -> dict[tuple[float, float], float | None]:
    """Mean final test error per grid point of one method, read from the runs' result.json; None
    where a seed is unfinished (the summary model's ``mean_when_complete``: extension waits)."""
    return {
        point: mean_error([finished_result(run_dir_of(c)) for c in cs])
        for point, cs in sweep.method_configs(method).items()
    }


def _decide(sweep: Sweep, method: str) -> tuple[int, Extension]:
    """(points without a complete result, extension): the one reading of a method's results that
    both an extension round and the closing note use."""
    axes = sweep.axes[method]
    table = result_table(sweep, method)
    missing = missing_points(table, axes)
    if missing:
        return len(missing), Extension()
    return 0, boundary_extension(table, axes, sweep.decay_axis)


def _extend(report: SweepReport, info: Callable[[str], None], quiet: bool) -> list[RunConfig]:
    """One extension round's new configs; updates ``report.sweeps`` with the extended axes."""
    new_configs: list[RunConfig] = []
    for i, sweep in enumerate(report.sweeps):
        for method, axes in list(sweep.axes.items()):
            missing, ext = _decide(sweep, method)
            if missing and not quiet:
                report.notes.append(
                    f"{sweep.label} {method}: grid not extended, {missing} of "
                    f"{len(axes)} points have no result yet (rerun the sweep to continue)"
                )
            if not ext:
                continue
            new_axes = ext.apply(axes)
            sweep = sweep.with_axes(method, new_axes)
            points = new_points(axes, new_axes)
            added = [c for p in points for c in sweep.method_configs(method, [p])[p]]
            new_configs += added
            info(f"extend {sweep.label} {method}: {_extension_line(ext)} ({len(added)} runs)")
        report.sweeps[i] = sweep
    return new_configs


def _best_seed_configs(
    report: SweepReport, seeds: Sequence[int], info: Callable[[str], None], extending: bool
) -> list[RunConfig]:
    """The runs of each method's best grid point with the ``seeds`` it lacks (see module doc)."""
    configs: list[RunConfig] = []
    for sweep in report.sweeps:
        extra = [s for s in dict.fromkeys(seeds) if s not in sweep.seeds]
        for method in sweep.axes:
            missing, ext = _decide(sweep, method)
            best = best_point(result_table(sweep, method))
            if missing or best is None:
                report.notes.append(
                    f"{sweep.label} {method}: best point not reseeded, its grid is unfinished"
                )
                continue
            if extending and ext:
                report.notes.append(
                    f"{sweep.label} {method}: best point reseeded on the grid's edge (the "
                    "extension rounds ran out; raise --max-extensions to look past it)"
                )
            added = [sweep.config(method, best[0], best[1], s) for s in extra]
            configs += added
            if added:
                info(
                    f"reseed {sweep.label} {method}: best (eta0 {fmt_num(best[0])}, "
                    f"{sweep.decay_axis.name} {fmt_num(best[1])}) with seeds "
                    f"{' '.join(map(str, extra))} ({len(added)} runs)"
                )
    return configs


def _extension_line(ext: Extension) -> str:
    e, w = ext.best  # type: ignore[misc]
    values = [f"eta0 {fmt_num(v)}" for v in ext.eta0s]
    values += [f"{ext.axis.name} {fmt_num(v)}" for v in ext.weight_decays]
    return (
        f"best (eta0 {fmt_num(e)}, {ext.axis.name} {fmt_num(w)}) lies on the "
        f"{' and '.join(ext.edges)} edge -> adding {', '.join(values)}"
    )


def _note_remaining_edges(report: SweepReport, info: Callable[[str], None], rounds: int) -> None:
    for sweep in report.sweeps:
        for method in sweep.axes:
            _, ext = _decide(sweep, method)
            if ext:
                report.notes.append(
                    f"{sweep.label} {method}: the best point is still on the "
                    f"{' and '.join(ext.edges)} edge after {rounds} extension round(s); "
                    "rerun with a larger --max-extensions"
                )


def _plan_line(report: SweepReport) -> str:
    n = len(report.planned)
    finished = report.count("skipped")
    elsewhere = report.count("running_elsewhere")
    return f"{n} runs, {n - finished - elsewhere} to run, {finished} finished, {elsewhere} running elsewhere"


def _write_tables(report: SweepReport, info: Callable[[str], None]) -> None:
    from scalefree.plots.tables import write_summary
    from scalefree.rundir import load_runs

    for folder in dict.fromkeys(str(Path(c.log_folder)) for c in report.planned):
        if not Path(folder).is_dir():
            continue
        runs = load_runs(folder)
        if not runs:
            continue
        paths = write_summary(runs, folder)
        report.summaries[folder] = paths
        info(
            f"summary of {len(runs)} runs in {folder}: " + ", ".join(str(p) for p in paths.values())
        )


__all__ = ["SweepReport", "format_result", "result_table", "run_sweeps"]
