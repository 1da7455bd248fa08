"""The training loop proper: epochs of steps, the end of each epoch, and the run's result.

:func:`run_loop` takes a set-up :class:`~scalefree.train.run_state.RunState` (built and resumed by
:mod:`scalefree.train.trainer`) and drives it: :func:`train_epoch` runs an epoch's optimizer
steps with the loss checks, :func:`end_epoch` evaluates, appends the metrics row, lets callbacks
write their epoch files (statistics) and saves the checkpoint, :func:`finish` builds result.json.
The order of writes in an epoch's end is what makes a crash lose at most the current epoch (see
:mod:`scalefree.train.trainer`).

A run stops early for three reasons, each a clear condition: the planned steps are done
(``--max-steps``), the run diverged (:class:`~scalefree.train.evaluation.Diverged`, recorded in
result.json), or SIGTERM (:class:`~scalefree.errors.Terminated`, raised: the run stays
resumable).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from scalefree import rundir
from scalefree.data import TrainBatches
from scalefree.errors import Terminated
from scalefree.rundir import write as rundir_write
from scalefree.train import checkpoint as ckpt
from scalefree.train.callbacks import Callback
from scalefree.train.evaluation import (
    Diverged,
    check_divergence,
    evaluate_run,
    evaluate_test_split,
    mean_loss,
)
from scalefree.train.run_state import DistContext, RunState

CHECK_EVERY = 10  # steps between (host-syncing) checks of the running loss for divergence


# ------------------------------------------------------------------------------------ SIGTERM


class StopFlag:
    """Set by the SIGTERM handler; the training loop stops at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[StopFlag]:
    """SIGTERM sets a flag instead of killing the process (only the main thread gets signals)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        flag.requested = True

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_requested(flag: StopFlag, ctx: DistContext, at_check: bool) -> bool:
    """Whether to stop now. Under DDP every rank must agree (or the others would hang in the
    next collective), so ranks compare flags at the loss checks only."""
    if ctx.world_size == 1:
        return flag.requested
    if not at_check:
        return False
    device = ctx.device or torch.device("cpu")
    t = torch.tensor(float(flag.requested), device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def _check_stop(state: RunState, flag: StopFlag, at_check: bool) -> None:
    if _stop_requested(flag, state.ctx, at_check):
        raise Terminated(terminated_message(state))


def terminated_message(state: RunState) -> str:
    kept = (
        f"{state.run_dir} keeps the checkpoint of epoch {state.saved_epoch}"
        if state.saved_epoch
        else f"no epoch had finished, so {state.run_dir} has no checkpoint yet"
    )
    return (
        f"stopped by SIGTERM at epoch {state.epoch}, step {state.step}; {kept}. Rerun with "
        "--resume to continue (a relaunched sweep resumes it)"
    )


# ------------------------------------------------------------------------------------ steps


def rank_loss_weight(local_n: int, world_size: int, global_n: int) -> float:
    """Factor on a rank's mean loss so that DDP's gradient average is the global-batch mean.

    DDP computes (1/W) sum_r grad(w_r * mean_r); with w_r = n_r W / N this is
    sum_r (n_r / N) grad(mean_r) = grad(global mean), also when N does not split evenly.
    """
    return local_n * world_size / global_n


@dataclass
class LossWindow:
    """Training losses summed on the device since the last check (no host sync per step)."""

    running: torch.Tensor
    count: int = 0
    since: float = field(default_factory=time.perf_counter)

    def add(self, loss: torch.Tensor) -> None:
        self.running += loss
        self.count += 1


def _check_window(state: RunState, callbacks: Callback, window: LossWindow, rate: bool) -> None:
    """The divergence check of the window's mean loss (the one place it is made), then the
    report to callbacks; ``rate`` False reports no images/s (an epoch's short tail)."""
    cfg = state.config
    loss = mean_loss(window.running, window.count, cfg.loss_multiplier, state.ctx)
    check_divergence(loss, state.reference_loss, cfg.divergence_factor, state.epoch, state.step)
    now = time.perf_counter()
    images_per_s = window.count * cfg.batchsize / max(now - window.since, 1e-9) if rate else 0.0
    callbacks.on_loss_check(state, window.count, loss, images_per_s)
    window.running.zero_()
    window.count, window.since = 0, now


def _train_step(state: RunState, callbacks: Callback, loader, it: int, x, y) -> torch.Tensor:
    """One optimizer step on batch (x, y); returns the batch's (unmultiplied) loss."""
    cfg, ctx = state.config, state.ctx
    with state.amp_ctx():
        logits = state.train_model(x)
        loss = F.cross_entropy(logits.float(), y)
        if ctx.world_size > 1:
            # DDP averages gradients over ranks: weight each rank by its share of the global
            # batch so the result is the global-batch mean even when uneven.
            global_n = min(cfg.batchsize, loader.num_samples - it * cfg.batchsize)
            loss = loss * rank_loss_weight(len(y), ctx.world_size, global_n)
        scaled = loss * cfg.loss_multiplier
    state.optimizer.zero_grad(set_to_none=True)
    scaled.backward()
    callbacks.on_before_step(state, it)
    state.optimizer.step()
    state.step += 1
    if state.reference_loss is None:  # the first step's loss, before any update: the yardstick
        state.reference_loss = mean_loss(loss.detach(), 1, cfg.loss_multiplier, ctx)
        check_divergence(state.reference_loss, None, cfg.divergence_factor, state.epoch, state.step)
    callbacks.on_step_end(state, it)
    return loss.detach()


def train_epoch(state: RunState, callbacks: Callback, stop: StopFlag) -> None:
    """The optimizer steps of epoch ``state.epoch``, up to the run's last step."""
    cfg = state.config
    state.train_model.train()
    loader = TrainBatches(
        state.data,
        cfg.batchsize,
        state.generator,
        augment=cfg.augment,
        channels_last=state.channels_last,
        rank=state.ctx.rank,
        world_size=state.ctx.world_size,
    )
    window = LossWindow(torch.zeros((), device=state.device))
    for it, (x, y) in enumerate(loader):
        window.add(_train_step(state, callbacks, loader, it, x, y))
        last_step = state.step >= state.total_steps
        at_check = window.count >= CHECK_EVERY or last_step
        if at_check:
            _check_window(state, callbacks, window, rate=True)
        if last_step:
            break
        _check_stop(state, stop, at_check)
    if window.count:
        _check_window(state, callbacks, window, rate=False)


# ------------------------------------------------------------------------------------ epoch end


@contextlib.contextmanager
def _phase(state: RunState, callbacks: Callback, name: str) -> Iterator[None]:
    """Time one phase of an epoch's end for ``on_phase_end`` (the benchmark's split)."""
    t0 = time.perf_counter()
    yield
    callbacks.on_phase_end(state, name, time.perf_counter() - t0)


def checkpoint_payload(state: RunState) -> dict[str, Any]:
    """Everything a resumed run needs to continue bitwise (see :mod:`scalefree.train.checkpoint`)."""
    return {
        "epoch": state.epoch,
        "step": state.step,
        "wall_time_s": state.elapsed(),
        "best_test_acc": state.best_acc,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
        "rng": ckpt.rng_state(state.generator),
        "reference_loss": state.reference_loss,
        "config": state.config.to_dict(),
    }


def end_epoch(state: RunState, callbacks: Callback) -> None:
    """Scheduler step; at evaluated epochs the metrics row; callbacks' epoch files; checkpoint.

    Rank 0 writes, in this order: the metrics row, the statistics (callbacks' ``on_epoch_end``),
    the checkpoint. The checkpoint comes last, so every file of an epoch it covers is complete.
    """
    cfg, is_main = state.config, state.ctx.is_main
    if state.scheduler is not None:
        state.scheduler.step()
    if state.epoch % cfg.eval_interval == 0 or state.finished:
        with _phase(state, callbacks, "evaluate"):
            metrics = evaluate_run(state)
        state.best_acc = max(state.best_acc or 0.0, metrics["test_acc"])
        state.last = {
            "epoch": state.epoch,
            "step": state.step,
            **metrics,
            "lr": state.optimizer.param_groups[0]["lr"],
            "wall_time_s": round(state.elapsed(), 3),
        }
        if is_main:
            with _phase(state, callbacks, "metrics"):
                rundir_write.append_metrics(state.run_dir, state.last)
            callbacks.on_evaluate(state, metrics)
    if is_main:
        with _phase(state, callbacks, "epoch_end"):
            callbacks.on_epoch_end(state)
        with _phase(state, callbacks, "checkpoint"):
            ckpt.save_checkpoint(state.run_dir, checkpoint_payload(state))
        state.saved_epoch = state.epoch


# ------------------------------------------------------------------------------------ the run


def run_epochs(state: RunState, callbacks: Callback, stop: StopFlag) -> None:
    """Epochs ``start_epoch ..`` until the planned epochs or steps are done.

    A resumed run whose checkpoint already holds its last step trains no epoch (``state.epoch``
    stays the checkpoint's); it only gets its result.json.
    """
    for epoch in range(state.start_epoch, state.config.train_epochs + 1):
        if state.step >= state.total_steps:
            break
        state.epoch = epoch
        train_epoch(state, callbacks, stop)
        end_epoch(state, callbacks)
        if state.finished:
            break
        _check_stop(state, stop, True)


def finish(state: RunState, status: str, message: str | None, divergence: Any) -> dict[str, Any]:
    """The run's result (rank 0 writes it as result.json, atomically, last)."""
    last = state.last
    if last is None:
        # Resumed a run whose last epoch was complete but result.json was not written yet.
        rows = rundir.read_metrics(state.run_dir)
        last = rows[-1] if rows else None
    result = rundir_write.run_result(
        status,
        test_split=evaluate_test_split(state) if status == "completed" else None,
        epochs_completed=state.epoch,
        steps=state.step,
        wall_time_s=state.elapsed(),
        last=last,
        best_test_acc=state.best_acc,
        eval_split=state.data.eval_split,
        message=message,
        divergence=divergence,
    )
    if state.ctx.is_main:
        rundir_write.write_result(state.run_dir, result)
    return result


def run_loop(state: RunState, callbacks: Callback, stop: StopFlag) -> dict[str, Any]:
    """Train, then finish; a divergence ends the run with status ``diverged``. Callbacks'
    ``on_run_end`` runs in every case (``result`` None when the run raised)."""
    callbacks.on_run_start(state)
    state.started = time.perf_counter()
    result = None
    try:
        status, message, divergence = "completed", None, None
        try:
            run_epochs(state, callbacks, stop)
        except Diverged as exc:
            status, message, divergence = "diverged", str(exc), exc.details
        result = finish(state, status, message, divergence)
        return result
    finally:
        callbacks.on_run_end(state, result)


__all__ = [
    "CHECK_EVERY",
    "StopFlag",
    "end_epoch",
    "finish",
    "rank_loss_weight",
    "run_epochs",
    "run_loop",
    "stop_on_sigterm",
    "train_epoch",
]
