"""Figure 1 / Corollary 1: AdamW (eps = 0) ignores a diagonal rescaling of the Hessian, GD does not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scalefree.optim import AdamW
from scalefree.reproduce import quadratic as q
from scalefree.reproduce.common import max_relative_difference, run_optimizer

KAPPA1, KAPPA_ILL = q.PROBLEMS


@pytest.fixture(scope="module")
def result() -> q.QuadraticResult:
    return q.run_quadratic(q.QuadraticConfig())


def test_problems_share_minimizer_and_differ_by_a_rescaling():
    problems, x0 = q.make_problems(q.QuadraticConfig())
    well, ill = problems[KAPPA1], problems[KAPPA_ILL]
    assert well.condition_number == 1.0
    assert ill.condition_number == pytest.approx(1e5)
    assert torch.equal(well.minimizer, ill.minimizer)
    assert torch.all(x0 != well.minimizer)  # eps = 0: a zero first gradient would be 0/0
    assert well.hessian.dtype == ill.hessian.dtype == x0.dtype == torch.float64


def test_adamw_curves_coincide(result):
    assert result.adamw_rel_diff < 1e-10
    assert result.tuned_lr["AdamW"][KAPPA1] == result.tuned_lr["AdamW"][KAPPA_ILL]
    hits = result.iters_to_tol["AdamW"]
    assert hits[KAPPA1] is not None and hits[KAPPA1] == hits[KAPPA_ILL]
    assert hits[KAPPA1] < result.config.iters


def test_gd_depends_on_the_condition_number(result):
    hits = result.iters_to_tol["GD"]
    assert hits[KAPPA1] is not None and hits[KAPPA1] <= 10
    assert hits[KAPPA_ILL] is None  # not within the budget ...
    exact = result.gd_closed_form_iters
    assert exact[KAPPA1] == hits[KAPPA1]
    assert exact[KAPPA_ILL] >= 1e4 * exact[KAPPA1]  # ... and orders of magnitude beyond it
    assert exact[KAPPA_ILL] > 100 * result.iters_to_tol["AdamW"][KAPPA_ILL]
    assert result.gd_rel_diff > 0.5
    assert q.verdict(result).startswith("reproduced")


def test_curves_and_grid_shapes(result):
    n = result.config.iters + 1
    for method in q.METHODS:
        for key in q.PROBLEMS:
            curve = result.curves[method][key]
            assert curve.shape == (n,) and np.all(np.isfinite(curve))
            assert len(result.grid[method][key]) == len(
                result.config.gd_lrs if method == "GD" else result.config.adamw_lrs
            )


def test_weight_decay_keeps_adamw_scale_free():
    config = q.QuadraticConfig(iters=150, weight_decay=1e-2, adamw_lrs=(0.1,), gd_lrs=(1e-5,))
    res = q.run_quadratic(config)
    assert res.adamw_rel_diff < 1e-10


def test_eps_breaks_scale_freeness():
    """The check is not vacuous: with eps > 0 AdamW's two curves do differ."""
    config = q.QuadraticConfig()
    problems, x0 = q.make_problems(config)
    factory = lambda params, lr: AdamW(params, lr=lr, eps=1e-3)
    curves = [run_optimizer(p, x0, factory, 0.1, 150) for p in problems.values()]
    assert max_relative_difference(*curves) > 1e-3


def test_save_writes_json_and_png(result, tmp_path):
    paths = q.save_quadratic(result, tmp_path / "out")
    assert [p.name for p in paths] == ["quadratic.json", "quadratic.png"]
    data = json.loads(paths[0].read_text())
    assert data["iters_to_tol"]["AdamW"][KAPPA1] == result.iters_to_tol["AdamW"][KAPPA1]
    assert data["adamw_rel_diff"] == result.adamw_rel_diff
    assert len(data["curves"]["GD"][KAPPA_ILL]) == result.config.iters + 1
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert q.save_quadratic(result, tmp_path / "noplot", plot=False)[0].name == "quadratic.json"
    assert not (tmp_path / "noplot" / "quadratic.png").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iters": 0},
        {"dim": 1},
        {"weight_decay": 1.0},
        {"condition_number": 0.5},
        {"tol": 0.0},
        {"adamw_lrs": ()},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        q.QuadraticConfig(**kwargs)
