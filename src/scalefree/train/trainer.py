"""The trainer: one RunConfig in, one run directory out (docs/design.md, docs/training-loop.md).

This module runs one: the claim of its directory, its state, resume and callbacks. What the
run is set up from lives apart: :mod:`scalefree.train.machine` (device, layout, compile, the
process-global settings, environment), :mod:`scalefree.train.initial_weights` (the stored initial
model), :mod:`scalefree.train.optimizer_setup` (the optimizer) and
:mod:`scalefree.train.schedulers` (the schedule); their names stay importable from here.
:func:`train` checks the run directory, sets the process-global torch settings for the run (restored on return,
:mod:`scalefree.train.settings`), loads the data and the stored initial weights, takes the
run's lock, builds the :class:`~scalefree.train.run_state.RunState` (model, optimizer, scheduler,
data generator, counters), resumes it from a checkpoint, writes config.json and wraps the model
for DDP / ``torch.compile``. :mod:`scalefree.train.loop` then trains epochs, ends each (evaluate,
metrics row, statistics, checkpoint) and writes result.json. Progress display, update statistics
and any caller's timing attach through callbacks (:mod:`scalefree.train.callbacks`).

Order of writes, chosen so that a crash at any point loses at most the current epoch and never
leaves a half-written file: ``config.json`` at the start; per evaluated epoch one line appended to
``metrics.jsonl`` (flushed and fsynced), the epoch's ``stats/epoch_EEEE.npz``, then
``checkpoint.pt`` (atomic, checksummed, with model, optimizer, scheduler and every RNG state);
``result.json`` last, atomically. ``resume`` restores the newest valid checkpoint, drops metrics and
statistics written after it, and continues so that the final metrics equal an uninterrupted run
(bitwise on the CPU with ``--reproducible``).

Rank 0 holds the run's lock (``scalefree.locking``) while it writes; a second process exits with a
usage error naming the holder. SIGTERM stops the run at the next step (the last epoch's checkpoint
is kept) and a full disk stops it with a message; both say to continue with ``--resume``. A run is
``diverged`` when its training loss is not finite or exceeds ``--divergence-factor`` times the
first step's loss (:func:`scalefree.train.evaluation.check_divergence`).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalefree import rundir
from scalefree.data import DATASETS, DataBundle, TrainBatches, download_cifar, load_data
from scalefree.errors import DiskFull, UsageError
from scalefree.locking import RunLock, is_locked
from scalefree.rundir import write as rundir_write
from scalefree.train import checkpoint as ckpt
from scalefree.train.callbacks import Callback, CallbackList
from scalefree.train.config import RunConfig
from scalefree.train.evaluation import (  # noqa: F401 - the trainer's public names, kept here
    EVAL_BATCH,
    EVAL_BATCH_CPU,
    Diverged,
    eval_batch_size,
    evaluate,
)
from scalefree.train.initial_weights import (  # noqa: F401 - the trainer's public names
    build_initial_model,
    disk_full_message,
    initial_weights_path,
)
from scalefree.train.loop import (  # noqa: F401 - the trainer's public names, kept here
    CHECK_EVERY,
    StopFlag,
    rank_loss_weight,
    run_loop,
    stop_on_sigterm,
)
from scalefree.train.machine import (  # noqa: F401 - the trainer's public names
    COMPILE_MIN_STEPS,
    amp_context,
    environment,
    resolve_channels_last,
    resolve_compile,
    resolve_device,
    run_settings,
)
from scalefree.train.optimizer_setup import (  # noqa: F401 - the trainer's public names
    active_convention,
    make_optimizer,
    optimizer_options,
    resolved_weight_decay,
)
from scalefree.train.progress import ProgressCallback
from scalefree.train.run_state import DistContext, RunOutcome, RunState
from scalefree.train.schedulers import make_scheduler
from scalefree.train.settings import process_settings
from scalefree.train.stats import UpdateStatistics, alpha_of, stats_layers  # noqa: F401

# One held-out split for every run, so seeds and settings are compared on the same images.
VAL_SPLIT_SEED = 0


# ------------------------------------------------------------------------------------ train


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    ctx: DistContext | None = None,
    data: DataBundle | None = None,
    run_locked: bool = False,
    callbacks: Sequence[Callback] = (),
) -> RunOutcome:
    """Run (or resume, or skip if complete) one training run; return its result.

    Rank 0 holds the run's lock (:mod:`scalefree.locking`) from before its first write to the end;
    ``run_locked`` says the caller (a sweep worker) holds it already. Usage errors come before
    anything is written, and a run directory created by this call is removed again when one
    stops the run before it started. SIGTERM stops the run at the next step (raises Terminated),
    a full disk raises DiskFull; both leave the run resumable with ``--resume``. ``callbacks``
    (:class:`~scalefree.train.callbacks.Callback`) are called after the built-in ones (update
    statistics, progress). Deterministic algorithms, ``cudnn.benchmark``, the thread count and
    the global RNG state are as before the call when it returns or raises.
    """
    ctx = ctx or DistContext()
    run_dir = rundir.run_dir_of(config)
    done = rundir_write.finished_result(run_dir)
    if done is not None:
        return RunOutcome(run_dir, done, skipped=True)
    if ctx.is_main and not run_locked and is_locked(run_dir):
        raise UsageError(rundir_write.held_message(run_dir))

    device = ctx.device or resolve_device(config)
    rundir_write.check_run_dir(run_dir, config, resume)
    with process_settings(**run_settings(config, device)):
        if data is None:
            data = _load_run_data(config, ctx, device)
        model = _initial_model(config, ctx, data.num_classes)
        claim = _Claim(config, resume, ctx, run_dir, run_locked)
        return claim.run(lambda stop: _train_claimed(claim, data, device, model, stop, callbacks))


def _load_run_data(config: RunConfig, ctx: DistContext, device: torch.device) -> DataBundle:
    """Rank 0 downloads (skipped when the files are there); the others wait, then all read."""
    if config.download and ctx.is_main and DATASETS.get(config.dataset).downloadable:
        download_cifar(config.dataset, config.dataroot)
    _barrier(ctx)
    return load_data(
        config.dataset,
        config.dataroot,
        download=False,
        validation=config.validation,
        val_ratio=config.val_ratio,
        split_seed=VAL_SPLIT_SEED,
        device=device,
        synthetic_sizes=config.synthetic_sizes,
        image_size=config.image_size,
    )


def _initial_model(config: RunConfig, ctx: DistContext, num_classes: int) -> nn.Module:
    """Rank 0 creates and stores the initial weights if new; the other ranks then load them."""
    model = build_initial_model(config, num_classes, write=True) if ctx.is_main else None
    _barrier(ctx)
    if not ctx.is_main:  # rank 0's stored weights exist now
        model = build_initial_model(config, num_classes, write=False)
    return model


class _Claim:
    """The run directory claimed for one run: created, locked (unless the caller holds the
    lock), removed again if a usage error stops the run before it wrote anything."""

    def __init__(
        self, config: RunConfig, resume: bool, ctx: DistContext, run_dir: Path, run_locked: bool
    ) -> None:
        self.config, self.resume, self.ctx, self.run_dir = config, resume, ctx, run_dir
        self.run_locked = run_locked

    def run(self, body: Callable[[StopFlag], RunOutcome]) -> RunOutcome:
        ctx, run_dir = self.ctx, self.run_dir
        created = rundir_write.first_missing(run_dir)
        lock = RunLock(run_dir) if ctx.is_main and not self.run_locked else None
        if ctx.is_main:
            rundir_write.create_run_dir(run_dir)
            if lock is not None and not lock.acquire():
                raise UsageError(rundir_write.held_message(run_dir))
        _barrier(ctx)
        try:
            with stop_on_sigterm() as stop:
                return body(stop)
        except UsageError:
            if ctx.is_main:
                rundir_write.remove_if_untouched(created, run_dir)
            raise
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(disk_full_message(exc, run_dir)) from None
            raise
        finally:
            if lock is not None:
                lock.release()


def _train_claimed(
    claim: _Claim,
    data: DataBundle,
    device: torch.device,
    model: nn.Module,
    stop: StopFlag,
    callbacks: Sequence[Callback],
) -> RunOutcome:
    """The run under its lock: set up, resume or start, train, write result.json."""
    config, ctx, run_dir = claim.config, claim.ctx, claim.run_dir
    if ctx.is_main:
        done = rundir_write.finished_result(run_dir, set_damaged_aside=True)
        if done is not None:  # another process finished it while this one loaded the data
            return RunOutcome(run_dir, done, skipped=True)
        rundir_write.check_run_dir(run_dir, config, claim.resume)
    state = setup_state(config, ctx, data, device, model, run_dir)
    resume_or_start(state, claim.resume)
    compiled = resolve_compile(config, device, state.total_steps - state.step)
    if ctx.is_main:
        rundir_write.write_config(run_dir, config, run_environment(state, compiled))
    wrap_for_training(state, compiled)
    result = run_loop(state, CallbackList([*builtin_callbacks(state), *callbacks]), stop)
    _barrier(ctx)  # leave together: no rank tears down the process group while another writes
    return RunOutcome(run_dir, result)


# ------------------------------------------------------------------------------------ state


def setup_state(
    config: RunConfig,
    ctx: DistContext,
    data: DataBundle,
    device: torch.device,
    model: nn.Module,
    run_dir: Path,
) -> RunState:
    """A fresh run: the model on its device and layout, optimizer, scheduler, data generator."""
    channels_last = resolve_channels_last(config, device)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(config.seed)
    batches_per_epoch = len(TrainBatches(data, config.batchsize, generator))
    optimizer = make_optimizer(config, model, batches_per_epoch)
    # The first six in the order of this function's own parameters (and of RunState's fields).
    return RunState(
        config,
        ctx,
        run_dir,
        data,
        device,
        model,
        optimizer=optimizer,
        scheduler=make_scheduler(config, optimizer),
        generator=generator,
        channels_last=channels_last,
        batches_per_epoch=batches_per_epoch,
        amp_ctx=amp_context(config, device),
    )


def resume_or_start(state: RunState, resume: bool) -> None:
    """Continue from the newest valid checkpoint (``resume``) or start at epoch 1.

    Either way, metrics rows and statistics files of epochs after the starting point are set
    aside: after a checkpoint they were written by the crashed attempt; without one (a run that
    stopped before its first checkpoint starts from scratch, also under --resume) all are stale.
    """
    ctx, run_dir = state.ctx, state.run_dir
    if resume and ckpt.has_checkpoint(run_dir):
        saved, notes = ckpt.load_checkpoint(run_dir)
        for note in notes:
            print(f"warning: {note}; using the previous checkpoint", file=sys.stderr)
        _restore(saved, run_dir, state.model, state.optimizer, state.scheduler, state.generator)
        state.start_epoch, state.step = saved["epoch"] + 1, saved["step"]
        state.wall_before, state.best_acc = saved["wall_time_s"], saved.get("best_test_acc")
        state.reference_loss = saved.get("reference_loss")
        if ctx.is_main:
            rundir_write.truncate_after(run_dir, saved["epoch"])
            print(
                f"resuming {run_dir.name} after epoch {saved['epoch']} (step {state.step})",
                file=sys.stderr,
            )
    elif ctx.is_main:
        rundir_write.truncate_after(run_dir, 0)
    state.start_step = state.step
    state.epoch = state.saved_epoch = state.start_epoch - 1


def run_environment(state: RunState, compiled: bool) -> dict[str, Any]:
    """config.json's ``env``: the machine and software, and how the run's settings resolved."""
    data = state.data
    state.env = environment(state.device) | {
        "channels_last_resolved": state.channels_last,
        "world_size": state.ctx.world_size,
        "num_parameters": sum(p.numel() for p in state.model.parameters()),
        "eval_split": data.eval_split,
        "train_size": len(data.train_images),
        "eval_size": len(data.eval_images),
        "compile_resolved": compiled,
    }
    if state.config.decay_timescale is not None:  # the lambda --decay-timescale gave
        state.env["weight_decay_resolved"] = resolved_weight_decay(
            state.config, state.batches_per_epoch
        )
    return state.env


def wrap_for_training(state: RunState, compiled: bool) -> None:
    """What the training step calls: the model, under DDP with several ranks, compiled if
    ``compiled``. Checkpoints and evaluation keep using the plain ``state.model``."""
    train_model: nn.Module = state.model
    if state.ctx.world_size > 1:
        device = state.device
        train_model = nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device] if device.type == "cuda" else None
        )
    if compiled:
        train_model = torch.compile(train_model)
    state.train_model = train_model


def builtin_callbacks(state: RunState) -> list[Callback]:
    """Update statistics (rank 0, ``--store-stats``) and the progress display."""
    out: list[Callback] = []
    cfg = state.config
    if cfg.store_stats and state.ctx.is_main:
        recorder = UpdateStatistics(
            state.model,
            state.optimizer,
            state.run_dir,
            cfg.store_stats_interval,
            start_step=state.step,
        )
        if recorder.layers:
            out.append(recorder)
    out.append(ProgressCallback())
    return out


def _barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        torch.distributed.barrier()


def _restore(state, run_dir, model, optimizer, scheduler, generator) -> None:
    """Load a checkpoint's states; one that does not fit this run is a clear error."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"], generator)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ckpt.CheckpointError(
            f"the checkpoint in {run_dir} does not fit this run ({first}); delete the run "
            "directory to start this run from scratch"
        ) from None


__all__ = [
    "VAL_SPLIT_SEED",
    "DistContext",
    "RunOutcome",
    "RunState",
    "build_initial_model",
    "environment",
    "evaluate",
    "initial_weights_path",
    "make_optimizer",
    "optimizer_options",
    "resolved_weight_decay",
    "make_scheduler",
    "resolve_channels_last",
    "resolve_compile",
    "resolve_device",
    "train",
]
