"""Files are data, never code; damaged files are named and kept (issue 10, items 1-3, 5-7, 9).

Tiny in-process runs of `scalefree train` (64 synthetic training images, batch 32: two steps per
epoch) so every case runs the real trainer and CLI error handling.
"""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.locking import RunLock
from scalefree.rundir import (
    METRICS_FILE,
    RESULT_FILE,
    load_runs,
    read_metrics,
    read_metrics_file,
)
from scalefree.train import checkpoint as ck
from scalefree.train import trainer
from scalefree.train.config import RunConfig
from tests.helpers import synthetic_flags
from tests.reliability.forge import assert_forgery_is_live, forge_checkpoint, forge_weights

FLAGS = [
    *synthetic_flags(64, 32), "--model", "ResNet20", "--no-batch-norm", "--batchsize", "32",
    "--device", "cpu", "--progress", "none", "--reproducible",
]  # fmt: skip


def run(logs: Path, *extra: str, epochs: int = 2) -> int:
    return main(["train", *FLAGS, "--train-epochs", str(epochs), "--log-folder", str(logs), *extra])


def run_dir(logs: Path) -> Path:
    (d,) = [p for p in logs.iterdir() if p.name != "initial_weights"]
    return d


def config(logs: Path, epochs: int = 2) -> RunConfig:
    return RunConfig(
        dataset="synthetic", synthetic_sizes=(64, 32), model="ResNet20", batch_norm=False,
        batchsize=32, device="cpu", train_epochs=epochs, log_folder=str(logs),
    )  # fmt: skip


def unfinished_run(logs: Path, epochs: int = 2) -> Path:
    """A finished run whose result.json is removed: as if killed after its last checkpoint."""
    assert run(logs, epochs=epochs) == 0
    d = run_dir(logs)
    (d / RESULT_FILE).unlink()
    return d


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and 'File "' not in err, err


# ------------------------------------------------------------------------------------ 1. checkpoints


def test_forged_checkpoint_runs_nothing_and_is_a_clear_error(tmp_path, capsys):
    assert_forgery_is_live(tmp_path)
    marker = tmp_path / "MARKER"
    d = unfinished_run(tmp_path / "logs")
    (d / ck.PREVIOUS).unlink()
    forge_checkpoint(d / ck.LATEST, marker)
    forged = (d / ck.LATEST).read_bytes()
    capsys.readouterr()
    assert run(tmp_path / "logs", "--resume") == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "objects other than tensors" in err and str(d / ck.LATEST) in err
    assert "Delete the run directory" in err and len(err.strip().splitlines()) == 1
    no_traceback(err)
    assert (d / ck.LATEST).read_bytes() == forged and not (d / RESULT_FILE).exists()


def test_forged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    d = unfinished_run(tmp_path / "logs")
    forge_checkpoint(d / ck.LATEST, marker)
    assert run(tmp_path / "logs", "--resume") == 0
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "objects other than tensors" in err and "after epoch 1" in err
    assert json.loads((d / RESULT_FILE).read_text())["status"] == "completed"


def test_checkpoint_with_valid_checksum_but_missing_keys(tmp_path, capsys):
    d = unfinished_run(tmp_path / "logs")
    (d / ck.PREVIOUS).unlink()
    ck.save_checkpoint(d, {"epoch": 2, "model": {}})  # checksummed, but not a training state
    (d / ck.PREVIOUS).unlink()
    assert run(tmp_path / "logs", "--resume") == 2
    err = capsys.readouterr().err
    assert "key 'step' is missing" in err and "no valid checkpoint" in err
    no_traceback(err)


# ------------------------------------------------------------------------------------ 2. weights


def test_forged_initial_weights_are_refused_and_nothing_is_written(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    logs = tmp_path / "logs"
    weights = trainer.initial_weights_path(config(logs))
    forge_weights(weights, marker)
    assert run(logs) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert str(weights) in err and "Delete it" in err and len(err.strip().splitlines()) == 1
    no_traceback(err)
    assert sorted(p.name for p in logs.iterdir()) == ["initial_weights"]  # no run directory


# ------------------------------------------------------------------------------------ 3. metrics


def _rows(epochs: list[int]) -> list[str]:
    return [json.dumps({"epoch": e, "step": 2 * e, "test_acc": 0.1}) for e in epochs]


def test_read_metrics_drops_only_a_torn_last_line(tmp_path):
    lines = _rows([1, 2]) + ["{garbled", "[1, 2]"] + _rows([3])
    (tmp_path / METRICS_FILE).write_text("\n".join(lines) + "\n" + '{"epoch": 4, "st')
    parsed = read_metrics_file(tmp_path)
    assert [r["epoch"] for r in parsed.rows] == [1, 2, 3]
    assert [n for n, _ in parsed.damaged] == [3, 4] and parsed.torn_tail
    assert "not an object" in parsed.damaged[1][1]
    assert [t for t, _ in parsed.lines] == lines  # everything but the torn tail


def test_a_garbled_middle_line_loses_no_row_on_resume(tmp_path, capsys):
    d = unfinished_run(tmp_path / "logs", epochs=3)  # checkpoint of epoch 3 ... make it epoch 2:
    (d / ck.LATEST).replace(d / "ckpt3")
    (d / ck.PREVIOUS).replace(d / ck.LATEST)  # the checkpoint of epoch 2 is now the latest
    (d / "ckpt3").unlink()
    rows = (d / METRICS_FILE).read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]
    garbled = rows[0][:-5] + "#garbage"
    original = "\n".join([garbled, *rows[1:]]) + "\n"
    (d / METRICS_FILE).write_text(original)  # epoch 3's row was written before a crash
    capsys.readouterr()
    assert run(tmp_path / "logs", "--resume", epochs=3) == 0
    err = capsys.readouterr().err
    assert f"{d / METRICS_FILE} line 1 is damaged" in err
    text = (d / METRICS_FILE).read_text().splitlines()
    assert text[0] == garbled  # kept, in place
    assert [r["epoch"] for r in read_metrics(d)] == [2, 3]  # epoch 3 retrained once, no loss
    (backup,) = d.glob(f"{METRICS_FILE}.bak-*")
    assert backup.read_text() == original


# ------------------------------------------------------------------------------------ 4. lock


def test_a_second_train_on_a_locked_run_exits_2_and_touches_nothing(tmp_path, capsys):
    d = unfinished_run(tmp_path / "logs")
    lock = RunLock(d)  # another `scalefree train` holding the run
    assert lock.acquire()
    before = {p.name: p.stat().st_mtime_ns for p in d.iterdir()}
    try:
        assert run(tmp_path / "logs", "--resume") == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "is being trained by" in err and "pid" in err
    no_traceback(err)
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir()} == before


# ------------------------------------------------------------------------------------ 5. damaged files


def test_truncated_result_json_is_set_aside_and_the_run_resumed(tmp_path, capsys):
    assert run(tmp_path / "logs") == 0
    d = run_dir(tmp_path / "logs")
    text = (d / RESULT_FILE).read_text()
    (d / RESULT_FILE).write_text(text[: len(text) // 2])
    assert run(tmp_path / "logs", "--resume") == 0
    err = capsys.readouterr().err
    assert f"{d / RESULT_FILE}: not valid JSON" in err
    (kept,) = d.glob(f"{RESULT_FILE}.damaged-*")
    assert kept.read_text() == text[: len(text) // 2]
    assert json.loads((d / RESULT_FILE).read_text())["status"] == "completed"


@pytest.mark.parametrize("content", ["[]", '{"status": "done"}'])
def test_a_result_json_that_is_not_a_result_is_named(tmp_path, capsys, content):
    assert run(tmp_path / "logs") == 0
    d = run_dir(tmp_path / "logs")
    (d / RESULT_FILE).write_text(content)
    (run_,) = load_runs(tmp_path / "logs")
    assert run_.status == "incomplete" and str(d / RESULT_FILE) in run_.problem
    assert run(tmp_path / "logs") == 2  # it has a checkpoint: resumable, so --resume is needed
    err = capsys.readouterr().err
    assert "pass --resume" in err
    no_traceback(err)


def test_truncated_config_json_is_a_clear_error_for_train(tmp_path, capsys):
    d = unfinished_run(tmp_path / "logs")
    (d / "config.json").write_text('{"optim_method": "Ada')
    assert run(tmp_path / "logs", "--resume") == 2
    err = capsys.readouterr().err
    assert f"{d / 'config.json'} is damaged" in err
    no_traceback(err)
    assert load_runs(tmp_path / "logs") == []
    assert "run left out" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ 6. full disk


def test_a_full_disk_says_where_and_how_to_continue(tmp_path, capsys, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with monkeypatch.context() as m:
        real = ck.atomic_write_bytes
        calls = []

        def second_fails(path, data):
            calls.append(path)
            return full(path, data) if len(calls) == 2 else real(path, data)

        m.setattr(ck, "atomic_write_bytes", second_fails)
        assert run(tmp_path / "logs", epochs=3) == 1
    err = capsys.readouterr().err
    d = run_dir(tmp_path / "logs")
    assert "the disk is full" in err and str(d / ck.LATEST) in err
    assert "free space and rerun with --resume" in err
    no_traceback(err)
    assert not (d / RESULT_FILE).exists()
    assert run(tmp_path / "logs", "--resume", epochs=3) == 0
    assert [r["epoch"] for r in read_metrics(d)] == [1, 2, 3]


# ------------------------------------------------------------------------------------ 9. divergence


def test_a_finite_explosion_is_diverged_with_the_reason(tmp_path, capsys):
    """SGD at lr 1 blows the loss up to ~1e24 in two steps, finite: diverged by the factor rule."""
    logs = tmp_path / "logs"
    assert run(logs, "--optim-method", "SGD", "--eta0", "1", epochs=3) == 1
    (r,) = load_runs(logs)
    assert r.status == "diverged" and r.test_error == 1.1
    div = r.result["divergence"]
    assert div["reason"] == "factor" and div["factor"] == 1000.0
    assert math.isfinite(div["loss"]) and div["loss"] > 1000 * div["reference_loss"]
    assert "exceeds --divergence-factor 1000" in r.result["message"]
    assert "diverged" in capsys.readouterr().out


def test_the_divergence_factor_is_part_of_the_name_only_when_changed(tmp_path):
    base = config(tmp_path)
    assert "DivFactor" not in base.run_name()  # existing run directories keep their names
    assert (
        base.replace(divergence_factor=5.0).run_name().endswith("_DivFactor_5_Synthetic_64_32_Test")
    )
