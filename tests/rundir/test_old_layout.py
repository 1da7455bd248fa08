"""Run directories written before the rundir package (commit 7d8a3ca) are still found and read.

The fixture ``tests/rundir/data/layout_7d8a3ca`` holds four finished runs as that commit wrote them
(see its README). A sweep over the same settings must find every one finished (same run names,
result.json read), and ``plot`` and ``report`` must read them, statistics included.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.rundir import load_runs, stats_files

OLD = Path(__file__).parent / "data" / "layout_7d8a3ca"
# The sweep that made them, less --synthetic-sizes (a dry run loads no data).
SWEEP = [
    "sweep", "--dataset", "synthetic", "--model", "ResNet20",
    "--optim-methods", "AdamL2", "AdamW", "--eta0-vals", "1e-3", "1e-2",
    "--weight-decay-vals", "1e-4", "--seeds", "0", "--train-epochs", "1", "--max-steps", "2",
    "--batchsize", "8", "--store-stats", "--store-stats-interval", "1", "--device", "cpu",
]  # fmt: skip


@pytest.fixture
def old_runs(tmp_path: Path) -> Path:
    """A copy (the tests must not touch the evidence)."""
    folder = tmp_path / "runs"
    shutil.copytree(OLD, folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_a_sweep_over_the_same_settings_finds_every_old_run_finished(old_runs, capsys):
    before = sorted(p.relative_to(old_runs) for p in old_runs.rglob("*"))
    assert main([*SWEEP, "--log-folder", str(old_runs), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{name}  # completed" for name in _names(old_runs)]
    assert "4 runs: 0 to run, 4 already finished" in err
    assert sorted(p.relative_to(old_runs) for p in old_runs.rglob("*")) == before  # nothing written


def test_the_readers_read_every_old_file(old_runs):
    runs = load_runs(old_runs)
    assert len(runs) == 4 and {r.status for r in runs} == {"completed"}
    assert [r.test_error for r in runs] == pytest.approx([0.875] * 4)
    assert all(len(r.metrics) == 1 and r.metrics[0]["step"] == 2 for r in runs)
    with_stats = [r for r in runs if stats_files(r.path)]
    assert {r.get("eta0") for r in with_stats} == {1e-3} and len(with_stats) == 2


@pytest.mark.parametrize("kind", ["heatmap", "curves", "histogram"])
def test_plot_reads_the_old_runs(old_runs, tmp_path, capsys, kind):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(old_runs), "--out", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out)]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_reads_the_old_runs(old_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(old_runs), "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "4 runs: 4 completed." in summary
    for method in ("AdamL2", "AdamW"):
        assert f"| {method} | 0.001 | 0.0001 | 0.8750 | 1 |" in summary
