"""One sweep task = one run: lock it, skip it if finished, train it, record a crash as ``failed``.

:func:`run_task` is what every executor ships to its workers (a spawned process, a Ray task, a
Slurm array job), so it and its argument :class:`RunTask` are picklable and CUDA starts only
after the GPU assignment is in place.

Is the run finished? Asked once per place, each for its own reason:

* the launcher (:func:`precheck`), so that a finished or locked run costs no worker (a process,
  a Ray task, a Slurm job) and the launch can count it;
* the worker, under the run's lock (:func:`run_task`), which is the answer that counts: another
  launch may have finished or taken the run since the precheck.

The trainer looks at result.json again because ``train`` is also ``scalefree train``'s entry
point; under the worker's lock it finds what the worker found (only a damaged result.json, which
both treat as unfinished, is then set aside by the trainer, which resumes the run).

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

from scalefree.errors import Terminated, UsageError
from scalefree.io import refuse_symlinks_in
from scalefree.locking import LOCK_FILE, RunLock, holder, is_locked
from scalefree.rundir import FAILED_RESULT_KEPT, RESULT_FILE, STATUSES, run_dir_of
from scalefree.rundir.write import finished_result, record_failure
from scalefree.trackers.base import TrackerSettings
from scalefree.train.config import RunConfig

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
        trackers: experiment trackers the run reports to (not part of its identity).
    """

    config: RunConfig
    retry_failed: bool = False
    cuda_visible_devices: str | None = None
    num_threads: int | None = None
    trackers: TrackerSettings | None = None

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


def _ends_run(task: RunTask, result: dict[str, Any]) -> bool:
    """Whether a result.json ends the run for this launch: yes, unless it says ``failed`` and the
    launch retries failed runs."""
    return not (task.retry_failed and result.get("status") == "failed")


def precheck(task: RunTask) -> TaskResult | None:
    """Decide in the launcher, without a worker, whether a run needs one.

    Returns the TaskResult of a run that will not be dispatched (finished, or locked by another
    launch), or None when it must run. The worker checks again under the lock (see the module
    docstring), since another launch may finish or take the run in between.
    """
    run_dir = task.run_dir
    result = finished_result(run_dir)
    if result is not None and _ends_run(task, result):
        return _skipped(run_dir, result)
    if is_locked(run_dir):
        return _running_elsewhere(run_dir)
    return None


def _running_elsewhere(run_dir: Path) -> TaskResult:
    return TaskResult(run_dir.name, str(run_dir), "running_elsewhere", message=holder(run_dir))


def _skipped(run_dir: Path, result: dict[str, Any]) -> TaskResult:
    status = str(result.get("status"))
    return TaskResult(
        run_dir.name,
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
    run_dir = task.run_dir  # the directory's name is the run's name
    started = time.perf_counter()
    created = not run_dir.exists()
    lock = RunLock(run_dir)
    try:
        # planted links in a shared log folder: refused, nothing written
        refuse_symlinks_in(run_dir)
        if not lock.acquire():
            return _running_elsewhere(run_dir)
    except UsageError as exc:
        return TaskResult(run_dir.name, str(run_dir), "error", message=str(exc))
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
    """run_task's body, under the run's lock: the check that decides, then the run."""
    name = run_dir.name
    result = finished_result(run_dir)
    if result is not None and _ends_run(task, result):
        return _skipped(run_dir, result)
    if result is not None:  # a failed run to retry: keep the failure's record beside the rerun
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
        record_failure(task.config, message, wall, traceback.format_exc())
        return TaskResult(name, str(run_dir), "failed", wall_time_s=wall, message=message)
    r = outcome.result
    if outcome.skipped:  # only if something wrote result.json without taking the lock
        return _skipped(run_dir, r)
    return TaskResult(
        name,
        str(run_dir),
        str(r["status"]),
        test_error=r.get("test_error"),
        wall_time_s=time.perf_counter() - started,
        message=r.get("message"),
    )


def _train(task: RunTask):
    from scalefree.train import trainer
    from scalefree.train.settings import process_settings
    from scalefree.train.tracking import tracker_callbacks

    # The thread count is restored afterwards: a Ray worker process runs many tasks, and a
    # single-task Slurm job or a test calls this in its own process. The trainer loads the data
    # itself: everything that shapes it (synthetic_sizes included) is in the RunConfig.
    with process_settings(num_threads=task.num_threads or None):
        # the trackers' callback only when asked for: an untracked run is called as it always was
        extra = {"callbacks": tracker_callbacks(task.trackers)} if task.trackers else {}
        return trainer.train(task.config, resume=True, run_locked=True, **extra)


def interrupted(task: RunTask, why: str) -> TaskResult:
    """The result of a task whose worker died or whose job was lost (nothing written)."""
    run_dir = task.run_dir
    return TaskResult(run_dir.name, str(run_dir), "interrupted", message=why)


__all__ = [
    "FAILED_RESULT_KEPT",
    "FINAL_STATUSES",
    "TASK_STATUSES",
    "RunTask",
    "TaskResult",
    "interrupted",
    "precheck",
    "record_failure",
    "run_dir_of",
    "run_task",
]
