"""Experiment trackers: TensorBoard, MLflow and W&B mirror a run while it trains.

``scalefree train --tracker tensorboard --tracker mlflow ...`` (and ``scalefree sweep``, which
passes the trackers to every run). Each tracker is an optional extra (``pip install -e
'.[tensorboard]'``, ``'.[mlflow]'``, ``'.[wandb]'``) and one :class:`TrackerEntry` in
:data:`TRACKERS`; its module is imported only when the tracker is used, so the light install
trains without any of them. What each logs, and where it shows: the README's "Experiment
trackers" section and each module's docstring. The trainer side: :mod:`scalefree.train.tracking`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from scalefree.trackers.base import (
    HISTOGRAM_QUANTITIES,
    TRACKERS,
    TRACKERS_FILE,
    Histogram,
    RunInfo,
    Tracker,
    TrackerEntry,
    TrackerSettings,
    check_installed,
    epoch_histograms,
)


def _lazy(module: str, attr: str = "build") -> Callable[..., Any]:
    """``module.attr``, imported at the call (the third-party package only when used)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"scalefree.trackers.{module}"), attr)(
            *args, **kwargs
        )

    call.__name__ = f"{module}.{attr}"
    return call


TRACKERS.add(
    "tensorboard",
    _lazy("tensorboard_tracker"),
    "TensorBoard event files: scalars, HParams table, histograms (--tensorboard-dir)",
    module="tensorboard",
    extra="tensorboard",
)
TRACKERS.add(
    "mlflow",
    _lazy("mlflow_tracker"),
    "MLflow runs (a sweep is a parent run): params, metrics, stats artifacts (--mlflow-uri)",
    module="mlflow",
    extra="mlflow",
    sweep_start=_lazy("mlflow_tracker", "start_sweep"),
    sweep_end=_lazy("mlflow_tracker", "end_sweep"),
)
TRACKERS.add(
    "wandb",
    _lazy("wandb_tracker"),
    "Weights & Biases runs, offline without an API key (group = the sweep; --wandb-project)",
    module="wandb",
    extra="wandb",
)


# ------------------------------------------------------------------------------------ CLI


def add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    """--tracker (repeatable) and the destinations, for ``train`` and ``sweep``."""
    g = parser.add_argument_group("experiment trackers (not part of the run's identity)")
    g.add_argument(
        "--tracker",
        action="append",
        choices=TRACKERS.names(),
        help="also report the run to this tracker (repeatable); each is an extra: "
        "pip install -e '.[NAME]'",
    )
    g.add_argument(
        "--tensorboard-dir",
        metavar="DIR",
        help="TensorBoard log dir, one subfolder per run (default: <log folder>/tensorboard)",
    )
    g.add_argument(
        "--mlflow-uri",
        metavar="URI",
        help="MLflow tracking URI (default: the file store <log folder>/mlruns)",
    )
    g.add_argument(
        "--mlflow-experiment", default="scalefree", metavar="NAME", help="MLflow experiment"
    )
    g.add_argument(
        "--wandb-project",
        default="scalefree",
        metavar="NAME",
        help="W&B project (offline under <log folder>/wandb without an API key)",
    )


def settings_from_args(args: argparse.Namespace) -> TrackerSettings | None:
    """The trackers the flags ask for (None: none); a missing package is a usage error now,
    before any run starts."""
    names = tuple(getattr(args, "tracker", None) or ())
    if not names:
        return None
    return TrackerSettings(
        names=check_installed(names),
        tensorboard_dir=args.tensorboard_dir,
        mlflow_uri=args.mlflow_uri,
        mlflow_experiment=args.mlflow_experiment,
        wandb_project=args.wandb_project,
    )


__all__ = [
    "HISTOGRAM_QUANTITIES",
    "TRACKERS",
    "TRACKERS_FILE",
    "Histogram",
    "RunInfo",
    "Tracker",
    "TrackerEntry",
    "TrackerSettings",
    "add_tracker_arguments",
    "check_installed",
    "epoch_histograms",
    "settings_from_args",
]
