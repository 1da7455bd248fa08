"""Shared experiment helpers: grids, first crossings, curve comparison, GD's closed form."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from scalefree.reproduce.common import (
    DiagonalQuadratic,
    first_hit,
    gd_curve_closed_form,
    gd_iters_closed_form,
    json_ready,
    log_grid,
    max_relative_difference,
    run_optimizer,
    tuning_key,
)
from tests.helpers import assert_close


def test_log_grid_has_exact_powers_of_ten():
    grid = log_grid(-2, 1)
    assert len(grid) == 7
    assert grid[0] == 0.01 and grid[4] == 1.0 and grid[-1] == 10.0
    assert all(a < b for a, b in zip(grid, grid[1:]))


def test_first_hit_counts_iterations_and_ignores_nonfinite():
    curve = np.array([1.0, np.nan, np.inf, 0.5, 1e-7, 1e-9])
    assert first_hit(curve, 1e-6) == 4
    assert first_hit(curve, 1e-12) is None
    assert first_hit(np.array([1e-8]), 1e-6) == 0


def test_max_relative_difference():
    a = np.array([1.0, 2.0, 0.0, 1e-20])
    assert max_relative_difference(a, a) == 0.0
    b = a * (1 + 1e-12)
    assert 0 < max_relative_difference(a, b) < 2e-12
    # Symmetric, bounded by 1, defined when one side is exactly 0.
    c = np.array([1.0, 2.0, 3.0, 0.0])
    assert max_relative_difference(a, c) == max_relative_difference(c, a) == 1.0
    assert max_relative_difference(a, np.array([1.0, np.inf, 0.0, 0.0])) == math.inf


def test_tuning_key_prefers_reaching_then_speed_then_final():
    fast = np.array([1.0, 1e-7, 1e-9])
    slow = np.array([1.0, 1e-3, 1e-7])
    miss = np.array([1.0, 0.5, 1e-3])
    diverged = np.array([1.0, 10.0, np.inf])
    order = sorted([diverged, miss, slow, fast], key=lambda c: tuning_key(c, 1e-6))
    assert [id(c) for c in order] == [id(fast), id(slow), id(miss), id(diverged)]


def test_json_ready_is_strict_json():
    obj = {"a": np.array([1.0, np.inf]), "b": (np.float64(2.5), math.nan), 3: None}
    text = json.dumps(json_ready(obj), allow_nan=False)
    assert json.loads(text) == {"a": [1.0, None], "b": [2.5, None], "3": None}


def _problem(d: int = 6) -> tuple[DiagonalQuadratic, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    h = torch.logspace(0, 3, d, dtype=torch.float64)
    xstar = torch.randn(d, generator=gen, dtype=torch.float64)
    x0 = xstar + torch.randn(d, generator=gen, dtype=torch.float64)
    return DiagonalQuadratic("p", h, xstar), x0


def test_sgd_matches_gd_closed_form():
    problem, x0 = _problem()
    sgd = lambda params, lr: torch.optim.SGD(params, lr=lr)
    for ord in (2, math.inf):
        simulated = run_optimizer(problem, x0, sgd, 1.5e-3, 200, ord)
        exact = gd_curve_closed_form(problem, x0, 1.5e-3, 200, ord)
        assert_close(simulated, exact, rtol=1e-10, atol=1e-14)


def test_gd_iters_closed_form_is_the_first_crossing():
    problem, x0 = _problem()
    for lr in (1e-3, 1.9e-3):
        curve = gd_curve_closed_form(problem, x0, lr, 20_000)
        assert gd_iters_closed_form(problem, x0, lr, 1e-6) == first_hit(curve, 1e-6)
    assert gd_iters_closed_form(problem, x0, 1.0, 1e-6) is None  # |1 - lr h| > 1: diverges
    assert gd_iters_closed_form(problem, x0, 1e-3, 10.0) == 0  # already there


def test_run_optimizer_stops_a_diverging_run():
    problem, x0 = _problem()
    sgd = lambda params, lr: torch.optim.SGD(params, lr=lr)
    curve = run_optimizer(problem, x0, sgd, 1.0, 1000)
    assert curve.shape == (1001,) and np.isinf(curve[-1]) and curve[0] > 0
