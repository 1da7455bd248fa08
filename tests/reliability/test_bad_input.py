"""Bad input: every flag fuzzed; exit code 2, one message naming the flag, nothing written."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalefree.cli import build_parser, main
from scalefree.errors import UsageError
from scalefree.train.cli import config_from_args
from scalefree.train.config import RunConfig

VALUE_FLAGS = [
    "--optim-method",
    "--eta0",
    "--weight-decay",
    "--train-epochs",
    "--batchsize",
    "--eval-interval",
    "--log-folder",
    "--dataroot",
    "--dataset",
    "--model",
    "--scheduler",
    "--store-stats-interval",
    "--loss-multiplier",
    "--val-ratio",
    "--seed",
    "--device",
    "--amp",
    "--channels-last",
    "--decay-convention",
    "--eps",
    "--init-seed",
    "--lr-step-size",
    "--lr-gamma",
    "--lr-power",
    "--max-steps",
    "--progress",
    "--divergence-factor",
]
SWITCHES = [
    "--use-cuda",
    "--no-batch-norm",
    "--store-stats",
    "--validation",
    "--reproducible",
    "--compile",
    "--download",
    "--amsgrad",
    "--no-decay-bias-norm",
    "--resume",
]
NASTY = st.sampled_from(
    [
        "0",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "",
        "abc",
        "1.5",
        "3",
        "0.5",
        "1e-3",
        "AdamW",
        "None",
        "Cosine",
        "ResNet20",
        "CIFAR10",
        "synthetic",
        "auto",
        "bf16",
        "--",
        "-",
        "1,2",
        "0x10",
        "１",
        "\x00",
        "18446744073709551615",
        "18446744073709551616",
        "4611686018427387905",
        "1e308",
        "-0",
    ]
)


@st.composite
def argvs(draw):
    argv = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            argv.append(draw(st.sampled_from(SWITCHES)))
        else:
            argv += [draw(st.sampled_from(VALUE_FLAGS)), draw(NASTY | st.text(max_size=8))]
    if draw(st.booleans()):
        argv += ["--betas", draw(NASTY), draw(NASTY)]
    return argv


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=argvs())
def test_fuzzed_train_arguments_parse_or_fail_cleanly(argv):
    """Every argv either gives a valid RunConfig or a usage error (exit 2 / UsageError): never
    another exception, never a config with a non-finite or out-of-range value."""
    parser = build_parser()
    try:
        args = parser.parse_args(["train", *argv])
    except SystemExit as exc:
        assert exc.code == 2
        return
    try:
        config = config_from_args(args)
    except UsageError as exc:
        assert str(exc).startswith("--"), str(exc)  # names the flag
        return
    assert isinstance(config, RunConfig)
    assert math.isfinite(config.eta0) and config.eta0 > 0 and config.weight_decay >= 0
    assert (
        0 < config.val_ratio < 1 and config.batchsize >= 1 and all(0 <= b < 1 for b in config.betas)
    )
    # What each number feeds accepts it: the seeds torch's generators, counts the loops.
    for seed in (config.seed, config.effective_init_seed):
        assert 0 <= seed <= 2**64 - 1
    assert all(
        1 <= v <= 2**62 for v in (config.train_epochs, config.batchsize, config.eval_interval)
    )
    assert math.isfinite(config.divergence_factor) and config.divergence_factor > 1


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--eta0", "-0.1"], "--eta0"),
        (["--eta0", "nan"], "--eta0"),
        (["--eta0", "inf"], "--eta0"),
        (["--weight-decay", "-1"], "--weight-decay"),
        (["--betas", "0.9", "1"], "--betas"),
        (["--betas", "-0.1", "0.9"], "--betas"),
        (["--batchsize", "0"], "--batchsize"),
        (["--val-ratio", "0"], "--val-ratio"),
        (["--val-ratio", "1"], "--val-ratio"),
        (["--train-epochs", "-3"], "--train-epochs"),
        (["--eps=-1e-8"], "--eps"),
        (["--optim-method", "Adamw2"], "--optim-method"),
        (["--model", "VGG16"], "--model"),
        (["--dataset", "ImageNet"], "--dataset"),
        (["--eta0", "1e-3x"], "--eta0"),
        (["--scheduler", "Linear"], "--scheduler"),
        (["--amp", "fp8"], "--amp"),
        (["--seed", "1.5"], "--seed"),
        (["--loss-multiplier", "0"], "--loss-multiplier"),
        (["--store-stats-interval", "0"], "--store-stats-interval"),
        (["--seed", "18446744073709551616"], "--seed"),
        (["--init-seed", "18446744073709551616"], "--init-seed"),
        (["--train-epochs", "4611686018427387905"], "--train-epochs"),
        (["--divergence-factor", "1"], "--divergence-factor"),
        (["--divergence-factor", "inf"], "--divergence-factor"),
    ],
)
def test_bad_values_exit_2_naming_the_flag_and_write_nothing(tmp_path, capsys, argv, flag):
    logs = tmp_path / "logs"
    try:
        code = main(["train", "--dataset", "synthetic", "--log-folder", str(logs), *argv])
    except SystemExit as exc:  # argparse's own errors (unparsable numbers, bad choices)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not logs.exists()


def test_unknown_subcommand_and_flag_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["trian"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "--learning-rate", "0.1"])
    assert exc.value.code == 2 and "--learning-rate" in capsys.readouterr().err


def test_the_largest_valid_seed_is_accepted_by_what_it_feeds():
    """2**64 - 1 passes validation and torch's global and per-run generators take it."""
    import torch

    config = RunConfig(seed=2**64 - 1, init_seed=2**64 - 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
    torch.Generator().manual_seed(config.effective_init_seed)
    with pytest.raises(UsageError, match="--seed must be an integer from 0 to 2\\*\\*64 - 1"):
        RunConfig(seed=2**64)


def test_sweep_seeds_are_bounded_too(tmp_path, capsys):
    code = main(["sweep", "--dataset", "synthetic", "--log-folder", str(tmp_path), "--seeds",
                 "18446744073709551616"])  # fmt: skip
    assert code == 2 and "--seeds" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
