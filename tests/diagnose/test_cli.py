"""``scalefree diagnose`` on model flags and on run directories; the report's section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from scalefree.cli import main
from scalefree.diagnose import diagnose
from scalefree.diagnose.targets import DataCache, diagnose_run, first_batches, load_weights
from scalefree.rundir.layout import diagnose_file
from tests.helpers import assert_close, synthetic_flags, tiny_run

SIZES = (64, 32)
FLAGS = [*synthetic_flags(*SIZES), "--batchsize", "16", "--batches", "3", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scalefree.train.trainer import train

    logs = tmp_path_factory.mktemp("logs")
    config = tiny_run(logs, sizes=SIZES, model="MLP4", train_epochs=1, batchsize=16, eta0=1e-2)
    outcome = train(config)
    assert outcome.result["status"] == "completed"
    return outcome.run_dir


def test_model_flags_write_json_and_figure(tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["diagnose", "--model", "MLP4", "ResNet20", "--no-batch-norm", *FLAGS]
    assert main([*argv, "--out", str(out), "--log-folder", str(tmp_path / "logs")]) == 0
    printed = capsys.readouterr().out
    assert "spread" in printed and "octaves" in printed and "fc.weight" in printed
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "diagnose.png",
        "diagnose_synthetic_MLP4_NoBN_InitSeed_0.json",
        "diagnose_synthetic_ResNet20_NoBN_InitSeed_0.json",
    ]
    entry = json.loads((out / files[1]).read_text())
    assert (entry["at"], entry["batches"], entry["model"], entry["batch_norm"]) == (
        "init", 3, "MLP4", False,
    )  # fmt: skip
    d = entry["diagnosis"]
    assert d["spread"] > 0.5 and d["layer_spread"] > 0.1 and d["num_batches"] == 3
    assert [r["name"] for r in d["per_tensor"]][-1] == "fc.weight"
    assert "fc.bias" in d["excluded"]
    assert not (tmp_path / "logs").exists()  # nothing written to the log folder


def test_cli_equals_the_python_api(tmp_path):
    """The CLI's numbers are diagnose() on the run's initial weights and first batches."""
    out = tmp_path / "d"
    assert main(["diagnose", "--model", "MLP4", *FLAGS, "--out", str(out)]) == 0
    entry = json.loads((out / "diagnose_synthetic_MLP4_InitSeed_0.json").read_text())
    config = tiny_run(tmp_path, sizes=SIZES, model="MLP4", batch_norm=True, batchsize=16)
    data = DataCache().get(config, torch.device("cpu"))
    model, _ = load_weights(config, "init", data.num_classes)
    d = diagnose(model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), first_batches(data, config, 3))
    assert_close(entry["diagnosis"]["spread"], d.spread, rtol=1e-6, atol=0)
    assert_close(entry["diagnosis"]["layer_spread"], d.layer_spread, rtol=1e-6, atol=0)


def test_run_dir_init_and_final(run_dir, capsys, tmp_path):
    assert main(["diagnose", str(run_dir), "--at", "final", "--batches", "2"]) == 0
    argv = ["diagnose", str(run_dir.parent), "--at", "init", "--batches", "2"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    final = json.loads(diagnose_file(run_dir, "final").read_text())
    init = json.loads(diagnose_file(run_dir, "init").read_text())
    assert diagnose_file(run_dir, "final", ".png").is_file()
    assert diagnose_file(run_dir, "init", ".png").is_file()
    assert (tmp_path / "diagnose_init.png").is_file()
    assert (final["epoch"], final["step"], init["epoch"]) == (1, 4, 0)
    assert final["run_name"] == run_dir.name and final["batches"] == 2
    # the weights moved in training: the gradients differ
    assert abs(final["diagnosis"]["spread"] - init["diagnosis"]["spread"]) > 1e-6
    capsys.readouterr()
    # --skip-existing keeps the file as it is
    before = diagnose_file(run_dir, "final").read_bytes()
    assert main(["diagnose", str(run_dir), "--skip-existing", "--batches", "3"]) == 0  # final
    assert "kept:" in capsys.readouterr().out
    assert diagnose_file(run_dir, "final").read_bytes() == before


def test_diagnose_run_returns_what_it_writes(run_dir):
    entry = diagnose_run(run_dir, "init", 2)
    assert json.loads(diagnose_file(run_dir, "init").read_text()) == json.loads(json.dumps(entry))
    assert entry["diagnosis"]["spread"] > 0


def test_report_shows_the_diagnosis(run_dir, tmp_path):
    from scalefree.plots.report import write_report

    diagnose_run(run_dir, "init", 2)
    md = write_report(run_dir.parent, tmp_path / "report").read_text()
    assert "scalefree diagnose" in md and "figures/diagnose_init.png" in md
    spread = json.loads(diagnose_file(run_dir, "init").read_text())["diagnosis"]["spread"]
    assert f"| {spread:.2f} |" in md


def test_report_without_diagnoses_has_no_section(tmp_path):
    from tests.fakeruns import make_run

    make_run(tmp_path, optim_method="AdamW", eta0=1e-3, weight_decay=0.0)
    from scalefree.plots.report import write_report

    assert "scalefree diagnose" not in write_report(tmp_path, tmp_path / "r").read_text()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["diagnose", "nowhere/at/all"], "does not exist"),
        (["diagnose", "--at", "final", *synthetic_flags(*SIZES)], "--at final needs a RUN_DIR"),
        (["diagnose", "--batches", "0"], "--batches"),
        (["diagnose", "--model", "NoSuchNet", *synthetic_flags(*SIZES)], "NoSuchNet"),
    ],
)
def test_usage_errors_exit_2(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own checks (--batches 0)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_run_dir_usage_errors(run_dir, tmp_path, capsys):
    assert main(["diagnose", str(run_dir), "--model", "MLP4"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["diagnose", str(tmp_path)]) == 2
    assert "no run directory" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "config.json", bare / "config.json")
    assert main(["diagnose", str(bare)]) == 2  # --at final by default
    assert "has no checkpoint" in capsys.readouterr().err
    # in a log folder, runs without a checkpoint are skipped; none left is an error
    folder = tmp_path / "folder"
    shutil.copytree(bare, folder / "run")
    assert main(["diagnose", str(folder)]) == 2
    captured = capsys.readouterr()
    assert "skipped 1 run(s)" in captured.out and "--at init" in captured.err
