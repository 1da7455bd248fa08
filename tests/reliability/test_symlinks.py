"""Symlinks planted in a shared log folder: a run never writes through a link it did not create.

Anyone who can write to a shared log folder can create the run directory of a run someone else is
about to start (names are deterministic) and put links in it. Every file a run writes is opened so
that a symlink is refused (scalefree.io); the run stops with exit 2, one line naming the file, and
the link's target is untouched. Symlinked log and run folders chosen by the user stay allowed.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.io import (
    SymlinkRefused,
    atomic_write_text,
    copy_file,
    open_append,
    refuse_symlinks_in,
)
from scalefree.locking import RunLock
from scalefree.rundir import RESULT_FILE, run_dir_of
from scalefree.rundir.write import append_metrics
from scalefree.train import checkpoint as ck
from tests.reliability.test_files_are_data import config, run

VICTIM = "precious file\n"


def victim(tmp_path: Path) -> Path:
    target = tmp_path / "victim.txt"
    target.write_text(VICTIM)
    return target


@pytest.mark.parametrize(
    "name", ["metrics.jsonl", ".lock", ck.LATEST, ck.PREVIOUS, RESULT_FILE, "config.json"]
)
def test_planted_link_to_a_file_is_refused_and_nothing_written(tmp_path, capsys, name):
    logs, target = tmp_path / "logs", victim(tmp_path)
    d = run_dir_of(config(logs))
    d.mkdir(parents=True)
    (d / name).symlink_to(target)
    assert run(logs, *(["--resume"] if name.startswith("checkpoint") else [])) == 2
    err = capsys.readouterr().err
    assert name in err and "symbolic link" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert target.read_text() == VICTIM
    assert sorted(p.name for p in d.iterdir()) == [name]  # nothing else written


def test_dangling_lock_link_creates_nothing(tmp_path, capsys):
    logs = tmp_path / "logs"
    d = run_dir_of(config(logs))
    d.mkdir(parents=True)
    (d / ".lock").symlink_to(tmp_path / "created-by-the-link")
    assert run(logs) == 2
    assert ".lock" in capsys.readouterr().err
    assert not (tmp_path / "created-by-the-link").exists()


def test_link_in_the_stats_folder_is_refused(tmp_path, capsys):
    logs, target = tmp_path / "logs", victim(tmp_path)
    d = run_dir_of(config(logs))
    (d / "stats").mkdir(parents=True)
    (d / "stats" / "epoch_0001.npz").symlink_to(target)
    assert run(logs, "--store-stats") == 2
    assert "epoch_0001.npz" in capsys.readouterr().err
    assert target.read_text() == VICTIM


def test_links_planted_after_the_start_are_refused_at_the_write(tmp_path):
    """The check at the start is not the only one: every write refuses a link (O_NOFOLLOW)."""
    target = victim(tmp_path)
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.jsonl").symlink_to(target)
    with pytest.raises(SymlinkRefused, match="metrics.jsonl"):
        append_metrics(d, {"epoch": 1})
    with pytest.raises(SymlinkRefused):
        open_append(d / "metrics.jsonl")
    (d / ck.LATEST).symlink_to(target)
    with pytest.raises(SymlinkRefused, match=ck.LATEST):
        ck.save_checkpoint(d, {"epoch": 1})
    (d / "out.html").symlink_to(target)
    with pytest.raises(SymlinkRefused, match="out.html"):
        atomic_write_text(d / "out.html", "x")
    (d / "metrics.jsonl.bak-1").symlink_to(target)
    (d / "real.txt").write_text("real\n")
    with pytest.raises(SymlinkRefused, match="bak-1"):
        copy_file(d / "real.txt", d / "metrics.jsonl.bak-1")
    (d / ".lock").symlink_to(target)
    with pytest.raises(SymlinkRefused, match=".lock"):
        RunLock(d).acquire(timeout=0)
    assert target.read_text() == VICTIM
    with pytest.raises(SymlinkRefused):
        refuse_symlinks_in(d)


def test_symlinked_log_and_run_folders_chosen_by_the_user_work(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    logs = tmp_path / "logs"
    logs.symlink_to(scratch, target_is_directory=True)
    assert run(logs) == 0
    d = run_dir_of(config(logs))
    assert (scratch / d.name / RESULT_FILE).exists()
    # a run folder that is itself a link (to scratch space) also works
    logs2, real = tmp_path / "logs2", tmp_path / "real-run"
    real.mkdir()
    d2 = run_dir_of(config(logs2))
    logs2.mkdir()
    d2.symlink_to(real, target_is_directory=True)
    assert run(logs2) == 0 and (real / RESULT_FILE).exists()


def test_sweep_refuses_a_planted_link_in_one_run_and_runs_the_other(tmp_path, capsys):
    from tests.sweep.conftest import grid_run_dirs, sweep

    target, logs = victim(tmp_path), tmp_path / "logs"
    planted, other = grid_run_dirs(logs)
    planted.mkdir(parents=True)
    (planted / "metrics.jsonl").symlink_to(target)
    code = sweep(logs, "--workers", "1")
    out = capsys.readouterr()
    assert code != 0 and "symbolic link" in out.out + out.err
    assert target.read_text() == VICTIM
    assert sorted(p.name for p in planted.iterdir()) == ["metrics.jsonl"]
    assert (other / RESULT_FILE).is_file()  # the other run of the sweep still ran


# ------------------------------------------------------------- every other file the program writes


def test_planted_initial_weights_link_is_neither_read_nor_written(tmp_path, capsys):
    from scalefree.train.trainer import initial_weights_path

    logs, target = tmp_path / "logs", victim(tmp_path)
    path = initial_weights_path(config(logs))
    path.parent.mkdir(parents=True)
    for planted in (target, tmp_path / "created-by-the-link"):
        path.unlink(missing_ok=True)
        path.symlink_to(planted)
        assert run(logs) == 2
        err = capsys.readouterr().err
        assert "InitSeed" in err and "symbolic link" in err and len(err.splitlines()) == 1
        assert sorted(p.name for p in logs.iterdir()) == ["initial_weights"]  # no run folder
    assert target.read_text() == VICTIM and not (tmp_path / "created-by-the-link").exists()


def test_a_planted_stats_folder_link_is_refused(tmp_path, capsys):
    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    elsewhere.mkdir()
    d = run_dir_of(config(logs))
    d.mkdir(parents=True)
    (d / "stats").symlink_to(elsewhere, target_is_directory=True)
    assert run(logs, "--store-stats") == 2
    assert "stats" in capsys.readouterr().err and not any(elsewhere.iterdir())


def test_setting_a_damaged_file_aside_never_lands_on_a_planted_link(tmp_path, monkeypatch):
    from scalefree.rundir import read

    target = victim(tmp_path)
    monkeypatch.setattr(read.time, "strftime", lambda *a: "20260101T000000")
    (tmp_path / "result.json").write_text("{trunc")
    (tmp_path / "result.json.damaged-20260101T000000").symlink_to(tmp_path / "nowhere")
    kept = read.set_aside(tmp_path / "result.json")
    assert kept.name == "result.json.damaged-20260101T000000-1" and kept.read_text() == "{trunc"
    assert (tmp_path / "result.json.damaged-20260101T000000").is_symlink()  # left alone
    assert target.read_text() == VICTIM


def _fake_logs(root: Path) -> Path:
    from tests.fakeruns import make_grid

    make_grid(root, ["AdamW"], [1e-3], [0.0], [0], lambda *a: 0.1, epochs=2, with_stats=False)
    return root


@pytest.mark.parametrize(
    "name", ["report.html", "summary.csv", "figures/CIFAR10_ResNet20_NoBN_curves.png"]
)
def test_report_outputs_refuse_a_planted_link_and_change_nothing(tmp_path, capsys, name):
    from tests.sweep.conftest import result_mtimes

    logs, target = _fake_logs(tmp_path / "logs"), victim(tmp_path)
    out = logs / "report"
    (out / name).parent.mkdir(parents=True)
    (out / name).symlink_to(target)
    before = result_mtimes(logs)
    assert main(["report", str(logs)]) == 2
    err = capsys.readouterr().err
    assert f"{out / name} is a symbolic link" in err and len(err.splitlines()) == 1
    assert target.read_text() == VICTIM and result_mtimes(logs) == before
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()) == [name]


def test_plot_refuses_a_planted_output_link(tmp_path, capsys):
    logs, target = _fake_logs(tmp_path / "logs"), victim(tmp_path)
    (tmp_path / "h.png").symlink_to(target)
    assert main(["plot", "heatmap", str(logs), "--out", str(tmp_path / "h.png")]) == 2
    assert "h.png is a symbolic link" in capsys.readouterr().err
    assert target.read_text() == VICTIM


def test_the_sweeps_summary_tables_refuse_a_planted_link(tmp_path):
    from scalefree.sweep.grid import make_sweep
    from scalefree.sweep.runner import run_sweeps
    from scalefree.train.config import RunConfig
    from tests.sweep.conftest import FakeExecutor

    logs, target = tmp_path / "logs", victim(tmp_path)
    logs.mkdir()
    (logs / "best.csv").symlink_to(target)
    base = RunConfig(log_folder=str(logs), model="ResNet20", batch_norm=False, train_epochs=2)
    sweep = make_sweep(base, ["AdamW"], [1e-3], [0.0, 1e-4], [0])
    with pytest.raises(SymlinkRefused, match="best.csv"):
        run_sweeps([sweep], FakeExecutor(lambda *a: 0.1), out=io.StringIO(), err=io.StringIO())
    assert target.read_text() == VICTIM
