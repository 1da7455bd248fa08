"""The summary model: its rules alone, and the same answers through the sweep and the tables.

The second half is the point of :mod:`scalefree.rundir.summary`: one set of run directories on
disk, read once the way the sweep reads them (``result_table`` -> ``boundary_extension``) and once
the way the tables read them (``load_runs`` -> ``summarize``), must give the same seed means, the
same best point and the same edges, including ties and all-diverged cells; with missing seeds the
two readings differ in the one named way (``mean_when_complete`` vs ``mean_of_finished``).
"""

from __future__ import annotations

import math

import pytest

from scalefree.plots.tables import summarize
from scalefree.rundir import DIVERGED_ERROR, load_runs
from scalefree.rundir.summary import (
    Edge,
    PointError,
    below_divergence,
    best_point,
    extendable_edges,
    mean_of_finished,
    mean_when_complete,
    run_error,
    seed_mean,
    seed_std,
)
from scalefree.sweep.grid import boundary_extension, make_sweep, missing_points
from scalefree.sweep.runner import result_table
from scalefree.train.config import RunConfig
from tests.fakeruns import make_run

# ------------------------------------------------------------------------------------ the rules


def test_run_error_charges_diverged_and_failed_and_has_none_while_unfinished():
    assert run_error({"status": "completed", "test_error": 0.25}) == 0.25
    assert run_error({"status": "diverged", "test_error": None}) == DIVERGED_ERROR
    assert run_error({"status": "failed", "test_error": DIVERGED_ERROR}) == DIVERGED_ERROR
    assert run_error(None) is None


def test_the_two_readings_of_unfinished_seeds():
    assert mean_of_finished([0.2, None, 0.4]) == pytest.approx(0.3)  # tables: what finished
    assert mean_when_complete([0.2, None, 0.4]) is None  # extension: waits for every seed
    assert mean_when_complete([0.2, 0.3, 0.4]) == pytest.approx(mean_of_finished([0.2, 0.3, 0.4]))
    assert math.isnan(mean_of_finished([None])) and mean_when_complete([]) is None
    assert math.isnan(seed_mean([])) and math.isnan(seed_std([0.3]))
    assert seed_std([0.1, 0.3]) == pytest.approx(math.sqrt(0.02))  # ddof = 1


def test_best_point_tie_breaks_more_seeds_then_smaller_eta0_then_smaller_weight_decay():
    a = PointError(1e-3, 1e-4, 0.1, 2)
    fewer = PointError(1e-4, 0.0, 0.1, 1)
    assert best_point([fewer, a]) is a  # more evidence wins a tie
    b = PointError(1e-4, 1e-3, 0.1, 2)
    assert best_point([a, b]) is b  # smaller eta0
    c = PointError(1e-4, 1e-4, 0.1, 2)
    assert best_point([a, b, c]) is c  # same eta0: smaller weight decay
    assert best_point([a, PointError(5e-3, 1e-3, 0.09, 1)]).mean == 0.09  # lower mean first


def test_diverged_nan_and_empty_points_are_never_best():
    assert best_point([PointError(1e-3, 0.0, DIVERGED_ERROR, 2)]) is None
    assert best_point([PointError(1e-3, 0.0, math.nan, 2)]) is None
    assert best_point([PointError(1e-3, 0.0, 0.1, 0)]) is None
    assert best_point([]) is None


@pytest.mark.parametrize(
    ("point", "eta0s", "wds", "labels"),
    [
        ((1e-3, 1e-4), (1e-4, 1e-3, 1e-2), (0.0, 1e-4, 1e-3), ()),
        ((1e-2, 1e-3), (1e-4, 1e-3, 1e-2), (0.0, 1e-4, 1e-3), ("largest eta0", "largest weight decay")),
        ((1e-4, 0.0), (1e-4, 1e-3, 1e-2), (0.0, 1e-4, 1e-3), ("smallest eta0",)),  # 0 is no edge
        ((1e-3, 1e-5), (1e-4, 1e-3, 1e-2), (1e-5, 1e-4), ("smallest weight decay",)),
        ((1e-3, 1e-4), (1e-3,), (1e-4,), ()),  # single values are fixed choices, not edges
        ((1e-3 * (1 + 1e-12), 1e-4), (1e-4, 1e-3), (1e-4,), ("largest eta0",)),  # float noise
    ],
)  # fmt: skip
def test_extendable_edges(point, eta0s, wds, labels):
    edges = extendable_edges(point, eta0s, wds)
    assert tuple(e.label for e in edges) == labels
    for e in edges:
        values = eta0s if e.axis == "eta0" else wds
        assert e.value == (max(values) if e.up else min(values))
    assert Edge("eta0", False, 1e-4).label == "smallest eta0"


# ------------------------------------------------------------------- sweep path == tables path

ETA0S = (1e-4, 1e-3, 1e-2)
WDS = (0.0, 1e-4, 1e-3)
D, F, INC, ABSENT = "diverged", "failed", "incomplete", "absent"  # ABSENT: seed never started

# name: ({(eta0, wd): (seed 0, seed 1)} (points not listed: 0.3 each), expected best, edges)
SCENARIOS = {
    "interior": ({(1e-3, 1e-4): (0.1, 0.12)}, (1e-3, 1e-4), ()),
    "corner": ({(1e-2, 1e-3): (0.1, 0.1)}, (1e-2, 1e-3), ("largest eta0", "largest weight decay")),
    "tie -> smaller eta0": (
        {(1e-3, 1e-3): (0.1, 0.2), (1e-2, 1e-4): (0.1, 0.2)},
        (1e-3, 1e-3),
        ("largest weight decay",),
    ),
    "tie -> smaller weight decay": (
        {(1e-3, 1e-4): (0.15, 0.15), (1e-3, 1e-3): (0.15, 0.15)},
        (1e-3, 1e-4),
        (),
    ),
    "zero weight decay is no edge": ({(1e-3, 0.0): (0.05, 0.05)}, (1e-3, 0.0), ()),
    "diverged and failed count 1.1": (
        {
            (1e-4, 0.0): (0.01, D),
            (1e-3, 1e-4): (0.2, 0.2),
            (1e-2, 1e-3): (D, D),
            (1e-2, 0.0): (F, F),
        },
        (1e-3, 1e-4),
        (),
    ),
}


def _write(root, errors, eta0s=ETA0S, wds=WDS, seeds=(0, 1)):
    for e in eta0s:
        for w in wds:
            for seed, err in zip(seeds, errors.get((e, w), (0.3,) * len(seeds))):
                if err == ABSENT:
                    continue
                kw = {"status": err} if isinstance(err, str) else {"test_acc": 1.0 - err}
                make_run(root, optim_method="AdamW", eta0=e, weight_decay=w, seed=seed,
                         model="ResNet20", epochs=1, with_stats=False, **kw)  # fmt: skip


def _both_paths(root, eta0s=ETA0S, wds=WDS, seeds=(0, 1)):
    base = RunConfig(log_folder=str(root), model="ResNet20", batch_norm=False, train_epochs=1)
    sweep = make_sweep(base, ["AdamW"], eta0s, wds, seeds)
    table = result_table(sweep, "AdamW")
    (group,) = summarize(load_runs(root))
    return sweep, table, group.grids["AdamW"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sweep_and_tables_agree_on_mean_best_and_edges(tmp_path, name):
    errors, best, edges = SCENARIOS[name]
    _write(tmp_path, errors)
    sweep, table, grid = _both_paths(tmp_path)
    for point, mean in table.items():
        assert mean == grid.cell(*point).mean  # the same number, not just close
        expected = errors.get(point, (0.3, 0.3))
        assert mean == pytest.approx(sum(DIVERGED_ERROR if isinstance(x, str) else x
                                         for x in expected) / 2)  # fmt: skip
    ext = boundary_extension(table, sweep.axes["AdamW"])
    assert ext.best == best == (grid.best.eta0, grid.best.weight_decay)
    assert ext.edges == edges == tuple(e.label for e in grid.best_edges)
    assert bool(ext) == grid.best_on_boundary == bool(edges)


def test_an_all_diverged_method_has_no_best_and_no_edge_either_way(tmp_path):
    _write(tmp_path, dict.fromkeys(((e, w) for e in ETA0S for w in WDS), (D, F)))
    sweep, table, grid = _both_paths(tmp_path)
    assert set(table.values()) == {DIVERGED_ERROR}
    assert all(c.all_diverged and c.mean == DIVERGED_ERROR for c in grid.cells.values())
    assert not boundary_extension(table, sweep.axes["AdamW"]) and grid.best is None
    assert not grid.best_on_boundary and grid.best_edges == ()


def test_missing_seeds_tables_average_what_finished_the_sweep_waits(tmp_path):
    """A seed still running (INC) or never started (ABSENT) at the would-be best point."""
    errors = {(1e-2, 1e-3): (0.05, INC), (1e-2, 1e-4): (0.08, ABSENT), (1e-3, 1e-4): (0.1, 0.1)}
    _write(tmp_path, errors)
    sweep, table, grid = _both_paths(tmp_path)
    # The sweep: no mean until every seed finished, so it neither extends nor picks a best.
    assert table[(1e-2, 1e-3)] is None and table[(1e-2, 1e-4)] is None
    assert missing_points(table, sweep.axes["AdamW"]) == [(1e-2, 1e-4), (1e-2, 1e-3)]
    # The tables: the mean of the finished seed, with the running one counted beside it (a seed
    # that never started is unknown to them), and a best from what finished.
    running, never = grid.cell(1e-2, 1e-3), grid.cell(1e-2, 1e-4)
    assert (running.n, running.n_incomplete, running.mean) == (1, 1, pytest.approx(0.05))
    assert (never.n, never.n_incomplete, never.mean) == (1, 0, pytest.approx(0.08))
    assert (grid.best.eta0, grid.best.weight_decay) == (1e-2, 1e-3) and grid.best_on_boundary
    # Once the seeds finish, both readings are the same number again and agree on the best.
    _write(tmp_path, errors | {(1e-2, 1e-3): (0.05, 0.3), (1e-2, 1e-4): (0.08, 0.06)})
    sweep, table, grid = _both_paths(tmp_path)
    assert table[(1e-2, 1e-3)] == grid.cell(1e-2, 1e-3).mean == pytest.approx(0.175)
    ext = boundary_extension(table, sweep.axes["AdamW"])
    assert ext.best == (1e-2, 1e-4) == (grid.best.eta0, grid.best.weight_decay)
    assert ext.edges == ("largest eta0",) == tuple(e.label for e in grid.best_edges)


def test_a_tie_between_unequal_seed_counts_goes_to_more_seeds_in_the_tables(tmp_path):
    """Only the tables can see it: the sweep has no mean for the point with a seed missing."""
    _write(tmp_path, {(1e-4, 1e-4): (0.1, INC), (1e-3, 1e-4): (0.1, 0.1)})
    sweep, table, grid = _both_paths(tmp_path)
    assert grid.cell(1e-4, 1e-4).mean == grid.cell(1e-3, 1e-4).mean
    assert (grid.best.eta0, grid.best.n) == (1e-3, 2)  # not the smaller eta0: fewer seeds
    assert table[(1e-4, 1e-4)] is None
    assert missing_points(table, sweep.axes["AdamW"]) == [(1e-4, 1e-4)]


def test_below_divergence_is_the_one_test_of_a_real_error():
    assert below_divergence(0.2) and below_divergence(DIVERGED_ERROR - 1e-9)
    assert not below_divergence(DIVERGED_ERROR) and not below_divergence(math.nan)
    assert not below_divergence(math.inf)
