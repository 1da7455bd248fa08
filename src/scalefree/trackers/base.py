"""What every tracker shares: its settings, its registry entry, the run it describes, the file
that lets a resumed run continue its tracker run.

A tracker (TensorBoard, MLflow, W&B) mirrors a run into an experiment tracker while it trains.
The run directory stays the source of truth: a tracker is told the same numbers the trainer
writes to metrics.jsonl, after the epoch's checkpoint (so a resumed run, which restarts after its
checkpoint, never sends an epoch twice), and a tracker that fails is switched off with a warning
on stderr, never failing the run.

Trackers are not part of a run's identity: they appear neither in the run name nor in
config.json. A tracker is one :class:`TrackerEntry` in :data:`scalefree.trackers.TRACKERS`; its
factory takes :class:`TrackerSettings` and returns a :class:`Tracker`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scalefree.errors import UsageError
from scalefree.io import atomic_write_json, read_json
from scalefree.registry import Entry, Registry

# The run directory's record of its tracker runs ({"mlflow": {"run_id": ...}, ...}), written
# atomically when a tracker run starts; a resumed run continues the runs it names.
TRACKERS_FILE = "trackers.json"
# The statistics a tracker shows as histograms (scalefree.train.stats.QUANTITIES).
HISTOGRAM_QUANTITIES = ("update_over_alpha", "param")


@dataclass(frozen=True)
class TrackerSettings:
    """Which trackers a run (or every run of a sweep) reports to, and where.

    Args:
        names: registry names of the trackers (``--tracker``, repeatable).
        tensorboard_dir: the TensorBoard log dir (default ``<log folder>/tensorboard``); each run
            writes to ``<dir>/<run name>``.
        mlflow_uri: MLflow tracking URI (default: the file store ``<log folder>/mlruns``).
        mlflow_experiment: the MLflow experiment that holds the runs.
        wandb_project: the W&B project.
        wandb_dir: where W&B writes its run files (default: the log folder: ``<it>/wandb/``).
        group: the sweep the run belongs to (W&B group, MLflow parent run name, TensorBoard tag).
        mlflow_parent: the MLflow run id of the sweep's parent run (set by the sweep launcher).
    """

    names: tuple[str, ...] = ()
    tensorboard_dir: str | None = None
    mlflow_uri: str | None = None
    mlflow_experiment: str = "scalefree"
    wandb_project: str = "scalefree"
    wandb_dir: str | None = None
    group: str | None = None
    mlflow_parent: str | None = None

    def replace(self, **changes: Any) -> TrackerSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RunInfo:
    """The run a tracker run describes.

    ``hparams`` are the settings that make a sweep one sortable table (optimizer, eta0, weight
    decay, decay convention, model, BN, seed, ...); ``start_epoch`` is the first epoch this attempt
    trains (1, or the epoch after a resumed run's checkpoint).
    """

    name: str
    run_dir: Path
    log_folder: Path
    hparams: Mapping[str, Any]
    start_epoch: int = 1


class Tracker:
    """One experiment tracker's run. Each method may raise; the caller turns that into a warning
    and stops calling the tracker (:class:`~scalefree.train.tracking.TrackerCallback`).

    ``start`` returns what :data:`TRACKERS_FILE` keeps for it (a run id); ``saved`` is what the
    previous attempt of the same run stored (None for a new run). ``log_epoch`` receives one
    metrics row (epoch = the tracker's step); ``log_histograms`` the epoch's statistics
    file; ``finish`` the run's result (None when the run stopped by an error or SIGTERM, and will
    be resumed).
    """

    name = "tracker"

    def start(self, run: RunInfo, saved: Mapping[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        raise NotImplementedError

    def log_histograms(self, epoch: int, hists: Mapping[str, Histogram], path: Path) -> None:
        """Default: nothing (a tracker without histograms)."""

    def finish(self, result: Mapping[str, Any] | None) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Histogram:
    """One quantity's whole-model power-of-two histogram over an epoch's snapshots, in log2
    units: ``counts[i]`` values had log2|v| in [edges[i], edges[i+1]) (the lowest bin also holds
    smaller values and zeros, the highest everything >= 1; :mod:`scalefree.train.stats`)."""

    edges: np.ndarray  # (B + 1,) log2 bin edges
    counts: np.ndarray  # (B,)

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def epoch_histograms(path: Path) -> dict[str, Histogram]:
    """The :data:`HISTOGRAM_QUANTITIES` of one ``stats/epoch_EEEE.npz``, summed over its
    snapshots and layers."""
    with np.load(path, allow_pickle=False) as f:
        counts, quantities, exps = (
            f["counts"],
            [str(q) for q in f["quantities"]],
            f["bin_exponents"],
        )
    edges = np.append(exps, exps[-1] + 1).astype(np.float64)
    return {
        q: Histogram(edges, counts[:, quantities.index(q)].sum(axis=(0, 1)).astype(np.int64))
        for q in HISTOGRAM_QUANTITIES
        if q in quantities
    }


@dataclass(frozen=True)
class TrackerEntry(Entry["Tracker"]):
    """A tracker: ``factory(settings, log_folder)`` builds it; ``module`` is the third-party
    package it needs, installed by ``pip install -e '.[<extra>]'``."""

    module: str = ""
    extra: str = ""
    # Hooks of the sweep launcher: sweep_start(settings, log_folder, params) -> settings (e.g.
    # MLflow's parent run id), sweep_end(settings, log_folder, {status: count}).
    sweep_start: Callable[..., TrackerSettings] | None = None
    sweep_end: Callable[..., None] | None = None

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def missing_message(self) -> str:
        return (
            f"--tracker {self.name} needs the {self.module} package, which is not installed: "
            f"pip install -e '.[{self.extra}]' (or pip install 'scalefree[{self.extra}]')"
        )


TRACKERS: Registry[TrackerEntry] = Registry("tracker", TrackerEntry)


def check_installed(names: tuple[str, ...]) -> tuple[str, ...]:
    """The canonical names; a tracker whose package is missing is a usage error naming its
    extra (raised before anything runs)."""
    canonical = tuple(dict.fromkeys(TRACKERS.canonical(n) for n in names))
    for name in canonical:
        entry = TRACKERS.get(name)
        if not entry.installed():
            raise UsageError(entry.missing_message())
    return canonical


def read_saved(run_dir: Path) -> dict[str, Any]:
    """:data:`TRACKERS_FILE` of a run ({} when absent or unreadable: the tracker runs anew)."""
    path = run_dir / TRACKERS_FILE
    if not path.exists():
        return {}
    try:
        saved = read_json(path)
    except (OSError, ValueError) as exc:
        warn(f"{path} is unreadable ({exc}); the trackers start new runs for {run_dir.name}")
        return {}
    return saved if isinstance(saved, dict) else {}


def write_saved(run_dir: Path, saved: Mapping[str, Any]) -> None:
    atomic_write_json(run_dir / TRACKERS_FILE, dict(saved))


def warn(message: str) -> None:
    """A tracker's problem, on stderr as every scalefree warning ("warning: ..."): the run goes on."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def now_ms() -> int:
    return int(time.time() * 1000)
