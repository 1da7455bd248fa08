"""The plain-torch context manager records exactly what the before/after calls record."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scalefree.integrations import Recorder, UpdateStatistics, load_stats
from scalefree.optim import AdamW
from tests.integrations.common import check_run_dir, data, tiny_net


def train(out, use_context: bool) -> nn.Module:
    """Two epochs of 4 steps, recorded with ``with recorder.step()`` or the two calls."""
    model = tiny_net()
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    recorder = Recorder(out, model, optimizer, interval=2)
    x, y = data()
    for epoch in (1, 2):
        for i in range(0, 64, 16):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16]).backward()
            if use_context:
                with recorder.step():
                    optimizer.step()
            else:
                recorder.before_step()
                optimizer.step()
                recorder.after_step()
        recorder.end_epoch(epoch)
    return model


def test_with_step_equals_before_and_after_and_the_bare_recorder(tmp_path):
    a, b = train(tmp_path / "a", True), train(tmp_path / "b", False)
    sa, sb = load_stats(tmp_path / "a"), load_stats(tmp_path / "b")
    np.testing.assert_array_equal(sa.counts, sb.counts)
    assert sa.step.tolist() == sb.step.tolist() == [1, 3, 5, 7]
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    # the same loop with UpdateStatistics' own calls: the same histograms
    model = tiny_net()
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    rec = UpdateStatistics(model, optimizer, tmp_path / "c", interval=2)
    x, y = data()
    for epoch in (1, 2):
        for i in range(0, 64, 16):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16]).backward()
            rec.before_step()
            optimizer.step()
            rec.after_step()
        rec.end_epoch(epoch)
    np.testing.assert_array_equal(load_stats(tmp_path / "c").counts, sa.counts)


def test_a_step_that_raises_is_not_counted(tmp_path):
    model = tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(tmp_path, model, optimizer, interval=1)
    model(torch.randn(2, 8)).sum().backward()
    with pytest.raises(RuntimeError, match="step failed"), recorder.step():
        raise RuntimeError("step failed")
    assert recorder.steps == 0
    with recorder.step():
        optimizer.step()
    assert recorder.steps == 1


def test_foreign_run_directory_is_what_plot_histogram_reads(tmp_path):
    model = tiny_net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    x, y = data()
    loss_fn = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1])  # noqa: E731
    run = Recorder(
        tmp_path / "runs" / "plain", model, optimizer, interval=2,
        diagnose_at=("init", "final", 3), diagnose_batches=lambda: [(x, y)], loss_fn=loss_fn,
    )  # fmt: skip
    for epoch in (1, 2):
        for i in range(0, 64, 16):
            optimizer.zero_grad()
            loss_fn(model, (x[i : i + 16], y[i : i + 16])).backward()
            run.before_step()
            optimizer.step()
            run.after_step()
        run.end_epoch(epoch)
    run.finish(0.25, "given")
    _, config, result = check_run_dir(run.run_dir, model, epochs=2, snapshots_per_epoch=2)
    assert (config["optim_method"], config["eta0"], config["weight_decay"]) == ("AdamW", 1e-2, 0.01)
    assert config["batch_norm"] is True  # a LayerNorm
    assert result["test_error"] == 0.25 and result["steps"] == 8
    for name in ("diagnose_init.json", "diagnose_final.json", "diagnose_step_0000003.json"):
        assert (run.run_dir / name).exists(), name


def test_without_an_error_the_run_is_recorded_but_not_ranked(tmp_path):
    from scalefree.rundir import load_runs

    model = tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(tmp_path / "r", model, optimizer)
    model(torch.randn(2, 8)).sum().backward()
    with recorder.step():
        optimizer.step()
    recorder.finish(None, "none")  # steps after the last end_epoch: written as epoch 1
    assert load_stats(tmp_path / "r").epoch.tolist() == [1]
    (run,) = load_runs(tmp_path)
    assert run.result["status"] == "completed" and np.isnan(run.result["test_error"])


@pytest.mark.parametrize(
    ("metrics", "chosen", "want"),
    [
        ({"eval_accuracy": 0.75, "eval_loss": 0.4}, None, (0.25, "1 - eval_accuracy")),
        ({"eval_loss": 0.4}, None, (None, "none")),  # a loss is no error
        ({"eval_loss": 0.4, "my_error": 0.1}, "my_error", (0.1, "my_error")),
        ({"top1_acc": 0.5}, "top1_acc", (0.5, "1 - top1_acc")),
    ],
)
def test_error_from_logged_metrics(metrics, chosen, want):
    from scalefree.integrations.recorder import error_from

    assert error_from(metrics, chosen, ("eval_accuracy",)) == want
