"""W&B, offline (no API key, never a prompt): the run files read back (tests/trackers/wandb_records)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalefree.train.stats import load_stats
from tests.trackers.common import (
    config,
    grid_run_dirs,
    interrupted_then_resumed,
    result,
    rows,
    sweep,
    train,
)

pytest.importorskip("wandb")
from scalefree.trackers import wandb_tracker  # noqa: E402
from tests.trackers.wandb_records import offline_run  # noqa: E402


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    """As on a machine where nobody ran ``wandb login``: offline."""
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(wandb_tracker, "has_api_key", lambda: False)


def run_of(tmp_path, run_dir):
    run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]["run_id"]
    return offline_run(tmp_path / "wandb", run_id)


def test_mode_is_offline_without_a_key_and_the_users_choice_wins(monkeypatch):
    assert wandb_tracker.wandb_mode() == "offline"
    monkeypatch.setattr(wandb_tracker, "has_api_key", lambda: True)
    assert wandb_tracker.wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_tracker.wandb_mode() == "disabled"


def test_api_key_in_the_environment_counts(monkeypatch):
    monkeypatch.undo()  # the real has_api_key
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_tracker.has_api_key()


def test_two_epochs_config_history_histograms_summary(tmp_path):
    outcome = train(config(tmp_path), ["wandb"])
    run = run_of(tmp_path, outcome.run_dir)
    assert run.name == outcome.run_dir.name
    c = run.config
    assert (c["optimizer"], c["model"], c["batch_norm"], c["seed"]) == ("AdamW", "MLP4", False, 0)
    assert c["eta0"] == 1e-3 and c["weight_decay"] == 1e-4 and c["decay_convention"] == "schedule"
    metrics = rows(outcome.run_dir)
    for key, col in [("train/loss", "train_loss"), ("test/acc", "test_acc"), ("lr", "lr")]:
        assert run.steps(key) == [1, 2]
        np.testing.assert_allclose(run.values(key), [metrics[s][col] for s in (1, 2)], rtol=1e-12)
    stats = load_stats(outcome.run_dir)
    hists = [h for h in run.history if "stats/log2_update_over_alpha/values" in h]
    assert [h["_step"] for h in hists] == [1, 2]
    for h in hists:
        want = stats.model_counts("update_over_alpha")[stats.epoch == h["_step"]].sum(axis=0)
        assert h["stats/log2_update_over_alpha/values"] == want.tolist()
        assert h["stats/log2_update_over_alpha/bins"] == list(range(-27, 2))
    assert run.summary["status"] == "completed"
    assert run.summary["test_error"] == pytest.approx(result(outcome.run_dir)["test_error"])
    assert run.exit_codes == [0]


@pytest.mark.parametrize("phase", ["epoch_end", "checkpoint"])
def test_resumed_run_continues_the_same_wandb_run(tmp_path, phase):
    cfg = config(tmp_path, train_epochs=3, store_stats=False)
    outcome = interrupted_then_resumed(cfg, ["wandb"], phase)
    run = run_of(tmp_path, outcome.run_dir)  # both attempts' files, one run id
    assert run.steps("test/loss") == [1, 2, 3]
    metrics = rows(outcome.run_dir)
    np.testing.assert_allclose(
        run.values("test/loss"), [metrics[s]["test_loss"] for s in (1, 2, 3)]
    )
    assert run.exit_codes == [1, 0]  # the stopped attempt, then the finished one


def test_sweep_runs_share_the_group(tmp_path, monkeypatch):
    assert sweep(tmp_path, monkeypatch, ["--tracker", "wandb", "--wandb-project", "grid"]) == 0
    dirs = grid_run_dirs(tmp_path)
    assert len(dirs) == 4
    runs = [run_of(tmp_path, d) for d in dirs]
    groups = {r.group for r in runs}
    assert len(groups) == 1 and "synthetic MLP4" in groups.pop()
    assert {(r.config["eta0"], r.config["weight_decay"]) for r in runs} == {
        (1e-3, 0.0), (1e-3, 1e-4), (1e-2, 0.0), (1e-2, 1e-4)
    }  # fmt: skip
    assert all(r.steps("test/acc") == [1, 2] for r in runs)
