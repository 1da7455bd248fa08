"""scalefree train end to end: the reference commands, resume, divergence, guards, statistics."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from scalefree.cli import main
from scalefree.rundir import load_run, read_metrics
from scalefree.train import loop as loop_mod
from scalefree.train import trainer as trainer_mod
from scalefree.train.config import RunConfig
from scalefree.train.stats import load_stats
from scalefree.train.trainer import train
from tests.data.cifar_fixture import make_fake_cifar
from tests.helpers import synthetic_flags, tiny_run

COMMANDS = [
    line
    for line in (Path(__file__).parent / "reference_commands.txt").read_text().splitlines()
    if line.startswith("python main.py")
]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    make_fake_cifar(root, name="CIFAR10", n_train_per_batch=8, n_test=8)
    make_fake_cifar(root, name="CIFAR100", n_train_per_batch=40, n_test=8)
    return root


def tiny(tmp_path: Path, **kw) -> RunConfig:
    """256 training and 64 test images, 6 steps of 64."""
    return tiny_run(tmp_path, **({"max_steps": 6} | kw))


def test_reference_file_has_every_seed_command():
    seed = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_bf94dc366c469266.txt"
    if seed.exists():
        expected = [
            ln.strip().rstrip("`")
            for ln in seed.read_text().splitlines()
            if ln.startswith("python main.py")
        ]
        assert COMMANDS == expected
    assert len(COMMANDS) == 19


@pytest.mark.parametrize("command", COMMANDS, ids=[f"cmd{i:02d}" for i in range(len(COMMANDS))])
def test_every_reference_command_runs(command, fake_root, tmp_path, recwarn):
    argv = shlex.split(command)[2:]  # drop "python main.py"
    argv[argv.index("--dataroot") + 1] = str(fake_root)
    argv[argv.index("--log-folder") + 1] = str(tmp_path / "logs")
    assert main(["train", *argv, "--max-steps", "1", "--progress", "none"]) == 0
    (run,) = [d for d in (tmp_path / "logs").iterdir() if d.name != "initial_weights"]
    record = load_run(run)
    assert record.status == "completed" and record.result["steps"] == 1
    stats = load_stats(run)
    assert stats.counts.shape[0] == 1 and stats.iteration.tolist() == [0]
    if not torch.cuda.is_available():
        assert any("--use-cuda" in str(w.message) for w in recwarn)


def test_run_directory_layout_and_contents(tmp_path):
    outcome = train(tiny(tmp_path, store_stats=True, store_stats_interval=2, loss_multiplier=10.0))
    run = outcome.run_dir
    assert run.name == (
        "synthetic_ResNet20_NoBN_AdamW_Eta0_0.001_WD_0.0001_Scheduler_None_Loss_Mul_10"
        "_Epoch_2_BatchSize_64_Seed_0_MaxSteps_6_Synthetic_256_64_Test"
    )
    assert {p.name for p in run.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "result.json",
        "checkpoint.pt",
        "stats",
    }
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["optim_method"] == "AdamW" and cfg["env"]["torch_version"] == torch.__version__
    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [4, 6]
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["final"] == rows[-1]
    assert result["test_error"] == pytest.approx(1 - rows[-1]["test_acc"])
    # reported losses include the loss multiplier: untrained 10-class cross-entropy ~ ln 10
    assert 0.5 * 10 * np.log(10) < rows[0]["train_loss"] < 3 * 10 * np.log(10)
    stats = load_stats(run)
    assert stats.epoch.tolist() == [1, 1, 2] and stats.iteration.tolist() == [0, 2, 0]
    assert all("bn" not in name for name in stats.layers)
    # every parameter's coordinates are counted once per snapshot and quantity
    n_params = sum(
        p.numel() for p in torch.load(next((tmp_path / "initial_weights").iterdir())).values()
    )
    assert (stats.counts.sum(axis=(2, 3)) == n_params).all()


def test_stats_exclude_normalization_layers(tmp_path):
    run = train(
        tiny(tmp_path, batch_norm=True, store_stats=True, max_steps=1, train_epochs=1)
    ).run_dir
    stats = load_stats(run)
    assert stats.layers and not any(".bn" in n or n.startswith("bn") for n in stats.layers)
    assert "fc.weight" in stats.layers or any(n.endswith("weight") for n in stats.layers)


def test_update_over_alpha_for_adam_is_at_most_about_one(tmp_path):
    # After the first Adam step |u|/alpha = |m_hat|/(sqrt(v_hat)+eps) <= 1: nothing above 2^0.
    run = train(tiny(tmp_path, store_stats=True, max_steps=1, train_epochs=1)).run_dir
    stats = load_stats(run)
    frac = stats.fractions("update_over_alpha")
    assert frac[-2] > 0.5  # most coordinates move by ~alpha in [2^-1, 2^0)


class _Crash(Exception):
    pass


def _interrupt_after(monkeypatch, n_batches: int):
    real = loop_mod.TrainBatches
    count = {"n": 0}

    class Crashing(real):
        def __iter__(self):
            for batch in super().__iter__():
                count["n"] += 1
                if count["n"] > n_batches:
                    raise _Crash
                yield batch

    monkeypatch.setattr(loop_mod, "TrainBatches", Crashing)  # the loop's epochs draw batches
    return lambda: monkeypatch.setattr(loop_mod, "TrainBatches", real)


@pytest.mark.parametrize("scheduler", ["None", "Cosine"])
def test_resume_equals_uninterrupted_bitwise(tmp_path, monkeypatch, scheduler):
    kw = dict(train_epochs=3, max_steps=None, scheduler=scheduler, store_stats=True, batchsize=128)
    straight = train(tiny(tmp_path / "a", **kw))
    restore = _interrupt_after(monkeypatch, 3)  # epoch 1 has 2 batches: crash inside epoch 2
    with pytest.raises(_Crash):
        train(tiny(tmp_path / "b", **kw))
    restore()
    run_b = tmp_path / "b" / straight.run_dir.name
    assert not (run_b / "result.json").exists() and (run_b / "checkpoint.pt").exists()
    with pytest.raises(Exception, match="pass --resume"):
        train(tiny(tmp_path / "b", **kw))
    resumed = train(tiny(tmp_path / "b", **kw), resume=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    assert strip(read_metrics(straight.run_dir)) == strip(read_metrics(resumed.run_dir))
    sa, sb = load_stats(straight.run_dir), load_stats(resumed.run_dir)
    assert np.array_equal(sa.counts, sb.counts)
    from scalefree.train.checkpoint import load_checkpoint

    ma, mb = (
        load_checkpoint(straight.run_dir)[0]["model"],
        load_checkpoint(resumed.run_dir)[0]["model"],
    )
    assert all(torch.equal(ma[k], mb[k]) for k in ma)


def test_completed_run_is_skipped(tmp_path):
    first = train(tiny(tmp_path))
    mtime = (first.run_dir / "result.json").stat().st_mtime_ns
    again = train(tiny(tmp_path))
    assert again.skipped and (first.run_dir / "result.json").stat().st_mtime_ns == mtime


def test_divergence_stops_run_and_keeps_checkpoint(tmp_path):
    cfg = tiny(
        tmp_path, optim_method="SGD", eta0=1e6, weight_decay=0.0, max_steps=None, train_epochs=3
    )
    outcome = train(cfg)
    assert outcome.result["status"] == "diverged"
    assert "not finite" in outcome.result["message"] or "became" in outcome.result["message"]
    assert load_run(outcome.run_dir).test_error == 1.1


def test_unwritable_log_folder_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(
        [
            "train",
            *synthetic_flags(),
            "--log-folder",
            str(blocker / "logs"),
            "--max-steps",
            "1",
            "--progress",
            "none",
        ]
    )
    assert code == 2
    assert "choose a writable --log-folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--eta0", "-1"], "--eta0 must be a positive finite number"),
        (["--eta0", "nan"], "--eta0 must be a positive finite number"),
        (["--optim-method", "AdamX"], "--optim-method: unknown optimizer 'AdamX'"),
        (["--model", "ResNet19"], "--model: unknown model 'ResNet19'"),
        (["--batchsize", "0"], "--batchsize must be a positive integer"),
        (["--val-ratio", "1.5"], "--val-ratio must be strictly between 0 and 1"),
        (["--betas", "0.9", "1.0"], "--betas must be two numbers in [0, 1)"),
        (["--optim-method", "SGD", "--amsgrad"], "--amsgrad does not apply to optimizer SGD"),
    ],
)
def test_bad_flags_exit_2_without_writing(tmp_path, capsys, argv, needle):
    logs = tmp_path / "logs"
    code = main(
        [
            "train",
            *synthetic_flags(),
            "--log-folder",
            str(logs),
            "--progress",
            "none",
            "--max-steps",
            "1",
            *argv,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not any(p.name.endswith(".json") for p in logs.rglob("*")) if logs.exists() else True


def test_train_help_lists_every_reference_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in [
        "--optim-method",
        "--eta0",
        "--weight-decay",
        "--train-epochs",
        "--batchsize",
        "--eval-interval",
        "--use-cuda",
        "--log-folder",
        "--dataroot",
        "--dataset",
        "--model",
        "--no-batch-norm",
        "--scheduler",
        "--store-stats",
        "--store-stats-interval",
        "--loss-multiplier",
        "--validation",
        "--val-ratio",
        "--reproducible",
        "--seed",
        "--device",
        "--amp",
        "--compile",
        "--channels-last",
        "--download",
        "--resume",
        "--decay-convention",
        "--amsgrad",
        "--betas",
        "--eps",
        "--no-decay-bias-norm",
    ]:
        assert flag in text, flag


def test_shared_initial_weights_across_optimizers(tmp_path):
    a = train(tiny(tmp_path, optim_method="AdamW", max_steps=1, train_epochs=1))
    b = train(tiny(tmp_path, optim_method="AdamL2", max_steps=1, train_epochs=1))
    assert len(list((tmp_path / "initial_weights").iterdir())) == 1
    assert a.run_dir != b.run_dir


def test_validation_split_and_bf16(tmp_path):
    out = train(
        tiny(tmp_path, validation=True, val_ratio=0.25, amp="bf16", max_steps=2, train_epochs=1)
    )
    cfg = json.loads((out.run_dir / "config.json").read_text())
    assert out.result["eval_split"] == "val" and cfg["env"]["eval_size"] == 64
    assert out.run_dir.name.endswith("_AMP_bf16_MaxSteps_2_Synthetic_256_64_Val_0.25")


@pytest.mark.slow
def test_resnet20_nobn_adamw_learns_on_real_cifar_subset(cifar10_subset, tmp_path):
    cfg = RunConfig(
        dataset="CIFAR10",
        dataroot=str(cifar10_subset),
        model="ResNet20",
        batch_norm=False,
        optim_method="AdamW",
        eta0=1e-3,
        weight_decay=5e-5,
        train_epochs=3,
        batchsize=64,
        eval_interval=3,
        log_folder=str(tmp_path),
        progress="none",
    )
    out = train(cfg)
    assert out.result["status"] == "completed"
    # Chance is 0.1 (+-0.01 over 1017 images). Without BN the net first spends ~100 steps
    # collapsing its huge initial logits, then learns: 0.27 was measured for this setting.
    assert out.result["final"]["test_acc"] > 0.2, out.result


def test_download_flag_fetches_before_loading(tmp_path, monkeypatch):
    """--download calls the downloader (real one tested against a local server in tests/data)
    before the files are read; without it a missing dataset is a clear usage error."""
    calls = []

    def fake_download(name, dataroot):
        calls.append(name)
        make_fake_cifar(Path(dataroot), name=name, n_train_per_batch=8, n_test=8)

    monkeypatch.setattr(trainer_mod, "download_cifar", fake_download)
    root = tmp_path / "data"
    base = [
        "train",
        "--dataset",
        "CIFAR10",
        "--dataroot",
        str(root),
        "--progress",
        "none",
        "--max-steps",
        "1",
        "--train-epochs",
        "1",
    ]
    assert main([*base, "--log-folder", str(tmp_path / "a")]) == 2  # missing files, no download
    assert main([*base, "--log-folder", str(tmp_path / "b"), "--download"]) == 0
    assert calls == ["CIFAR10"]
