"""The trainer's parts: callbacks, process settings restored, UpdateStatistics in a plain loop,
and the benchmark's timing callback."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scalefree.train import trainer as trainer_mod
from scalefree.train.callbacks import PHASES, Callback, CallbackList, PhaseTimes
from scalefree.train.config import RunConfig
from scalefree.train.settings import process_settings
from scalefree.train.stats import NUM_BINS, QUANTITIES, UpdateStatistics, load_stats
from tests.helpers import tiny_run

REPO = Path(__file__).resolve().parents[2]


def tiny(tmp_path: Path, **kw) -> RunConfig:
    """128 training and 32 test images: two steps of 64 per epoch, 3 steps in all."""
    return tiny_run(tmp_path, sizes=(128, 32), **({"max_steps": 3} | kw))


class Recorder(Callback):
    """Logs every hook call as (hook, details)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_run_start(self, state):
        self.calls.append(("run_start", state.step))

    def on_before_step(self, state, iteration):
        self.calls.append(("before_step", (state.epoch, iteration, state.step)))

    def on_step_end(self, state, iteration):
        self.calls.append(("step_end", (state.epoch, iteration, state.step)))

    def on_loss_check(self, state, steps, mean_loss, images_per_s):
        self.calls.append(("loss_check", steps))

    def on_evaluate(self, state, metrics):
        self.calls.append(("evaluate", (state.epoch, sorted(metrics))))

    def on_epoch_end(self, state):
        self.calls.append(("epoch_end", state.epoch))

    def on_phase_end(self, state, phase, seconds):
        assert seconds >= 0
        self.calls.append(("phase", phase))

    def on_run_end(self, state, result):
        self.calls.append(("run_end", None if result is None else result["status"]))

    def names(self, hook: str) -> list[object]:
        return [d for h, d in self.calls if h == hook]


def test_callbacks_see_every_step_epoch_and_phase(tmp_path):
    rec, timer = Recorder(), PhaseTimes()
    out = trainer_mod.train(tiny(tmp_path), callbacks=[rec, timer])
    assert out.result["status"] == "completed" and out.result["steps"] == 3
    assert rec.calls[0] == ("run_start", 0) and rec.calls[-1] == ("run_end", "completed")
    # before the step: the step counter has not moved yet; after it, it has
    assert rec.names("before_step") == [(1, 0, 0), (1, 1, 1), (2, 0, 2)]
    assert rec.names("step_end") == [(1, 0, 1), (1, 1, 2), (2, 0, 3)]
    assert sum(rec.names("loss_check")) == 3
    keys = sorted(["train_loss", "train_acc", "test_loss", "test_acc"])
    assert rec.names("evaluate") == [(1, keys), (2, keys)]
    assert rec.names("epoch_end") == [1, 2]
    assert rec.names("phase") == list(PHASES) * 2
    assert set(timer.seconds) == set(PHASES) and all(v > 0 for v in timer.seconds.values())
    assert sum(timer.seconds.values()) < out.result["wall_time_s"]


class Boom(Exception):
    pass


class FailingStep(Callback):
    def on_step_end(self, state, iteration):
        if state.step == 2:
            raise Boom


def _global_settings() -> tuple:
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
    )


def test_reproducible_run_in_process_restores_global_settings(tmp_path):
    before, rng = _global_settings(), torch.get_rng_state()
    assert before[0] is False  # the test is only meaningful from the default
    out = trainer_mod.train(tiny(tmp_path, seed=5))
    assert out.result["status"] == "completed"
    assert _global_settings() == before
    assert torch.equal(torch.get_rng_state(), rng)  # train does not consume the caller's stream


def test_settings_are_restored_when_the_run_raises(tmp_path):
    before, rng = _global_settings(), torch.get_rng_state()
    rec = Recorder()
    with pytest.raises(Boom):
        trainer_mod.train(tiny(tmp_path), callbacks=[FailingStep(), rec])
    assert _global_settings() == before and torch.equal(torch.get_rng_state(), rng)
    assert rec.calls[-1] == ("run_end", None)  # every callback's on_run_end ran, result None


def test_process_settings_sets_then_restores(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    target = 1 if threads != 1 else 2
    with pytest.raises(Boom), process_settings(
        seed=11, deterministic=True, cudnn_benchmark=True, num_threads=target,
        cuda_visible_devices="0",
    ):  # fmt: skip
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark is True
        assert torch.get_num_threads() == target
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        seeded = torch.rand(3)
        raise Boom
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark is False
    assert torch.get_num_threads() == threads
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert torch.equal(torch.get_rng_state(), rng)
    torch.manual_seed(11)
    assert torch.equal(seeded, torch.rand(3))  # the block ran with the given seed
    torch.set_rng_state(rng)


def test_process_settings_removes_a_cuda_visible_devices_it_added(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with process_settings(cuda_visible_devices="1"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_callback_list_names_a_wrong_callback():
    with pytest.raises(TypeError, match="subclass Callback"):
        CallbackList([object()])


def _doc_example() -> str:
    text = (REPO / "docs" / "training-loop.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)[0]  # the UpdateStatistics one


def test_documented_plain_loop_example_writes_readable_statistics(tmp_path, monkeypatch, capsys):
    """The docs' example, run as written (its temporary folder redirected here)."""
    code = _doc_example().replace("tempfile.mkdtemp()", repr(str(tmp_path)))
    exec(compile(code, "training-loop.md", "exec"), {"__name__": "example"})
    printed = capsys.readouterr().out.splitlines()
    stats = load_stats(tmp_path)
    assert stats.counts.shape == (4, len(QUANTITIES), 4, NUM_BINS)
    assert printed[0] == str(stats.counts.shape) and printed[1] == "[1, 3, 5, 7]"
    assert stats.epoch.tolist() == [1, 1, 2, 2] and stats.iteration.tolist() == [0, 2, 0, 2]
    assert stats.layers == ("0.weight", "0.bias", "2.weight", "2.bias")
    sizes = [8 * 16, 16, 16 * 3, 3]
    assert (stats.counts.sum(-1) == np.array(sizes)).all()  # every coordinate counted once
    assert sorted(p.name for p in (tmp_path / "stats").iterdir()) == [
        "epoch_0001.npz",
        "epoch_0002.npz",
    ]


def test_plain_loop_with_a_torch_optimizer_records_the_parameter_change(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rec = UpdateStatistics(model, opt, tmp_path, interval=1)
    assert rec.layer_names == ["0.weight", "0.bias"]  # normalization layers excluded
    x = torch.randn(8, 4)
    opt.zero_grad()
    model(x).pow(2).sum().backward()
    grads = [p.grad.clone() for p in model[0].parameters()]
    assert rec.before_step()
    opt.step()
    rec.after_step()
    assert rec.end_epoch(1) is not None and rec.end_epoch(2) is None  # nothing recorded: no file
    stats = load_stats(tmp_path)
    # SGD: u = lr * grad, so |u| / alpha = |grad| and the two histograms agree.
    q = stats.quantities
    u_over_alpha = stats.counts[0, q.index("update_over_alpha")]
    assert np.array_equal(u_over_alpha, stats.counts[0, q.index("grad")])
    assert stats.counts[0, q.index("grad"), 0].sum() == grads[0].numel()


def test_update_statistics_rejects_a_bad_interval(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="interval must be >= 1"):
        UpdateStatistics(model, torch.optim.SGD(model.parameters(), lr=0.1), tmp_path, 0)


def test_benchmark_times_phases_with_the_callback(tmp_path, monkeypatch):
    """benchmarks/train_epoch.py splits an epoch through PhaseTimes (no monkeypatching)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("train_epoch", None)
    bench = importlib.import_module("train_epoch")
    outcome, eval_s, files_s, call_s = bench.timed_train(
        tiny(tmp_path, train_epochs=1, max_steps=None, store_stats=True)
    )
    assert outcome.result["status"] == "completed" and outcome.result["steps"] == 2
    assert eval_s > 0 and files_s > 0
    assert eval_s + files_s < outcome.result["wall_time_s"] <= call_s
    assert (outcome.run_dir / "stats" / "epoch_0001.npz").exists()
