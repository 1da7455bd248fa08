"""The CUDA paths, where a GPU exists (CI has none: every test here skips there).

What only a GPU runs: torch's fused and foreach CUDA kernels behind the Adam family (the one-pass
C++ kernel is CPU-only), the masked torch path of the rules since 2022 (tests/optim/
test_decay_rules.py), a training run on the GPU with bf16 autocast and channels_last, a compiled
training step (Triton), and a local sweep sharing one GPU between runs (--runs-per-gpu).
"""

from __future__ import annotations

import json

import pytest
import torch

from scalefree.cli import main
from scalefree.rundir import load_runs
from tests.helpers import assert_close
from tests.optim.test_decay_rules import LRS, WDS, run_pair
from tests.reference.adam_family import run_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FAMILY = ("AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD")


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("path", ["foreach", "single", "fused"])
@pytest.mark.parametrize("name", FAMILY)
def test_family_on_cuda_matches_the_float64_reference(name, path, amsgrad):
    """On CUDA float64 (two groups, a cosine schedule): torch's foreach, single-tensor and fused
    kernels under each variant's decay."""
    _, params, (init, grads, lrs) = run_pair(
        name, path=path, steps=20, amsgrad=amsgrad, device="cuda", decay_convention="schedule"
    )
    ref = run_reference(
        name, init, alphas=LRS, weight_decays=WDS, grads=grads, lrs=lrs, amsgrad=amsgrad,
        decay_convention="schedule",
    )  # fmt: skip
    for grp, rg in zip(params, ref.groups):
        for p, r in zip(grp, rg.params):
            assert_close(p.detach().cpu(), r, rtol=1e-9, atol=1e-12)


def _train(tmp_path, *extra):
    argv = ["train", "--dataset", "synthetic", "--synthetic-sizes", "256", "64", "--model",
            "ResNet20", "--no-batch-norm", "--optim-method", "AdamW", "--eta0", "1e-3",
            "--weight-decay", "5e-5", "--train-epochs", "1", "--batchsize", "64",
            "--log-folder", str(tmp_path), "--progress", "none", "--device", "cuda", *extra]  # fmt: skip
    assert main(argv) == 0
    [run] = load_runs(tmp_path)
    return run


@pytest.mark.parametrize("extra", [(), ("--amp", "bf16", "--channels-last", "on")])
def test_training_on_cuda_completes_and_records_the_device(tmp_path, extra):
    run = _train(tmp_path, "--store-stats", "--store-stats-interval", "2", *extra)
    assert run.status == "completed" and 0.0 <= run.test_error <= 1.0
    env = json.loads((run.path / "config.json").read_text())["env"]
    assert "cuda" in json.dumps(env).lower()
    assert env["channels_last_resolved"] is True  # auto and on are both on for CUDA


def test_compiled_training_step_on_cuda(tmp_path):
    pytest.importorskip("triton")
    run = _train(tmp_path, "--compile", "on", "--max-steps", "3")
    assert run.status == "completed"
    env = json.loads((run.path / "config.json").read_text())["env"]
    assert env["compile_resolved"] is True


def test_sweep_shares_one_gpu_between_runs(tmp_path):
    argv = ["sweep", "--dataset", "synthetic", "--synthetic-sizes", "128", "64", "--model",
            "ResNet20", "--no-batch-norm", "--optim-methods", "AdamL2", "AdamW",
            "--eta0-vals", "1e-3", "--weight-decay-vals", "5e-5", "--train-epochs", "1",
            "--batchsize", "64", "--log-folder", str(tmp_path), "--progress", "none",
            "--device", "cuda", "--runs-per-gpu", "2", "--workers", "2"]  # fmt: skip
    assert main(argv) == 0
    runs = load_runs(tmp_path)
    assert len(runs) == 2 and all(r.status == "completed" for r in runs)
