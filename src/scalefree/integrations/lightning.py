"""Update statistics in a Lightning ``Trainer``: one callback.

::

    from scalefree.integrations.lightning import ScalefreeCallback

    trainer = lightning.Trainer(max_epochs=2, callbacks=[ScalefreeCallback("runs/my_run")])
    trainer.fit(module, loader)   # runs/my_run/{config.json, stats/epoch_EEEE.npz, result.json}

then ``scalefree plot histogram runs``. The statistics are those of ``scalefree train
--store-stats`` (:mod:`scalefree.integrations.recorder`), taken around the step of the optimizer
``configure_optimizers`` returned (the first one), between Lightning's
``on_before_optimizer_step`` and the end of the training batch (automatic optimization; with
gradient accumulation only batches that stepped count). Works with ``lightning`` or the older
``pytorch_lightning`` package; not an extra of scalefree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalefree.integrations.recorder import CallbackSettings, Recorder, error_from, first_batches

ACCURACY_KEYS = ("val_acc", "val_accuracy", "test_acc", "train_acc")

try:
    from lightning.pytorch import Callback
except ImportError:  # the package's older name
    from pytorch_lightning import Callback


class ScalefreeCallback(CallbackSettings, Callback):
    """Records scalefree's update statistics (and ``diagnose`` numbers at ``diagnose_at``:
    ``"init"``, ``"final"``, step numbers, on ``diagnose_batches`` batches of the training
    loader with ``loss_fn(module, batch)``, default the module's ``training_step`` loss) into
    ``out_dir``.

    ``interval``: every ``interval``-th optimizer step of an epoch. ``error_metric``: the logged
    metric (``self.log``) whose value is result.json's ``test_error`` (an accuracy counts as
    1 - it); default: ``val_acc``, ``val_accuracy``, ``test_acc``, else ``train_acc``.
    """

    def __init__(
        self, out_dir: str | Path, interval: int = 1, *, loss_fn: Any = None, **settings: Any
    ) -> None:
        # settings: dataset, diagnose_at, diagnose_batches, error_metric (CallbackSettings)
        super().__init__(out_dir, interval, **settings)
        self.loss_fn = loss_fn
        self._stepping = False

    def on_train_start(self, trainer, pl_module):
        loss_fn = self.loss_fn or _training_step_loss
        self.run = Recorder(
            self.out_dir,
            pl_module,
            trainer.optimizers[0],
            interval=self.interval,
            source="lightning",
            dataset=self.dataset,
            diagnose_at=self.diagnose_at,
            diagnose_batches=first_batches(lambda: trainer.train_dataloader, self.n_diagnose),
            loss_fn=loss_fn,
            start_step=trainer.global_step,
        )

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if self.run is not None:
            self.run.before_step()
            self._stepping = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.run is not None and self._stepping:
            self._stepping = False
            self.run.after_step()

    def on_train_epoch_end(self, trainer, pl_module):
        if self.run is not None:
            self.run.end_epoch(trainer.current_epoch + 1)

    def on_train_end(self, trainer, pl_module):
        if self.run is None:
            return
        logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
        error, of = error_from(logged, self.error_metric, ACCURACY_KEYS)
        self.run.finish(error, of)
        self.run = None


def _training_step_loss(module: Any, batch: Any) -> Any:
    """The module's own ``training_step`` loss, its ``self.log`` calls silenced (Lightning
    refuses them outside its loop, and diagnose's numbers are not the run's metrics)."""
    module.log = lambda *args, **kwargs: None  # shadows the method on this instance only
    try:
        out = module.training_step(batch, 0)
    finally:
        del module.log
    return out["loss"] if isinstance(out, dict) else out


__all__ = ["ScalefreeCallback"]
