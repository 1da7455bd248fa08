"""``scalefree sweep``: an optimizer x eta0 x weight-decay x seed grid of training runs.

    scalefree sweep --model ResNet20 --no-batch-norm --train-epochs 300 --log-folder logs/R20 \\
        --optim-methods AdamL2 AdamW --eta0-vals 5e-5 1e-4 5e-4 1e-3 5e-3 \\
        --weight-decay-vals 0 1e-5 5e-5 1e-4 5e-4 1e-3 --extend-boundary --workers 4

Every ``scalefree train`` flag sets the runs' shared settings (``--optim-method``, ``--eta0``,
``--weight-decay``, ``--decay-timescale`` and ``--seed`` are replaced by the grid flags).
``--decay-timescale-vals E1 E2 ...`` sweeps the decay timescale in epochs (Wang & Aitchison 2024)
instead of the weight decay; the tables and heatmaps then show eta0 x timescale. A method may
carry switches of its rule: ``--optim-methods AdamW AdamW+CWD`` (cautious weight decay). Relaunching the same command is
safe and cheap: finished runs are skipped, interrupted ones resume from their checkpoint, runs
another launch is training are left alone; ``--retry-failed`` reruns the failed ones.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from scalefree.cli_flags import add_int
from scalefree.errors import UsageError
from scalefree.rundir.summary import TIMESCALE_AXIS, WEIGHT_DECAY_AXIS
from scalefree.sweep.executor_choice import EXECUTORS, make_executor
from scalefree.sweep.executors import Executor
from scalefree.sweep.grid import (
    DEFAULT_METHODS,
    PAPER_ETA0S,
    PAPER_WEIGHT_DECAYS,
    Sweep,
    make_sweep,
    validate_seeds,
)
from scalefree.sweep.progress import PROGRESS_MODES
from scalefree.sweep.runner import SweepReport, run_sweeps
from scalefree.trackers import add_tracker_arguments, settings_from_args
from scalefree.trackers.sweep import end_sweep, start_tracked_sweep
from scalefree.train.cli import add_config_arguments, config_from_args

# RunConfig fields the grid sets (and the trainer's progress display, off for parallel runs).
GRID_FIELDS = ("optim_method", "eta0", "weight_decay", "decay_timescale", "seed", "progress")
DEFAULT_MAX_EXTENSIONS = 3


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sweep",
        help="train a grid of optimizer x eta0 x weight decay x seed (local, Ray or Slurm)",
        description="Train every run of an optimizer x eta0 x weight-decay x seed grid, in "
        "parallel, skipping finished runs and resuming interrupted ones; then write the summary "
        "tables (summary.csv, best.csv, summary.md) into the log folder.",
    )
    g = p.add_argument_group("grid")
    g.add_argument(
        "--optim-methods",
        nargs="*",
        default=list(DEFAULT_METHODS),
        metavar="METHOD",
        help="optimizers to sweep, each optionally with switches of its rule: AdamW+CWD "
        "(--cautious-decay), AdamW+Caution (--caution) (default: %(default)s)",
    )
    g.add_argument(
        "--eta0-vals",
        nargs="*",
        type=float,
        default=list(PAPER_ETA0S),
        metavar="ETA0",
        help="initial step sizes (default: the paper's grid, %(default)s)",
    )
    decay = g.add_mutually_exclusive_group()
    decay.add_argument(
        "--weight-decay-vals",
        nargs="*",
        type=float,
        default=list(PAPER_WEIGHT_DECAYS),
        metavar="WD",
        help="weight decays (default: the paper's grid, %(default)s)",
    )
    decay.add_argument(
        "--decay-timescale-vals",
        nargs="*",
        type=float,
        metavar="EPOCHS",
        help="sweep the decay timescale in epochs (train's --decay-timescale) instead of the "
        "weight decay; decoupled and proximal decay only",
    )
    g.add_argument(
        "--seeds",
        nargs="*",
        type=int,
        default=[0],
        metavar="SEED",
        help="seeds (default: %(default)s); each seed has its own stored initial weights unless "
        "--init-seed is given",
    )
    add_control_arguments(p, extend_default=False, max_extensions=DEFAULT_MAX_EXTENSIONS)
    add_executor_arguments(p)
    add_config_arguments(p.add_argument_group("run settings (scalefree train flags)"), GRID_FIELDS)
    add_tracker_arguments(p)
    p.set_defaults(func=run)
    return p


def add_control_arguments(
    p: argparse.ArgumentParser, *, extend_default: bool, max_extensions: int
) -> None:
    """--extend-boundary, --max-extensions, --retry-failed, --dry-run, --progress (shared with
    the presets)."""
    g = p.add_argument_group("sweep control")
    g.add_argument(
        "--extend-boundary",
        action=argparse.BooleanOptionalAction,
        default=extend_default,
        help="while a method's best setting lies on the grid's edge, add the next 1-5 per decade "
        "value beyond it and run the new points (the paper's protocol, Section 4; default: "
        f"{'on' if extend_default else 'off'})",
    )
    add_int(
        g,
        "--max-extensions",
        "at most N extension rounds (default: %(default)s)",
        minimum=0,
        default=max_extensions,
    )
    g.add_argument(
        "--best-seeds",
        nargs="*",
        type=int,
        metavar="SEED",
        help="after the grid (and its extensions), run each method's best point again with these "
        "seeds; the best is chosen on the grid's seeds only, so the extra seeds do not change it "
        "(default: none)",
    )
    g.add_argument(
        "--retry-failed",
        action="store_true",
        help="rerun runs whose result.json says failed (diverged runs are never rerun)",
    )
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="print the run names (one per line; finished ones marked) and run nothing",
    )
    g.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="progress display: auto (a bar over the runs on a terminal, a line per finished run "
        "otherwise), bar, plain (a line per run: status, test error, time, name), none (only the "
        "summary); the runs themselves train silently (default: %(default)s)",
    )


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """Executor choice and its options (shared with the reproduce presets)."""
    _local_arguments(p)
    _ray_arguments(p)
    _slurm_arguments(p)


def _local_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument(
        "--executor",
        choices=EXECUTORS.names(),
        default="local",
        help="where runs execute (default: local)",
    )
    add_int(g, "--workers", "local: runs at once (default: GPUs x --runs-per-gpu, or 1 on the CPU)")
    add_int(
        g, "--runs-per-gpu", "runs sharing one GPU at once (default: 1)", default=1, metavar="K"
    )


def _ray_arguments(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("ray executor")
    r.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this Ray cluster (e.g. auto, ray://head:10001); default: start a local one",
    )
    add_int(r, "--ray-num-cpus", "CPUs of a local Ray instance (default: all)")
    add_int(r, "--cpus-per-run", "Ray CPUs (and threads) per run (default: 1)", default=1)


def _slurm_arguments(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("slurm executor (submitit)")
    s.add_argument("--slurm-partition", metavar="NAME", help="partition (default: the cluster's)")
    s.add_argument(
        "--slurm-time",
        default="24:00:00",
        metavar="TIME",
        help="time limit per job, minutes or [D-]HH:MM[:SS]; a job that hits it is requeued "
        "and resumes from its checkpoint (default: %(default)s)",
    )
    add_int(
        s,
        "--slurm-gpus-per-node",
        "GPUs per job (default: 1, or 0 with --device cpu); a job runs N x --runs-per-gpu runs",
        minimum=0,
    )
    add_int(s, "--slurm-cpus-per-task", "CPUs per job")
    s.add_argument("--slurm-mem-gb", type=float, metavar="GB", help="memory per job")
    add_int(s, "--slurm-array-parallelism", "jobs at once (default: %(default)s)", default=64)
    s.add_argument("--slurm-account", metavar="NAME", help="account to charge")
    s.add_argument("--slurm-qos", metavar="NAME", help="quality of service")
    s.add_argument(
        "--slurm-constraint",
        metavar="FEATURES",
        help="node constraint (e.g. a GPU type)",
    )
    s.add_argument(
        "--slurm-folder",
        type=Path,
        metavar="DIR",
        help="submitit's job files and logs (default: <log-folder>/slurm)",
    )
    s.add_argument(
        "--slurm-cluster",
        choices=("slurm", "local", "debug"),
        default="slurm",
        help="submitit cluster (default: slurm); local and debug run the jobs on this machine, "
        "for testing",
    )
    s.add_argument(
        "--slurm-poll-s",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds between job status checks (default: %(default)s)",
    )
    s.add_argument(
        "--slurm-no-wait",
        action="store_true",
        help="submit the job array and return (relaunch the same command later to collect, "
        "extend and summarize)",
    )


def check_control(args: argparse.Namespace) -> None:
    if args.executor == "slurm" and args.slurm_no_wait and args.extend_boundary:
        raise UsageError(
            "--slurm-no-wait cannot be combined with --extend-boundary (extension needs the "
            "results); relaunch with --extend-boundary once the jobs are done"
        )


def run(args: argparse.Namespace) -> int:
    return launch(args, _grid).exit_code


def _grid(args: argparse.Namespace) -> list[Sweep]:
    base = config_from_args(args, progress="none")  # parallel runs train silently
    if args.decay_timescale_vals is not None:
        values, axis = args.decay_timescale_vals, TIMESCALE_AXIS
    else:
        values, axis = args.weight_decay_vals, WEIGHT_DECAY_AXIS
    return [make_sweep(base, args.optim_methods, args.eta0_vals, values, args.seeds, axis)]


def launch(
    args: argparse.Namespace,
    build: Callable[[argparse.Namespace], list[Sweep]],
    *,
    banner: Callable[[list[Sweep]], str] | None = None,
) -> SweepReport:
    """The one launch path of ``sweep`` and the ``reproduce`` presets: check the sweep-control
    flags, build the sweeps from the parsed flags, make the executor, run (or list) the sweeps and
    write the summary tables into the first sweep's log folder.

    ``banner(sweeps)``, when given, is printed before a real launch (not with --dry-run, whose
    standard output is the run names only).
    """
    check_control(args)
    trackers = settings_from_args(args)  # a tracker's missing extra: exit 2 before any run
    sweeps = build(args)
    log_folder = sweeps[0].base.log_folder
    executor = make_executor(args, log_folder)
    if banner is not None and not args.dry_run:
        print(banner(sweeps), flush=True)
    if trackers is not None and not args.dry_run:
        trackers = start_tracked_sweep(trackers, sweeps)
    report = run_sweeps(
        sweeps,
        executor,
        retry_failed=args.retry_failed,
        extend_boundary=args.extend_boundary,
        max_extensions=args.max_extensions,
        best_seeds=validate_seeds(args.best_seeds, "--best-seeds") if args.best_seeds else (),
        dry_run=args.dry_run,
        progress=args.progress,
        trackers=trackers,
    )
    if trackers is not None and not args.dry_run:
        end_sweep(trackers, Path(log_folder), Counter(r.final_status for r in report.results))
    _print_job_ids(executor)
    return report


def _print_job_ids(executor: Executor) -> None:
    ids = getattr(executor, "job_ids", None)
    if ids and not getattr(executor, "wait", True):
        print(f"submitted {len(ids)} Slurm job(s): {ids[0]} ... {ids[-1]}")


__all__ = [
    "add_control_arguments",
    "add_executor_arguments",
    "add_parser",
    "launch",
    "make_executor",
    "run",
]
