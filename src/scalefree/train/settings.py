"""Process-global torch settings for one run, restored when the run ends.

A run needs a few settings that torch keeps per process: deterministic algorithms and
``cudnn.benchmark`` (``--reproducible``), the global RNG seed, the CPU thread count and, for a
sweep task pinned to a GPU, ``CUDA_VISIBLE_DEVICES``. ``train`` is also called in-process (a Slurm
job running one task, the tests, a notebook), where a setting left behind by one run would
silently change the next computation of the caller, e.g. a notebook cell that is suddenly
deterministic (and slower) or runs on one thread. :func:`process_settings` sets them for the
duration of a ``with`` block and puts the previous values back on exit, also when the block
raises.

The global RNG state (CPU, and every initialized CUDA device) is restored too: a run seeds the
generator itself, so the caller's random stream should not depend on whether a run happened in
between.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

_UNSET = object()


@dataclass(frozen=True)
class _Saved:
    deterministic: bool
    warn_only: bool
    cudnn_benchmark: bool
    num_threads: int
    cpu_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    cuda_visible_devices: Any  # str, None (unset) or _UNSET (not managed)


def _save(manage_cuda_env: bool) -> _Saved:
    cuda_rng = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_rng = torch.cuda.get_rng_state_all()
    return _Saved(
        deterministic=torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        num_threads=torch.get_num_threads(),
        cpu_rng=torch.get_rng_state(),
        cuda_rng=cuda_rng,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES") if manage_cuda_env else _UNSET,
    )


def _restore(saved: _Saved) -> None:
    torch.use_deterministic_algorithms(saved.deterministic, warn_only=saved.warn_only)
    torch.backends.cudnn.benchmark = saved.cudnn_benchmark
    if torch.get_num_threads() != saved.num_threads:
        torch.set_num_threads(saved.num_threads)
    torch.set_rng_state(saved.cpu_rng)
    if saved.cuda_rng is not None:
        torch.cuda.set_rng_state_all(saved.cuda_rng)
    if saved.cuda_visible_devices is None:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    elif saved.cuda_visible_devices is not _UNSET:
        os.environ["CUDA_VISIBLE_DEVICES"] = saved.cuda_visible_devices


@contextlib.contextmanager
def process_settings(
    *,
    seed: int | None = None,
    deterministic: bool | None = None,
    cudnn_benchmark: bool | None = None,
    num_threads: int | None = None,
    cuda_visible_devices: str | None = None,
) -> Iterator[None]:
    """Set the given process-global settings inside the block; restore all of them on exit.

    ``None`` leaves a setting as it is (it is still restored, so a change made inside the block,
    e.g. by code the block calls, does not leak out). ``deterministic=True`` turns on
    ``torch.use_deterministic_algorithms(True, warn_only=True)``: operations without a
    deterministic implementation warn instead of failing. ``cuda_visible_devices`` only has an
    effect before CUDA initializes in this process (CUDA reads it once).
    """
    saved = _save(manage_cuda_env=cuda_visible_devices is not None)
    try:
        if cuda_visible_devices is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
        if deterministic is not None:
            torch.use_deterministic_algorithms(deterministic, warn_only=True)
        if cudnn_benchmark is not None:
            torch.backends.cudnn.benchmark = cudnn_benchmark
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if seed is not None:
            torch.manual_seed(seed)
        yield
    finally:
        _restore(saved)


__all__ = ["process_settings"]
