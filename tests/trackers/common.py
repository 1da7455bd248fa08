"""Shared pieces of the tracker tests: a seconds-long tracked run, its rows, interruptions."""

from __future__ import annotations

import json
from pathlib import Path

from scalefree.rundir import read_metrics
from scalefree.trackers import TrackerSettings
from scalefree.train.callbacks import Callback
from scalefree.train.tracking import tracker_callbacks
from tests.helpers import tiny_run


def config(log_folder: Path, **overrides):
    """An MLP on 8x8 synthetic images: two epochs in about a second."""
    base = dict(model="MLP4", image_size=8, batchsize=32, store_stats=True, store_stats_interval=2)
    return tiny_run(log_folder, sizes=(128, 32), **(base | overrides))


def train(cfg, names, *, resume=False, extra=(), **settings):
    from scalefree.train.trainer import train as train_run

    tracked = tracker_callbacks(TrackerSettings(names=tuple(names), **settings))
    return train_run(cfg, resume=resume, callbacks=[*extra, *tracked])


class Crash(Exception):
    """Stands for a killed process."""


class CrashAt(Callback):
    """Raises at epoch ``epoch``: at its end before the checkpoint (``phase`` "epoch_end") or
    right after the checkpoint, before the trackers report it (``phase`` "checkpoint")."""

    def __init__(self, epoch: int, phase: str) -> None:
        self.epoch, self.phase = epoch, phase

    def on_epoch_end(self, state) -> None:
        if self.phase == "epoch_end" and state.epoch == self.epoch:
            raise Crash

    def on_phase_end(self, state, phase, seconds) -> None:
        if self.phase == "checkpoint" == phase and state.epoch == self.epoch:
            raise Crash


def interrupted_then_resumed(cfg, names, phase, **settings):
    """Epoch 2 of 3 crashes (``phase``, see CrashAt); then the run is resumed to its end."""
    import pytest

    with pytest.raises(Crash):
        train(cfg, names, extra=[CrashAt(2, phase)], **settings)
    return train(cfg, names, resume=True, **settings)


def rows(run_dir: Path) -> dict[int, dict]:
    return {r["epoch"]: r for r in read_metrics(run_dir)}


def result(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "result.json").read_text())


class InlineExecutor:
    """Runs each sweep task in this process, one after the other (what a worker does)."""

    name = "inline"

    def run(self, tasks, on_result):
        from scalefree.sweep.tasks import run_task

        results = []
        for task in tasks:
            results.append(run_task(task))
            on_result(results[-1])
        return results


def sweep(tmp_path: Path, monkeypatch, tracker_flags: list[str]) -> int:
    """``scalefree sweep`` of a 2x2 grid (AdamW, eta0 x weight decay) with the trackers' flags."""
    import scalefree.sweep.cli as sweep_cli
    from scalefree.cli import main

    monkeypatch.setattr(sweep_cli, "make_executor", lambda args, folder: InlineExecutor())
    grid = ["--optim-methods", "AdamW", "--eta0-vals", "1e-3", "1e-2"]
    grid += ["--weight-decay-vals", "0", "1e-4", "--seeds", "0"]
    run = ["--dataset", "synthetic", "--synthetic-sizes", "128", "32", "--model", "MLP4"]
    run += ["--image-size", "8", "--batchsize", "32", "--train-epochs", "2", "--reproducible"]
    return main(["sweep", *grid, *run, "--log-folder", str(tmp_path), *tracker_flags])


def grid_run_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p.parent for p in tmp_path.glob("synthetic_*/result.json"))
