"""Every figure type over the log folders a first user produces (tests/plots/degenerate.py): one
epoch, one method, one depth, all runs at chance, diverged and missing cells. The checks read what
is drawn: artists present, every text inside the canvas, plain tick labels, the chance note."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Rectangle, StepPatch

from scalefree.plots import figures, layout
from scalefree.plots.report import write_report
from scalefree.plots.tables import GroupKey, summarize
from scalefree.plots.verdict import judge
from scalefree.rundir import load_runs
from tests.plots.degenerate import CASES

PER_CONFIGURATION = ("heatmap", "curves", "histogram")
TOLERANCE_PX = 1.0


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {name: build(tmp_path_factory.mktemp(name)) for name, build in CASES.items()}


def drawn_texts(fig):
    """Every text the canvas shows: figure and subfigure texts, titles, axis labels, annotations,
    legend texts, and the tick labels of the ticks inside each axis's view."""
    fig.canvas.draw()
    out = [t for t in layout._all_texts(fig)]
    for ax in fig.axes:
        out += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        out += list(ax.texts)
        legend = ax.get_legend()
        if legend is not None:
            out += [*legend.get_texts(), legend.get_title()]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            locs = axis.get_majorticklocs()
            for loc, tick in zip(locs, axis.get_major_ticks(len(locs))):
                if lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo):
                    out.append(tick.label1)
    for legend in fig.legends + [leg for sub in fig.subfigs for leg in sub.legends]:
        out += [*legend.get_texts(), legend.get_title()]
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def assert_readable(fig) -> None:
    """Every drawn text lies inside the canvas; no axis uses an offset ("1e-5+1.1196")."""
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    texts = drawn_texts(fig)
    assert texts
    for t in texts:
        box = t.get_window_extent(renderer)
        inside = (
            box.x0 >= -TOLERANCE_PX
            and box.y0 >= -TOLERANCE_PX
            and box.x1 <= width + TOLERANCE_PX
            and box.y1 <= height + TOLERANCE_PX
        )
        assert inside, f"text {t.get_text()!r} at {box.bounds} leaves the {width}x{height} canvas"
    tight = fig.get_tightbbox(renderer)  # inches, everything laid out
    assert tight.x0 >= -0.01 and tight.y0 >= -0.01
    assert tight.x1 <= fig.get_figwidth() + 0.01 and tight.y1 <= fig.get_figheight() + 0.01
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == "", f"offset on {ax.get_title()!r}"


def chance_notes(fig) -> list[str]:
    return [n for n in layout.notes(fig) if "at chance" in n]


# ----------------------------------------------------------------- per-configuration figures
@pytest.mark.parametrize("kind", PER_CONFIGURATION)
@pytest.mark.parametrize("case", sorted(CASES))
def test_figure_is_readable(case: str, kind: str, folders, tmp_path: Path) -> None:
    for s in summarize(load_runs(folders[case])):
        fig = getattr(figures, kind)(s, tmp_path / f"{kind}.png")
        assert (tmp_path / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
        assert_readable(fig)
        # The chance note exactly where every run is at chance.
        assert bool(chance_notes(fig)) == (case == "at_chance"), layout.notes(fig)
        CHECK_ARTISTS[kind](fig, s)


def check_heatmap(fig, s) -> None:
    axes = [a for a in fig.axes if any(isinstance(c, AxesImage) for c in a.get_children())]
    assert [a.get_title().splitlines()[0] for a in axes] == list(s.methods)
    for ax, method in zip(axes, s.methods):
        grid = s.grids[method]
        hatched = [p for p in ax.patches if p.get_gid() == "diverged"]
        expected = [c for c in grid.cells.values() if c.n_diverged + c.n_failed]
        assert len(hatched) == len(expected)
        assert all(isinstance(p, Rectangle) and p.get_hatch() for p in hatched)
        best = [p for p in ax.patches if isinstance(p, Ellipse) and p.get_gid() == "best"]
        assert len(best) == (grid.best is not None)
        # One text per grid cell: its value, "1.1", "running" or "—" (no run).
        assert len(ax.texts) == len(grid.eta0s) * len(grid.weight_decays)


def check_curves(fig, s) -> None:
    ax_loss, ax_acc = fig.axes
    series = [ln for ln in ax_acc.lines if ln.get_linestyle() != "--"]
    assert series and len(ax_loss.lines) == len(series)
    for ln in [*series, *ax_loss.lines]:
        x = np.asarray(ln.get_xdata(), float)
        assert ln.get_marker() not in (None, "None", "")  # short series: a marker per point
        lo, hi = ax_acc.get_xlim()
        assert lo < x.min() and x.max() <= hi
    chance = [ln for ln in ax_acc.lines if ln.get_linestyle() == "--"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(10.0)
    legends = fig.legends + [leg for sub in fig.subfigs for leg in sub.legends]
    labels = [t.get_text() for leg in legends for t in leg.texts]
    assert "chance (10%)" in labels and len(labels) == len(series) + 1
    lo, hi = ax_acc.get_ylim()
    assert hi - lo >= figures.MIN_ACC_SPAN - 1e-9


def check_histogram(fig, s) -> None:
    panels, _ = figures.histogram_data(s)
    assert len(fig.axes) == len(panels)
    for ax, p in zip(fig.axes, panels):
        outlines = [a for a in ax.patches if isinstance(a, StepPatch) and not a.get_fill()]
        assert len(outlines) == len(p.fractions)
        assert ax.get_title().startswith(p.method)


CHECK_ARTISTS = {"heatmap": check_heatmap, "curves": check_curves, "histogram": check_histogram}


def test_heatmap_colours_do_not_stretch_chance(folders, tmp_path: Path) -> None:
    (s, *_) = summarize(load_runs(folders["at_chance"]))
    fig = figures.heatmap(s, tmp_path / "h.png")
    image = next(c for c in fig.axes[0].get_children() if isinstance(c, AxesImage))
    # 0.886 .. 0.900 on a 0 .. 0.9 scale: every cell takes (almost) the same colour.
    assert image.norm.vmin == 0.0 and image.norm.vmax == pytest.approx(0.9)
    values = np.ma.filled(image.get_array(), np.nan)
    assert np.ptp(image.norm(values)) < 0.02
    best = next(p for p in fig.axes[0].patches if p.get_gid() == "best")
    assert best.get_linestyle() == "--"  # a "best" that is not better


def test_heatmap_scale_never_narrower_than_noise(tmp_path: Path) -> None:
    from tests.fakeruns import make_grid

    make_grid(
        tmp_path / "flat",
        ("AdamW",),
        (1e-4, 1e-3),
        (0.0,),
        (0,),
        lambda m, e, w, s: 0.200 + (0.001 if e == 1e-4 else 0.0),
        with_stats=False,
    )
    (s,) = summarize(load_runs(tmp_path / "flat"))
    fig = figures.heatmap(s, tmp_path / "h.png")
    image = next(c for c in fig.axes[0].get_children() if isinstance(c, AxesImage))
    noise = judge([0.2, 0.201], classes=10, n_eval=10_000).noise
    assert image.norm.vmax - image.norm.vmin == pytest.approx(noise)
    assert any("below the noise level" in n for n in layout.notes(fig))


# -------------------------------------------------------------------------------- correlation
@pytest.mark.parametrize("case", sorted(CASES))
def test_correlation(case: str, folders, tmp_path: Path) -> None:
    runs = load_runs(folders[case])
    if case == "one_method":
        with pytest.raises(figures.NothingToPlot, match="both"):
            figures.correlation(runs, tmp_path / "c.png")
        return
    fig = figures.correlation(runs, tmp_path / "c.png")
    assert_readable(fig)
    ax_adv, ax_spread = fig.axes
    points = figures.correlation_data(runs)
    (line,) = [ln for ln in ax_adv.lines if len(ln.get_xdata()) == len(points)][:1]
    assert line.get_marker() == "o"  # one depth is still a visible point
    labels = [t.get_text() for t in ax_adv.texts]
    assert len(labels) == len(points)
    if case == "at_chance":
        assert all(lab.endswith("(chance)") for lab in labels)
        assert chance_notes(fig)
    else:
        assert not chance_notes(fig)


def test_correlation_tiny_differences_have_no_offset(tmp_path: Path) -> None:
    key = GroupKey("CIFAR10", "ResNet20", False)
    points = [
        figures.CorrelationPoint(
            key=GroupKey("CIFAR10", f"ResNet{d}", False),
            depth=d,
            baseline_error=0.5,
            method_error=0.5 - 0.0039,
            advantage=0.0039,
            advantage_std=math.nan,
            baseline_spread=1.11960 + 3e-5 * k,
            method_spread=1.11961 + 3e-5 * k,
            noise=0.012,
        )
        for k, d in enumerate((20, 56))
    ]
    assert key.depth == 20
    fig = figures.draw_correlation(points, tmp_path / "c.png")
    assert_readable(fig)
    ax_adv, ax_spread = fig.axes
    lo, hi = ax_spread.get_ylim()
    assert hi - lo >= figures.MIN_SPREAD_SPAN - 1e-9  # 3e-5 apart drawn as (nearly) equal
    assert [t.get_text() for t in ax_adv.texts] == ["+0.39 (noise)", "+0.39 (noise)"]
    assert any("within the noise level" in n for n in layout.notes(fig))


# ------------------------------------------------------------------------------------- report
def test_report_says_when_nothing_rose_above_chance(folders, tmp_path: Path) -> None:
    md = write_report(folders["at_chance"], tmp_path / "r").read_text()
    html = (tmp_path / "r" / "report.html").read_text()
    sections = md.split("\n## ")[1:]
    groups = [sec for sec in sections if sec.startswith("CIFAR10 ResNet")]
    assert len(groups) == 2 and all("> All finished grid points are at chance" in g for g in groups)
    corr = next(sec for sec in sections if sec.startswith("AdamW's advantage"))
    assert "> Both methods are at chance at every depth" in corr
    assert html.count('<p class="note">All finished grid points are at chance') == 2


def test_report_has_no_chance_note_when_runs_learned(folders, tmp_path: Path) -> None:
    md = write_report(folders["diverged"], tmp_path / "r").read_text()
    assert "at chance" not in md and "> All" not in md
    assert "![" in md  # figures drawn


def test_verdict_definitions() -> None:
    # CIFAR-10, 10,000 test images: chance 0.9, margin max(0.02, 3 * 0.003) = 0.02.
    v = judge([0.887, 0.898], classes=10, n_eval=10_000)
    assert v.at_chance and v.chance_threshold == pytest.approx(0.88)
    assert not judge([0.87, 0.898], classes=10, n_eval=10_000).at_chance
    # 512 synthetic test images: 3 sd at chance = 0.0398, so 0.87 is still chance there.
    assert judge([0.87], classes=10, n_eval=512).at_chance
    # Noise: 2 sqrt(2 p (1 - p) / n) at p = 0.2 on 10,000 images = 0.0113.
    assert judge([0.20, 0.21], classes=10, n_eval=10_000).within_noise
    assert not judge([0.20, 0.22], classes=10, n_eval=10_000).within_noise
    assert judge([0.20, 0.22], classes=10, n_eval=10_000, seed_std=0.03).within_noise
    # Diverged (1.1) and NaN are not results; one result is never "within noise".
    v = judge([0.3, 1.1, math.nan], classes=10)
    assert v.n_results == 1 and v.meaningful and v.note() is None
    assert judge([0.9], classes=None).chance_error is None


def test_wrapping_keeps_long_titles_inside(tmp_path: Path) -> None:
    fig, panel = layout.new_figure(3.0, 2.0, note="a note " * 30)
    ax = panel.subplots()
    ax.plot([1, 2], [1.0001, 1.0002], marker="o")
    panel.suptitle("a very long title that would never fit into three inches of figure " * 2)
    ax.set_title("an axes title much wider than its axes, which is narrow")
    layout.finish(fig, tmp_path / "t.png")
    assert_readable(fig)
    assert "\n" in panel._suptitle.get_text() and "\n" in ax.get_title()
    assert layout.notes(fig) == [("a note " * 30).strip()]
    assert isinstance(ax.lines[0], Line2D)


def test_plot_cli_prints_the_notes(folders, tmp_path: Path, capsys) -> None:
    from scalefree.cli import main

    assert main(["plot", "heatmap", str(folders["at_chance"]), "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.split()) == 2  # one PNG per model
    assert "note (CIFAR10 ResNet56 (no BN)): All grid cells are at chance" in captured.err
    assert main(["plot", "heatmap", str(folders["one_method"]), "--out", str(tmp_path)]) == 0
    assert "note" not in capsys.readouterr().err


def test_draw_correlation_names_what_its_points_compare(tmp_path: Path) -> None:
    """The points carry the methods and the histogram; the axes say them, and points that
    compare different things are refused rather than drawn under one label."""
    point = figures.CorrelationPoint(
        key=GroupKey("CIFAR10", "ResNet20", False),
        depth=20,
        baseline_error=0.4,
        method_error=0.3,
        advantage=0.1,
        advantage_std=math.nan,
        baseline_spread=2.0,
        method_spread=1.0,
        baseline="AdamProxL2",
        method="AdamProx",
        quantity="grad",
    )
    fig = figures.draw_correlation([point], tmp_path / "c.png")
    ax_adv, ax_spread = fig.axes
    assert "AdamProxL2 − AdamProx" in ax_adv.get_ylabel()
    assert "AdamW" not in ax_adv.get_ylabel() + ax_adv.get_title()
    other = figures.CorrelationPoint(**{**point.__dict__, "depth": 56, "method": "AdamW"})
    with pytest.raises(ValueError, match="different things"):
        figures.draw_correlation([point, other], tmp_path / "d.png")
    with pytest.raises(figures.NothingToPlot):
        figures.draw_correlation([], tmp_path / "e.png")
