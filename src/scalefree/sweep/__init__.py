"""scalefree.sweep: grids of training runs, run on this machine, a Ray cluster or Slurm.

* :mod:`~scalefree.sweep.grid` - methods x eta0 x weight decay x seeds from a base RunConfig, and
  the paper's boundary extension (pure functions).
* :mod:`~scalefree.sweep.tasks` - one run as a task: lock, skip if finished, train with resume,
  record a crash as ``failed``.
* :mod:`~scalefree.sweep.locking` - the per-run-directory flock that keeps two launches apart.
* :mod:`~scalefree.sweep.executors` - ``local`` (spawned processes, GPUs round-robin), ``ray``
  (fractional-GPU tasks), ``slurm`` (submitit job arrays).
* :mod:`~scalefree.sweep.runner` - rounds, progress lines, extension, summary tables.
* :mod:`~scalefree.sweep.cli` - ``scalefree sweep``, and :func:`~scalefree.sweep.cli.launch`, the
  launch path it shares with the ``scalefree reproduce`` presets (:mod:`scalefree.reproduce`).

Importing this package imports neither torch nor the optional Ray / submitit.
"""

from scalefree.sweep.grid import Axes, Sweep, boundary_extension, make_sweep
from scalefree.sweep.runner import SweepReport, run_sweeps
from scalefree.sweep.tasks import RunTask, TaskResult, run_task

__all__ = [
    "Axes",
    "RunTask",
    "Sweep",
    "SweepReport",
    "TaskResult",
    "boundary_extension",
    "make_sweep",
    "run_sweeps",
    "run_task",
]
