"""TensorBoard: scalars per epoch, the run's hyperparameters in the HParams view, histograms.

Writes ``<--tensorboard-dir>/<run name>/events.out.tfevents.*`` (default dir
``<log folder>/tensorboard``) through ``torch.utils.tensorboard`` (needs the ``tensorboard``
package: ``pip install -e '.[tensorboard]'``). View with ``tensorboard --logdir <dir>``:

* Scalars: ``train/loss``, ``train/acc``, ``test/loss``, ``test/acc``, ``lr``, ``epoch_time_s``
  at step = epoch; ``final/test_error`` at the last epoch;
* HParams: one row per run (optimizer, eta0, weight_decay, decay_convention, model, batch_norm,
  seed, ...) with its test/acc, test/loss and final/test_error: a sweep is one sortable table;
* Histograms / Distributions (``--store-stats``): ``stats/log2_update_over_alpha`` and
  ``stats/log2_param``, the log2 of |u|/alpha and |x| per epoch (the power-of-two bins of
  :mod:`scalefree.train.stats`, so the x axis reads as exponents: -10 is 2^-10);
* Text: ``status``, the run's final status.

A resumed run opens the same directory with ``purge_step`` = the epoch after the last one
trackers.json records, so TensorBoard hides anything an interrupted attempt wrote after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalefree.trackers.base import Histogram, RunInfo, Tracker, TrackerSettings

# The metrics the HParams view shows per run.
HPARAM_METRICS = ("test/acc", "test/loss", "train/loss", "final/test_error")


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self, settings: TrackerSettings, log_folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self._writer_type = SummaryWriter
        self.root = Path(settings.tensorboard_dir or Path(log_folder) / "tensorboard").resolve()
        self.group = settings.group
        self.writer: Any = None
        self.last_epoch = 0

    def start(self, run: RunInfo, saved: Mapping[str, Any] | None) -> dict[str, Any]:
        log_dir = Path(saved["log_dir"]) if saved and saved.get("log_dir") else self.root / run.name
        # A continued run hides whatever an earlier attempt wrote after the last epoch it
        # recorded (trackers.json), so no step is shown twice.
        last = int(saved.get("last_epoch", 0)) if saved else 0
        self.writer = self._writer_type(str(log_dir), purge_step=last + 1 if saved else None)
        self.last_epoch = run.start_epoch - 1
        if saved is None:  # the HParams entry once per run, at its first start
            self._write_hparams(dict(run.hparams))
            if self.group:
                self.writer.add_text("sweep", self.group, 0)
        self.writer.flush()
        return {"log_dir": str(log_dir)}

    def _write_hparams(self, hparams: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        exp, ssi, sei = hparams_summary(hparams, dict.fromkeys(HPARAM_METRICS, 0.0))
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, epoch)
        self.last_epoch = epoch
        self.writer.flush()

    def log_histograms(self, epoch: int, hists: Mapping[str, Histogram], path: Path) -> None:
        for quantity, h in hists.items():
            total = int(h.counts.sum())
            if total == 0:
                continue
            nonzero = h.counts.nonzero()[0]
            c = h.centers
            self.writer.add_histogram_raw(
                f"stats/log2_{quantity}",
                min=float(h.edges[nonzero[0]]),
                max=float(h.edges[nonzero[-1] + 1]),
                num=total,
                sum=float((h.counts * c).sum()),
                sum_squares=float((h.counts * c * c).sum()),
                bucket_limits=h.edges[1:].tolist(),
                bucket_counts=h.counts.tolist(),
                global_step=epoch,
            )
        self.writer.flush()

    def finish(self, result: Mapping[str, Any] | None) -> None:
        if self.writer is None:
            return
        if result is not None:
            step = max(self.last_epoch, 1)
            if result.get("test_error") is not None:
                self.writer.add_scalar("final/test_error", float(result["test_error"]), step)
            self.writer.add_text("status", str(result.get("status")), step)
        self.writer.close()
        self.writer = None


def build(settings: TrackerSettings, log_folder: Path) -> TensorBoardTracker:
    return TensorBoardTracker(settings, log_folder)
