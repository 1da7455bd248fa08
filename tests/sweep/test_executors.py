"""Executor pieces that need neither GPUs nor Ray/submitit: slot assignment, pinning, Slurm times."""

from __future__ import annotations

import pytest

from scalefree.errors import UsageError
from scalefree.sweep import executors
from scalefree.sweep.executors import LocalExecutor, _pin, parse_slurm_time
from scalefree.sweep.tasks import RunTask
from scalefree.train.config import RunConfig


def test_gpus_are_assigned_round_robin_with_runs_per_gpu():
    ex = LocalExecutor(runs_per_gpu=2, gpus=["3", "5"])
    assert ex.slots(use_gpu=True) == ["3", "5", "3", "5"]
    assert LocalExecutor(workers=3, runs_per_gpu=2, gpus=["3", "5"]).slots(True) == ["3", "5", "3"]
    with pytest.raises(UsageError, match="--runs-per-gpu"):
        LocalExecutor(workers=5, runs_per_gpu=2, gpus=["3", "5"]).slots(True)


def test_cpu_runs_share_the_cores():
    ex = LocalExecutor(workers=3, gpus=["0"], cores=8)
    assert ex.slots(use_gpu=False) == [None, None, None]
    assert LocalExecutor(gpus=[]).slots(use_gpu=True) == [None]  # no GPU: one run at a time


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 7")
    assert executors.visible_gpus() == ["2", "7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert executors.visible_gpus() == []


def test_pinning_sets_the_gpu_only_for_gpu_runs():
    gpu_task = RunTask(RunConfig(device="auto"))
    cpu_task = RunTask(RunConfig(device="cpu"))
    pinned = _pin(gpu_task, "5", threads=4)
    assert pinned.num_threads == 4
    assert pinned.cuda_visible_devices == "5"
    cpu = _pin(cpu_task, "5", threads=2)
    assert cpu.cuda_visible_devices is None


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("90", 90), ("24:00:00", 1440), ("1-00:00:00", 1440), ("2-12", 3600), ("0:30", 30),
     ("00:10:30", 11), ("1-01:02", 1502)],
)  # fmt: skip
def test_parse_slurm_time(value, minutes):
    assert parse_slurm_time(value) == minutes


@pytest.mark.parametrize("value", ["", "soon", "0", "00:00:00", "1:2:3:4"])
def test_parse_slurm_time_rejects(value):
    with pytest.raises(UsageError, match="--slurm-time"):
        parse_slurm_time(value)


def test_missing_optional_packages_are_usage_errors(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UsageError, match=r"pip install 'scalefree\[ray\]'"):
        executors.RayExecutor().run([RunTask(RunConfig())], on_result=lambda r: None)


def test_slurm_without_slurm_is_a_usage_error(tmp_path):
    submitit = pytest.importorskip("submitit")
    if submitit.SlurmExecutor.affinity() >= 0:
        pytest.skip("this machine has Slurm")
    ex = executors.SlurmExecutor(tmp_path, cluster="slurm")
    with pytest.raises(UsageError, match="no Slurm found"):
        ex.run([RunTask(RunConfig(log_folder=str(tmp_path)))], on_result=lambda r: None)
