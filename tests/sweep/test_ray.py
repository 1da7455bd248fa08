"""The Ray executor on a local 2-CPU instance: two tiny real runs (Ray is heavy: one test only)."""

from __future__ import annotations

import pytest

from scalefree.rundir import load_runs
from tests.sweep.conftest import sweep

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_runs_two_tiny_runs(tmp_path, capsys):
    folder = tmp_path / "logs"
    assert sweep(folder, "--executor", "ray", "--ray-num-cpus", "2") == 0
    runs = load_runs(folder)
    assert sorted(r.status for r in runs) == ["completed", "completed"]
    assert "executor ray" in capsys.readouterr().out
    import ray

    assert not ray.is_initialized()  # the instance it started is shut down again
