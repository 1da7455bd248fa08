"""The numbers of issue 22, item 5, given to `train` and (as grid values or shared flags) to `sweep`:
exit 2, one line naming the flag and what it must be, and no log folder created."""

from __future__ import annotations

import pytest

from scalefree.cli import main

TRAIN = [
    (["--eta0", "nan"], "--eta0 must be a positive finite number, got nan"),
    (["--eta0", "-1"], "--eta0 must be a positive finite number, got -1"),
    (["--weight-decay", "inf"], "--weight-decay must be a non-negative finite number, got inf"),
    (["--batchsize", "0"], "--batchsize must be a positive integer, got 0"),
    (["--train-epochs", "0"], "--train-epochs must be a positive integer, got 0"),
    (["--store-stats-interval", "0"], "--store-stats-interval must be a positive integer, got 0"),
]
SWEEP = [
    (["--eta0-vals", "1e-3", "nan"], "--eta0-vals values must be positive finite numbers, got nan"),
    (["--eta0-vals", "-1"], "--eta0-vals values must be positive finite numbers, got -1"),
    (["--eta0-vals", "1e400"], "--eta0-vals values must be positive finite numbers, got inf"),
    (
        ["--weight-decay-vals", "0", "inf"],
        "--weight-decay-vals values must be non-negative finite numbers, got inf",
    ),
    *TRAIN[3:],
]


def exits_2_writing_nothing(tmp_path, capsys, argv: list[str], message: str) -> None:
    logs = tmp_path / "logs"
    try:
        code = main([*argv, "--dataset", "synthetic", "--log-folder", str(logs)])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not logs.exists()


@pytest.mark.parametrize("argv,message", TRAIN)
def test_train_refuses_the_number(tmp_path, capsys, argv, message):
    exits_2_writing_nothing(tmp_path, capsys, ["train", *argv, "--store-stats"], message)


@pytest.mark.parametrize("argv,message", SWEEP)
def test_sweep_refuses_the_number(tmp_path, capsys, argv, message):
    grid = ["--optim-methods", "AdamW", "--workers", "1", "--store-stats"]
    exits_2_writing_nothing(tmp_path, capsys, ["sweep", *grid, *argv], message)
