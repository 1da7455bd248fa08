"""Summary tables: seed means, divergence at 1.1, incomplete runs, best settings, grouping."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from scalefree.plots.tables import group_runs, summarize, write_summary
from scalefree.rundir import DIVERGED_ERROR, load_runs
from tests.fakeruns import make_run
from tests.plots.conftest import BASE, ETA0S, SEED_STEP, WDS


@pytest.fixture(scope="module")
def summary(sweep: Path):
    (s,) = summarize(load_runs(sweep))
    return s


def test_one_group_with_both_methods(summary) -> None:
    assert summary.key.label == "CIFAR10 ResNet20 (no BN)"
    assert summary.key.slug == "CIFAR10_ResNet20_NoBN"
    assert summary.methods == ("AdamL2", "AdamW")
    for g in summary.grids.values():
        assert g.eta0s == ETA0S and g.weight_decays == WDS


def test_mean_and_std_over_seeds(summary) -> None:
    c = summary.grids["AdamL2"].cell(1e-3, 1e-4)
    assert c.n == 2 and c.seeds == (0, 1)
    assert c.mean == pytest.approx(0.12 + SEED_STEP / 2)
    assert c.std == pytest.approx(SEED_STEP / math.sqrt(2))  # sample std (ddof=1)


def test_diverged_counts_as_1_1(summary) -> None:
    all_div = summary.grids["AdamL2"].cell(1e-2, 1e-3)
    assert all_div.n == 2 and all_div.n_diverged == 2 and all_div.all_diverged
    assert all_div.mean == pytest.approx(DIVERGED_ERROR)
    partial = summary.grids["AdamW"].cell(1e-2, 0.0)
    assert partial.n_diverged == 1 and not partial.all_diverged
    assert partial.mean == pytest.approx((BASE["AdamW"][(1e-2, 0.0)] + DIVERGED_ERROR) / 2)


def test_incomplete_excluded_and_counted(summary) -> None:
    c = summary.grids["AdamW"].cell(1e-4, 1e-4)
    assert c.n == 1 and c.n_incomplete == 1 and c.seeds == (0,)
    assert c.mean == pytest.approx(BASE["AdamW"][(1e-4, 1e-4)])
    assert math.isnan(c.std)  # one seed says nothing about seed variance
    assert summary.n_incomplete == 1


def test_best_setting_per_method(summary) -> None:
    l2, w = summary.grids["AdamL2"], summary.grids["AdamW"]
    assert (l2.best.eta0, l2.best.weight_decay) == (1e-3, 1e-4)
    assert l2.best_index() == (1, 1) and not l2.best_on_boundary
    assert (w.best.eta0, w.best.weight_decay) == (1e-3, 1e-3)
    assert w.best_index() == (1, 2) and w.best_on_boundary  # highest weight decay searched
    assert w.best.mean == pytest.approx(0.10 + SEED_STEP / 2)


def test_all_diverged_method_has_no_best(tmp_path: Path) -> None:
    make_run(
        tmp_path,
        optim_method="AdamL2",
        eta0=1e-2,
        weight_decay=0.0,
        status="diverged",
        with_stats=False,
    )
    make_run(
        tmp_path,
        optim_method="AdamL2",
        eta0=1e-1,
        weight_decay=0.0,
        status="failed",
        with_stats=False,
    )
    (s,) = summarize(load_runs(tmp_path))
    assert s.best("AdamL2") is None
    assert s.grids["AdamL2"].cell(1e-1, 0.0).n_failed == 1


def test_groups_split_models_bn_and_other_settings(tmp_path: Path) -> None:
    kw = dict(optim_method="AdamW", eta0=1e-3, weight_decay=0.0, with_stats=False)
    make_run(tmp_path, model="ResNet20", **kw)
    make_run(tmp_path, model="ResNet110", **kw)
    make_run(tmp_path, model="ResNet110", batch_norm=True, **kw)
    make_run(tmp_path, model="ResNet110", loss_multiplier=10.0, **kw)
    labels = [k.label for k in group_runs(load_runs(tmp_path))]
    # Depth-ordered; loss_multiplier named only where it varies (the paper's Figure 4 folder).
    assert labels == [
        "CIFAR10 ResNet20 (no BN)",
        "CIFAR10 ResNet110 (no BN, loss_multiplier=1)",
        "CIFAR10 ResNet110 (no BN, loss_multiplier=10)",
        "CIFAR10 ResNet110 (BN)",
    ]


def test_write_summary(sweep: Path, tmp_path: Path) -> None:
    paths = write_summary(load_runs(sweep), tmp_path / "out")
    assert set(paths) == {"csv", "best_csv", "markdown"}
    with open(paths["csv"]) as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 2 * len(ETA0S) * len(WDS)
    best = [r for r in cells if r["is_best"] == "True"]
    assert {(r["method"], float(r["eta0"]), float(r["weight_decay"])) for r in best} == {
        ("AdamL2", 1e-3, 1e-4),
        ("AdamW", 1e-3, 1e-3),
    }
    one_seed = next(
        r
        for r in cells
        if r["method"] == "AdamW" and float(r["eta0"]) == 1e-4 and float(r["weight_decay"]) == 1e-4
    )
    assert one_seed["std_test_error"] == "" and one_seed["n_incomplete"] == "1"
    with open(paths["best_csv"]) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert float(rows["AdamL2"]["mean_test_error"]) == pytest.approx(0.125)
    assert rows["AdamW"]["best_on_grid_boundary"] == "True"
    md = paths["markdown"].read_text()
    assert "## CIFAR10 ResNet20 (no BN)" in md
    assert "**0.1250 ± 0.0071 (n=2)**" in md  # AdamL2's best cell, bold
    assert "1.1 (diverged, n=2)" in md
    assert "best on grid edge" in md
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temporaries
