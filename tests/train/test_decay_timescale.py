"""--decay-timescale (Wang & Aitchison 2024) and the new optimizer switches as RunConfig fields.

The lambda a timescale gives is checked against the closed form of the float64 reference
(tests/reference/decay_rules.py), in every decay convention the optimizer has, both as computed
and as the optimizer received it; a real run records it in config.json.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from scalefree.errors import UsageError
from scalefree.optim import OPTIMIZERS
from scalefree.optim.adam_family import DECAY_CONVENTIONS, AdamW
from scalefree.optim.registry import OptimizerEntry, accepted_options
from scalefree.train.config import RunConfig
from scalefree.train.trainer import make_optimizer, resolved_weight_decay, train
from tests.reference.decay_rules import weight_decay_for_timescale

BASE = dict(dataset="synthetic", model="ResNet20", batch_norm=False, optim_method="AdamW")
NAME = "synthetic_ResNet20_NoBN_AdamW_Eta0_0.001_WD_0_Scheduler_None_Loss_Mul_1_Epoch_300"
needs_caution = pytest.mark.skipif(
    "caution" not in accepted_options("AdamW"),
    reason="the optimizer side (caution, cautious_decay) is not merged yet",
)
CONVENTIONS = [
    pytest.param(
        c,
        marks=pytest.mark.skipif(c not in DECAY_CONVENTIONS, reason=f"no {c!r} convention yet"),
    )
    for c in ("schedule", "lr", "corrected")
]


def test_run_names_gain_suffixes_only_when_set():
    assert RunConfig(**BASE, weight_decay=0.0).run_name() == f"{NAME}_BatchSize_128_Seed_0_Test"
    named = RunConfig(**BASE, decay_timescale=50.0, cautious_decay=True, caution=True)
    assert named.run_name() == f"{NAME}_BatchSize_128_Seed_0_CWD_Caution_Timescale_50_Test"
    assert RunConfig(**BASE, decay_timescale=0.5).run_name().endswith("_Timescale_0.5_Test")


def test_timescale_and_weight_decay_together_is_a_usage_error():
    with pytest.raises(UsageError, match="--weight-decay.*--decay-timescale"):
        RunConfig(**BASE, weight_decay=1e-4, decay_timescale=50.0)


@pytest.mark.parametrize("method", ["AdamL2", "Adam", "SGD"])
def test_timescale_of_an_l2_term_is_refused(method):
    with pytest.raises(UsageError, match=f"--decay-timescale.*{method}.*L2.*AdamW"):
        RunConfig(**(BASE | {"optim_method": method}), decay_timescale=50.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf])
def test_timescale_must_be_positive(bad):
    with pytest.raises(UsageError, match="--decay-timescale must be a positive"):
        RunConfig(**BASE, decay_timescale=bad)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("method", ["AdamW", "AdamProx", "AdamProxL2"])
def test_lambda_matches_the_closed_form_and_reaches_the_optimizer(convention, method):
    eta0, epochs, n = 5e-3, 20.0, 391
    config = RunConfig(
        **(BASE | {"optim_method": method}),
        eta0=eta0,
        decay_timescale=epochs,
        decay_convention=convention,
    )
    expected = weight_decay_for_timescale(epochs, n, eta0, convention)
    assert resolved_weight_decay(config, n) == pytest.approx(expected, rel=1e-12)
    # the first step's strength is 1 / (E N) whatever the convention
    factor = {"schedule": 1 / eta0, "lr": 1.0, "corrected": 1.0}[convention]  # s_0 / (lambda eta0)
    assert expected * eta0 * factor == pytest.approx(1 / (epochs * n), rel=1e-12)
    model = torch.nn.Linear(3, 2)
    opt = make_optimizer(config, model, n)
    assert opt.param_groups[0]["decay_convention"] == convention
    assert [g["weight_decay"] for g in opt.param_groups] == [pytest.approx(expected, rel=1e-12)]


def test_make_optimizer_without_steps_per_epoch_cannot_resolve_a_timescale():
    with pytest.raises(ValueError, match="batches_per_epoch"):
        make_optimizer(RunConfig(**BASE, decay_timescale=5.0), torch.nn.Linear(2, 2))


def test_baseline_options_unchanged_without_the_switches():
    opt = make_optimizer(RunConfig(**BASE, weight_decay=1e-4), torch.nn.Linear(2, 2))
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    # the switches are group options of the family, off unless asked for
    assert (
        opt.param_groups[0]["caution"] is False and opt.param_groups[0]["cautious_decay"] is False
    )


def test_switches_on_an_optimizer_without_them_are_usage_errors():
    for switch in ("cautious_decay", "caution"):
        config = RunConfig(**(BASE | {"optim_method": "SGD"}), **{switch: True})
        with pytest.raises(UsageError, match=f"SGD does not take {switch}"):
            make_optimizer(config, torch.nn.Linear(2, 2))


@needs_caution
@pytest.mark.parametrize("switch", ["cautious_decay", "caution"])
def test_switches_reach_the_optimizer(switch):
    config = RunConfig(**BASE, weight_decay=1e-4, **{switch: True})
    opt = make_optimizer(config, torch.nn.Linear(2, 2))
    assert opt.param_groups[0][switch] is True


def test_a_run_records_the_timescale_and_the_lambda_it_gave(tmp_path):
    config = RunConfig(
        **BASE,
        eta0=1e-3,
        decay_timescale=2.0,
        decay_convention="lr",
        validation=True,
        synthetic_sizes=(64, 32),
        batchsize=16,
        train_epochs=1,
        max_steps=2,
        log_folder=str(tmp_path),
        progress="none",
    )
    outcome = train(config)
    saved = json.loads((outcome.run_dir / "config.json").read_text())
    n = math.ceil(saved["env"]["train_size"] / 16)  # --validation holds out part of the 64
    assert saved["env"]["train_size"] < 64 and saved["decay_timescale"] == 2.0
    expected = weight_decay_for_timescale(2.0, n, 1e-3, "lr")
    assert saved["env"]["weight_decay_resolved"] == pytest.approx(expected, rel=1e-12)
    assert saved["weight_decay"] == 0.0


class _CorrectedAdamW(AdamW):
    """An entry that fixes its own convention in its class, as AdamC fixes "corrected" (a
    class default differing from the family's "lr" and from RunConfig's "schedule"); the
    registry entry records it as ``fixed``."""

    def __init__(self, params, lr=1e-3, weight_decay=1e-2, *, decay_convention="corrected", **kw):
        super().__init__(
            params, lr, weight_decay=weight_decay, decay_convention=decay_convention, **kw
        )


@pytest.mark.parametrize(
    "entry, convention",
    [
        (OptimizerEntry("ToyOwnConv", AdamW, "defaults", defaults={"decay_convention": "lr"},
                        options={"decay_convention"}, adam_family=True), "lr"),
        pytest.param(
            OptimizerEntry("ToyOwnConv", _CorrectedAdamW, "subclass", options=set(),
                           fixed={"decay_convention": "corrected"}, adam_family=True),
            "corrected",
            marks=pytest.mark.skipif("corrected" not in DECAY_CONVENTIONS, reason="not merged"),
        ),
    ],
)  # fmt: skip
def test_an_entrys_own_convention_stands_and_sets_the_timescales_lambda(entry, convention):
    with OPTIMIZERS.registered(entry):
        config = RunConfig(**(BASE | {"optim_method": "ToyOwnConv"}), decay_timescale=10.0)
        opt = make_optimizer(config, torch.nn.Linear(2, 2), 100)
        assert opt.param_groups[0]["decay_convention"] == convention
        expected = weight_decay_for_timescale(10.0, 100, 1e-3, convention)
        assert opt.param_groups[0]["weight_decay"] == pytest.approx(expected, rel=1e-12)
