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


def _executor_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_executor_arguments(p)
    return p.parse_args(list(argv))


def test_executors_are_registry_entries_built_by_make_executor(tmp_path):
    import pytest

    from scalefree.errors import UsageError
    from scalefree.sweep.executor_choice import EXECUTORS, ExecutorEntry, make_executor
    from scalefree.sweep.executors import LocalExecutor

    local = make_executor(_executor_args("--workers", "3", "--runs-per-gpu", "2"), tmp_path)
    assert isinstance(local, LocalExecutor) and (local.workers, local.runs_per_gpu) == (3, 2)
    built = []
    toy = ExecutorEntry("toy", lambda args, folder: built.append(folder) or "TOY", "a toy")
    with EXECUTORS.registered(toy):
        assert make_executor(_executor_args("--executor", "toy"), tmp_path) == "TOY"
    assert built == [tmp_path]
    # --workers and --runs-per-gpu are checked once (LocalExecutor.check_options), for every
    # executor and before its optional package is looked for.
    # (The parser refuses 0 first; a Namespace built by code reaches make_executor.)
    for executor in ("local", "ray", "slurm"):
        for flag in ("--workers", "--runs-per-gpu"):
            args = _executor_args("--executor", executor)
            setattr(args, flag[2:].replace("-", "_"), 0)
            with pytest.raises(UsageError, match=f"^{flag} must be a positive integer, got 0$"):
                make_executor(args, tmp_path)
    with pytest.raises(UsageError, match="^--workers must be a positive integer, got -1$"):
        LocalExecutor(workers=-1)
    missing = ExecutorEntry("far", lambda a, f: None, "far away", package="no_such_package_x")
    with EXECUTORS.registered(missing), pytest.raises(UsageError, match="no_such_package_x"):
        make_executor(_executor_args("--executor", "far"), tmp_path)


def test_every_slurm_flag_reaches_the_slurm_executor(tmp_path):
    from scalefree.sweep.executor_choice import make_executor

    ex = make_executor(
        _executor_args(
            "--executor", "slurm", "--slurm-partition", "gpu", "--slurm-time", "1:30:00",
            "--slurm-gpus-per-node", "2", "--slurm-cpus-per-task", "6", "--slurm-mem-gb", "12.5",
            "--slurm-array-parallelism", "7", "--slurm-account", "acc", "--slurm-qos", "low",
            "--slurm-constraint", "a100", "--slurm-folder", str(tmp_path / "sf"),
            "--slurm-cluster", "local", "--slurm-poll-s", "2.5", "--slurm-no-wait",
            "--runs-per-gpu", "3",
        ),
        tmp_path,
    )  # fmt: skip
    got = {k: getattr(ex, k) for k in (
        "partition", "time_min", "gpus_per_node", "cpus_per_task", "mem_gb", "array_parallelism",
        "account", "qos", "constraint", "folder", "cluster", "poll_s", "wait", "runs_per_gpu",
    )}  # fmt: skip
    assert got == {
        "partition": "gpu", "time_min": 90, "gpus_per_node": 2, "cpus_per_task": 6,
        "mem_gb": 12.5, "array_parallelism": 7, "account": "acc", "qos": "low",
        "constraint": "a100", "folder": tmp_path / "sf", "cluster": "local", "poll_s": 2.5,
        "wait": False, "runs_per_gpu": 3,
    }  # fmt: skip
