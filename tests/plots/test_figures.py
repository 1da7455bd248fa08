"""Figures: inspect the returned matplotlib objects (data, artists), not pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage
from matplotlib.patches import Ellipse, StepPatch

from scalefree.errors import UsageError
from scalefree.plots import figures
from scalefree.plots.tables import summarize
from scalefree.rundir import DIVERGED_ERROR, load_runs
from scalefree.train.stats import load_stats
from tests.fakeruns import make_run
from tests.plots.conftest import DEPTHS, ETA0S, WDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def panels(fig):
    """Axes that hold a heatmap image (the colorbar's axes hold none)."""
    return [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_children())]


# ------------------------------------------------------------------------------------ heatmap
def test_heatmap_best_marker_at_the_best_cell(sweep: Path, tmp_path: Path) -> None:
    fig = figures.heatmap(load_runs(sweep), tmp_path / "h.png")
    assert is_png(tmp_path / "h.png")
    axes = panels(fig)
    assert [ax.get_title().splitlines()[0] for ax in axes] == ["AdamL2", "AdamW"]
    expected = {"AdamL2": (1e-3, 1e-4), "AdamW": (1e-3, 1e-3)}
    for ax in axes:
        method = ax.get_title().splitlines()[0]
        (marker,) = [p for p in ax.patches if isinstance(p, Ellipse) and p.get_gid() == "best"]
        col, row = marker.center
        # Read the cell's setting back from the tick labels (scaled, e.g. "1" x 0.001).
        eta_scale, wd_scale = figures.axis_scale(ETA0S), figures.axis_scale(WDS)
        eta = float(ax.get_yticklabels()[int(row)].get_text()) * eta_scale
        wd = float(ax.get_xticklabels()[int(col)].get_text()) * wd_scale
        assert (eta, wd) == pytest.approx(expected[method])
        # Powers of ten factored out as in the paper: eta0 up to 1e-2, weight decay up to 1e-3.
        assert "(×0.01)" in ax.get_ylabel() and "(×0.001)" in ax.get_xlabel()


def test_heatmap_data_shared_scale_and_divergence(sweep: Path, tmp_path: Path) -> None:
    fig = figures.heatmap(load_runs(sweep), tmp_path / "h.png")
    images = [next(a for a in ax.get_children() if isinstance(a, AxesImage)) for ax in panels(fig)]
    l2 = np.ma.filled(images[0].get_array(), np.nan)
    assert l2.shape == (len(ETA0S), len(WDS))
    assert l2[2, 2] == pytest.approx(DIVERGED_ERROR)  # eta0 1e-2, wd 1e-3: every seed diverged
    assert l2[1, 1] == pytest.approx(0.125)
    # One colour scale for all panels, spanning only cells where nothing diverged.
    assert images[0].norm is images[1].norm
    assert images[0].norm.vmax < DIVERGED_ERROR
    texts = [t.get_text() for t in panels(fig)[0].texts]
    assert "1.1" in texts


def test_heatmap_method_subset_and_mixed_groups(sweep: Path, tmp_path: Path) -> None:
    fig = figures.heatmap(load_runs(sweep), tmp_path / "h.png", methods=["AdamW"])
    assert len(panels(fig)) == 1
    with pytest.raises(figures.NothingToPlot, match="SGD"):
        figures.heatmap(load_runs(sweep), tmp_path / "x.png", methods=["SGD"])
    for model in ("ResNet20", "ResNet56"):
        make_run(
            tmp_path / "mixed",
            optim_method="AdamW",
            eta0=1e-3,
            weight_decay=0.0,
            model=model,
            with_stats=False,
        )
    with pytest.raises(UsageError, match="--model"):
        figures.heatmap(load_runs(tmp_path / "mixed"), tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


# ------------------------------------------------------------------------------------- curves
def test_curves_of_best_settings(sweep: Path, tmp_path: Path) -> None:
    s = summarize(load_runs(sweep))[0]
    fig = figures.curves(s, tmp_path / "c.png")
    assert is_png(tmp_path / "c.png")
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_yscale() == "log"
    labels = [line.get_label() for line in ax_acc.lines]
    assert labels[0].startswith("AdamL2 (η0=0.001, λ=0.0001") and labels[1].startswith("AdamW")
    # The plotted final accuracy is the seed mean of the best setting: 1 - 0.125 for AdamL2.
    assert ax_acc.lines[0].get_ydata()[-1] == pytest.approx(100 * (1 - 0.125))
    assert list(ax_acc.lines[0].get_xdata()) == [1, 2, 3]


# ---------------------------------------------------------------------------------- histogram
def test_histogram_fractions_sum_to_one(sweep: Path, tmp_path: Path) -> None:
    s = summarize(load_runs(sweep))[0]
    data, notes = figures.histogram_data(s)
    assert not notes and [p.method for p in data] == ["AdamL2", "AdamW"]
    for p in data:
        assert sorted(p.fractions) == [1, 2, 3]  # default: every epoch when there are few
        for frac in p.fractions.values():
            assert frac.shape == (28,) and frac.sum() == pytest.approx(1.0)
    fig = figures.histogram(s, tmp_path / "hist.png", epochs=[1, 3])
    assert is_png(tmp_path / "hist.png")
    for ax in fig.axes:
        outlines = [a for a in ax.patches if isinstance(a, StepPatch) and not a.get_fill()]
        assert len(outlines) == 2  # one per chosen epoch
        for st in outlines:
            values, edges = st.get_data().values, st.get_data().edges
            assert values.sum() == pytest.approx(1.0)
            assert edges[0] == -27 and edges[-1] == 1  # bins 2^-27 .. 2^0
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks[0] == "≤-27" and ticks[-1] == "≥0"


def test_histogram_panel_matches_stats(sweep: Path) -> None:
    s = summarize(load_runs(sweep))[0]
    data, _ = figures.histogram_data(s, methods=["AdamW"], epochs=[3], quantity="grad")
    (p,) = data
    assert p.cell is s.best("AdamW")
    stats = load_stats(p.run.path)
    np.testing.assert_allclose(p.fractions[3], stats.fractions("grad", epoch=3))
    assert p.spread[3] == pytest.approx(float(stats.spread("grad")[stats.epoch == 3].mean()))


def test_histogram_bad_requests(sweep: Path, tmp_path: Path) -> None:
    s = summarize(load_runs(sweep))[0]
    with pytest.raises(UsageError, match="recorded epochs: 1-3"):
        figures.histogram(s, tmp_path / "x.png", epochs=[7])
    with pytest.raises(UsageError, match="--quantity"):
        figures.histogram(s, tmp_path / "x.png", quantity="nonsense")
    make_run(
        tmp_path / "nostats", optim_method="AdamW", eta0=1e-3, weight_decay=0.0, with_stats=False
    )
    with pytest.raises(figures.NothingToPlot, match="--store-stats"):
        figures.histogram(load_runs(tmp_path / "nostats"), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_default_epochs() -> None:
    assert figures.default_epochs([3, 1, 2]) == [1, 2, 3]
    assert figures.default_epochs(range(1, 301)) == [1, 101, 200, 300]


# -------------------------------------------------------------------------------- correlation
def test_correlation_advantage_per_model(depth_study: Path, tmp_path: Path) -> None:
    points = figures.correlation_data(load_runs(depth_study))
    # The BN ResNet20 has AdamL2 only, so it is not a point.
    assert [(p.key.model, p.key.batch_norm) for p in points] == [
        ("ResNet20", False),
        ("ResNet56", False),
        ("ResNet110", False),
    ]
    for p in points:
        e_l2, e_w, s_l2, s_w = DEPTHS[p.key.model]
        assert p.depth == int(p.key.model.removeprefix("ResNet"))
        assert p.baseline_error == pytest.approx(e_l2)
        assert p.method_error == pytest.approx(e_w)
        assert p.advantage == pytest.approx(e_l2 - e_w)
        # The spread is read from the best run's statistics at its final epoch.
        best_l2 = next(
            r
            for r in load_runs(depth_study)
            if r.get("model") == p.key.model
            and not r.get("batch_norm")
            and r.get("optim_method") == "AdamL2"
            and r.get("eta0") == 1e-3
        )
        st = load_stats(best_l2.path)
        assert p.baseline_spread == pytest.approx(float(st.spread()[st.epoch == 3].mean()))
        assert p.baseline_spread == pytest.approx(s_l2, abs=0.6)  # fake data hits its target
        assert p.method_spread == pytest.approx(s_w, abs=0.6)
    fig = figures.correlation(load_runs(depth_study), tmp_path / "corr.png")
    assert is_png(tmp_path / "corr.png")
    ax_adv, ax_spread = fig.axes
    (adv_line,) = ax_adv.lines[:1]
    np.testing.assert_allclose(adv_line.get_ydata(), [100 * (v[0] - v[1]) for v in DEPTHS.values()])
    assert [line.get_label() for line in ax_spread.lines] == ["AdamL2", "AdamW"]


def test_correlation_needs_both_methods(sweep: Path, tmp_path: Path) -> None:
    runs = [r for r in load_runs(sweep) if r.get("optim_method") == "AdamW"]
    with pytest.raises(figures.NothingToPlot, match="both"):
        figures.correlation(runs, tmp_path / "c.png")


def test_tick_labels_like_the_paper() -> None:
    # The paper's grids: a power of ten factored out of the labels.
    assert figures.tick_labels([5e-5, 1e-4, 5e-4, 1e-3, 5e-3]) == (
        ["0.05", "0.1", "0.5", "1", "5"],
        " (×0.001)",
    )
    assert figures.tick_labels([0.0, 1e-5, 1e-3]) == (["0", "0.01", "1"], " (×0.001)")
    # Five decades would need "0.0001"-style labels: compact scientific instead.
    assert figures.tick_labels([0.0, 1e-6, 1e-4, 5e-2]) == (["0", "1e-6", "1e-4", "5e-2"], "")
