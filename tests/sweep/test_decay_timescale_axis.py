"""The decay timescale as a sweep axis (``--decay-timescale-vals``), and methods with switches
(``AdamW+CWD``): the runs a sweep lists, its boundary extension, and the tables and heatmap it
writes, which must show eta0 x timescale."""

from __future__ import annotations

import csv

import matplotlib
import pytest

from scalefree.cli import main
from scalefree.errors import UsageError
from scalefree.rundir import load_runs
from scalefree.rundir.summary import TIMESCALE_AXIS, method_label, method_settings
from scalefree.sweep.grid import Axes, boundary_extension, make_sweep, validate_methods
from scalefree.train.config import RunConfig
from tests.sweep.conftest import TINY_FLAGS, tiny_config

matplotlib.use("Agg")

TS_GRID = ["--optim-methods", "AdamW", "--eta0-vals", "1e-3", "5e-3"]


def test_dry_run_lists_eta0_x_timescale_runs(tmp_path, capsys):
    argv = ["sweep", "--dry-run", *TINY_FLAGS, "--log-folder", str(tmp_path), *TS_GRID]
    assert main([*argv, "--decay-timescale-vals", "5", "1"]) == 0
    names = capsys.readouterr().out.splitlines()
    expected = [
        tiny_config(tmp_path, optim_method="AdamW", eta0=e, decay_timescale=t).run_name()
        for e in (1e-3, 5e-3)
        for t in (1.0, 5.0)
    ]
    assert names == expected
    assert all("_WD_0_" in n for n in names) and "_Timescale_5_" in names[1]


def test_timescale_and_weight_decay_values_are_exclusive(tmp_path, capsys):
    argv = ["sweep", "--dry-run", *TINY_FLAGS, "--log-folder", str(tmp_path), *TS_GRID]
    with pytest.raises(SystemExit) as exc:  # an argparse error: exit code 2
        main([*argv, "--decay-timescale-vals", "5", "--weight-decay-vals", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--weight-decay-vals" in err and "--decay-timescale-vals" in err


@pytest.mark.parametrize(
    "values, needle",
    [(["0"], "--decay-timescale-vals values must be positive"), ([], "needs at least one")],
)
def test_timescale_values_are_checked(tmp_path, capsys, values, needle):
    argv = ["sweep", "--dry-run", *TINY_FLAGS, "--log-folder", str(tmp_path), *TS_GRID]
    assert main([*argv, "--decay-timescale-vals", *values]) == 2
    assert needle in capsys.readouterr().err


def test_timescale_axis_refuses_l2_methods_before_running(tmp_path, capsys):
    argv = ["sweep", "--dry-run", *TINY_FLAGS, "--log-folder", str(tmp_path)]
    argv += ["--optim-methods", "AdamW", "AdamL2", "--decay-timescale-vals", "5"]
    assert main(argv) == 2
    assert "--decay-timescale needs decoupled or proximal" in capsys.readouterr().err


def test_boundary_extension_on_a_timescale_axis():
    axes = Axes((1e-3, 5e-3), (1.0, 5.0, 10.0))
    table = {(e, t): 0.5 for e, t in axes.points()} | {(1e-3, 1.0): 0.1}
    ext = boundary_extension(table, axes, TIMESCALE_AXIS)  # the smallest timescale is an edge
    assert ext.weight_decays == (0.5,) and ext.eta0s == (5e-4,)
    assert ext.edges == ("smallest eta0", "smallest decay timescale")
    table = {(e, t): 0.5 for e, t in axes.points()} | {(5e-3, 10.0): 0.1}
    ext = boundary_extension(table, axes, TIMESCALE_AXIS)
    assert ext.weight_decays == (50.0,) and ext.eta0s == (1e-2,)
    assert ext.edges == ("largest eta0", "largest decay timescale")


def test_method_labels_round_trip_and_reach_the_runs(tmp_path):
    assert validate_methods(["adamw+cwd", "AdamW", "AdamW+CWD"]) == ("AdamW+CWD", "AdamW")
    assert method_settings("AdamW+CWD+Caution") == {
        "optim_method": "AdamW",
        "cautious_decay": True,
        "caution": True,
    }
    with pytest.raises(UsageError, match=r"\+Fast.*known: \+CWD, \+Caution"):
        validate_methods(["AdamW+Fast"])
    base = tiny_config(tmp_path)
    sweep = make_sweep(base, ["AdamW", "AdamW+CWD"], [1e-3], [5.0], [0], TIMESCALE_AXIS)
    configs = sweep.configs()
    assert [method_label(c.to_dict()) for c in configs] == ["AdamW", "AdamW+CWD"]
    assert [(c.cautious_decay, c.decay_timescale, c.weight_decay) for c in configs] == [
        (False, 5.0, 0.0),
        (True, 5.0, 0.0),
    ]


def test_tiny_timescale_sweep_tables_and_heatmap_show_the_timescale(tmp_path, capsys):
    from scalefree.plots.figures import heatmap
    from scalefree.plots.tables import summarize

    folder = tmp_path / "logs"
    argv = ["sweep", *TINY_FLAGS, "--log-folder", str(folder), *TS_GRID, "--workers", "1"]
    assert main([*argv, "--decay-timescale-vals", "2", "20"]) == 0
    runs = load_runs(folder)
    assert len(runs) == 4 and all(r.status == "completed" for r in runs)
    for r in runs:  # the lambda each run got, as config.json records it (N = 2 batches of 32)
        expected = 1.0 / (r.config["decay_timescale"] * 2)  # schedule convention: 1 / (E N)
        assert r.config["env"]["weight_decay_resolved"] == pytest.approx(expected)
    with open(folder / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert "decay_timescale" in rows[0] and "weight_decay" not in rows[0]
    assert sorted({float(r["decay_timescale"]) for r in rows}) == [2.0, 20.0]
    md = (folder / "summary.md").read_text()
    assert "x decay timescale (epochs) (columns)" in md and "eta0 \\ decay timescale" in md
    [summary] = summarize(runs)
    fig = heatmap(summary, tmp_path / "heatmap.png")
    assert (tmp_path / "heatmap.png").stat().st_size > 0
    ax = fig.axes[0]
    assert ax.get_xlabel().lower().startswith("decay timescale (epochs)")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "20"]


def test_weight_decay_sweep_is_unchanged_by_the_axis():
    c = RunConfig(optim_method="AdamW", weight_decay=5e-4)
    assert method_label(c.to_dict()) == "AdamW"
    assert "decay_timescale" not in c.run_name().lower()
