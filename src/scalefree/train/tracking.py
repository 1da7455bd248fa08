"""The trainer's side of the trackers: a :class:`~scalefree.train.callbacks.Callback` that sends
each tracker what the run directory receives, at the same moments.

When (rank 0 only):

* run start: each tracker starts (or, when :data:`~scalefree.trackers.base.TRACKERS_FILE` names
  a run of an earlier attempt, continues) its run with the run's hyperparameters; the file is
  rewritten atomically with the tracker runs' ids;
* each evaluated epoch: the metrics row (train/test loss and accuracy, lr, epoch time) and, with
  ``--store-stats``, the epoch's histograms; sent once the epoch's checkpoint is written, so a
  resumed run (which continues after its checkpoint) sends only epochs after it: no step twice.
  trackers.json keeps each tracker's last epoch, so an attempt stopped between the checkpoint and
  the report has the missing rows sent (from metrics.jsonl) when the run resumes;
* run end: the final status and test error (a diverged run's is 1.1, as in the tables).

A tracker that raises is reported once (a "warning: tracker NAME failed ..." line on stderr)
and not called again in this run: the run and its directory never depend on a tracker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalefree.rundir.layout import DIVERGED_ERROR, stats_file
from scalefree.rundir.read import read_metrics
from scalefree.trackers.base import (
    TRACKERS,
    RunInfo,
    Tracker,
    TrackerSettings,
    epoch_histograms,
    read_saved,
    warn,
    write_saved,
)
from scalefree.train.callbacks import Callback

if TYPE_CHECKING:
    from scalefree.train.run_state import RunState


def run_hparams(state: RunState) -> dict[str, Any]:
    """The settings a sweep's table sorts by (all scalars, as each tracker's hparams want)."""
    from scalefree.train.trainer import active_convention

    c = state.config
    wd = state.env.get("weight_decay_resolved", c.weight_decay)
    return {
        "optimizer": c.optim_method,
        "eta0": float(c.eta0),
        "weight_decay": float(wd),
        "decay_convention": active_convention(c),
        "model": c.model,
        "batch_norm": bool(c.batch_norm),
        "seed": int(c.seed),
        "dataset": c.dataset,
        "scheduler": c.scheduler,
        "train_epochs": int(c.train_epochs),
        "batchsize": int(c.batchsize),
        "loss_multiplier": float(c.loss_multiplier),
    }


def epoch_metrics(row: Mapping[str, Any], epoch_time_s: float) -> dict[str, float]:
    """A metrics.jsonl row as tracker metrics (names shared by every tracker)."""
    return {
        "train/loss": float(row["train_loss"]),
        "train/acc": float(row["train_acc"]),
        "test/loss": float(row["test_loss"]),
        "test/acc": float(row["test_acc"]),
        "lr": float(row["lr"]),
        "epoch_time_s": float(epoch_time_s),
    }


class TrackerCallback(Callback):
    """Reports the run to ``settings.names``' trackers (see the module docstring)."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.settings = settings
        self.trackers: list[Tracker] = []
        self._pending: list[tuple[int, dict[str, float]]] = []
        self._saved: dict[str, Any] = {}
        self._last_wall = 0.0
        self._last_epoch = 0

    # ------------------------------------------------------------------ guarded calls
    def _each(self, what: str, call: Callable[[Tracker], Any]) -> None:
        """``call(tracker)`` for every live tracker; one that raises is warned about and dropped."""
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as exc:  # noqa: BLE001 - a tracker never fails the run
                self.trackers.remove(tracker)
                warn(
                    f"tracker {tracker.name} failed to {what} ({_first_line(exc)}); it is off "
                    "for the rest of this run, which goes on (its run directory has every number)"
                )
                if what != "finish its run":
                    with contextlib.suppress(Exception):  # close what it opened, if it can
                        tracker.finish(None)

    # ------------------------------------------------------------------ hooks
    def on_run_start(self, state: RunState) -> None:
        if not state.ctx.is_main:
            return
        log_folder = Path(state.config.log_folder)
        run = RunInfo(
            name=state.run_dir.name,
            run_dir=state.run_dir,
            log_folder=log_folder,
            hparams=run_hparams(state),
            start_epoch=state.start_epoch,
        )
        self._saved = read_saved(state.run_dir)
        for name in self.settings.names:
            try:
                self.trackers.append(TRACKERS.get(name).build(self.settings, log_folder))
            except Exception as exc:  # noqa: BLE001 - e.g. a bad URI: a warning, not a failure
                warn(f"tracker {name} could not be set up ({_first_line(exc)}); it is off")

        def start(tracker: Tracker) -> None:
            before = self._saved.get(tracker.name) or {}
            ids = tracker.start(run, before or None)
            same = all(before.get(k) == v for k, v in ids.items())  # the same tracker run
            self._saved[tracker.name] = ids | {
                "last_epoch": before.get("last_epoch", 0) if same else 0
            }

        self._each("start its run", start)
        self._catch_up(state)
        self._save(state)
        self._last_wall, self._last_epoch = state.wall_before, state.start_epoch - 1

    def _catch_up(self, state: RunState) -> None:
        """Send each tracker the epochs its run lacks that the checkpoint covers (an attempt
        stopped between the checkpoint and the tracker's report)."""
        rows = [r for r in read_metrics(state.run_dir) if r.get("epoch", 0) < state.start_epoch]
        previous_wall, previous_epoch = 0.0, 0
        for row in rows:
            epoch = int(row["epoch"])
            seconds = (row["wall_time_s"] - previous_wall) / max(epoch - previous_epoch, 1)
            previous_wall, previous_epoch = row["wall_time_s"], epoch
            metrics = epoch_metrics(row, seconds)
            self._each(
                "log epoch metrics",
                lambda t, e=epoch, m=metrics: self._log_once(t, e, m),
            )

    def _log_once(self, tracker: Tracker, epoch: int, metrics: Mapping[str, float]) -> None:
        record = self._saved.setdefault(tracker.name, {})
        if epoch > record.get("last_epoch", 0):
            tracker.log_epoch(epoch, metrics)
            record["last_epoch"] = epoch

    def _save(self, state: RunState) -> None:
        """Rewrite trackers.json (atomically) with the live trackers' runs and last epochs."""
        if not self.trackers:
            return
        try:
            write_saved(state.run_dir, self._saved)
        except OSError as exc:
            warn(f"cannot write the trackers' run ids to {state.run_dir} ({exc})")

    def on_evaluate(self, state: RunState, metrics: dict[str, float]) -> None:
        if not self.trackers or state.last is None:
            return
        row = state.last
        epochs = max(row["epoch"] - self._last_epoch, 1)
        epoch_time = (row["wall_time_s"] - self._last_wall) / epochs
        self._last_wall, self._last_epoch = row["wall_time_s"], row["epoch"]
        self._pending.append((int(row["epoch"]), epoch_metrics(row, epoch_time)))

    def on_phase_end(self, state: RunState, phase: str, seconds: float) -> None:
        if phase == "checkpoint" and self.trackers:
            self._flush(state)

    def _flush(self, state: RunState) -> None:
        pending, self._pending = self._pending, []
        for epoch, metrics in pending:
            self._each("log epoch metrics", lambda t, e=epoch, m=metrics: self._log_once(t, e, m))
        path = stats_file(state.run_dir, state.epoch)
        if state.config.store_stats and path.exists():
            hists = epoch_histograms(path)
            self._each("log histograms", lambda t: t.log_histograms(state.epoch, hists, path))
        if pending:
            self._save(state)

    def on_run_end(self, state: RunState, result: dict[str, Any] | None) -> None:
        if not self.trackers:
            return
        self._pending = []  # epochs no checkpoint covers: the resumed run sends them
        final = None if result is None else dict(result)
        if final is not None and final.get("test_error") is None:
            final["test_error"] = DIVERGED_ERROR  # what the tables charge a diverged run
        self._each("finish its run", lambda t: t.finish(final))
        self.trackers = []


def _first_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def tracker_callbacks(settings: TrackerSettings | None) -> Sequence[Callback]:
    """The callbacks for ``train(callbacks=...)``: none without trackers."""
    if settings is None or not settings.names:
        return ()
    return (TrackerCallback(settings),)


__all__ = ["TrackerCallback", "epoch_metrics", "run_hparams", "tracker_callbacks"]
