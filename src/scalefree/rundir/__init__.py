"""The run directory: the one package that knows its layout, writes it and reads it back.

* :mod:`scalefree.rundir.layout`: file names, statuses, the result.json schema (``RunResult``),
  where a run lives;
* :mod:`scalefree.rundir.stats`: the update-statistics files, their writer and ``load_stats``;
* :mod:`scalefree.rundir.write`: creating/checking a run directory, metrics rows, config.json,
  result.json (the trainer and the sweep workers write only through it);
* :mod:`scalefree.rundir.read`: readers that report damaged files instead of crashing (sweeps,
  plots and reports read only through it).
* :mod:`scalefree.rundir.summary`: the summary model, the one statement of how finished runs
  become a seed mean per grid point, which point is best and which grid edges it lies on (the
  sweep's boundary extension and the tables, heatmaps and reports all decide through it).
"""

from scalefree.rundir.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    DIVERGED_ERROR,
    FAILED_RESULT_KEPT,
    METRICS_FILE,
    RESULT_FILE,
    STATS_DIR,
    STATUSES,
    RunResult,
    RunSpec,
    result_problem,
    run_dir_of,
    stats_dir,
    stats_file,
    stats_files,
)
from scalefree.rundir.read import (
    DamagedFile,
    MetricsFile,
    RunRecord,
    describe_damaged,
    iter_run_dirs,
    load_run,
    load_runs,
    read_config,
    read_json_object,
    read_metrics,
    read_metrics_file,
    read_result,
    set_aside,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "DIVERGED_ERROR",
    "FAILED_RESULT_KEPT",
    "METRICS_FILE",
    "RESULT_FILE",
    "STATS_DIR",
    "STATUSES",
    "RunResult",
    "RunSpec",
    "DamagedFile",
    "MetricsFile",
    "RunRecord",
    "describe_damaged",
    "iter_run_dirs",
    "load_run",
    "load_runs",
    "read_config",
    "read_json_object",
    "read_metrics",
    "read_metrics_file",
    "read_result",
    "result_problem",
    "run_dir_of",
    "set_aside",
    "stats_dir",
    "stats_file",
    "stats_files",
]
