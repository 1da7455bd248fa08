"""Reading run directories: the one place that knows the on-disk layout of a finished run.

A run directory (DESIGN section 6) holds ``config.json``, ``metrics.jsonl``, ``stats/``,
``checkpoint.pt`` and ``result.json``; the last is written last and atomically and marks the run
complete. Sweeps, plots and reports read runs only through this module.

``result.json`` schema::

    {"status": "completed" | "diverged" | "failed",
     "epochs_completed": int, "steps": int, "wall_time_s": float,
     "final": {"epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr"} | null,
     "last_evaluation": the last metrics row (also for diverged runs) | null,
     "test_error": float | null,   # 1 - final test_acc; null unless completed
     "best_test_acc": float | null, "eval_split": "test" | "val", "message": str | null}

Tables and heatmaps charge diverged and failed runs DIVERGED_ERROR (see RunRecord.test_error).

``metrics.jsonl``: one JSON object per evaluation with the keys of ``final`` plus ``wall_time_s``.
Accuracies are fractions in [0, 1]; losses include ``--loss-multiplier``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from scalefree.io import read_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"
STATS_DIR = "stats"
STATUSES = ("completed", "diverged", "failed")
# Test error charged to a diverged (or failed) run in heatmaps and tables: the reference scripts' 1.1.
DIVERGED_ERROR = 1.1


@dataclass
class RunRecord:
    path: Path
    config: dict[str, Any]
    result: dict[str, Any] | None = field(default=None)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        """completed | diverged | failed, or ``incomplete`` when no result.json exists yet."""
        return self.result["status"] if self.result else "incomplete"

    @property
    def test_error(self) -> float | None:
        """Final test error as a fraction; DIVERGED_ERROR for diverged/failed; None if incomplete."""
        if self.result is None:
            return None
        if self.result["status"] != "completed":
            return DIVERGED_ERROR
        return float(self.result["test_error"])

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete line of metrics.jsonl (a torn last line from a crash is ignored)."""
    path = Path(run_dir) / METRICS_FILE
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def load_run(run_dir: str | Path) -> RunRecord:
    run_dir = Path(run_dir)
    config = read_json(run_dir / CONFIG_FILE)
    result_path = run_dir / RESULT_FILE
    result = read_json(result_path) if result_path.exists() else None
    return RunRecord(path=run_dir, config=config, result=result)


def iter_run_dirs(folder: str | Path) -> Iterator[Path]:
    """Every directory below ``folder`` (itself included) that holds a config.json, sorted."""
    folder = Path(folder)
    for cfg in sorted(folder.rglob(CONFIG_FILE)):
        yield cfg.parent


def load_runs(folder: str | Path) -> list[RunRecord]:
    return [load_run(d) for d in iter_run_dirs(folder)]
