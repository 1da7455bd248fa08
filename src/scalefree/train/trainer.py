"""The training loop: one RunConfig in, one run directory out (DESIGN section 6).

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
first step's loss (see ``_check_divergence``).

Schedulers step once per epoch: Cosine anneals to 0 over ``train_epochs``; Step multiplies by
``lr_gamma`` every ``lr_step_size`` epochs; Exponential by ``lr_gamma`` every epoch; Polynomial is
(1 - epoch / train_epochs) ** ``lr_power``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scalefree import __version__
from scalefree.data import (
    DATASETS,
    DataBundle,
    TrainBatches,
    download_cifar,
    eval_batches,
    load_data,
)
from scalefree.errors import DiskFull, Terminated, UsageError
from scalefree.io import atomic_save, atomic_write_json, atomic_write_text
from scalefree.locking import LOCK_FILE, RunLock, holder, is_locked
from scalefree.models import build_model
from scalefree.optim import param_groups
from scalefree.optim.adam_family import AdamFamily
from scalefree.optim.groups import is_norm_module
from scalefree.optim.registry import OPTIMIZERS, accepted_options, build_optimizer
from scalefree.results import (
    CONFIG_FILE,
    METRICS_FILE,
    RESULT_FILE,
    STATS_DIR,
    DamagedFile,
    describe_damaged,
    read_json_object,
    read_metrics,
    read_metrics_file,
    read_result,
    set_aside,
)
from scalefree.train import checkpoint as ckpt
from scalefree.train.config import RunConfig
from scalefree.train.progress import RunProgress
from scalefree.train.stats import QUANTITIES, StatsRecorder

# Evaluation batch sizes: the GPU wants large batches; on the CPU a batch whose activations fit
# the caches is faster (benchmarks/eval_probe.py, benchmarks/RESULTS.md "Training epoch").
EVAL_BATCH = 500
EVAL_BATCH_CPU = 256


def eval_batch_size(device: torch.device) -> int:
    return EVAL_BATCH_CPU if device.type == "cpu" else EVAL_BATCH


CHECK_EVERY = 10  # steps between (host-syncing) checks of the running loss for divergence
# One held-out split for every run, so seeds and settings are compared on the same images.
VAL_SPLIT_SEED = 0


@dataclass
class DistContext:
    """Rank information; the default is a single process. Only rank 0 writes files."""

    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class RunOutcome:
    run_dir: Path
    result: dict[str, Any]
    skipped: bool = False  # the run was already complete


class Diverged(Exception):
    """The run diverged; ``details`` is what result.json records under ``divergence``."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def _check_divergence(
    loss: float, reference: float | None, factor: float, epoch: int, step: int
) -> None:
    """Raise Diverged when ``loss`` is not finite or exceeds ``factor`` x the first step's loss.

    The rule (``--divergence-factor``, DESIGN section 6): a training loss (the mean over at most
    CHECK_EVERY steps, in train mode) above ``factor`` times the loss of the run's first
    mini-batch, measured before any update. Both include ``--loss-multiplier``, so the rule does
    not depend on it. The eval-mode losses are only checked for being finite: with BatchNorm,
    eval-mode losses early in training (running statistics of a few batches) can be far above
    the training loss of a healthy run.
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


def make_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    name = OPTIMIZERS.canonical(config.optim_method)
    accepted = accepted_options(name)
    family = "adam_family" in OPTIMIZERS.get(name).tags
    defaults = RunConfig()
    options: dict[str, Any] = {}
    for key in ("betas", "eps", "amsgrad", "decay_convention"):
        value, default = getattr(config, key), getattr(defaults, key)
        if key in accepted and (family or value != default):
            options[key] = value
        elif value != default:
            raise UsageError(f"--{key.replace('_', '-')} does not apply to optimizer {name}")
    groups = param_groups(model, config.weight_decay, exclude_bias_norm=config.no_decay_bias_norm)
    return build_optimizer(
        name, groups, lr=config.eta0, weight_decay=config.weight_decay, **options
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


# ------------------------------------------------------------------------------------ statistics


def stats_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every parameter except those of normalization layers, in model order."""
    out = []
    for mod_name, module in model.named_modules():
        if is_norm_module(module):
            continue
        for p_name, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                out.append((f"{mod_name}.{p_name}" if mod_name else p_name, p))
    return out


def alpha_of(optimizer: torch.optim.Optimizer) -> dict[torch.Tensor, float]:
    return {
        p: float(g.get("alpha", g.get("initial_lr", g["lr"])))
        for g in optimizer.param_groups
        for p in g["params"]
    }


# ------------------------------------------------------------------------------------ evaluation


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


# ------------------------------------------------------------------------------------ the loop


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    ctx: DistContext | None = None,
    data: DataBundle | None = None,
    run_locked: bool = False,
) -> RunOutcome:
    """Run (or resume, or skip if complete) one training run; return its result.

    Rank 0 holds the run's lock (:mod:`scalefree.locking`) from before its first write to the end;
    ``run_locked`` says the caller (a sweep worker) holds it already. Usage errors come before
    anything is written, and a run directory created by this call is removed again when one
    stops the run before it started. SIGTERM stops the run at the next step (raises Terminated),
    a full disk raises DiskFull; both leave the run resumable with ``--resume``.
    """
    ctx = ctx or DistContext()
    run_dir = Path(config.log_folder) / config.run_name()
    done = _finished_result(run_dir)
    if done is not None:
        return RunOutcome(run_dir, done, skipped=True)
    if ctx.is_main and not run_locked and is_locked(run_dir):
        raise UsageError(_held_message(run_dir))

    device = ctx.device or resolve_device(config)
    _check_run_dir(run_dir, config, resume)
    if config.reproducible:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(config.seed)
    if data is None:
        # Rank 0 downloads (skipped when the files are there); the others wait, then read them.
        if config.download and ctx.is_main and "cifar" in DATASETS.get(config.dataset).tags:
            download_cifar(config.dataset, config.dataroot)
        _barrier(ctx)
        data = load_data(
            config.dataset,
            config.dataroot,
            download=False,
            validation=config.validation,
            val_ratio=config.val_ratio,
            split_seed=VAL_SPLIT_SEED,
            device=device,
            synthetic_sizes=config.synthetic_sizes,
        )
    if ctx.is_main:
        model = build_initial_model(config, data.num_classes, write=True)  # stores them if new
    _barrier(ctx)
    if not ctx.is_main:  # rank 0's stored weights exist now
        model = build_initial_model(config, data.num_classes, write=False)

    created = _first_missing(run_dir)
    lock = RunLock(run_dir) if ctx.is_main and not run_locked else None
    if ctx.is_main:
        _create_run_dir(run_dir)
        if lock is not None and not lock.acquire():
            raise UsageError(_held_message(run_dir))
    _barrier(ctx)
    try:
        with _stop_on_sigterm() as stop:
            return _train_claimed(config, resume, ctx, data, device, model, run_dir, stop)
    except UsageError:
        if ctx.is_main:
            _remove_if_untouched(created, run_dir)
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(_disk_full_message(exc, run_dir)) from None
        raise
    finally:
        if lock is not None:
            lock.release()


def _train_claimed(
    config: RunConfig,
    resume: bool,
    ctx: DistContext,
    data: DataBundle,
    device: torch.device,
    model: nn.Module,
    run_dir: Path,
    stop: _StopFlag,
) -> RunOutcome:
    """The run under its lock: resume or start, train, write result.json (see the module doc)."""
    result_path = run_dir / RESULT_FILE
    if ctx.is_main:
        done = _finished_result(run_dir, set_damaged_aside=True)
        if done is not None:  # another process finished it while this one loaded the data
            return RunOutcome(run_dir, done, skipped=True)
        _check_run_dir(run_dir, config, resume)
    channels_last = resolve_channels_last(config, device)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    generator = torch.Generator().manual_seed(config.seed)

    env = environment(device) | {
        "channels_last_resolved": channels_last,
        "world_size": ctx.world_size,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "eval_split": data.eval_split,
        "train_size": len(data.train_images),
        "eval_size": len(data.eval_images),
    }
    start_epoch, step, wall_before, best_acc, reference = 1, 0, 0.0, None, None
    batches_per_epoch = len(TrainBatches(data, config.batchsize, generator))
    total_steps = config.train_epochs * batches_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    if resume and ckpt.has_checkpoint(run_dir):
        state, notes = ckpt.load_checkpoint(run_dir)
        for note in notes:
            print(f"warning: {note}; using the previous checkpoint", file=sys.stderr)
        _restore(state, run_dir, model, optimizer, scheduler, generator)
        start_epoch, step = state["epoch"] + 1, state["step"]
        wall_before, best_acc = state["wall_time_s"], state.get("best_test_acc")
        reference = state.get("reference_loss")
        if ctx.is_main:
            _truncate_after(run_dir, state["epoch"])
            print(
                f"resuming {run_dir.name} after epoch {state['epoch']} (step {step})",
                file=sys.stderr,
            )
    elif ctx.is_main:
        # Leftovers of a run that stopped before its first checkpoint: it starts from scratch, so
        # metrics or statistics already written are stale (also under --resume); set aside.
        _truncate_after(run_dir, 0)
    compiled = resolve_compile(config, device, total_steps - step)
    env["compile_resolved"] = compiled
    if ctx.is_main:
        atomic_write_json(
            run_dir / CONFIG_FILE, config.to_dict() | {"run_name": run_dir.name, "env": env}
        )

    train_model: nn.Module = model
    if ctx.world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    amp_ctx = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if config.amp == "bf16"
        else contextlib.nullcontext
    )

    layers = stats_layers(model) if config.store_stats else []
    recorder = (
        StatsRecorder(run_dir / STATS_DIR, [n for n, _ in layers])
        if layers and ctx.is_main
        else None
    )
    alphas = alpha_of(optimizer)
    is_family = isinstance(optimizer, AdamFamily)

    if compiled:
        train_model = torch.compile(train_model)
    progress = RunProgress.for_run(config, data, total_steps, step, batches_per_epoch, ctx.is_main)
    t0 = time.perf_counter()
    status, message, last = "completed", None, None

    def elapsed() -> float:
        return wall_before + time.perf_counter() - t0

    def evaluate_both() -> dict[str, float]:
        kw = dict(
            loss_multiplier=config.loss_multiplier,
            amp_ctx=amp_ctx,
            channels_last=channels_last,
            ctx=ctx,
        )
        tr_loss, tr_acc = evaluate(
            model, data.train_images, data.train_labels, data.mean, data.std, **kw
        )
        te_loss, te_acc = evaluate(
            model, data.eval_images, data.eval_labels, data.mean, data.std, **kw
        )
        return {
            "train_loss": tr_loss,
            "train_acc": tr_acc,
            "test_loss": te_loss,
            "test_acc": te_acc,
        }

    epoch = saved_epoch = start_epoch - 1
    divergence = None
    factor = config.divergence_factor

    def check_stop(at_check: bool) -> None:
        if _stop_requested(stop, ctx, at_check):
            raise Terminated(_terminated_message(run_dir, epoch, step, saved_epoch))

    try:
        for epoch in range(start_epoch, config.train_epochs + 1):
            if step >= total_steps:
                epoch -= 1
                break
            train_model.train()
            loader = TrainBatches(
                data,
                config.batchsize,
                generator,
                channels_last=channels_last,
                rank=ctx.rank,
                world_size=ctx.world_size,
            )
            running = torch.zeros((), device=device)
            since_check, last_check_t = 0, time.perf_counter()
            for it, (x, y) in enumerate(loader):
                record = recorder is not None and it % config.store_stats_interval == 0
                with amp_ctx():
                    logits = train_model(x)
                    loss = F.cross_entropy(logits.float(), y)
                    if ctx.world_size > 1:
                        # DDP averages gradients over ranks: weight each rank by its share of the
                        # global batch so the result is the global-batch mean even when uneven.
                        global_n = min(config.batchsize, loader.num_samples - it * config.batchsize)
                        loss = loss * rank_loss_weight(len(y), ctx.world_size, global_n)
                    scaled = loss * config.loss_multiplier
                optimizer.zero_grad(set_to_none=True)
                scaled.backward()
                if record:
                    grads = [
                        p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                        for _, p in layers
                    ]
                    before = [p.detach().clone() for _, p in layers]
                optimizer.step()
                step += 1
                running += loss.detach()
                since_check += 1
                if reference is None:  # the first step's loss, before any update: the yardstick
                    reference = _mean_loss(loss.detach(), 1, config.loss_multiplier, ctx)
                    _check_divergence(reference, None, factor, epoch, step)
                if record:
                    _record_stats(
                        recorder,
                        optimizer,
                        layers,
                        grads,
                        before,
                        alphas,
                        is_family,
                        epoch,
                        it,
                        step,
                    )
                at_check = since_check >= CHECK_EVERY or step >= total_steps
                if at_check:
                    mean_loss = _mean_loss(running, since_check, config.loss_multiplier, ctx)
                    _check_divergence(mean_loss, reference, factor, epoch, step)
                    now = time.perf_counter()
                    progress.step(
                        since_check,
                        mean_loss,
                        since_check * config.batchsize / max(now - last_check_t, 1e-9),
                    )
                    running.zero_()
                    since_check, last_check_t = 0, now
                if step >= total_steps:
                    break
                check_stop(at_check)
            if since_check:
                mean_loss = _mean_loss(running, since_check, config.loss_multiplier, ctx)
                _check_divergence(mean_loss, reference, factor, epoch, step)
                progress.step(since_check, mean_loss, 0.0)
            if scheduler is not None:
                scheduler.step()
            finished = epoch == config.train_epochs or step >= total_steps
            if epoch % config.eval_interval == 0 or finished:
                metrics = evaluate_both()
                if not all(math.isfinite(v) for v in metrics.values()):
                    raise Diverged(
                        f"evaluation loss is not finite after epoch {epoch}: {metrics}",
                        {"reason": "non-finite", "loss": None, "epoch": epoch, "step": step},
                    )
                best_acc = max(best_acc or 0.0, metrics["test_acc"])
                last = {
                    "epoch": epoch,
                    "step": step,
                    **metrics,
                    "lr": optimizer.param_groups[0]["lr"],
                    "wall_time_s": round(elapsed(), 3),
                }
                if ctx.is_main:
                    _append_metrics(run_dir, last)
                    progress.epoch(
                        f"epoch {epoch}/{config.train_epochs} step {step}: train loss {metrics['train_loss']:.4f} "
                        f"acc {metrics['train_acc']:.4f} | {data.eval_split} loss {metrics['test_loss']:.4f} "
                        f"acc {metrics['test_acc']:.4f} | {elapsed():.1f}s"
                    )
                    progress.evaluated(epoch, metrics)
            if ctx.is_main:
                if recorder is not None:
                    recorder.flush(epoch)
                ckpt.save_checkpoint(
                    run_dir,
                    {
                        "epoch": epoch,
                        "step": step,
                        "wall_time_s": elapsed(),
                        "best_test_acc": best_acc,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "rng": ckpt.rng_state(generator),
                        "reference_loss": reference,
                        "config": config.to_dict(),
                    },
                )
                saved_epoch = epoch
            if finished:
                break
            check_stop(True)
    except Diverged as exc:
        status, message, divergence = "diverged", str(exc), exc.details
        if recorder is not None:
            recorder.discard()
    finally:
        progress.close()

    if last is None:
        # Resumed a run whose last epoch was complete but result.json was not written yet.
        rows = read_metrics(run_dir)
        last = rows[-1] if rows else None
    result = {
        "status": status,
        "epochs_completed": epoch,
        "steps": step,
        "wall_time_s": round(elapsed(), 3),
        "final": last if status == "completed" else None,
        "last_evaluation": last,
        "test_error": (1.0 - last["test_acc"]) if status == "completed" and last else None,
        "best_test_acc": best_acc,
        "eval_split": data.eval_split,
        "message": message,
        "divergence": divergence,
    }
    if ctx.is_main:
        atomic_write_json(result_path, result)
    _barrier(ctx)  # leave together: no rank tears down the process group while another writes
    return RunOutcome(run_dir, result)


def _record_stats(
    recorder, optimizer, layers, grads, before, alphas, is_family, epoch, it, step
) -> None:
    if is_family:
        updates = optimizer.adam_updates()
        u = [updates.get(p, torch.zeros_like(p)) for _, p in layers]
    else:  # torch baselines: the update is the parameter change itself
        u = [b - p.detach() for b, (_, p) in zip(before, layers)]
    recorder.record(
        epoch,
        it,
        step,
        dict(
            zip(
                QUANTITIES,
                (
                    [t / alphas[p] for t, (_, p) in zip(u, layers)],
                    u,
                    grads,
                    before,
                ),
            )
        ),
    )


def rank_loss_weight(local_n: int, world_size: int, global_n: int) -> float:
    """Factor on a rank's mean loss so that DDP's gradient average is the global-batch mean.

    DDP computes (1/W) sum_r grad(w_r * mean_r); with w_r = n_r W / N this is
    sum_r (n_r / N) grad(mean_r) = grad(global mean), also when N does not split evenly.
    """
    return local_n * world_size / global_n


def _mean_loss(running: torch.Tensor, n: int, multiplier: float, ctx: DistContext) -> float:
    """Mean training loss since the last check, agreed on by every rank (so all stop together)."""
    if ctx.world_size > 1:
        running = running.clone()
        torch.distributed.all_reduce(running)
        running /= ctx.world_size
    return float(running) / n * multiplier


def _barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        torch.distributed.barrier()


def _append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    path = run_dir / METRICS_FILE
    try:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _truncate_after(run_dir: Path, epoch: int) -> None:
    """Drop metrics rows and statistics of epochs after the checkpoint (written before a crash).

    Only rows of later epochs and a torn last line are dropped; a damaged line is kept where it
    is (and reported with its number). When the file must be rewritten, the original is kept
    beside it as ``metrics.jsonl.bak-<UTC time>``.
    """
    path = run_dir / METRICS_FILE
    parsed = read_metrics_file(run_dir)
    for note in describe_damaged(run_dir, parsed):
        print(f"warning: {note}", file=sys.stderr)
    kept = [text for text, row in parsed.lines if row is None or row["epoch"] <= epoch]
    if path.exists() and (len(kept) != len(parsed.lines) or not _ends_with_newline(path)):
        backup = path.with_name(
            f"{METRICS_FILE}.bak-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        )
        shutil.copy2(path, backup)
        print(
            f"note: {path}: dropped {len(parsed.lines) - len(kept)} row(s) of epochs after "
            f"{epoch}{' and a torn last line' if parsed.torn_tail else ''}; the original is kept "
            f"as {backup.name}",
            file=sys.stderr,
        )
        if kept:
            atomic_write_text(path, "".join(t + "\n" for t in kept))
        else:
            path.unlink()
    for f in (run_dir / STATS_DIR).glob("epoch_*.npz"):
        if int(f.stem.split("_")[1]) > epoch:
            f.unlink()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _check_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> None:
    """Refuse to clobber a different run or an unfinished one (read-only: safe on every rank)."""
    existing = run_dir / CONFIG_FILE
    if existing.exists():
        try:
            saved = RunConfig.from_dict(read_json_object(existing)).identity()
        except (DamagedFile, UsageError, TypeError) as exc:
            raise UsageError(
                f"{existing} is damaged ({exc}); restore it, or delete the run directory to start "
                "this run over"
            ) from None
        mine = config.identity()
        if saved != mine:
            diff = {k: (v, mine.get(k)) for k, v in saved.items() if mine.get(k) != v}
            raise UsageError(
                f"{run_dir} holds a run with different settings {diff}; use another --log-folder"
            )
    if ckpt.has_checkpoint(run_dir) and not resume:
        raise UsageError(
            f"{run_dir} already holds a checkpoint of an unfinished run; pass --resume to continue it "
            "or delete the folder to start over"
        )


def _create_run_dir(run_dir: Path) -> None:
    """Create the run directory and check it is writable before any training starts."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write to the log folder {run_dir.parent} ({exc.strerror or exc}); "
            "choose a writable --log-folder"
        ) from exc


def _first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` that does not exist yet (what a mkdir -p would create)."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def _remove_if_untouched(created: Path | None, run_dir: Path) -> None:
    """After a usage error: remove the folders this call created, if they hold nothing but the lock."""
    if created is None or not run_dir.is_dir():
        return
    if any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        return
    shutil.rmtree(created, ignore_errors=True)


def _finished_result(run_dir: Path, set_damaged_aside: bool = False) -> dict[str, Any] | None:
    """result.json when the run is finished; None when unfinished or when result.json is damaged
    (then, under the lock, it is renamed aside, named on stderr, and the run resumes)."""
    try:
        return read_result(run_dir)
    except DamagedFile as exc:
        if not set_damaged_aside:
            return None
        kept = set_aside(exc.path)
        print(
            f"warning: {exc}; kept as {kept.name}, the run is treated as unfinished",
            file=sys.stderr,
        )
        return None


def _held_message(run_dir: Path) -> str:
    who = holder(run_dir) or "another process"
    return (
        f"{run_dir} is being trained by {who} (it holds {run_dir / LOCK_FILE}); wait for it to "
        "finish or stop that process, then rerun"
    )


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


def _terminated_message(run_dir: Path, epoch: int, step: int, saved_epoch: int) -> str:
    kept = (
        f"{run_dir} keeps the checkpoint of epoch {saved_epoch}"
        if saved_epoch
        else f"no epoch had finished, so {run_dir} has no checkpoint yet"
    )
    return (
        f"stopped by SIGTERM at epoch {epoch}, step {step}; {kept}. Rerun with --resume to "
        "continue (a relaunched sweep resumes it)"
    )


class _StopFlag:
    """Set by the SIGTERM handler; the training loop stops at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[_StopFlag]:
    """SIGTERM sets a flag instead of killing the process (only the main thread gets signals)."""
    flag = _StopFlag()
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


def _stop_requested(flag: _StopFlag, ctx: DistContext, at_check: bool) -> bool:
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
