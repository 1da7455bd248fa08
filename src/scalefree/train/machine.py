"""Where a run runs and how its settings resolve there: device, memory layout, compile, the
process-global settings, autocast and the environment recorded in config.json."""

from __future__ import annotations

import contextlib
import math
import platform
import shutil
import socket
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scalefree import __version__
from scalefree.errors import UsageError
from scalefree.train.config import RunConfig


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


def run_settings(config: RunConfig, device: torch.device) -> dict[str, Any]:
    """The process-global settings of a run (:func:`~scalefree.train.settings.process_settings`):
    ``--reproducible`` turns on deterministic algorithms and turns off cudnn's autotuner (whose
    choice of kernel varies); otherwise CUDA runs autotune; the global seed is the run's seed."""
    if config.reproducible:
        return dict(seed=config.seed, deterministic=True, cudnn_benchmark=False)
    return dict(seed=config.seed, cudnn_benchmark=True if device.type == "cuda" else None)


def amp_context(config: RunConfig, device: torch.device) -> Callable[[], Any]:
    """``--amp bf16``: autocast to bfloat16 on the run's device type; otherwise nothing."""
    if config.amp == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


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


__all__ = [
    "COMPILE_MIN_STEPS",
    "amp_context",
    "environment",
    "resolve_channels_last",
    "resolve_compile",
    "resolve_device",
    "run_settings",
]
