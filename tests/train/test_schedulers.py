"""--scheduler: one registry entry per schedule, each stepping the lr as its closed form says."""

from __future__ import annotations

import math

import pytest
import torch

from scalefree.errors import UsageError
from scalefree.train.config import RunConfig
from scalefree.train.schedulers import SCHEDULERS, SchedulerEntry, make_scheduler

ETA0, EPOCHS, GAMMA, STEP, POWER = 0.1, 8, 0.5, 3, 2.0

# lr after e epochs, written from the definitions (docs/design.md, scalefree.train.schedulers).
CLOSED_FORM = {
    "None": lambda e: ETA0,
    "Cosine": lambda e: ETA0 * (1 + math.cos(math.pi * e / EPOCHS)) / 2,
    "Step": lambda e: ETA0 * GAMMA ** (e // STEP),
    "Exponential": lambda e: ETA0 * GAMMA**e,
    "Polynomial": lambda e: ETA0 * (1 - e / EPOCHS) ** POWER,
}


def _lrs(name: str) -> list[float]:
    config = RunConfig(
        scheduler=name,
        eta0=ETA0,
        train_epochs=EPOCHS,
        lr_gamma=GAMMA,
        lr_step_size=STEP,
        lr_power=POWER,
    )
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=ETA0)
    sched = make_scheduler(config, opt)
    assert (sched is None) == (name == "None")
    out = []
    for _ in range(EPOCHS + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return out


def test_every_entry_is_a_schedule_with_a_closed_form():
    assert set(SCHEDULERS.names()) == set(CLOSED_FORM)


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_schedule_follows_its_closed_form(name):
    want = [CLOSED_FORM[name](e) for e in range(EPOCHS + 1)]
    assert _lrs(name) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_a_registered_schedule_is_a_choice_and_is_built():
    halve = SchedulerEntry(
        "Halve",
        lambda optimizer, config: torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5),
        "x 0.5 every epoch",
    )
    with pytest.raises(UsageError, match="--scheduler must be one of None, Cosine"):
        RunConfig(scheduler="Halve")
    with SCHEDULERS.registered(halve):
        config = RunConfig(scheduler="Halve", eta0=1.0)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make_scheduler(config, opt)
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == 0.5
        assert "Scheduler_Halve" in config.run_name()
