"""One sweep task = one run: lock it, skip it if finished, train it, record a crash as ``failed``.

:func:`run_task` is what every executor ships to its workers (a spawned process, a Ray task, a
Slurm array job), so it and its argument :class:`RunTask` are picklable and import torch only
after the GPU assignment is in place.

Statuses of a :class:`TaskResult`:

=================== ==========================================================================
completed, diverged  the trainer finished the run in this launch (result.json written by it)
failed               the run raised; this module wrote result.json with status ``failed``
skipped              result.json already existed (``previous`` says its status); not retrained
running_elsewhere    another process holds the run's lock (another launch is training it)
error                a usage error (bad flag combination, missing dataset): nothing is written,
                     so the run starts cleanly once the problem is fixed
interrupted          the worker died or the job was lost (no result.json; a rerun resumes it)
=================== ==========================================================================

Diverged and failed runs are final: a later launch skips them. ``retry_failed`` reruns a failed
run (its old result.json is kept as ``result.failed.json``); diverged runs are never retried,
since divergence is the run's outcome, not an accident (delete the run directory to redo one).
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalefree import results
from scalefree.errors import Terminated, UsageError
from scalefree.io import atomic_write_json
from scalefree.locking import LOCK_FILE, RunLock, holder, is_locked
from scalefree.results import CONFIG_FILE, DIVERGED_ERROR, RESULT_FILE, STATUSES, read_metrics
from scalefree.train.config import RunConfig

FAILED_RESULT_KEPT = "result.failed.json"
FINAL_STATUSES = STATUSES  # what result.json can say
TASK_STATUSES = (
    "completed",
    "diverged",
    "failed",
    "skipped",
    "running_elsewhere",
    "error",
    "interrupted",
)


@dataclass(frozen=True)
class RunTask:
    """One run to execute, with how to execute it.

    Args:
        config: the run.
        retry_failed: rerun it if its result.json says ``failed``.
        cuda_visible_devices: GPU(s) for a freshly spawned worker (set before CUDA starts).
        num_threads: ``torch.set_num_threads`` for the run (CPU cores / concurrent runs).
    """

    config: RunConfig
    retry_failed: bool = False
    cuda_visible_devices: str | None = None
    num_threads: int | None = None

    @property
    def run_dir(self) -> Path:
        return run_dir_of(self.config)


@dataclass(frozen=True)
class TaskResult:
    """What happened to one run in this launch (see the module docstring for ``status``)."""

    name: str
    run_dir: str
    status: str
    test_error: float | None = None
    wall_time_s: float = 0.0
    message: str | None = None
    previous: str | None = None  # status found in result.json when skipped

    @property
    def final_status(self) -> str:
        """completed | diverged | failed of the run on disk, when it has one."""
        return self.previous if self.status == "skipped" and self.previous else self.status


def run_dir_of(config: RunConfig) -> Path:
    return Path(config.log_folder) / config.run_name()


def read_result(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's result.json, or None when it has none or a damaged one (then the run is
    unfinished: the worker's trainer sets the damaged file aside, names it, and resumes)."""
    try:
        return results.read_result(run_dir)
    except results.DamagedFile:
        return None


def precheck(task: RunTask) -> TaskResult | None:
    """Decide in the launcher, without a worker, whether a run needs one.

    Returns the TaskResult of a run that will not be dispatched (finished, or locked by another
    launch), or None when it must run. The worker checks again under the lock, since another
    launch may finish or take the run in between.
    """
    run_dir = task.run_dir
    name = task.config.run_name()
    result = read_result(run_dir)
    if result is not None and not (task.retry_failed and result.get("status") == "failed"):
        return _skipped(name, run_dir, result)
    if is_locked(run_dir):
        return TaskResult(name, str(run_dir), "running_elsewhere", message=holder(run_dir))
    return None


def _skipped(name: str, run_dir: Path, result: dict[str, Any]) -> TaskResult:
    status = str(result.get("status"))
    return TaskResult(
        name,
        str(run_dir),
        "skipped",
        test_error=result.get("test_error") if status == "completed" else None,
        message=result.get("message"),
        previous=status,
    )


def run_task(task: RunTask) -> TaskResult:
    """Run one task in this process; see the module docstring. Never raises for a run's crash."""
    # GPU pinning first: CUDA reads CUDA_VISIBLE_DEVICES once, when it initializes.
    if task.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = task.cuda_visible_devices
    config = task.config
    name, run_dir = config.run_name(), task.run_dir
    started = time.perf_counter()
    created = not run_dir.exists()
    lock = RunLock(run_dir)
    if not lock.acquire():
        return TaskResult(name, str(run_dir), "running_elsewhere", message=holder(run_dir))
    outcome: TaskResult | None = None
    try:
        outcome = _run_locked(task, run_dir, started)
        return outcome
    finally:
        lock.release()
        if created and outcome is not None and outcome.status == "error":
            _remove_if_only_lock(run_dir)  # a usage error writes nothing: not even the folder


def _remove_if_only_lock(run_dir: Path) -> None:
    with contextlib.suppress(OSError):
        if [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            (run_dir / LOCK_FILE).unlink()
            run_dir.rmdir()


def _run_locked(task: RunTask, run_dir: Path, started: float) -> TaskResult:
    """run_task's body, under the run's lock."""
    config = task.config
    name = config.run_name()
    result = read_result(run_dir)
    if result is not None:
        if not (task.retry_failed and result.get("status") == "failed"):
            return _skipped(name, run_dir, result)
        # Keep the failure's record beside the rerun instead of erasing it.
        os.replace(run_dir / RESULT_FILE, run_dir / FAILED_RESULT_KEPT)
    try:
        outcome = _train(task)
    except UsageError as exc:
        return TaskResult(name, str(run_dir), "error", message=str(exc))
    except Terminated as exc:  # SIGTERM (the launcher stopping, or the parent gone)
        return interrupted(task, str(exc))
    except Exception as exc:  # noqa: BLE001 - any crash of a run is recorded, not raised
        wall = time.perf_counter() - started
        message = f"{type(exc).__name__}: {exc}"
        record_failure(config, message, wall, traceback.format_exc())
        return TaskResult(name, str(run_dir), "failed", wall_time_s=wall, message=message)
    r = outcome.result
    if outcome.skipped:  # finished by someone between our check and the trainer's
        return _skipped(name, run_dir, r)
    return TaskResult(
        name,
        str(run_dir),
        str(r["status"]),
        test_error=r.get("test_error"),
        wall_time_s=time.perf_counter() - started,
        message=r.get("message"),
    )


def _train(task: RunTask):
    import torch

    from scalefree.train import trainer

    if task.num_threads:
        torch.set_num_threads(task.num_threads)
    # The trainer loads the data itself: everything that shapes it (synthetic_sizes included)
    # is in the RunConfig.
    return trainer.train(task.config, resume=True, run_locked=True)


def record_failure(
    config: RunConfig, message: str, wall_time_s: float, tb: str | None = None
) -> dict[str, Any]:
    """Write result.json with status ``failed`` (atomically), in the results.py schema.

    The last evaluation that made it to metrics.jsonl is kept; ``test_error`` is DIVERGED_ERROR as
    for every unfinished outcome. config.json is written too when the crash came before the
    trainer wrote it, so readers (load_runs, the summary tables) see the run.
    """
    run_dir = run_dir_of(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / CONFIG_FILE).exists():
        atomic_write_json(run_dir / CONFIG_FILE, config.to_dict() | {"run_name": run_dir.name})
    rows = read_metrics(run_dir)
    last = rows[-1] if rows else None
    result = {
        "status": "failed",
        "epochs_completed": int(last["epoch"]) if last else 0,
        "steps": int(last.get("step") or 0) if last else 0,
        "wall_time_s": round(wall_time_s, 3),
        "final": None,
        "last_evaluation": last,
        "test_error": DIVERGED_ERROR,
        "best_test_acc": max(
            (r["test_acc"] for r in rows if isinstance(r.get("test_acc"), (int, float))),
            default=None,
        ),
        "eval_split": "val" if config.validation else "test",
        "message": message,
        "traceback": tb,
    }
    atomic_write_json(run_dir / RESULT_FILE, result)
    return result


def interrupted(task: RunTask, why: str) -> TaskResult:
    """The result of a task whose worker died or whose job was lost (nothing written)."""
    return TaskResult(task.config.run_name(), str(task.run_dir), "interrupted", message=why)


__all__ = [
    "FINAL_STATUSES",
    "TASK_STATUSES",
    "RunTask",
    "TaskResult",
    "interrupted",
    "precheck",
    "read_result",
    "record_failure",
    "run_dir_of",
    "run_task",
]
