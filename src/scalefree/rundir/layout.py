"""The run directory's layout: file names, statuses and the result.json schema, in one place.

A run directory is ``<log folder>/<RunConfig.run_name()>`` and holds::

    config.json          the RunConfig (``to_dict``) + "run_name" + "env" (device, versions, ...)
    metrics.jsonl        one JSON object per evaluation (below)
    stats/epoch_NNNN.npz update statistics of one epoch (scalefree.train.stats)
    checkpoint.pt        latest complete epoch (+ checkpoint.prev.pt; scalefree.train.checkpoint)
    .lock                held by the process training the run (scalefree.locking)
    result.json          written last and atomically: its presence marks the run finished
    result.failed.json   a failed run's result.json, kept when a sweep retries it
    diagnose_init.json   ``scalefree diagnose`` at the run's initial weights / its last checkpoint
    diagnose_final.json  (+ a .png beside each; written on request, scalefree.diagnose.cli)

``result.json`` schema::

    {"status": "completed" | "diverged" | "failed",
     "epochs_completed": int, "steps": int, "wall_time_s": float,
     "final": {"epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr"} | null,
     "last_evaluation": the last metrics row (also for diverged runs) | null,
     "test_error": float | null,   # 1 - final test_acc; null unless completed (failed: 1.1)
     "best_test_acc": float | null, "eval_split": "test" | "val", "message": str | null,
     "divergence": {"reason": "non-finite" | "factor", "loss", "reference_loss", "factor",
                    "epoch", "step"} | null,   # why a diverged run was stopped
     "test_split": {"loss", "acc", "error"} | null,  # --validation runs, completed: the official
                                                     # test split, evaluated once at the end
     "traceback": str}   # failed runs only

Tables and heatmaps charge diverged and failed runs DIVERGED_ERROR (see RunRecord.test_error).

``metrics.jsonl``: one JSON object per evaluation with the keys of ``final`` plus ``wall_time_s``.
Accuracies are fractions in [0, 1]; losses include ``--loss-multiplier``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
# A failed run's result.json, kept beside it when a sweep retries the run (--retry-failed).
FAILED_RESULT_KEPT = "result.failed.json"
CHECKPOINT_FILE = "checkpoint.pt"
# The checkpoint before the latest, kept until the new one is whole (scalefree.train.checkpoint).
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"
STATS_DIR = "stats"
STATS_GLOB = "epoch_*.npz"
STATUSES = ("completed", "diverged", "failed")
# Test error charged to a diverged (or failed) run in heatmaps and tables: the reference scripts' 1.1.
DIVERGED_ERROR = 1.1


class RunSpec(Protocol):
    """What the run directory needs of a run's settings, and all it knows of them: where the run
    lives, what identifies it, what config.json holds. ``scalefree.train.config.RunConfig`` is one;
    the run directory never imports it (docs/design.md section 1: layers point down)."""

    @property
    def log_folder(self) -> str: ...

    @property
    def validation(self) -> bool:
        """Whether the run evaluates on a held-out validation split (``eval_split`` "val")."""
        ...

    def run_name(self) -> str: ...

    def identity(self) -> dict[str, Any]:
        """The settings that determine what the run computes (a resumed run must match)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """config.json's content (JSON-ready)."""
        ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        """The settings read back from a config.json."""
        ...


def run_dir_of(config: RunSpec) -> Path:
    """Where a RunConfig's run lives: ``<log_folder>/<run_name()>`` (the only place this is built)."""
    return Path(config.log_folder) / config.run_name()


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether a run directory holds a checkpoint (latest or previous) of an unfinished run."""
    run_dir = Path(run_dir)
    return (run_dir / CHECKPOINT_FILE).exists() or (run_dir / PREVIOUS_CHECKPOINT_FILE).exists()


def stats_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATS_DIR


def stats_name(epoch: int) -> str:
    """The name of one epoch's statistics file inside ``stats/``."""
    return f"epoch_{epoch:04d}.npz"


def stats_file(run_dir: str | Path, epoch: int) -> Path:
    """The statistics file of one epoch."""
    return stats_dir(run_dir) / stats_name(epoch)


def stats_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every statistics file of a run, in epoch order."""
    found = []
    for f in stats_dir(run_dir).glob(STATS_GLOB):
        try:
            found.append((int(f.stem.split("_")[1]), f))
        except (IndexError, ValueError):
            continue  # not one of ours (e.g. a user's copy "epoch_final.npz"): ignored
    return sorted(found)


# ``scalefree diagnose`` of a run directory: at its initial weights or at its last checkpoint.
DIAGNOSE_AT = ("init", "final")


def diagnose_file(run_dir: str | Path, at: str, suffix: str = ".json") -> Path:
    """``diagnose_<at>.json`` (or ``.png`` with ``suffix``) of a run directory."""
    if at not in DIAGNOSE_AT:
        raise ValueError(f"diagnose point must be one of {', '.join(DIAGNOSE_AT)}, got {at!r}")
    return Path(run_dir) / f"diagnose_{at}{suffix}"
