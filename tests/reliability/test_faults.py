"""Faults: SIGKILL mid-run, corrupted checkpoints, crash before the first checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scalefree.cli import main
from scalefree.rundir import load_run, read_metrics
from scalefree.train.checkpoint import LATEST, PREVIOUS, load_checkpoint
from tests.data.cifar_fixture import make_fake_cifar

REPO = Path(__file__).resolve().parents[2]
ARGS = [
    "--dataset",
    "CIFAR10",
    "--model",
    "ResNet20",
    "--no-batch-norm",
    "--optim-method",
    "AdamW",
    "--eta0",
    "0.001",
    "--weight-decay",
    "0.0005",
    "--train-epochs",
    "3",
    "--batchsize",
    "8",
    "--progress",
    "none",
    "--reproducible",
    "--store-stats",
    "--store-stats-interval",
    "2",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    make_fake_cifar(root, name="CIFAR10", n_train_per_batch=8, n_test=8)  # 40 images: 5 steps/epoch
    return root


def _cmd(data: Path, logs: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scalefree",
        "train",
        *ARGS,
        "--dataroot",
        str(data),
        "--log-folder",
        str(logs),
        *extra,
    ]


def _env() -> dict[str, str]:
    # This checkout's sources first, whatever scalefree the interpreter has installed.
    path = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def _run_dir(logs: Path) -> Path:
    (run,) = [d for d in logs.iterdir() if d.name != "initial_weights"]
    return run


def _same_run(a: Path, b: Path) -> None:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    assert strip(read_metrics(a)) == strip(read_metrics(b))
    ma, mb = load_checkpoint(a)[0]["model"], load_checkpoint(b)[0]["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    ra, rb = load_run(a).result, load_run(b).result
    assert (
        ra["status"] == rb["status"] == "completed"
        and ra["final"]["test_acc"] == rb["final"]["test_acc"]
    )
    assert sorted(p.name for p in (a / "stats").iterdir()) == sorted(
        p.name for p in (b / "stats").iterdir()
    )


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_uninterrupted(data, tmp_path):
    straight = subprocess.run(
        _cmd(data, tmp_path / "a"), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert straight.returncode == 0, straight.stderr

    proc = subprocess.Popen(
        _cmd(data, tmp_path / "b"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    ckpt = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "b").glob(f"*/{LATEST}"))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.02)
    assert ckpt is not None, "the run never wrote its first checkpoint"
    proc.send_signal(signal.SIGKILL)  # inside epoch 2: no cleanup, no result.json
    proc.wait(timeout=30)
    run_b = ckpt.parent
    assert not (run_b / "result.json").exists()

    again = subprocess.run(
        _cmd(data, tmp_path / "b"), env=_env(), capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and "pass --resume" in again.stderr
    resumed = subprocess.run(
        _cmd(data, tmp_path / "b", "--resume"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    _same_run(_run_dir(tmp_path / "a"), run_b)


class _Crash(BaseException):
    """Stands in for a crash: BaseException, so nothing in the trainer catches it."""


def _crash_after(monkeypatch, owner, name: str, when=lambda *args: True) -> None:
    """Make ``owner.name`` do its real work, then crash when ``when(*args)`` holds."""
    real = getattr(owner, name)

    def wrapped(*args):
        out = real(*args)
        if when(*args):
            raise _Crash
        return out

    monkeypatch.setattr(owner, name, wrapped)


def _train(data: Path, logs: Path, *extra: str) -> int:
    return main(["train", *ARGS, "--dataroot", str(data), "--log-folder", str(logs), *extra])


def _interrupted_run(data: Path, logs: Path, monkeypatch, after_epochs: int) -> Path:
    """Run in-process and crash right after epoch ``after_epochs``'s checkpoint is written."""
    from scalefree.train import checkpoint as ck

    with monkeypatch.context() as m:
        _crash_after(
            m, ck, "save_checkpoint", when=lambda _, payload: payload["epoch"] >= after_epochs
        )
        with pytest.raises(_Crash):
            _train(data, logs)
    return _run_dir(logs)


def test_truncated_latest_checkpoint_falls_back_to_previous(data, tmp_path, monkeypatch, capsys):
    _train(data, tmp_path / "a")
    run = _interrupted_run(data, tmp_path / "b", monkeypatch, after_epochs=2)
    latest = run / LATEST
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated by a crash or a full disk
    assert _train(data, tmp_path / "b", "--resume") == 0
    err = capsys.readouterr().err
    assert "checksum" in err or "truncated" in err
    assert "resuming" in err and "after epoch 1" in err  # the previous good checkpoint
    _same_run(_run_dir(tmp_path / "a"), run)


def test_all_checkpoints_corrupt_is_a_clear_error_not_a_silent_restart(
    data, tmp_path, monkeypatch, capsys
):
    run = _interrupted_run(data, tmp_path / "b", monkeypatch, after_epochs=2)
    for name in (LATEST, PREVIOUS):
        blob = bytearray((run / name).read_bytes())
        blob[len(blob) // 2] ^= 0x55
        (run / name).write_bytes(bytes(blob))
    rows_before = read_metrics(run)
    assert _train(data, tmp_path / "b", "--resume") == 2
    err = capsys.readouterr().err
    assert (
        "no valid checkpoint" in err
        and "Delete the run directory" in err
        and "Traceback" not in err
    )
    assert read_metrics(run) == rows_before and not (run / "result.json").exists()


def test_resume_after_crash_before_first_checkpoint_starts_clean(data, tmp_path, monkeypatch):
    from scalefree.rundir import write

    with monkeypatch.context() as m:
        # epoch 1's metrics row is written, its checkpoint not yet
        _crash_after(m, write, "append_metrics")
        with pytest.raises(_Crash):
            _train(data, tmp_path / "b")
    run = _run_dir(tmp_path / "b")
    assert len(read_metrics(run)) == 1
    assert _train(data, tmp_path / "b", "--resume") == 0
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3]  # no duplicated epoch 1


def _long_cmd(data: Path, logs: Path, *extra: str) -> list[str]:
    """A run that is still training for a while after its first checkpoint (8 epochs)."""
    cmd = _cmd(data, logs, *extra)
    cmd[cmd.index("--train-epochs") + 1] = "8"
    return cmd


@pytest.mark.slow
def test_second_train_is_refused_and_sigterm_stops_resumably(data, tmp_path):
    """Two processes on one run: the second names the holder and exits 2 (touching nothing);
    SIGTERM stops the first at a step with a clear message; --resume completes the run."""
    logs = tmp_path / "b"
    first = subprocess.Popen(
        _long_cmd(data, logs), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            if list(logs.glob(f"*/{LATEST}")):
                break
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # paused mid-run, still holding its lock
        run = _run_dir(logs)
        metrics_before = (run / "metrics.jsonl").read_bytes()
        second = subprocess.run(
            _long_cmd(data, logs, "--resume"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        first.send_signal(signal.SIGTERM)  # handled once it continues
        first.send_signal(signal.SIGCONT)
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "is being trained by" in second.stderr
        assert "Traceback" not in second.stderr
        assert (run / "metrics.jsonl").read_bytes() == metrics_before
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 143, err
    assert "stopped by SIGTERM" in err and "checkpoint of epoch" in err and "--resume" in err
    assert "Traceback" not in err and not (run / "result.json").exists()
    resumed = subprocess.run(
        _long_cmd(data, logs, "--resume"), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r["epoch"] for r in read_metrics(run)] == list(range(1, 9))
