"""The depth study's tables from fake runs whose numbers are known exactly (tests.fakeruns)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from scalefree.io import atomic_write_json
from scalefree.reproduce import depth_figures
from scalefree.reproduce.depth_study import (
    best_cells,
    correlation,
    gaps,
    study_runs,
    write_depth_study,
)
from scalefree.rundir.layout import diagnose_file
from tests.fakeruns import make_run

# (method, eta0, weight decay) -> validation error of the grid seed; the best cells are
# AdamL2 (1e-3, 5e-4) and AdamW (1e-3, 5e-5). The grid's test errors rank the other way round, so
# a selection on the test split would pick the wrong cell.
GRID = {
    ("AdamL2", 1e-3, 5e-4): (0.40, 0.60),
    ("AdamL2", 1e-3, 1e-3): (0.45, 0.50),
    ("AdamW", 1e-3, 5e-5): (0.30, 0.50),
    ("AdamW", 1e-3, 1e-4): (0.35, 0.40),
}
# Test errors of the best cells over seeds 0, 1, 2, per model (MLP8 deeper: a larger gap).
SEED_TESTS = {
    "MLP4": {"AdamL2": (0.60, 0.62, 0.64), "AdamW": (0.50, 0.52, 0.54)},
    "MLP8": {"AdamL2": (0.70, 0.72, 0.74), "AdamW": (0.50, 0.50, 0.53)},
}
DIAG_INIT = {"MLP4": 1.5, "MLP8": 3.0}


def _run(root: Path, model: str, method: str, eta0: float, wd: float, seed: int, val: float,
         test: float) -> Path:  # fmt: skip
    path = make_run(root, optim_method=method, eta0=eta0, weight_decay=wd, model=model,
                    seed=seed, test_acc=1 - val, epochs=2, validation=True)  # fmt: skip
    result = json.loads((path / "result.json").read_text())
    result["test_split"] = {"error": test, "acc": 1 - test, "loss": 1.0}
    atomic_write_json(path / "result.json", result)
    return path


@pytest.fixture
def study(tmp_path: Path) -> Path:
    for model in SEED_TESTS:
        for (method, eta0, wd), (val, test) in GRID.items():
            best = test if wd not in (5e-4, 5e-5) else SEED_TESTS[model][method][0]
            path = _run(tmp_path, model, method, eta0, wd, 0, val, best)
            if method == "AdamL2" and wd == 5e-4:
                atomic_write_json(
                    diagnose_file(path, "init"), {"diagnosis": {"spread": DIAG_INIT[model]}}
                )
        for method, tests in SEED_TESTS[model].items():
            wd = 5e-4 if method == "AdamL2" else 5e-5
            for seed in (1, 2):
                _run(tmp_path, model, method, 1e-3, wd, seed, 0.3, tests[seed])
    make_run(tmp_path, optim_method="AdamW", eta0=5e-3, weight_decay=5e-5, model="MLP4",
             epochs=2, validation=True, status="incomplete")  # fmt: skip
    return tmp_path


def test_best_cell_is_chosen_on_validation_and_summarized_over_its_seeds(study: Path) -> None:
    rows = study_runs([study])
    assert len(rows) == 2 * (4 + 4) + 1
    assert sum(r.status == "incomplete" for r in rows) == 1
    cells = {(c.model, c.method): c for c in best_cells(rows)}
    assert set(cells) == {(m, k) for m in SEED_TESTS for k in ("AdamL2", "AdamW")}
    l2 = cells["MLP4", "AdamL2"]
    assert (l2.eta0, l2.weight_decay, l2.seeds) == (1e-3, 5e-4, 3)
    assert l2.test_error_mean == pytest.approx(0.62, abs=1e-12)
    assert l2.test_error_std == pytest.approx(0.02, abs=1e-12)  # sample std (ddof 1)
    assert cells["MLP4", "AdamW"].weight_decay == 5e-5
    assert l2.diagnose_spread_init == 1.5 and l2.family == "mlp" and l2.depth == 4


def test_gap_and_its_standard_error(study: Path) -> None:
    by = {g.model: g for g in gaps(best_cells(study_runs([study])))}
    assert by["MLP4"].gap == pytest.approx(0.52 - 0.62, abs=1e-12)
    assert by["MLP4"].gap_se == pytest.approx(math.sqrt(2 * 0.02**2 / 3), abs=1e-12)
    w8 = SEED_TESTS["MLP8"]["AdamW"]
    var_w8 = sum((x - sum(w8) / 3) ** 2 for x in w8) / 2
    assert by["MLP8"].gap == pytest.approx(sum(w8) / 3 - 0.72, abs=1e-12)
    assert by["MLP8"].gap_se == pytest.approx(math.sqrt(var_w8 / 3 + 0.02**2 / 3), abs=1e-12)
    assert by["MLP8"].diagnose_spread_init == 3.0


def test_correlation_needs_three_finite_pairs() -> None:
    assert correlation([1, 2, 3], [2, 4, 6.5])[0] == pytest.approx(0.9986, abs=1e-3)
    assert correlation([1, 2, 3], [-1, -2, -3])[0] == pytest.approx(-1.0, abs=1e-12)
    r, n = correlation([1, 2, math.nan], [1, 2, 3])
    assert math.isnan(r) and n == 2
    assert math.isnan(correlation([1, 1, 1], [1, 2, 3])[0])  # no spread in x: no r


def test_write_depth_study_lists_every_run_and_draws_the_gaps(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    paths = write_depth_study(study, out)
    assert {p.name for p in paths} >= {"summary.csv", "best.csv", "gaps.csv", "depth_study.md"}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 17
    needed = {"method", "model", "normalization", "eta0", "weight_decay", "seed", "status",
              "val_error", "test_error"}  # fmt: skip
    assert needed <= set(rows[0])
    unfinished = [r for r in rows if r["status"] == "incomplete"]
    assert len(unfinished) == 1 and unfinished[0]["test_error"] == ""  # NaN is left empty
    md = (out / "depth_study.md").read_text()
    assert "| MLP4 | none | -10.0 +- 1.6 | 3/3 | 1.50 | - |" in md
    for name in ("gap_vs_depth.png", "spread_vs_depth.png", "gap_vs_spread.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_of_nothing_say_so(tmp_path: Path) -> None:
    for draw, what in (
        (depth_figures.gap_vs_depth, "no pair of finished best cells yet"),
        (depth_figures.spread_vs_depth, "no update statistics yet"),
        (depth_figures.gap_vs_spread, "no diagnose results yet"),
    ):
        fig = draw([], tmp_path / "f.png")
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert what in texts
        assert not any(ax.lines for ax in fig.axes)


def test_figure_draws_one_point_per_depth(study: Path, tmp_path: Path) -> None:
    fig = depth_figures.gap_vs_depth(gaps(best_cells(study_runs([study]))), tmp_path / "g.png")
    (ax,) = fig.axes
    line = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(line) == 1  # the no-normalization line over depths 4 and 8
    assert list(line[0].get_xdata()) == [4, 8]
    assert list(line[0].get_ydata()) == pytest.approx([-10.0, 100 * (sum(
        SEED_TESTS["MLP8"]["AdamW"]) / 3 - 0.72)], abs=1e-9)  # fmt: skip


@pytest.mark.parametrize(("preset", "runs"), [("depth", 144), ("depth-resnet", 24)])
def test_presets_plan_their_grids(preset: str, runs: int, tmp_path: Path, capsys) -> None:
    from scalefree.cli import main

    assert main(["reproduce", preset, "--dry-run", "--log-folder", str(tmp_path)]) == 0
    names = [n for n in capsys.readouterr().out.splitlines() if n.startswith("CIFAR10_")]
    assert len(names) == runs
    assert all("_AMP_bf16_Img_8_NoAug_Val_0.1" in n for n in names)
    assert any("_MLP32_NoBN_AdamL2_Eta0_0.005_WD_0.001_" in n for n in names) == (preset == "depth")


def test_with_runs_must_be_a_folder(tmp_path: Path, capsys) -> None:
    from scalefree.cli import main

    code = main(["reproduce", "depth", "--dry-run", "--with-runs", str(tmp_path / "nope")])
    assert code == 2
    assert "--with-runs" in capsys.readouterr().err
