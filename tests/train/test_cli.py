"""``scalefree train`` flags that only the field metadata defines, end to end."""

from __future__ import annotations

import json

from scalefree.cli import main
from scalefree.rundir import CONFIG_FILE, RESULT_FILE

TINY = [
    "train", "--dataset", "synthetic", "--model", "ResNet20", "--train-epochs", "1",
    "--batchsize", "16", "--device", "cpu", "--compile", "off", "--progress", "none",
]  # fmt: skip


def test_two_synthetic_sizes_are_two_runs(tmp_path, capsys):
    """The sizes change what the run computes, so they are part of its name: the second size
    trains its own run instead of finding the first one finished."""
    for sizes in (("32", "16"), ("48", "16")):
        assert main([*TINY, "--log-folder", str(tmp_path), "--synthetic-sizes", *sizes]) == 0
    assert "already complete" not in capsys.readouterr().out
    runs = sorted(p for p in tmp_path.iterdir() if (p / RESULT_FILE).exists())
    assert len(runs) == 2
    for run, n_train in zip(runs, (32, 48)):
        assert run.name.endswith(f"_Synthetic_{n_train}_16_Test")
        assert json.loads((run / CONFIG_FILE).read_text())["synthetic_sizes"] == [n_train, 16]
        # one epoch of n_train images in batches of 16: the trainer loaded the sizes it was given
        assert json.loads((run / RESULT_FILE).read_text())["steps"] == n_train // 16


def test_synthetic_sizes_need_the_synthetic_dataset(tmp_path, capsys):
    code = main([*TINY[:1], "--synthetic-sizes", "32", "16", "--log-folder", str(tmp_path)])
    assert code == 2
    assert "--synthetic-sizes applies only to --dataset synthetic" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
