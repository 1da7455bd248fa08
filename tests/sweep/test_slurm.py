"""The Slurm executor through submitit's own local cluster (a job array of two tiny runs)."""

from __future__ import annotations

import pytest

from scalefree.rundir import load_runs
from tests.sweep.conftest import sweep

pytest.importorskip("submitit")


@pytest.mark.slow
def test_submitit_job_array_runs_two_tiny_runs(tmp_path, capsys):
    folder = tmp_path / "logs"
    slurm = ["--executor", "slurm", "--slurm-cluster", "local", "--slurm-poll-s", "0.2"]
    assert sweep(folder, *slurm, "--slurm-time", "10") == 0
    runs = load_runs(folder)  # submitit's own files (folder/slurm) hold no run
    assert sorted(r.status for r in runs) == ["completed", "completed"]
    out = capsys.readouterr().out
    assert "executor slurm" in out and out.count("] completed") == 2
    assert list((folder / "slurm").glob("*_submitted.pkl"))  # submitted through submitit

    # Relaunching finds both finished: nothing is submitted again.
    assert sweep(folder, *slurm) == 0
    assert "skipped 2 already finished" in capsys.readouterr().out
