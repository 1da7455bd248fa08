"""Registry, decay/no-decay groups and the check-scale-free command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from scalefree.cli import main
from scalefree.errors import UsageError
from scalefree.optim import OPTIMIZERS, AdamFamily, build_optimizer, param_groups
from scalefree.optim.registry import accepted_options
from scalefree.optim.scale_free import check_scale_free
from scalefree.plots.figures import METHOD_COLORS
from scalefree.plots.tables import METHOD_ORDER, method_sort_key
from tests.helpers import exit_code
from tests.reference.adam_family import NAMES


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_entry_builds_and_steps(name):
    x = torch.ones(4, requires_grad=True)
    opt = build_optimizer(name, [x], lr=0.1, weight_decay=0.01)
    x.square().sum().backward()
    opt.step()
    assert torch.all(x.detach() < 1)


def test_baselines_are_torch_optimizers_and_sgdm_has_momentum():
    x = [torch.ones(1, requires_grad=True)]
    assert type(build_optimizer("SGD", x, lr=0.1)) is torch.optim.SGD
    assert build_optimizer("SGDM", x, lr=0.1).param_groups[0]["momentum"] == 0.9
    assert type(build_optimizer("adagrad", x, lr=0.1)) is torch.optim.Adagrad


def test_unsupported_option_is_a_usage_error():
    with pytest.raises(UsageError, match="optimizer SGD does not take amsgrad"):
        build_optimizer("SGD", [torch.ones(1, requires_grad=True)], lr=0.1, amsgrad=True)
    with pytest.raises(UsageError, match="unknown optimizer 'AdamX'; choose one of: AdamL2, AdamW"):
        build_optimizer("AdamX", [torch.ones(1, requires_grad=True)], lr=0.1)


def test_entries_carry_typed_capabilities_and_options():
    family = OPTIMIZERS.names("adam_family")
    # A new family member also needs its float64 reference: the paper's six in
    # tests/reference/adam_family.py, the rules since 2022 in tests/reference/decay_rules.py.
    assert family == (*NAMES, "AdamC", "CWD", "CAdamW")
    for name in family:
        entry = OPTIMIZERS.get(name)
        assert issubclass(entry.factory, AdamFamily) and entry.factory.__name__ == name
        # AdamC's convention is what defines it, so it is not an option of its entry.
        assert ("decay_convention" in entry.options) == (name != "AdamC") and not entry.baseline
        assert ("norm_process_group" in entry.options) == (name == "AdamProxL2")
    assert OPTIMIZERS.names("scale_free") == (
        "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamC", "CWD", "CAdamW",
    )  # fmt: skip
    assert OPTIMIZERS.names("baseline") == ("SGD", "SGDM", "AdaGrad", "RMSProp", "Adam")
    assert accepted_options("SGD") == {"maximize", "foreach"}
    with pytest.raises(ValueError, match="no capability 'cifar'; they have: adam_family"):
        OPTIMIZERS.names("cifar")
    # Read-only tags derived from the typed fields, for code written against the string tags.
    assert OPTIMIZERS.get("AdamW").tags == {"adam_family", "scale_free"}
    assert OPTIMIZERS.get("SGD").tags == {"baseline"}


def test_plot_order_and_colours_are_read_from_the_entries():
    """The values that plots/tables.py and plots/figures.py used to list, now in the entries."""
    assert tuple(METHOD_ORDER) == (
        "AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD",
        "AdamC", "CWD", "CAdamW",
        "Adam", "SGD", "SGDM", "AdaGrad", "RMSProp",
    )  # fmt: skip
    assert dict(METHOD_COLORS) == {
        "AdamL2": "tab:blue", "AdamW": "tab:red", "AdamProx": "tab:green",
        "AdamProxL2": "tab:purple", "AdamProxL1": "tab:brown", "AdamProxD": "tab:olive",
        "AdamC": "tab:orange", "CWD": "firebrick", "CAdamW": "teal",
        "Adam": "tab:gray", "SGD": "tab:pink", "SGDM": "tab:cyan", "AdaGrad": "gold",
        "RMSProp": "black",
    }  # fmt: skip
    assert method_sort_key("AdamProxD") < method_sort_key("Adam") < method_sort_key("Zeta")
    assert METHOD_COLORS.get("NotRegistered", "tab:gray") == "tab:gray"


def test_param_groups_exclude_bias_and_norm():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    everything = param_groups(model, 0.1)
    assert len(everything) == 1 and len(everything[0]["params"]) == 6
    decay, no_decay = param_groups(model, 0.1, exclude_bias_norm=True)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert len(no_decay["params"]) == 4  # conv bias, BN weight and bias, linear bias


def test_check_scale_free_expected_verdicts():
    rows = {
        (r.name, r.eps): r
        for r in check_scale_free(["AdamW", "AdamL2", "AdamProxD", "SGD"], steps=40)
    }
    assert rows[("AdamW", 0.0)].max_rel_diff < 1e-12
    assert rows[("AdamW", 1e-8)].verdict == "scale-free up to eps"
    assert rows[("AdamL2", 0.0)].max_rel_diff > 1e-3
    assert rows[("AdamProxD", 0.0)].max_rel_diff > 1e-3
    assert not rows[("SGD", None)].scale_free


def test_check_scale_free_cli(tmp_path, capsys):
    out = tmp_path / "sf.json"
    assert (
        main(
            [
                "check-scale-free",
                "--optimizers",
                "AdamW",
                "AdamProxL1",
                "--steps",
                "20",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "AdamProxL1" in text and "scale-free" in text
    rows = json.loads(out.read_text())
    assert {r["name"] for r in rows} == {"AdamW", "AdamProxL1"}
    assert all(r["max_rel_diff"] < 1e-12 for r in rows if r["eps"] == 0.0)


def user_factory(params):
    return torch.optim.SGD(params, lr=1e-3)


def test_check_scale_free_cli_user_factory_and_errors(capsys):
    assert main(["check-scale-free", "--factory", f"{__name__}:user_factory", "--steps", "5"]) == 0
    assert "not scale-free" in capsys.readouterr().out
    assert main(["check-scale-free", "--factory", "nonexistent_mod:f"]) == 2
    assert exit_code(main, ["check-scale-free", "--steps", "0"]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [n for n in OPTIMIZERS.names("adam_family") if "decay_convention" in accepted_options(n)],
)
def test_training_runs_use_the_papers_convention_explicitly(name):
    """The library classes default to torch's "lr" convention; `scalefree train` and sweeps pass
    RunConfig.decay_convention ("schedule" unless asked) and it is in config.json's fields."""
    import dataclasses

    from scalefree.train.config import RunConfig
    from scalefree.train.trainer import make_optimizer

    model = nn.Linear(3, 2)
    config = RunConfig(optim_method=name, weight_decay=1e-3)
    assert "decay_convention" in {f.name for f in dataclasses.fields(RunConfig)}
    opt = make_optimizer(config, model)
    assert {g["decay_convention"] for g in opt.param_groups} == {"schedule"}
    lr_opt = make_optimizer(dataclasses.replace(config, decay_convention="lr"), model)
    assert {g["decay_convention"] for g in lr_opt.param_groups} == {"lr"}


def test_adamc_is_the_one_family_entry_with_a_fixed_convention():
    """AdamC is defined by its convention: train keeps it, and asking for another is an error."""
    import dataclasses

    from scalefree.train.config import RunConfig
    from scalefree.train.trainer import make_optimizer

    fixed = [
        n for n in OPTIMIZERS.names("adam_family") if "decay_convention" not in accepted_options(n)
    ]
    assert fixed == ["AdamC"]
    config = RunConfig(optim_method="AdamC", weight_decay=1e-3)
    opt = make_optimizer(config, nn.Linear(3, 2))
    assert {g["decay_convention"] for g in opt.param_groups} == {"corrected"}
    with pytest.raises(UsageError, match="--decay-convention does not apply to optimizer AdamC"):
        make_optimizer(dataclasses.replace(config, decay_convention="lr"), nn.Linear(3, 2))


def test_check_scale_free_runs_the_family_in_the_chosen_convention(monkeypatch):
    seen = []
    real = build_optimizer

    def spy(name, params, **kw):
        seen.append(kw.get("decay_convention"))
        return real(name, params, **kw)

    monkeypatch.setattr("scalefree.optim.scale_free.build_optimizer", spy)
    check_scale_free(["AdamW", "SGD"], steps=2, eps_values=(0.0,))
    check_scale_free(["AdamW"], steps=2, eps_values=(0.0,), decay_convention="lr")
    # two trajectories (plain and rescaled gradients) per optimizer; SGD has no convention
    assert seen == ["schedule", "schedule", None, None, "lr", "lr"]
