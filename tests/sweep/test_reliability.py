"""Sweeps and hostile or damaged run files; nothing left running (issue 10, items 1, 5, 8).

Signals are sent to real processes: a `scalefree sweep` launcher with two spawned workers, each
training a tiny run (32 synthetic images, one step per epoch, 6 epochs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalefree.rundir import CHECKPOINT_FILE, CONFIG_FILE, RESULT_FILE
from scalefree.rundir.write import finished_result
from scalefree.train.checkpoint import LATEST
from tests.reliability.forge import forge_checkpoint
from tests.sweep.conftest import TINY_FLAGS, grid_run_dirs, result_mtimes, sweep

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------ damaged files


def test_a_forged_checkpoint_runs_nothing_on_a_sweep_rerun(sweep_copy, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    done, forged = grid_run_dirs(sweep_copy)
    (forged / RESULT_FILE).unlink()  # killed after its last checkpoint: the rerun resumes it
    forge_checkpoint(forged / LATEST, marker)
    assert sweep(sweep_copy) == 2
    out = capsys.readouterr().out
    assert not marker.exists()
    assert "error" in out and "objects other than tensors" in out and forged.name in out
    assert finished_result(forged) is None and finished_result(done)["status"] == "completed"


@pytest.mark.parametrize("content", ["truncated", "[]"])
def test_a_damaged_result_json_is_set_aside_and_the_run_resumed(sweep_copy, capfd, content):
    done, damaged = grid_run_dirs(sweep_copy)
    text = (damaged / RESULT_FILE).read_text()
    bad = text[: len(text) // 2] if content == "truncated" else content
    (damaged / RESULT_FILE).write_text(bad)
    before = result_mtimes(sweep_copy)
    assert sweep(sweep_copy) == 0
    out, err = capfd.readouterr()
    assert "2 runs: 1 to run, 1 already finished" in out
    assert f"{damaged / RESULT_FILE}: " in err and "treated as unfinished" in err
    (kept,) = damaged.glob(f"{RESULT_FILE}.damaged-*")
    assert kept.read_text() == bad
    assert finished_result(damaged)["status"] == "completed"
    assert result_mtimes(sweep_copy)[done.name] == before[done.name]


def test_a_truncated_config_json_leaves_the_run_out_of_the_summary(sweep_copy, capfd):
    done, damaged = grid_run_dirs(sweep_copy)
    (damaged / CONFIG_FILE).write_text('{"optim_method": "Ad')
    assert sweep(sweep_copy) == 0  # finished runs are skipped by their result.json
    out, err = capfd.readouterr()
    assert f"{damaged / CONFIG_FILE}: not valid JSON" in err and "run left out" in err
    assert "summary of 1 runs" in out


# ------------------------------------------------------------------------------------ signals

LONG = list(TINY_FLAGS)
LONG[LONG.index("--train-epochs") + 1] = "6"
LONG[LONG.index("--synthetic-sizes") + 1 : LONG.index("--synthetic-sizes") + 3] = ["32", "32"]
del LONG[LONG.index("--max-steps") : LONG.index("--max-steps") + 2]
GRID = ["--optim-methods", "AdamW", "--eta0-vals", "1e-3", "--weight-decay-vals", "0", "5e-4"]


def _launch(folder: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "scalefree", "sweep", *LONG, *GRID, "--workers", "2"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    return subprocess.Popen(
        [*cmd, "--log-folder", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its new parent, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _training_workers(proc: subprocess.Popen, folder: Path) -> list[int]:
    """Wait until both runs have a checkpoint; the launcher's worker processes then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(folder.glob(f"*/{CHECKPOINT_FILE}"))) == 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[0]
    workers = [p for p in _children(proc.pid) if "spawn" in _cmdline(p)]
    assert len(workers) == 2, [_cmdline(p) for p in _children(proc.pid)]
    return workers


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_to_a_sweep_stops_every_worker_and_a_rerun_resumes_both(tmp_path):
    folder = tmp_path / "logs"
    proc = _launch(folder)
    try:
        workers = _training_workers(proc, folder)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, out
    assert "stopped by SIGTERM" in out and "Traceback" not in out, out
    assert _wait_gone(workers, 5) == []
    runs = [d for d in folder.iterdir() if (d / CONFIG_FILE).exists()]
    interrupted_not_failed = all(finished_result(d) is None for d in runs)
    assert len(runs) == 2 and interrupted_not_failed

    again = _launch(folder)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert "2 runs: 2 to run" in out and out.count("resuming ") == 2, out
    assert all(finished_result(d)["status"] == "completed" for d in runs)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_exit_when_the_sweep_launcher_is_killed(tmp_path):
    folder = tmp_path / "logs"
    proc = _launch(folder)
    try:
        workers = _training_workers(proc, folder)
        proc.send_signal(signal.SIGKILL)  # no handler runs in the launcher
        proc.wait(timeout=10)
        assert _wait_gone(workers, 10) == [], "workers outlived their launcher"
    finally:
        proc.kill()
        for pid in _children(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert not any((d / RESULT_FILE).exists() for d in folder.iterdir())
