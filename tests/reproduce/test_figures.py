"""`scalefree reproduce fig2..fig6`: the paper's grids and the reference code's commands."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from scalefree.cli import build_parser, main
from scalefree.reproduce.figures import FIGURES, preset_axes
from scalefree.sweep import cli as sweep_cli
from scalefree.sweep.grid import PAPER_ETA0S, PAPER_WEIGHT_DECAYS, Axes
from scalefree.train.cli import config_from_args
from tests.helpers import exit_code
from tests.sweep.conftest import FakeExecutor

# Runs per preset with one seed: 5 x 6 = 30 grid points per optimizer, 2 optimizers per
# experiment, plus the points that grow a grid up to a reference command's best setting outside it.
EXPECTED = {
    "fig2": 5 * 60,  # ResNet20/56/110/218 + DenseNetBC100, with BN
    "fig3": 6 * 60 + 5,  # ResNet218 AdamL2 best wd 5e-3: one more weight-decay column
    "fig4": (60 + 5) + (60 + 5 * 4),  # AdamL2 wd up to 5e-3 (x10) and to 0.1 (x100)
    "fig5": 2 * 60,  # ResNet110, DenseNetBC100
    "fig6": 60,
}

# The reference code's commands that belong to a figure (python main.py -> scalefree train).
COMMON = (
    "--train-epochs 300 --batchsize 128 --eval-interval 1 --use-cuda --dataroot ../data "
    "--scheduler None --store-stats --store-stats-interval 1000"
)
SEED000 = {
    "fig3": [
        "--optim-method AdamL2 --eta0 0.001 --weight-decay 0.0005 --dataset CIFAR10 --model ResNet20 --no-batch-norm",
        "--optim-method AdamW --eta0 0.001 --weight-decay 5e-05 --dataset CIFAR10 --model ResNet20 --no-batch-norm",
        "--optim-method AdamL2 --eta0 0.0005 --weight-decay 0.0005 --dataset CIFAR10 --model ResNet44 --no-batch-norm",
        "--optim-method AdamW --eta0 0.0005 --weight-decay 5e-05 --dataset CIFAR10 --model ResNet44 --no-batch-norm",
        "--optim-method AdamL2 --eta0 0.0005 --weight-decay 0.0005 --dataset CIFAR10 --model ResNet56 --no-batch-norm",
        "--optim-method AdamW --eta0 0.0005 --weight-decay 5e-05 --dataset CIFAR10 --model ResNet56 --no-batch-norm",
        "--optim-method AdamL2 --eta0 0.001 --weight-decay 0.0005 --dataset CIFAR10 --model ResNet110 --no-batch-norm",
        "--optim-method AdamW --eta0 0.0005 --weight-decay 0.0001 --dataset CIFAR10 --model ResNet110 --no-batch-norm",
        "--optim-method AdamL2 --eta0 0.0005 --weight-decay 0.005 --dataset CIFAR10 --model ResNet218 --no-batch-norm",
        "--optim-method AdamW --eta0 0.0005 --weight-decay 5e-05 --dataset CIFAR10 --model ResNet218 --no-batch-norm",
        "--optim-method AdamL2 --eta0 0.0005 --weight-decay 0.001 --dataset CIFAR100 --model DenseNetBC100 --no-batch-norm",
        "--optim-method AdamW --eta0 0.001 --weight-decay 5e-5 --dataset CIFAR100 --model DenseNetBC100 --no-batch-norm",
    ],
    "fig2": [
        "--optim-method AdamL2 --eta0 0.005 --weight-decay 0 --dataset CIFAR10 --model ResNet110",
        "--optim-method AdamW --eta0 0.005 --weight-decay 0 --dataset CIFAR10 --model ResNet110",
        "--optim-method AdamL2 --eta0 0.005 --weight-decay 0 --dataset CIFAR100 --model DenseNetBC100",
    ],
    "fig4": [
        "--optim-method AdamL2 --eta0 0.001 --weight-decay 0.005 --dataset CIFAR10 --model ResNet110 --no-batch-norm --loss-multiplier 10",
        "--optim-method AdamW --eta0 0.0005 --weight-decay 0.0001 --dataset CIFAR10 --model ResNet110 --no-batch-norm --loss-multiplier 10",
        "--optim-method AdamL2 --eta0 0.0001 --weight-decay 0.1 --dataset CIFAR10 --model ResNet110 --no-batch-norm --loss-multiplier 100",
        "--optim-method AdamW --eta0 0.0005 --weight-decay 0.0001 --dataset CIFAR10 --model ResNet110 --no-batch-norm --loss-multiplier 100",
    ],
}  # fmt: skip


def dry_run(capsys, name: str, *args: str) -> list[str]:
    assert main(["reproduce", name, "--dry-run", *args]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_presets_expand_to_the_papers_grids(name, capsys, tmp_path):
    names = dry_run(capsys, name, "--log-folder", str(tmp_path))
    assert len(names) == EXPECTED[name] == len(set(names))
    methods = FIGURES[name].methods
    assert {re.search(r"_([A-Za-z0-9]+)_Eta0_", n).group(1) for n in names} == set(methods)
    assert all("_Epoch_" in n and "_BatchSize_128_" in n for n in names)
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


@pytest.mark.parametrize("name", sorted(SEED000))
def test_every_seed000_command_is_a_run_of_its_preset(name, capsys, tmp_path):
    names = set(dry_run(capsys, name, "--log-folder", str(tmp_path)))
    parser = build_parser()
    for command in SEED000[name]:
        args = parser.parse_args(["train", *shlex.split(f"{command} {COMMON}")])
        config = config_from_args(args)
        assert config.run_name() in names, command


def test_fig5_trains_densenet_for_100_epochs_and_options_restrict(capsys, tmp_path):
    names = dry_run(capsys, "fig5", "--log-folder", str(tmp_path))
    assert all(("_Epoch_100_" in n) == ("DenseNet" in n) for n in names)
    names = dry_run(
        capsys, "fig5", "--log-folder", str(tmp_path), "--models", "densenetbc100",
        "--seeds", "0", "1", "--epochs", "3", "--dataset", "synthetic",
    )  # fmt: skip
    assert len(names) == 2 * 30 * 2
    assert all(n.startswith("synthetic_DenseNetBC100_NoBN_") and "_Epoch_3_" in n for n in names)
    # A model the figure does not show gets the figure's settings (fig4: both loss multipliers).
    names = dry_run(capsys, "fig4", "--log-folder", str(tmp_path), "--models", "ResNet20")
    assert len(names) == 120 and all("ResNet20_NoBN" in n for n in names)


def test_preset_axes_cover_the_reference_points():
    fig4_x100 = FIGURES["fig4"].experiments[1]
    axes = preset_axes(fig4_x100, "AdamL2")
    assert axes.weight_decays == PAPER_WEIGHT_DECAYS + (5e-3, 1e-2, 5e-2, 0.1)
    assert axes.eta0s == PAPER_ETA0S
    assert preset_axes(fig4_x100, "AdamW") == Axes(PAPER_ETA0S, PAPER_WEIGHT_DECAYS)


@pytest.mark.parametrize(("args", "flag"), [(["--models", "VGG16"], "--models"),
                                            (["--seeds", "-1"], "--seeds"),
                                            (["--epochs", "0"], "--epochs")])  # fmt: skip
def test_bad_preset_flags_are_usage_errors(args, flag, capsys, tmp_path):
    argv = ["reproduce", "fig6", "--log-folder", str(tmp_path), "--dry-run", *args]
    assert exit_code(main, argv) == 2
    assert flag in capsys.readouterr().err


def test_running_a_preset_sweeps_then_reports(monkeypatch, tmp_path, capsys):
    """The whole chain with a fake executor: sweep, extension, summary, report."""
    ex = FakeExecutor(lambda m, e, w, s: 0.1 if (e, w) == (1e-3, 1e-4) else 0.3)
    monkeypatch.setattr(sweep_cli, "make_executor", lambda args, folder: ex)
    logs, out = tmp_path / "logs", tmp_path / "report"
    code = main(["reproduce", "fig6", "--log-folder", str(logs), "--out", str(out),
                 "--epochs", "3", "--models", "ResNet20"])  # fmt: skip
    assert code == 0
    assert len(ex.dispatched) == 60  # best point is interior: no extension round
    assert (logs / "summary.csv").exists()
    assert (out / "report.md").exists() and "AdamProxL2" in (out / "report.md").read_text()
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out


def test_train_flags_reach_the_presets_run_configs(monkeypatch, capsys, tmp_path):
    """`reproduce figN` takes every train flag it does not fix, through the sweep launch path."""
    seen = []
    real = sweep_cli.run_sweeps

    def spy(sweeps, executor, **kw):
        seen.extend(c for s in sweeps for c in s.configs())
        return real(sweeps, executor, **kw)

    monkeypatch.setattr(sweep_cli, "run_sweeps", spy)
    names = dry_run(
        capsys, "fig3", "--log-folder", str(tmp_path), "--models", "ResNet20", "--amp", "bf16",
        "--compile", "off", "--channels-last", "off", "--validation", "--val-ratio", "0.2",
        "--eps", "0", "--device", "cpu", "--dataset", "synthetic", "--synthetic-sizes", "64", "32",
    )  # fmt: skip
    assert len(seen) == len(names) == 60  # 2 methods x 5 eta0s x 6 weight decays
    for c in seen:
        assert (c.amp, c.compile, c.channels_last, c.device) == ("bf16", "off", "off", "cpu")
        assert (c.validation, c.val_ratio, c.eps, c.synthetic_sizes) == (True, 0.2, 0.0, (64, 32))
        # what the preset fixes stays fixed
        assert (c.batchsize, c.scheduler, c.store_stats, c.store_stats_interval) == (
            128, "None", True, 1000,
        )  # fmt: skip
    assert all(n.endswith("_Eps_0_AMP_bf16_Synthetic_64_32_Val_0.2") for n in names)


@pytest.mark.parametrize(
    "flag", ["--batchsize", "--scheduler", "--lr-gamma", "--store-stats-interval", "--eta0"]
)
def test_settings_a_preset_fixes_are_not_flags(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "fig6", "--dry-run", flag, "1"])
    assert exc.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_a_preset_takes_every_train_flag_it_does_not_fix():
    from scalefree.reproduce.figures import preset_excluded
    from scalefree.train.config import config_fields, flag

    train = {flag(f.name) for f in config_fields()}
    for name, preset in FIGURES.items():
        parser = build_parser()
        (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        (rep,) = (a for a in sub.choices["reproduce"]._actions
                  if isinstance(a, argparse._SubParsersAction))  # fmt: skip
        options = set(rep.choices[name]._option_string_actions)
        fixed = {flag(f) for f in preset_excluded(preset)}
        # --log-folder, --dataset and --seed are the preset's own flags, with its own defaults
        assert train - fixed <= options, name
        assert (train & fixed) & options <= {"--log-folder", "--dataset", "--seed", "--progress"}


def test_presets_take_the_trackers_of_sweep(monkeypatch, capsys, tmp_path):
    """``reproduce figN --tracker ...`` reaches the launch as ``sweep --tracker`` does."""
    seen = {}
    real = sweep_cli.run_sweeps

    def spy(sweeps, executor, **kw):
        seen.update(kw)
        return real(sweeps, executor, **kw)

    monkeypatch.setattr(sweep_cli, "run_sweeps", spy)
    monkeypatch.setattr("scalefree.trackers.check_installed", lambda names: tuple(names))
    tb = tmp_path / "tb"
    dry_run(capsys, "fig6", "--log-folder", str(tmp_path), "--models", "ResNet20",
            "--tracker", "tensorboard", "--tensorboard-dir", str(tb))  # fmt: skip
    assert seen["trackers"].names == ("tensorboard",)
    assert str(seen["trackers"].tensorboard_dir) == str(tb)
    dry_run(capsys, "fig6", "--log-folder", str(tmp_path), "--models", "ResNet20")
    assert seen["trackers"] is None
