"""Appendix B: projected AdaGrad with restarts needs the same iterations under any diagonal rescaling."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scalefree.reproduce import adagrad_restart as a
from scalefree.reproduce.common import DiagonalQuadratic, first_hit
from tests.helpers import assert_close


@pytest.fixture(scope="module")
def result() -> a.AdaGradRestartResult:
    return a.run_adagrad_restart(a.AdaGradRestartConfig())


def test_problems_are_rescalings_of_one_quadratic():
    problems, x0 = a.make_problems(a.AdaGradRestartConfig())
    kappas = {k: p.condition_number for k, p in problems.items()}
    assert kappas["kappa=1"] == pytest.approx(1.0)
    assert kappas["kappa=10"] == pytest.approx(10.0)
    assert kappas["kappa=1e5"] == pytest.approx(1e5)
    minimizers = [p.minimizer for p in problems.values()]
    assert all(torch.equal(m, minimizers[0]) for m in minimizers)


def test_adagrad_iterations_do_not_depend_on_the_rescaling(result):
    counts = list(result.adagrad_iters.values())
    assert None not in counts
    assert max(counts) - min(counts) <= 1
    per_iterate = [first_hit(c, result.config.target) for c in result.adagrad_curves.values()]
    assert None not in per_iterate and max(per_iterate) - min(per_iterate) <= 1
    assert result.adagrad_rel_diff < 1e-10


def test_gd_iterations_do_depend_on_it(result):
    gd = result.gd_iters
    assert gd["kappa=1"] is not None and gd["kappa=1"] <= 5
    assert gd["kappa=10"] is not None and gd["kappa=1"] < gd["kappa=10"]
    assert gd["kappa=1e5"] is None
    assert result.gd_closed_form_iters["kappa=1e5"] >= 1e4 * result.gd_closed_form_iters["kappa=10"]
    assert a.verdict(result).startswith("reproduced")


def test_theorem_3_halving_bound_holds(result):
    """With T = 32 d (M/mu = 1 after the best rescaling): ||xbar_i - x*||_inf <= D_inf / 2^i."""
    for outputs in result.adagrad_outputs.values():
        d_inf = outputs[0]
        for i, dist in enumerate(outputs):
            assert dist <= d_inf / 2**i * (1 + 1e-12)


def test_projected_adagrad_stays_in_the_box_and_handles_zero_gradients():
    h = torch.tensor([1.0, 100.0, 3.0], dtype=torch.float64)
    xstar = torch.tensor([0.5, -0.2, 0.0], dtype=torch.float64)
    problem = DiagonalQuadratic("p", h, xstar)
    x1 = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)  # coordinate 3 starts at x*: g = 0
    xbar, iterates = a.projected_adagrad(problem.gradient, x1, 0.3, 0.3 * math.sqrt(2), 50)
    assert torch.all(torch.isfinite(iterates))
    assert torch.all((iterates - x1).abs() <= 0.3 + 1e-15)
    assert torch.all(iterates[:, 2] == 0.0)  # a coordinate with only zero gradients never moves
    assert_close(xbar, iterates.mean(0), rtol=0, atol=1e-15)


def test_restart_is_scale_free_under_random_rescalings():
    gen = torch.Generator().manual_seed(3)
    d = 5
    h = torch.rand(d, generator=gen, dtype=torch.float64) + 0.5
    lam = 10 ** (8 * torch.rand(d, generator=gen, dtype=torch.float64) - 4)  # 1e-4 .. 1e4
    xstar = torch.randn(d, generator=gen, dtype=torch.float64)
    x0 = xstar + torch.rand(d, generator=gen, dtype=torch.float64)
    d_inf = float((x0 - xstar).abs().max())
    runs = [
        a.adagrad_with_restart(DiagonalQuadratic("p", hh, xstar).gradient, x0, d_inf, 16, 6)
        for hh in (h, lam * h)
    ]
    (out1, it1), (out2, it2) = runs
    assert out1.shape == (7, d) and it1.shape == (6 * 16 + 1, d)
    assert_close(it1, it2, rtol=1e-12, atol=1e-14)
    assert_close(out1, out2, rtol=1e-12, atol=1e-14)


def test_save_writes_json_and_png(result, tmp_path):
    paths = a.save_adagrad_restart(result, tmp_path)
    assert [p.name for p in paths] == ["adagrad_restart.json", "adagrad_restart.png"]
    data = json.loads(paths[0].read_text())
    assert data["adagrad_iters"] == result.adagrad_iters
    assert len(data["adagrad_outputs"]["kappa=1"]) == result.config.rounds + 1
    assert len(data["gd_at_rounds"]["kappa=1e5"]) == result.config.rounds + 1
    assert paths[1].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "kwargs", [{"dim": 1}, {"round_length": 0}, {"iters": 100}, {"target": -1.0}, {"gd_lrs": ()}]
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        a.AdaGradRestartConfig(**kwargs)


def test_budget_is_whole_rounds():
    config = a.AdaGradRestartConfig(round_length=40, iters=130)
    assert (config.T, config.rounds, config.budget) == (40, 3, 120)
