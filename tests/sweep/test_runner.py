"""The sweep loop without training: a fake executor writes fake finished runs (tests.fakeruns)."""

from __future__ import annotations

import io
import math

import pytest

from scalefree.rundir import load_runs
from scalefree.sweep.grid import Axes, make_sweep
from scalefree.sweep.runner import run_sweeps
from scalefree.train.config import RunConfig
from tests.fakeruns import make_run
from tests.sweep.conftest import FakeExecutor


def bowl(best_eta0: float, best_wd: float):
    """Error grows with the distance (in decades) from (best_eta0, best_wd); wd 0 counts as 1e-6."""

    def error(method, eta0, wd, seed):
        d = abs(math.log10(eta0 / best_eta0)) + abs(math.log10(max(wd, 1e-6) / best_wd))
        return min(0.1 + 0.05 * d, 0.9)

    return error


def run(sweeps, executor, **kw):
    out = io.StringIO()
    report = run_sweeps(sweeps, executor, out=out, err=out, **kw)
    return report, out.getvalue()


@pytest.fixture
def base(tmp_path) -> RunConfig:
    return RunConfig(log_folder=str(tmp_path), model="ResNet20", batch_norm=False, train_epochs=3)


def test_extension_rounds_follow_the_best_point_until_it_is_interior(base, tmp_path):
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [0.0, 1e-4, 1e-3], [0])
    ex = FakeExecutor(bowl(5e-3, 1e-4))  # optimum beyond the largest eta0
    report, text = run([sweep], ex, extend_boundary=True, max_extensions=5)
    # Round 1 adds eta0 5e-3 (best still on the edge), round 2 adds 1e-2; then 5e-3 is interior.
    assert report.rounds == 2
    assert report.sweeps[0].axes["AdamW"] == Axes((1e-4, 1e-3, 5e-3, 1e-2), (0.0, 1e-4, 1e-3))
    assert len(ex.dispatched) == 6 + 3 + 3
    assert len({c.run_name() for c in ex.dispatched}) == 12  # nothing ran twice
    assert "adding eta0 0.005 (3 runs)" in text and "adding eta0 0.01 (3 runs)" in text
    assert report.exit_code == 0 and not report.notes
    # The summary tables cover every run, extensions included.
    assert (tmp_path / "summary.csv").exists() and (tmp_path / "summary.md").exists()
    assert "0.01" in (tmp_path / "summary.md").read_text()


def test_extension_grows_both_axes_at_a_corner_and_never_below_weight_decay_zero(base):
    sweep = make_sweep(base, ["AdamL2", "AdamW"], [1e-4, 1e-3], [0.0, 1e-4], [0])
    ex = FakeExecutor(
        lambda m, e, w, s: (
            bowl(1e-3, 1e-3)(m, e, w, s) if m == "AdamL2" else bowl(1e-5, 1e-6)(m, e, w, s)
        )
    )
    report, _ = run([sweep], ex, extend_boundary=True, max_extensions=1)
    # AdamL2: best (1e-3, 1e-4) is the largest eta0 and largest wd -> new row, column and corner.
    assert report.sweeps[0].axes["AdamL2"] == Axes((1e-4, 1e-3, 5e-3), (0.0, 1e-4, 5e-4))
    # AdamW: best (1e-4, 0) -> smaller eta0 only; weight decay 0 is not extended below.
    assert report.sweeps[0].axes["AdamW"] == Axes((5e-5, 1e-4, 1e-3), (0.0, 1e-4))
    assert len(ex.dispatched) == 8 + 5 + 2
    # One round was allowed and both methods are still on an edge: the report says so.
    assert len(report.notes) == 2 and all("--max-extensions" in n for n in report.notes)


def test_no_extension_without_the_flag_or_with_unfinished_points(base, tmp_path):
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [0.0, 1e-4], [0])
    report, _ = run([sweep], FakeExecutor(bowl(1e-2, 1e-4)))
    assert report.rounds == 0 and len(report.results) == 4

    # A point whose run another launch is still training holds the extension back.
    sweep2 = make_sweep(base, ["AdamW"], [1e-3, 5e-3], [0.0, 1e-4], [0])
    make_run(tmp_path, optim_method="AdamW", eta0=5e-3, weight_decay=0.0, model="ResNet20",
             epochs=3, status="incomplete", with_stats=False)  # fmt: skip
    from scalefree.sweep.locking import RunLock

    lock = RunLock(tmp_path / base.replace(eta0=5e-3, weight_decay=0.0).run_name())
    assert lock.acquire()
    try:
        report, text = run([sweep2], FakeExecutor(bowl(1e-2, 1e-4)), extend_boundary=True)
    finally:
        lock.release()
    assert report.count("running_elsewhere") == 1
    assert report.rounds == 0
    assert any("not extended, 1 of 4 points have no result yet" in n for n in report.notes)


def test_rerun_skips_finished_runs_and_counts_them(base):
    sweep = make_sweep(base, ["AdamL2", "AdamW"], [1e-4, 1e-3], [0.0], [0, 1])
    ex = FakeExecutor(lambda m, e, w, s: "diverged" if e == 1e-3 and m == "AdamL2" else 0.2)
    first, _ = run([sweep], ex)
    assert len(ex.dispatched) == 8 and first.count("diverged") == 2
    ex2 = FakeExecutor(bowl(1e-3, 1e-4))
    second, text = run([sweep], ex2)
    assert ex2.dispatched == []
    assert second.count("skipped") == 8
    assert "skipped 8 already finished (6 completed, 2 diverged)" in text


def test_failed_runs_are_skipped_unless_retry_failed(base):
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [0.0], [0])
    first, _ = run([sweep], FakeExecutor(lambda m, e, w, s: "failed" if e == 1e-3 else 0.2))
    assert first.count("failed") == 1 and first.exit_code == 1
    ex = FakeExecutor(lambda m, e, w, s: 0.25)
    again, _ = run([sweep], ex)
    assert ex.dispatched == [] and again.count("skipped") == 2 and again.exit_code == 0
    retried, _ = run([sweep], ex, retry_failed=True)
    assert [c.eta0 for c in ex.dispatched] == [1e-3]  # only the failed run, not the completed one


def test_several_sweeps_share_one_launch_and_one_summary(base, tmp_path):
    sweeps = [
        make_sweep(base, ["AdamW"], [1e-3], [0.0], [0]),
        make_sweep(base.replace(model="ResNet32"), ["AdamW"], [1e-3], [0.0], [0]),
        make_sweep(base, ["AdamW"], [1e-3], [0.0], [0]),  # a duplicate is run once
    ]
    ex = FakeExecutor(lambda *a: 0.3)
    report, _ = run(sweeps, ex)
    assert len(ex.dispatched) == 2 and len(report.planned) == 2
    assert {r.get("model") for r in load_runs(tmp_path)} == {"ResNet20", "ResNet32"}
    assert str(tmp_path) in report.summaries


def test_dry_run_lists_names_and_runs_nothing(base, tmp_path):
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [0.0, 1e-4], [0])
    make_run(tmp_path, optim_method="AdamW", eta0=1e-4, weight_decay=0.0, model="ResNet20",
             epochs=3, with_stats=False)  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    ex = FakeExecutor(lambda *a: 0.3)
    report = run_sweeps([sweep], ex, dry_run=True, out=out, err=err)
    lines = out.getvalue().splitlines()
    assert ex.dispatched == [] and len(lines) == 4
    assert sorted(line.split()[0] for line in lines) == sorted(
        c.run_name() for c in sweep.configs()
    )
    assert sum(line.endswith("# completed") for line in lines) == 1
    assert "4 runs, 3 to run, 1 finished" in err.getvalue()
    assert not (tmp_path / "summary.csv").exists() and report.exit_code == 0


def test_best_seeds_rerun_each_methods_best_grid_point(base):
    """--best-seeds: after the grid, each method's best point (chosen on the grid's seed) again
    with the seeds it lacks; the other points keep their one seed."""
    sweep = make_sweep(base, ["AdamL2", "AdamW"], [1e-4, 1e-3, 1e-2], [1e-5, 1e-4, 1e-3], [0])
    ex = FakeExecutor(bowl(1e-3, 1e-4))  # an interior optimum for both methods
    report, text = run([sweep], ex, extend_boundary=True, max_extensions=2, best_seeds=(0, 1, 2))
    assert report.rounds == 0
    extra = ex.dispatched[18:]
    assert len(ex.dispatched) == 18 + 4
    assert {(c.optim_method, c.eta0, c.weight_decay, c.seed) for c in extra} == {
        (m, 1e-3, 1e-4, s) for m in ("AdamL2", "AdamW") for s in (1, 2)
    }
    assert "runs of the best points with more seeds" in text
    assert not report.notes


def test_best_seeds_at_an_edge_the_extension_budget_did_not_pass(base):
    """The optimum lies beyond the grid and no extension round is allowed: the edge point is
    reseeded all the same, and a note says the extension budget ran out."""
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [1e-4], [0])
    ex = FakeExecutor(bowl(1e-2, 1e-4))
    report, _ = run([sweep], ex, extend_boundary=True, max_extensions=0, best_seeds=(0, 1))
    assert [(c.eta0, c.seed) for c in ex.dispatched[2:]] == [(1e-3, 1)]
    assert any("reseeded on the grid's edge" in n for n in report.notes)


def test_best_seeds_wait_for_an_unfinished_grid(base, tmp_path):
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [1e-4], [0])
    make_run(tmp_path, optim_method="AdamW", eta0=1e-3, weight_decay=1e-4, model="ResNet20",
             epochs=3, status="incomplete", with_stats=False)  # fmt: skip
    from scalefree.sweep.locking import RunLock

    lock = RunLock(
        tmp_path / base.replace(optim_method="AdamW", eta0=1e-3, weight_decay=1e-4).run_name()
    )
    assert lock.acquire()  # another launch is still training that grid point
    try:
        ex = FakeExecutor(bowl(1e-3, 1e-4))
        report, _ = run([sweep], ex, best_seeds=(0, 1))
    finally:
        lock.release()
    assert [c.seed for c in ex.dispatched] == [0]
    assert any("not reseeded, its grid is unfinished" in n for n in report.notes)
