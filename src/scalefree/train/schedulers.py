"""The learning-rate schedules of ``--scheduler``: one registry entry each, like optimizers and models.

Each entry's factory takes ``(optimizer, config)`` and returns the torch scheduler (None for
"None"); every schedule steps once per epoch. Cosine anneals to 0 over ``train_epochs``; Step
multiplies by ``lr_gamma`` every ``lr_step_size`` epochs; Exponential by ``lr_gamma`` every
epoch; Polynomial is (1 - epoch / train_epochs) ** ``lr_power``. ``--scheduler``'s choices and
its help are these names (``RunConfig``'s field reads them from here), so a schedule added with
``SCHEDULERS.add`` is a choice without an edit elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.optim import lr_scheduler

from scalefree.registry import Entry, Registry

if TYPE_CHECKING:
    from scalefree.train.config import RunConfig


@dataclass(frozen=True)
class SchedulerEntry(Entry[Any]):
    """A schedule: ``factory(optimizer, config)`` -> a torch LR scheduler, or None."""


def _cosine(optimizer: torch.optim.Optimizer, config: RunConfig) -> Any:
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.train_epochs)


def _step(optimizer: torch.optim.Optimizer, config: RunConfig) -> Any:
    return lr_scheduler.StepLR(optimizer, step_size=config.lr_step_size, gamma=config.lr_gamma)


def _exponential(optimizer: torch.optim.Optimizer, config: RunConfig) -> Any:
    return lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)


def _polynomial(optimizer: torch.optim.Optimizer, config: RunConfig) -> Any:
    return lr_scheduler.PolynomialLR(
        optimizer, total_iters=config.train_epochs, power=config.lr_power
    )


SCHEDULERS: Registry[SchedulerEntry] = Registry("scheduler", SchedulerEntry)
for _name, _factory, _description in (
    ("None", lambda optimizer, config: None, "a constant learning rate"),
    ("Cosine", _cosine, "cosine annealing to 0 over --train-epochs"),
    ("Step", _step, "x --lr-gamma every --lr-step-size epochs"),
    ("Exponential", _exponential, "x --lr-gamma every epoch"),
    ("Polynomial", _polynomial, "(1 - epoch / --train-epochs) ** --lr-power"),
):
    SCHEDULERS.add(_name, _factory, _description)


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer) -> Any:
    """The run's schedule (None for a constant learning rate); an unknown name is a UsageError."""
    return SCHEDULERS.get(config.scheduler).build(optimizer, config)


__all__ = ["SCHEDULERS", "SchedulerEntry", "make_scheduler"]
