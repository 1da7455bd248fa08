"""Evaluation and the divergence rule: what a run measures about its model, and when it stops.

Evaluation batch sizes: the GPU wants large batches; on the CPU a batch whose activations fit
the caches is faster (benchmarks/eval_probe.py, benchmarks/RESULTS.md "Training epoch").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from scalefree.data import eval_batches
from scalefree.train.run_state import DistContext

if TYPE_CHECKING:
    from scalefree.train.run_state import RunState

EVAL_BATCH = 500
EVAL_BATCH_CPU = 256


def eval_batch_size(device: torch.device) -> int:
    return EVAL_BATCH_CPU if device.type == "cpu" else EVAL_BATCH


def evaluate(
    model: nn.Module,
    images,
    labels,
    mean,
    std,
    *,
    loss_multiplier: float,
    amp_ctx: Callable,
    channels_last: bool,
    ctx: DistContext,
    batch_size: int | None = None,
) -> tuple[float, float]:
    """Mean loss (times the loss multiplier) and accuracy, in eval mode, without augmentation.

    Under ``torch.inference_mode`` (no autograd bookkeeping at all, unlike ``no_grad``), in the
    training run's layout and autocast; ``batch_size`` defaults to :func:`eval_batch_size`.
    """
    model.eval()
    n = len(images)
    lo, hi = (ctx.rank * n) // ctx.world_size, ((ctx.rank + 1) * n) // ctx.world_size
    batch = batch_size or eval_batch_size(images.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    with torch.inference_mode():
        for x, y in eval_batches(
            images[lo:hi], labels[lo:hi], batch, mean, std, channels_last=channels_last
        ):
            with amp_ctx():
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
    if ctx.world_size > 1:
        packed = torch.stack([loss_sum, correct.double()])
        torch.distributed.all_reduce(packed)
        loss_sum, correct = packed[0], packed[1]
    model.train()
    return float(loss_sum) * loss_multiplier / n, float(correct) / n


def evaluate_run(state: RunState) -> dict[str, float]:
    """The four metrics of an epoch: loss and accuracy on the training and the held-out set.

    The plain model is evaluated (not the DDP/compiled wrapper): every rank evaluates its slice
    and the sums are all-reduced, so no wrapper is needed. A metric that is not finite stops the
    run as diverged.
    """
    data = state.data
    kw = dict(
        loss_multiplier=state.config.loss_multiplier,
        amp_ctx=state.amp_ctx,
        channels_last=state.channels_last,
        ctx=state.ctx,
    )
    tr_loss, tr_acc = evaluate(
        state.model, data.train_images, data.train_labels, data.mean, data.std, **kw
    )
    te_loss, te_acc = evaluate(
        state.model, data.eval_images, data.eval_labels, data.mean, data.std, **kw
    )
    metrics = {"train_loss": tr_loss, "train_acc": tr_acc, "test_loss": te_loss, "test_acc": te_acc}
    if not all(math.isfinite(v) for v in metrics.values()):
        raise Diverged(
            f"evaluation loss is not finite after epoch {state.epoch}: {metrics}",
            {"reason": "non-finite", "loss": None, "epoch": state.epoch, "step": state.step},
        )
    return metrics


def evaluate_test_split(state: RunState) -> dict[str, float] | None:
    """Loss, accuracy and error on the official test split, for a run that selected on a
    validation split (``--validation``): the number a grid chosen on validation reports. None when
    the run evaluated on the test split anyway (its metrics are already test numbers)."""
    data = state.data
    if data.eval_split == "test" or data.test_images is None:
        return None
    loss, acc = evaluate(
        state.model,
        data.test_images,
        data.test_labels,
        data.mean,
        data.std,
        loss_multiplier=state.config.loss_multiplier,
        amp_ctx=state.amp_ctx,
        channels_last=state.channels_last,
        ctx=state.ctx,
    )
    return {"loss": loss, "acc": acc, "error": 1.0 - acc}


class Diverged(Exception):
    """The run diverged; ``details`` is what result.json records under ``divergence``."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def check_divergence(
    loss: float, reference: float | None, factor: float, epoch: int, step: int
) -> None:
    """Raise Diverged when ``loss`` is not finite or exceeds ``factor`` x the first step's loss.

    The rule (``--divergence-factor``, docs/design.md): a training loss (the mean over at most
    CHECK_EVERY steps, in train mode) above ``factor`` times the loss of the run's first
    mini-batch, measured before any update. Both include ``--loss-multiplier``, so the rule does
    not depend on it. The eval-mode losses are only checked for being finite
    (:func:`evaluate_run`): with BatchNorm, eval-mode losses early in training (running
    statistics of a few batches) can be far above the training loss of a healthy run.
    """
    where = f"at epoch {epoch}, step {step}"
    if not math.isfinite(loss):
        details = {"reason": "non-finite", "loss": None, "epoch": epoch, "step": step}
        raise Diverged(f"training loss became {loss} {where}", details)
    if reference is not None and loss > factor * reference:
        details = {
            "reason": "factor",
            "loss": loss,
            "reference_loss": reference,
            "factor": factor,
            "epoch": epoch,
            "step": step,
        }
        raise Diverged(
            f"training loss {loss:.4g} {where} exceeds --divergence-factor {factor:g} x the "
            f"first step's loss {reference:.4g}",
            details,
        )


def mean_loss(running: torch.Tensor, n: int, multiplier: float, ctx: DistContext) -> float:
    """Mean training loss since the last check, agreed on by every rank (so all stop together)."""
    if ctx.world_size > 1:
        running = running.clone()
        torch.distributed.all_reduce(running)
        running /= ctx.world_size
    return float(running) / n * multiplier


__all__ = [
    "EVAL_BATCH",
    "EVAL_BATCH_CPU",
    "Diverged",
    "check_divergence",
    "eval_batch_size",
    "evaluate",
    "evaluate_run",
    "evaluate_test_split",
    "mean_loss",
]
