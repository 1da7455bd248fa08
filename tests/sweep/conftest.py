"""Shared pieces of the sweep tests: tiny real runs, one finished sweep, a fake executor.

Real runs are as small as training gets: ResNet20 on 64 + 64 synthetic images, 2 optimizer steps,
one epoch, on the CPU (a few seconds each, most of it spawning the worker and importing torch).
The finished 2-run sweep is built once per session; tests that change it work on a copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.rundir import RESULT_FILE
from scalefree.rundir.write import finished_result
from scalefree.sweep.tasks import RunTask, TaskResult
from scalefree.train.config import RunConfig
from tests.fakeruns import make_run

# Every `scalefree train` setting of a tiny run, as sweep flags.
TINY_FLAGS = [
    "--dataset", "synthetic", "--model", "ResNet20", "--train-epochs", "1", "--max-steps", "2",
    "--batchsize", "32", "--device", "cpu", "--synthetic-sizes", "64", "64",
]  # fmt: skip
# The session's finished sweep: one method, one eta0, two weight decays -> 2 runs.
GRID_FLAGS = ["--optim-methods", "AdamW", "--eta0-vals", "1e-3", "--weight-decay-vals", "0", "5e-4"]


def tiny_config(log_folder: Path, **changes) -> RunConfig:
    """The RunConfig the sweep CLI builds from TINY_FLAGS (grid fields from ``changes``)."""
    return RunConfig(
        dataset="synthetic", model="ResNet20", train_epochs=1, max_steps=2, batchsize=32,
        device="cpu", log_folder=str(log_folder), progress="none", synthetic_sizes=(64, 64),
        **changes,
    )  # fmt: skip


def sweep(log_folder: Path, *extra: str, grid: list[str] | None = None) -> int:
    """`scalefree sweep` on a tiny grid in ``log_folder``; returns the exit code."""
    args = ["sweep", *TINY_FLAGS, *(GRID_FLAGS if grid is None else grid)]
    return main([*args, "--log-folder", str(log_folder), "--workers", "2", *extra])


def grid_run_dirs(log_folder: Path) -> list[Path]:
    """Run directories of GRID_FLAGS' two runs, in grid order."""
    return [
        log_folder
        / tiny_config(log_folder, optim_method="AdamW", eta0=1e-3, weight_decay=wd).run_name()
        for wd in (0.0, 5e-4)
    ]


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory) -> Path:
    """A log folder holding the finished 2-run tiny sweep (built once; copy before changing)."""
    folder = tmp_path_factory.mktemp("finished") / "logs"
    assert sweep(folder) == 0
    for d in grid_run_dirs(folder):
        assert finished_result(d)["status"] == "completed"
    return folder


@pytest.fixture
def sweep_copy(finished_sweep, tmp_path) -> Path:
    """A private copy of the finished sweep."""
    dst = tmp_path / "logs"
    shutil.copytree(finished_sweep, dst)
    return dst


def result_mtimes(folder: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in folder.glob(f"*/{RESULT_FILE}")}


class FakeExecutor:
    """Writes each task's run as a finished fake run (tests.fakeruns) instead of training it.

    ``outcome(method, eta0, wd, seed)`` returns a test error or a status string, as make_grid's
    ``error_fn``. Records every task it was given, so tests can assert what was dispatched.
    """

    name = "fake"

    def __init__(self, outcome: Callable[[str, float, float, int], float | str]) -> None:
        self.outcome = outcome
        self.dispatched: list[RunConfig] = []

    def run(self, tasks: list[RunTask], on_result) -> list[TaskResult]:
        results = []
        for t in tasks:
            c = t.config
            self.dispatched.append(c)
            out = self.outcome(c.optim_method, c.eta0, c.weight_decay, c.seed)
            status = out if isinstance(out, str) else "completed"
            path = make_run(
                c.log_folder, optim_method=c.optim_method, eta0=c.eta0,
                weight_decay=c.weight_decay, seed=c.seed, model=c.model,
                batch_norm=c.batch_norm, dataset=c.dataset, epochs=c.train_epochs,
                status=status, test_acc=1.0 - (0.0 if isinstance(out, str) else out),
                with_stats=False, loss_multiplier=c.loss_multiplier,
            )  # fmt: skip
            assert path == t.run_dir, "fake run written where the sweep expects it"
            r = finished_result(path)
            res = TaskResult(
                c.run_name(),
                str(path),
                r["status"] if r else "interrupted",
                test_error=r.get("test_error") if r and r["status"] == "completed" else None,
            )
            results.append(res)
            on_result(res)
        return results
