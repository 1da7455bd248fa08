"""``scalefree sweep``'s flags: the run settings come from RunConfig's fields, the executor
options from add_executor_arguments."""

from __future__ import annotations

import argparse

from scalefree.cli import main
from scalefree.sweep.cli import add_executor_arguments

EXECUTOR_FLAGS = {
    "--executor", "--workers", "--runs-per-gpu", "--ray-address", "--ray-num-cpus",
    "--cpus-per-run", "--slurm-partition", "--slurm-time", "--slurm-gpus-per-node",
    "--slurm-cpus-per-task", "--slurm-mem-gb", "--slurm-array-parallelism", "--slurm-account",
    "--slurm-qos", "--slurm-constraint", "--slurm-folder", "--slurm-cluster", "--slurm-poll-s",
    "--slurm-no-wait",
}  # fmt: skip


def test_executor_flags_are_unchanged_by_the_split():
    p = argparse.ArgumentParser()
    add_executor_arguments(p)
    assert set(p._option_string_actions) - {"-h", "--help"} == EXECUTOR_FLAGS


def test_synthetic_sizes_are_a_run_setting_of_the_sweep(tmp_path, capsys):
    argv = ["sweep", "--dry-run", "--dataset", "synthetic", "--log-folder", str(tmp_path),
            "--optim-methods", "AdamW", "--eta0-vals", "1e-3", "--weight-decay-vals", "0"]  # fmt: skip
    assert main([*argv, "--synthetic-sizes", "64", "32"]) == 0
    assert main([*argv, "--synthetic-sizes", "48", "32"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("_Synthetic_64_32_Test") and second.endswith("_Synthetic_48_32_Test")
    assert first.replace("64_32", "48_32") == second


def test_synthetic_sizes_need_the_synthetic_dataset(tmp_path, capsys):
    code = main(
        ["sweep", "--dry-run", "--log-folder", str(tmp_path), "--synthetic-sizes", "4", "4"]
    )
    assert code == 2
    assert "--synthetic-sizes applies only to --dataset synthetic" in capsys.readouterr().err
