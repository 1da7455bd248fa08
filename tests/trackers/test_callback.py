"""The trackers' contract with the run: never part of its identity, never its failure, never
needed by the light install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.trackers import TRACKERS
from scalefree.trackers.base import Tracker
from tests.trackers.common import config, result, rows, train

THIRD_PARTY = ("tensorboard", "torch.utils.tensorboard", "mlflow", "wandb")
THIRD_PARTY += ("transformers", "accelerate", "lightning", "pytorch_lightning")


class Broken(Tracker):
    """A tracker whose every call fails, as with a full disk or a server that is down."""

    name = "broken"
    calls: list[str] = []

    def start(self, run, saved):
        self.calls.append("start")
        return {"run_id": "x"}

    def log_epoch(self, epoch, metrics):
        self.calls.append(f"epoch {epoch}")
        raise OSError(28, "No space left on device")

    def finish(self, result):
        self.calls.append(f"finish {result}")


def test_a_failing_tracker_is_a_warning_naming_it_and_the_run_completes(tmp_path, capsys):
    entry = TRACKERS.entry_type("broken", lambda settings, folder: Broken(), "test", module="json")
    Broken.calls = []
    with TRACKERS.registered(entry):
        outcome = train(config(tmp_path, store_stats=False), ["broken"])
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "tracker" in ln]
    assert line.startswith("warning: tracker broken failed to log epoch metrics (OSError")
    assert outcome.result["status"] == "completed" and sorted(rows(outcome.run_dir)) == [1, 2]
    assert Broken.calls == ["start", "epoch 1", "finish None"]  # closed, then off


@pytest.mark.parametrize("where", ["mlflow file", "mlflow server", "tensorboard"])
def test_an_unusable_destination_is_a_warning_and_the_run_completes(tmp_path, capsys, where):
    """A log dir below a file (a bad path, as a full or read-only disk), a server that is down."""
    name = where.split()[0]
    pytest.importorskip(TRACKERS.get(name).module)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = {
        "mlflow file": {"mlflow_uri": (blocker / "mlruns").as_uri()},
        "mlflow server": {"mlflow_uri": "http://127.0.0.1:9"},  # the discard port: refused
        "tensorboard": {"tensorboard_dir": str(blocker / "tb")},
    }[where]
    outcome = train(config(tmp_path, store_stats=False), [name], **settings)
    assert result(outcome.run_dir)["status"] == "completed"
    assert sorted(rows(outcome.run_dir)) == [1, 2]
    assert f"warning: tracker {name}" in capsys.readouterr().err


def test_trackers_change_neither_the_run_name_nor_config_json(tmp_path):
    name = next((n for n in TRACKERS.names() if TRACKERS.get(n).installed()), None)
    if name is None:
        pytest.skip("no tracker installed")
    plain = train(config(tmp_path / "a", store_stats=False), [])
    tracked = train(config(tmp_path / "b", store_stats=False), [name])
    assert plain.run_dir.name == tracked.run_dir.name
    a, b = (json.loads((o.run_dir / "config.json").read_text()) for o in (plain, tracked))
    assert sorted(a) == sorted(b) and a["run_name"] == b["run_name"]
    assert not (plain.run_dir / "trackers.json").exists()
    assert (tracked.run_dir / "trackers.json").exists()


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_tracker_that_is_not_installed_stops_at_once_naming_its_extra(tmp_path, capsys, command):
    ghost = TRACKERS.entry_type(
        "ghost", Broken, "not installed", module="scalefree_no_such_package", extra="ghost"
    )
    args = [command, "--dataset", "synthetic", "--log-folder", str(tmp_path), "--tracker", "ghost"]
    with TRACKERS.registered(ghost):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "--tracker ghost" in err and "pip install -e '.[ghost]'" in err
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


def test_the_light_install_imports_and_trains_without_any_tracker_package(tmp_path):
    """In a fresh interpreter where importing each tracker package fails, as when none is
    installed: the trainer trains, and asking for a tracker is the usage error."""
    code = f"""
import sys
for mod in {THIRD_PARTY!r}:
    sys.modules[mod] = None  # import fails
import importlib.util
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name in {THIRD_PARTY!r} else real_find_spec(name, *a)
from scalefree.cli import main
import scalefree.integrations  # the plain-torch recorder needs neither transformers nor lightning
common = ["--dataset", "synthetic", "--synthetic-sizes", "64", "32", "--model", "MLP4",
          "--image-size", "8", "--train-epochs", "1", "--progress", "none",
          "--log-folder", {str(tmp_path)!r}]
assert main(["train", *common]) == 0
assert main(["train", *common, "--tracker", "tensorboard"]) == 2
for mod in {THIRD_PARTY!r}:
    assert sys.modules[mod] is None, mod
print("ok")
"""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = os.environ | {"PYTHONPATH": src, "SCALEFREE_KERNELS": "0"}  # no kernel build here
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
    assert "pip install -e '.[tensorboard]'" in out.stderr
