"""Update statistics in the Hugging Face ``transformers.Trainer``: one callback.

::

    from scalefree.integrations.huggingface import ScalefreeCallback

    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[ScalefreeCallback("runs/my_run", interval=10)])
    trainer.train()          # runs/my_run/{config.json, stats/epoch_EEEE.npz, result.json}

then ``scalefree plot histogram runs``. The statistics are those of ``scalefree train
--store-stats`` (:mod:`scalefree.integrations.recorder`), taken around the optimizer step of the
optimizer the Trainer built (its own AdamW, or one passed as ``optimizers=(opt, scheduler)``,
e.g. ``scalefree.optim.AdamW``, whose Adam step is then the update): the Trainer's
``on_pre_optimizer_step`` (after gradient clipping) and ``on_optimizer_step`` hooks. Needs
``transformers`` (and ``accelerate``, which its Trainer needs); not an extra of scalefree.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from scalefree.integrations.recorder import CallbackSettings, Recorder, error_from, first_batches

ACCURACY_KEYS = ("eval_accuracy", "eval_acc")


def _loss(model: Any, batch: Any) -> Any:
    out = model(**batch)
    return out["loss"] if isinstance(out, dict) else out.loss


class ScalefreeCallback(CallbackSettings, TrainerCallback):
    """Records scalefree's update statistics (and ``diagnose`` numbers at ``diagnose_at``:
    ``"init"``, ``"final"``, step numbers; on ``diagnose_batches`` batches of the Trainer's
    training loader, the loss being the model's own ``loss`` output) into ``out_dir``.

    ``interval``: every ``interval``-th optimizer step of an epoch. ``error_metric``: the logged
    metric whose value is result.json's ``test_error`` (an accuracy counts as 1 - it); default:
    the last ``eval_accuracy`` (``compute_metrics`` returning ``accuracy``) or ``eval_acc``.
    """

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        loader = kwargs.get("train_dataloader")
        self.run = Recorder(
            self.out_dir,
            model,
            optimizer,
            interval=self.interval,
            source="transformers",
            dataset=self.dataset,
            diagnose_at=self.diagnose_at,
            diagnose_batches=(
                first_batches(lambda: loader, self.n_diagnose) if loader is not None else None
            ),
            loss_fn=_loss,
            start_step=state.global_step,
        )

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.run is not None:
            self.run.before_step()

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.run is not None:
            self.run.after_step()

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.run is not None:
            self.run.end_epoch(max(round(state.epoch or 0), self.run.epochs + 1))

    def on_train_end(self, args, state, control, **kwargs):
        if self.run is None:
            return
        logged: dict[str, Any] = {}
        for row in state.log_history:  # the last value of every logged metric
            logged.update(row)
        error, of = error_from(logged, self.error_metric, ACCURACY_KEYS)
        self.run.finish(error, of)
        self.run = None


__all__ = ["ScalefreeCallback"]
