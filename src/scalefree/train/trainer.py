"""The trainer: one RunConfig in, one run directory out (docs/design.md, docs/training-loop.md).

This module sets a run up and hands it to the loop. :func:`train` checks the run directory,
sets the process-global torch settings for the run (restored on return,
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

Schedulers step once per epoch: Cosine anneals to 0 over ``train_epochs``; Step multiplies by
``lr_gamma`` every ``lr_step_size`` epochs; Exponential by ``lr_gamma`` every epoch; Polynomial is
(1 - epoch / train_epochs) ** ``lr_power``.
"""

from __future__ import annotations

import contextlib
import errno
import math
import platform
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalefree import __version__, rundir
from scalefree.data import (
    DATASETS,
    DataBundle,
    TrainBatches,
    download_cifar,
    load_data,
)
from scalefree.errors import DiskFull, UsageError
from scalefree.io import atomic_save, refuse_symlink
from scalefree.locking import RunLock, is_locked
from scalefree.models import build_model
from scalefree.optim import param_groups
from scalefree.optim.adam_family import CONVENTIONS
from scalefree.optim.registry import OPTIMIZERS, build_optimizer
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
from scalefree.train.loop import (  # noqa: F401 - the trainer's public names, kept here
    CHECK_EVERY,
    StopFlag,
    rank_loss_weight,
    run_loop,
    stop_on_sigterm,
)
from scalefree.train.progress import ProgressCallback
from scalefree.train.run_state import DistContext, RunOutcome, RunState
from scalefree.train.settings import process_settings
from scalefree.train.stats import UpdateStatistics, alpha_of, stats_layers  # noqa: F401

# One held-out split for every run, so seeds and settings are compared on the same images.
VAL_SPLIT_SEED = 0


# ------------------------------------------------------------------------------------ resolution


def resolve_device(config: RunConfig) -> torch.device:
    want = config.device
    if config.use_cuda and want == "auto":
        want = "cuda"
        if not torch.cuda.is_available():
            warnings.warn(
                "--use-cuda given but no CUDA device is available; using the CPU", stacklevel=2
            )
            want = "cpu"
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda given but no CUDA device is available; use --device cpu or auto"
        )
    return torch.device(want)


def resolve_channels_last(config: RunConfig, device: torch.device) -> bool:
    if config.channels_last != "auto":
        return config.channels_last == "on"
    # channels_last pays off on GPU (tensor cores) and on CPU too: oneDNN's NHWC convolutions made
    # a ResNet-20 training step 1.15-1.25x faster than NCHW here (benchmarks/RESULTS.md).
    return device.type in ("cuda", "cpu")


# --compile auto: compile only when the run has at least this many optimizer steps left, i.e. when
# the compiled steps earn back the compile time with a wide margin. CPU: measured on ResNet20 no BN
# (benchmarks/RESULTS.md, "Training epoch": compile time vs seconds saved per step, fp32 and bf16).
# CUDA: not measured yet (no GPU lent so far); the same rule, with the compiler being Triton.
COMPILE_MIN_STEPS = {"cpu": 8000, "cuda": 8000}


def _compiler_available(device: torch.device) -> bool:
    """Whether inductor can build code for ``device``: a C++ compiler on the CPU, Triton on CUDA."""
    if device.type == "cpu":
        return any(shutil.which(c) for c in ("g++", "c++", "clang++"))
    if device.type == "cuda":
        import importlib.util

        return importlib.util.find_spec("triton") is not None
    return False


def resolve_compile(config: RunConfig, device: torch.device, steps_left: int) -> bool:
    """``--compile`` on/off as given; auto compiles where it pays for itself on ``device``.

    auto is off under ``--reproducible`` (compiled kernels are not bitwise equal to eager ones),
    without a compiler for the device, and for runs shorter than ``COMPILE_MIN_STEPS`` steps
    (the compile time, tens of seconds on a CPU, would not be earned back).
    """
    if config.compile != "auto":
        return config.compile == "on"
    if config.reproducible or not _compiler_available(device):
        return False
    return steps_left >= COMPILE_MIN_STEPS.get(device.type, math.inf)


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "scalefree_version": __version__,
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "num_threads": torch.get_num_threads(),
    }


def initial_weights_path(config: RunConfig) -> Path:
    bn = "BN" if config.batch_norm else "NoBN"
    name = f"{config.dataset}_{config.model}_{bn}_InitSeed_{config.effective_init_seed}.pt"
    return Path(config.log_folder) / "initial_weights" / name


def build_initial_model(config: RunConfig, num_classes: int, write: bool = True) -> nn.Module:
    """The run's model with the stored initial weights for (dataset, model, BN, init seed).

    The first run to need them creates them (seeded, on the CPU, so identical on every machine) and
    stores them atomically; every later run of a sweep loads the same file.
    """
    path = initial_weights_path(config)
    refuse_symlink(path)  # planted in a shared log folder: neither read through nor written
    if path.exists():
        model = build_model(config.model, num_classes=num_classes, batch_norm=config.batch_norm)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable file: one clear message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
            raise UsageError(
                f"the stored initial weights {path} cannot be used: it is damaged, belongs to "
                "another model, or holds objects other than tensors (not loaded, nothing run: "
                f"{first}). Delete it; scalefree recreates it from the init seed"
            ) from None
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.effective_init_seed)
        model = build_model(config.model, num_classes=num_classes, batch_norm=config.batch_norm)
    if write:
        try:
            atomic_save(path, lambda f: torch.save(model.state_dict(), f))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(_disk_full_message(exc, path.parent)) from None
            raise UsageError(
                f"cannot write to the log folder {config.log_folder} ({exc.strerror or exc}); "
                "choose a writable --log-folder"
            ) from None
    return model


def optimizer_options(config: RunConfig) -> dict[str, Any]:
    """The keywords beyond lr and weight_decay that ``config`` gives its optimizer.

    The Adam family always gets betas, eps, amsgrad and decay_convention (the paper's "schedule"
    rather than the classes' torch default), unless the registry entry fixes one itself (AdamC's
    "corrected") and the config leaves it at its default. Other optimizers get a setting only
    when it differs from the default, and refuse it when they do not take it. The switches
    cautious_decay and caution are passed only when on, so runs without them build exactly the
    optimizer they always did; an optimizer that does not take them refuses them (build_optimizer).
    """
    entry = OPTIMIZERS.get(config.optim_method)
    accepted, defaults = entry.options, RunConfig()
    options: dict[str, Any] = {}
    for key in ("betas", "eps", "amsgrad", "decay_convention"):
        value, default = getattr(config, key), getattr(defaults, key)
        if entry.own_setting(key) is not None and value == default:
            continue  # the entry's own choice (e.g. AdamC's convention) stands
        if key in accepted and (entry.adam_family or value != default):
            options[key] = value
        elif value != default:
            raise UsageError(f"--{key.replace('_', '-')} does not apply to optimizer {entry.name}")
    for key in ("cautious_decay", "caution"):
        if getattr(config, key):
            options[key] = True
    return options


def active_convention(config: RunConfig) -> str:
    """The decay convention the optimizer of ``config`` runs with (its entry's own, when the
    entry fixes one and the config leaves --decay-convention at its default)."""
    entry = OPTIMIZERS.get(config.optim_method)
    own = entry.own_setting("decay_convention")
    return optimizer_options(config).get("decay_convention", own or config.decay_convention)


def resolved_weight_decay(config: RunConfig, batches_per_epoch: int) -> float:
    """lambda of the run: --weight-decay, or the one --decay-timescale sets.

    Wang & Aitchison (2024) read decoupled decay as an EMA of the updates with timescale 1/s
    steps; --decay-timescale E asks for 1/s_0 = E * N, N = optimizer steps per epoch of this run
    and s_0 the first step's strength (lr_0 = eta0) in the active convention. Solving
    s_0 = strength(lambda, eta0, eta0) = lambda * strength(1, eta0, eta0) for lambda (every
    convention's strength is linear in lambda) gives schedule: 1/(E N); lr and corrected:
    1/(eta0 E N). The convention's own formula is used, so a new convention needs no edit here.
    """
    if config.decay_timescale is None:
        return config.weight_decay
    per_lambda = CONVENTIONS[active_convention(config)].strength(1.0, config.eta0, config.eta0)
    return 1.0 / (config.decay_timescale * batches_per_epoch * float(per_lambda))


def make_optimizer(
    config: RunConfig, model: nn.Module, batches_per_epoch: int | None = None
) -> torch.optim.Optimizer:
    """The run's optimizer; ``batches_per_epoch`` (optimizer steps per epoch) is needed to turn
    --decay-timescale into lambda (:func:`resolved_weight_decay`)."""
    if config.decay_timescale is not None and batches_per_epoch is None:
        raise ValueError("make_optimizer: --decay-timescale needs batches_per_epoch")
    wd = resolved_weight_decay(config, batches_per_epoch or 1)
    groups = param_groups(model, wd, exclude_bias_norm=config.no_decay_bias_norm)
    name = OPTIMIZERS.canonical(config.optim_method)
    return build_optimizer(
        name, groups, lr=config.eta0, weight_decay=wd, **optimizer_options(config)
    )


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer):
    epochs = config.train_epochs
    s = config.scheduler
    if s == "None":
        return None
    if s == "Cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if s == "Step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.lr_step_size, gamma=config.lr_gamma
        )
    if s == "Exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    if s == "Polynomial":
        return torch.optim.lr_scheduler.PolynomialLR(
            optimizer, total_iters=epochs, power=config.lr_power
        )
    raise UsageError(f"unknown scheduler {s!r}")


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


def run_settings(config: RunConfig, device: torch.device) -> dict[str, Any]:
    """The process-global settings of a run (:func:`~scalefree.train.settings.process_settings`):
    ``--reproducible`` turns on deterministic algorithms and turns off cudnn's autotuner (whose
    choice of kernel varies); otherwise CUDA runs autotune; the global seed is the run's seed."""
    if config.reproducible:
        return dict(seed=config.seed, deterministic=True, cudnn_benchmark=False)
    return dict(seed=config.seed, cudnn_benchmark=True if device.type == "cuda" else None)


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
                raise DiskFull(_disk_full_message(exc, run_dir)) from None
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


# ------------------------------------------------------------------------------------ setup


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
    total_steps = config.train_epochs * batches_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    return RunState(
        config=config,
        ctx=ctx,
        run_dir=run_dir,
        data=data,
        device=device,
        model=model,
        optimizer=optimizer,
        scheduler=make_scheduler(config, optimizer),
        generator=generator,
        channels_last=channels_last,
        batches_per_epoch=batches_per_epoch,
        total_steps=total_steps,
        train_model=model,
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


def amp_context(config: RunConfig, device: torch.device) -> Callable[[], Any]:
    """``--amp bf16``: autocast to bfloat16 on the run's device type; otherwise nothing."""
    if config.amp == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


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


def _disk_full_message(exc: OSError, run_dir: Path) -> str:
    where = exc.filename or run_dir
    return (
        f"the disk is full: writing {where} failed ({exc.strerror or 'no space left on device'}). "
        f"Every file written before is intact and the run directory {run_dir} keeps its last "
        "checkpoint; free space and rerun with --resume"
    )


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
