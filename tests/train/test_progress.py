"""What a run prints while it trains: its length, a time estimate, a note when stuck at chance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scalefree.cli import main
from scalefree.train import progress as progress_mod
from scalefree.train.progress import RunProgress, fmt_duration


def make(monkeypatch, *, batch_norm: bool = True, epochs: int = 300, spe: int = 100, start=0):
    config = SimpleNamespace(progress="plain", train_epochs=epochs, batch_norm=batch_norm)
    data = SimpleNamespace(num_classes=10, eval_images=[0] * 10_000)
    clock = [1000.0]
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: clock[0])
    p = RunProgress.for_run(config, data, epochs * spe, start, spe, True)
    return p, clock


def test_start_line_says_how_long_the_run_is(monkeypatch, capsys) -> None:
    make(monkeypatch)
    assert capsys.readouterr().out.splitlines() == [
        "training 300 epochs x 100 steps = 30000 optimizer steps; time estimate after the first "
        "steps"
    ]
    make(monkeypatch, start=250)
    assert "resuming at step 250, 29750 left" in capsys.readouterr().out


def test_estimate_after_the_first_steps_with_a_hint_for_long_runs(monkeypatch, capsys) -> None:
    p, clock = make(monkeypatch)
    capsys.readouterr()
    p.step(10, 2.3, 100.0)  # warm-up steps: not measured
    clock[0] += 30.0
    p.step(10, 2.2, 100.0)  # 10 steps in 30 s: 3 s per step
    out = capsys.readouterr().out
    assert "3 s per step: the 30000 steps take about 25.0 h" in out
    assert "--train-epochs is 300; pass a smaller --train-epochs" in out
    clock[0] += 30.0
    p.step(10, 2.1, 100.0)
    assert capsys.readouterr().out == ""  # once


def test_short_runs_get_no_hint(monkeypatch, capsys) -> None:
    p, clock = make(monkeypatch, epochs=2, spe=20)
    p.step(10, 2.3, 0.0)
    clock[0] += 5.0
    p.step(10, 2.2, 0.0)
    out = capsys.readouterr().out
    assert "0.5 s per step: the 40 steps take about 20 s" in out and "--train-epochs" not in out


@pytest.mark.parametrize(
    ("batch_norm", "acc", "expected"),
    [
        (False, 0.11, "expected for the first epochs of a deep net without batch norm"),
        (True, 0.11, "try a smaller --eta0"),
        (False, 0.45, None),
    ],
)
def test_note_when_still_at_chance(monkeypatch, capsys, batch_norm, acc, expected) -> None:
    p, clock = make(monkeypatch, batch_norm=batch_norm, epochs=3, spe=10)
    capsys.readouterr()
    p.step(10, 2.3, 0.0)
    p.evaluated(1, {"test_acc": acc})
    out = capsys.readouterr().out
    assert "epoch 1 took" in out
    if expected is None:
        assert "note:" not in out
        return
    assert f"note: test accuracy {acc:.3f} after epoch 1 is still at chance" in out
    assert expected in out
    p.evaluated(2, {"test_acc": acc})
    assert "note:" not in capsys.readouterr().out  # once per run


def test_nothing_shown_with_progress_none(monkeypatch, capsys) -> None:
    config = SimpleNamespace(progress="none", train_epochs=3, batch_norm=False)
    p = RunProgress.for_run(config, None, 30, 0, 10, True)
    p.step(30, 2.3, 0.0)
    p.evaluated(1, {"test_acc": 0.1})
    assert capsys.readouterr().out == ""


def test_fmt_duration() -> None:
    assert [fmt_duration(s) for s in (45, 600, 3 * 3600, 5 * 86400)] == [
        "45 s",
        "10 min",
        "3.0 h",
        "5.0 days",
    ]


def test_train_announces_its_length(tmp_path, capsys) -> None:
    argv = ["train", "--dataset", "synthetic", "--device", "cpu", "--batchsize", "512"]
    argv += ["--max-steps", "2", "--progress", "plain", "--log-folder", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "training 300 epochs x 5 steps = 1500 optimizer steps, stopping after 2" in out
