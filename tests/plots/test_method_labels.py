"""Methods with switches of their rule (``AdamW+CWD``, ``AdamW+Caution``) in the tables and
figures: their own grid, row, order and colour, next to the optimizer they are built on, in
the same experiment group (the switch does not split the group)."""

from __future__ import annotations

import matplotlib
import pytest

from scalefree.plots.figures import heatmap, method_color
from scalefree.plots.tables import best_table, method_sort_key, summarize
from scalefree.rundir import load_runs
from tests.fakeruns import make_run

matplotlib.use("Agg")


def _folder(tmp_path):
    for eta0 in (1e-3, 5e-3):
        for wd in (1e-4, 5e-4):
            make_run(tmp_path, optim_method="AdamW", eta0=eta0, weight_decay=wd, test_acc=0.8)
            make_run(tmp_path, optim_method="AdamW", eta0=eta0, weight_decay=wd, test_acc=0.85,
                     cautious_decay=True, with_stats=False)  # fmt: skip
            make_run(tmp_path, optim_method="AdamProx", eta0=eta0, weight_decay=wd,
                     with_stats=False, test_acc=0.7)  # fmt: skip
    return tmp_path


def test_switched_methods_get_their_own_grid_in_one_group(tmp_path):
    [summary] = summarize(load_runs(_folder(tmp_path)))
    assert summary.methods == ("AdamW", "AdamW+CWD", "AdamProx")
    assert summary.key.extra == ()  # cautious_decay does not split the experiment
    assert summary.best("AdamW+CWD").mean == pytest.approx(summary.best("AdamW").mean - 0.05)
    rows = {r[0]: r for r in best_table(summary)[1]}
    assert set(rows) == {"AdamW", "AdamW+CWD", "AdamProx"}


def test_switched_methods_sort_after_their_optimizer_and_have_their_own_colour():
    order = sorted(["AdamProx", "AdamW+Caution", "AdamW", "AdamW+CWD"], key=method_sort_key)
    assert order == ["AdamW", "AdamW+CWD", "AdamW+Caution", "AdamProx"]
    colors = {method_color(m) for m in ("AdamW", "AdamW+CWD", "AdamW+Caution", "AdamProx")}
    assert len(colors) == 4


def test_heatmap_draws_a_panel_per_switched_method(tmp_path):
    [summary] = summarize(load_runs(_folder(tmp_path / "runs")))
    fig = heatmap(summary, tmp_path / "h.png")
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_title()]
    assert titles[:3] == ["AdamW", "AdamW+CWD", "AdamProx"]
    assert fig.axes[0].get_xlabel().startswith("Weight decay λ")
