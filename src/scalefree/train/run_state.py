"""What a run carries from setup through its epochs to result.json: one object, not 20 locals.

The trainer's parts (:mod:`scalefree.train.trainer` sets up and resumes,
:mod:`scalefree.train.loop` trains, ends epochs and finishes) pass a :class:`RunState` between
them, and callbacks (:mod:`scalefree.train.callbacks`) read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalefree.data import DataBundle
from scalefree.train.config import RunConfig


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


@dataclass
class RunState:
    """One run in progress.

    ``model`` is the plain module (its ``state_dict`` is what checkpoints hold); ``train_model`` is
    what the training step calls: the same module, or it wrapped by DDP and/or ``torch.compile``.
    ``epoch`` is the epoch being trained, or after the loop the last one entered (what result.json
    reports as ``epochs_completed``); ``step`` counts optimizer steps over the whole run.
    """

    config: RunConfig
    ctx: DistContext
    run_dir: Path
    data: DataBundle
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch LRScheduler or None
    generator: torch.Generator
    channels_last: bool
    batches_per_epoch: int
    train_model: nn.Module | None = None
    amp_ctx: Callable[[], Any] | None = None
    env: dict[str, Any] = field(default_factory=dict)  # config.json's "env"
    start_epoch: int = 1
    start_step: int = 0
    epoch: int = 0
    step: int = 0
    saved_epoch: int = 0  # the epoch of the newest checkpoint (0: none yet)
    best_acc: float | None = None
    reference_loss: float | None = None  # the first step's loss: the divergence yardstick
    wall_before: float = 0.0  # wall time of the run before a resume
    started: float = field(default_factory=time.perf_counter)
    last: dict[str, Any] | None = None  # the newest metrics row

    def elapsed(self) -> float:
        """The run's wall time in seconds, counting the time before a resume."""
        return self.wall_before + time.perf_counter() - self.started

    def __post_init__(self) -> None:
        if self.train_model is None:
            self.train_model = self.model

    @property
    def total_steps(self) -> int:
        """The step the run stops after: train_epochs x batches per epoch, or --max-steps when
        that comes first."""
        steps = self.config.train_epochs * self.batches_per_epoch
        return steps if self.config.max_steps is None else min(steps, self.config.max_steps)

    @property
    def finished(self) -> bool:
        """The last planned epoch or step is done."""
        return self.epoch == self.config.train_epochs or self.step >= self.total_steps


__all__ = ["DistContext", "RunOutcome", "RunState"]
