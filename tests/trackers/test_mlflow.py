"""MLflow: what runs and sweeps wrote, read back with MlflowClient on the file store."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trackers.common import (
    config,
    grid_run_dirs,
    interrupted_then_resumed,
    result,
    rows,
    sweep,
    train,
)

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores otherwise
    return MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())


def runs(client, name="scalefree"):
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id], max_results=100)


def history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_two_epochs_params_metrics_artifacts(tmp_path, client):
    outcome = train(config(tmp_path), ["mlflow"])
    (run,) = runs(client)
    assert run.info.run_name == outcome.run_dir.name and run.info.status == "FINISHED"
    p = run.data.params
    assert (p["optimizer"], p["model"], p["batch_norm"], p["seed"]) == (
        "AdamW",
        "MLP4",
        "False",
        "0",
    )
    assert float(p["eta0"]) == 1e-3 and float(p["weight_decay"]) == 1e-4
    assert p["decay_convention"] == "schedule"
    metrics = rows(outcome.run_dir)
    for key, col in [("train/loss", "train_loss"), ("test/acc", "test_acc"), ("lr", "lr")]:
        got = history(client, run.info.run_id, key)
        assert [s for s, _ in got] == [1, 2]
        np.testing.assert_allclose(
            [v for _, v in got], [metrics[s][col] for s in (1, 2)], rtol=1e-12
        )
    assert run.data.metrics["test_error"] == pytest.approx(result(outcome.run_dir)["test_error"])
    assert run.data.tags["scalefree.status"] == "completed"
    assert [s for s, _ in history(client, run.info.run_id, "stats/iqr_log2_update_over_alpha")] == [
        1,
        2,
    ]
    arts = sorted(a.path for a in client.list_artifacts(run.info.run_id, "stats"))
    assert arts == ["stats/epoch_0001.npz", "stats/epoch_0002.npz"]
    local = client.download_artifacts(run.info.run_id, "stats/epoch_0002.npz", str(tmp_path))
    assert open(local, "rb").read() == (outcome.run_dir / "stats" / "epoch_0002.npz").read_bytes()


def test_a_diverged_run_is_failed_with_the_tables_error(tmp_path, client):
    cfg = config(tmp_path, optim_method="SGD", eta0=1e6, weight_decay=0.0, store_stats=False)
    outcome = train(cfg, ["mlflow"])
    assert outcome.result["status"] == "diverged"
    (run,) = runs(client)
    assert run.info.status == "FAILED" and run.data.tags["scalefree.status"] == "diverged"
    assert run.data.metrics["test_error"] == 1.1


@pytest.mark.parametrize("phase", ["epoch_end", "checkpoint"])
def test_resumed_run_continues_the_same_mlflow_run(tmp_path, client, phase):
    cfg = config(tmp_path, train_epochs=3, store_stats=False)
    outcome = interrupted_then_resumed(cfg, ["mlflow"], phase)
    (run,) = runs(client)  # one MLflow run, continued
    assert run.info.status == "FINISHED"
    got = history(client, run.info.run_id, "test/loss")
    assert [s for s, _ in got] == [1, 2, 3]
    metrics = rows(outcome.run_dir)
    np.testing.assert_allclose([v for _, v in got], [metrics[s]["test_loss"] for s in (1, 2, 3)])


def test_sweep_is_a_parent_run_with_one_child_per_grid_point(tmp_path, client, monkeypatch):
    assert sweep(tmp_path, monkeypatch, ["--tracker", "mlflow"]) == 0
    everything = runs(client)
    parents = [r for r in everything if "scalefree.sweep_parent" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.data.tags["scalefree.runs_completed"] == "4"
    children = [
        r for r in everything if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]
    assert sorted(r.info.run_name for r in children) == sorted(
        d.name for d in grid_run_dirs(tmp_path)
    )
    grid = {(float(r.data.params["eta0"]), float(r.data.params["weight_decay"])) for r in children}
    assert grid == {(1e-3, 0.0), (1e-3, 1e-4), (1e-2, 0.0), (1e-2, 1e-4)}
    for r in children:
        assert [s for s, _ in history(client, r.info.run_id, "test/acc")] == [1, 2]
    # relaunching the finished sweep reuses its parent run
    assert sweep(tmp_path, monkeypatch, ["--tracker", "mlflow"]) == 0
    assert sum("scalefree.sweep_parent" in r.data.tags for r in runs(client)) == 1
