"""Symlinks planted in a shared log folder: a run never writes through a link it did not create.

Anyone who can write to a shared log folder can create the run directory of a run someone else is
about to start (names are deterministic) and put links in it. Every file a run writes is opened so
that a symlink is refused (scalefree.io); the run stops with exit 2, one line naming the file, and
the link's target is untouched. Symlinked log and run folders chosen by the user stay allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
