"""TensorBoard: what a run wrote, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import numpy as np
import pytest

from scalefree.train.stats import load_stats
from tests.trackers.common import config, interrupted_then_resumed, result, rows, train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

SIZE = {"histograms": 0, "scalars": 0, "tensors": 0}  # 0: keep every event


def events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance=SIZE)
    acc.Reload()
    return acc


def run_dirs(tmp_path, outcome):
    return outcome.run_dir, tmp_path / "tensorboard" / outcome.run_dir.name


def test_two_epochs_scalars_hparams_histograms(tmp_path):
    outcome = train(config(tmp_path), ["tensorboard"])
    run_dir, log_dir = run_dirs(tmp_path, outcome)
    acc, metrics = events(log_dir), rows(run_dir)
    for tag, key in [("train/loss", "train_loss"), ("test/acc", "test_acc"), ("lr", "lr")]:
        got = acc.Scalars(tag)
        assert [e.step for e in got] == [1, 2]
        np.testing.assert_allclose(
            [e.value for e in got], [metrics[s][key] for s in (1, 2)], rtol=1e-6
        )
    times = [e.value for e in acc.Scalars("epoch_time_s")]
    assert len(times) == 2 and all(t > 0 for t in times)
    assert sum(times) == pytest.approx(metrics[2]["wall_time_s"], rel=0.2)
    (final,) = acc.Scalars("final/test_error")
    assert final.value == pytest.approx(result(run_dir)["test_error"], rel=1e-6)

    # HParams: the session's hyperparameters (the plugin's own protobuf)
    content = acc.PluginTagToContent("hparams")
    start = next(
        plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info
        for c in content.values()
        if plugin_data_pb2.HParamsPluginData.FromString(c).HasField("session_start_info")
    )
    hp = {k: v.ListFields()[0][1] for k, v in start.hparams.items()}
    assert (
        hp["optimizer"] == "AdamW" and hp["model"] == "MLP4" and hp["batch_norm"] == 0
    )  # torch stores bools as numbers
    assert hp["eta0"] == pytest.approx(1e-3) and hp["weight_decay"] == pytest.approx(1e-4)
    assert hp["decay_convention"] == "schedule" and hp["seed"] == 0

    # histograms: the statistics files' whole-model counts of |u|/alpha, per epoch
    stats = load_stats(run_dir)
    hist = acc.Histograms("stats/log2_update_over_alpha")
    assert [h.step for h in hist] == [1, 2]
    for h in hist:
        want = stats.model_counts("update_over_alpha")[stats.epoch == h.step].sum(axis=0)
        np.testing.assert_array_equal(np.array(h.histogram_value.bucket), want)
        np.testing.assert_array_equal(h.histogram_value.bucket_limit, np.arange(-26, 2))
    assert [h.step for h in acc.Histograms("stats/log2_param")] == [1, 2]


@pytest.mark.parametrize("phase", ["epoch_end", "checkpoint"])
def test_resumed_run_has_each_epoch_once(tmp_path, phase):
    cfg = config(tmp_path, train_epochs=3, store_stats=False)
    outcome = interrupted_then_resumed(cfg, ["tensorboard"], phase)
    run_dir, log_dir = run_dirs(tmp_path, outcome)
    got = events(log_dir).Scalars("test/loss")
    assert [e.step for e in got] == [1, 2, 3]
    metrics = rows(run_dir)
    np.testing.assert_allclose(
        [e.value for e in got], [metrics[s]["test_loss"] for s in (1, 2, 3)], rtol=1e-6
    )


def test_sweep_is_one_hparams_table(tmp_path, monkeypatch):
    from tests.trackers.common import grid_run_dirs, sweep

    assert sweep(tmp_path, monkeypatch, ["--tracker", "tensorboard"]) == 0
    dirs = grid_run_dirs(tmp_path)
    assert len(dirs) == 4
    points = set()
    for d in dirs:
        acc = events(tmp_path / "tensorboard" / d.name)
        assert [e.step for e in acc.Scalars("test/acc")] == [1, 2]
        start = next(
            p.session_start_info
            for p in map(
                plugin_data_pb2.HParamsPluginData.FromString,
                acc.PluginTagToContent("hparams").values(),
            )
            if p.HasField("session_start_info")
        )
        points.add((start.hparams["eta0"].number_value, start.hparams["weight_decay"].number_value))
        (group,) = acc.Tensors("sweep/text_summary")
        assert "synthetic MLP4" in group.tensor_proto.string_val[0].decode()
    assert points == {(1e-3, 0.0), (1e-3, 1e-4), (1e-2, 0.0), (1e-2, 1e-4)}
