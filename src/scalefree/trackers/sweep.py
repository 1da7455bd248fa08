"""The sweep launcher's side of the trackers: one group (W&B) / parent run (MLflow) per sweep.

``scalefree sweep --tracker ...`` calls :func:`start_tracked_sweep` before the runs start: the
sweep's group name (``<log folder name>: <dataset> <model> (BN)``) and each tracker's sweep start
(MLflow creates or finds the parent run) go into the :class:`TrackerSettings` every run gets;
:func:`end_sweep` closes the parent afterwards. Works on any object with a ``Sweep``'s
``base``, ``axes``, ``seeds`` and ``label``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalefree.trackers.base import TRACKERS, TrackerSettings, warn


def sweep_group(sweeps: Sequence[Any]) -> str:
    first = sweeps[0]
    return f"{Path(first.base.log_folder).resolve().name}: {first.label}"


def sweep_params(sweeps: Sequence[Any]) -> dict[str, Any]:
    """The parent run's parameters: the settings every run shares, and the grid's axes."""
    b = sweeps[0].base
    methods = [m for s in sweeps for m in s.axes]
    return {
        "dataset": b.dataset,
        "model": b.model,
        "batch_norm": b.batch_norm,
        "train_epochs": b.train_epochs,
        "batchsize": b.batchsize,
        "scheduler": b.scheduler,
        "methods": " ".join(dict.fromkeys(methods)),
        "seeds": " ".join(str(x) for x in sweeps[0].seeds),
    }


def start_tracked_sweep(settings: TrackerSettings, sweeps: Sequence[Any]) -> TrackerSettings:
    log_folder = Path(sweeps[0].base.log_folder)
    return start_sweep(settings, sweep_group(sweeps), log_folder, sweep_params(sweeps))


def start_sweep(
    settings: TrackerSettings | None, group: str, log_folder: Path, params: Mapping[str, Any]
) -> TrackerSettings | None:
    """The settings every run of a sweep gets: its group, and what each tracker's sweep start
    (MLflow's parent run) adds. A failing tracker is warned about and left out."""
    if settings is None:
        return None
    settings = settings.replace(group=group)
    kept = []
    for name in settings.names:
        entry = TRACKERS.get(name)
        try:
            if entry.sweep_start is not None:
                settings = entry.sweep_start(settings, log_folder, params)
            kept.append(name)
        except Exception as exc:  # noqa: BLE001 - a tracker never stops the sweep
            warn(f"tracker {name} failed to start the sweep ({type(exc).__name__}: {exc}); off")
    return settings.replace(names=tuple(kept))


def end_sweep(
    settings: TrackerSettings | None, log_folder: Path, counts: Mapping[str, int]
) -> None:
    if settings is None:
        return
    for name in settings.names:
        entry = TRACKERS.get(name)
        try:
            if entry.sweep_end is not None:
                entry.sweep_end(settings, log_folder, counts)
        except Exception as exc:  # noqa: BLE001
            warn(f"tracker {name} failed to end the sweep ({type(exc).__name__}: {exc})")
