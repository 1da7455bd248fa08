"""The executors of ``--executor``: one registry entry each, like optimizers and models.

An entry's factory builds its executor from the parsed sweep flags and the log folder;
``package`` names the optional package it needs (installed with the extra of the same name as
the executor), checked before anything is planned. :func:`make_executor` is the one place the
sweep CLI (and the reproduce presets) turn ``--executor`` into an executor.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from scalefree.errors import UsageError
from scalefree.registry import Entry, Registry
from scalefree.sweep.executors import (
    Executor,
    LocalExecutor,
    RayExecutor,
    SlurmExecutor,
    missing_extra,
    parse_slurm_time,
    require_positive,
)


@dataclass(frozen=True)
class ExecutorEntry(Entry[Executor]):
    """An executor: ``factory(args, log_folder)``; ``package``: the optional package it needs."""

    package: str | None = None


def _local(args: argparse.Namespace, log_folder: str | Path) -> Executor:
    return LocalExecutor(workers=args.workers, runs_per_gpu=args.runs_per_gpu)


def _ray(args: argparse.Namespace, log_folder: str | Path) -> Executor:
    require_positive("--ray-num-cpus", args.ray_num_cpus)
    init = {} if args.ray_num_cpus is None else {"num_cpus": args.ray_num_cpus}
    return RayExecutor(
        address=args.ray_address,
        runs_per_gpu=args.runs_per_gpu,
        cpus_per_run=args.cpus_per_run,
        init_kwargs=init,
    )


# The --slurm-NAME flags that reach SlurmExecutor as NAME= unchanged.
SLURM_PASSED = (
    "partition",
    "gpus_per_node",
    "cpus_per_task",
    "mem_gb",
    "array_parallelism",
    "account",
    "qos",
    "constraint",
    "cluster",
    "poll_s",
)


def _slurm(args: argparse.Namespace, log_folder: str | Path) -> Executor:
    if args.slurm_poll_s <= 0:
        raise UsageError(f"--slurm-poll-s must be positive, got {args.slurm_poll_s}")
    passed = {name: getattr(args, f"slurm_{name}") for name in SLURM_PASSED}
    return SlurmExecutor(
        args.slurm_folder or Path(log_folder) / "slurm",
        time_min=parse_slurm_time(args.slurm_time),
        runs_per_gpu=args.runs_per_gpu,
        wait=not args.slurm_no_wait,
        **passed,
    )


EXECUTORS: Registry[ExecutorEntry] = Registry("executor", ExecutorEntry)
EXECUTORS.add("local", _local, "worker processes on this machine")
EXECUTORS.add("ray", _ray, "tasks on a Ray cluster", package="ray")
EXECUTORS.add("slurm", _slurm, "a Slurm job array (submitit)", package="submitit")


def make_executor(args: argparse.Namespace, log_folder: str | Path) -> Executor:
    """The executor chosen by ``--executor`` with its options; validates them."""
    LocalExecutor.check_options(args.workers, args.runs_per_gpu)
    entry = EXECUTORS.get(args.executor)
    # Say so before planning anything when the executor's optional package is missing.
    if entry.package is not None and importlib.util.find_spec(entry.package) is None:
        raise missing_extra(entry.package, entry.name)
    return entry.build(args, log_folder)


__all__ = ["EXECUTORS", "ExecutorEntry", "make_executor"]
