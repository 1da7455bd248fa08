"""Grid expansion, the 1-5 per decade "next value", and the boundary-extension decision."""

from __future__ import annotations

import math

import pytest

from scalefree.errors import UsageError
from scalefree.rundir import DIVERGED_ERROR
from scalefree.sweep.grid import (
    PAPER_ETA0S,
    PAPER_WEIGHT_DECAYS,
    Axes,
    Extension,
    boundary_extension,
    make_sweep,
    mean_error,
    missing_points,
    new_points,
    next_grid_value,
)
from scalefree.sweep.runner import result_table
from scalefree.train.config import RunConfig
from tests.fakeruns import make_grid

BASE = RunConfig(model="ResNet56", batch_norm=False, train_epochs=7, loss_multiplier=10.0)


# ------------------------------------------------------------------------------------ expansion


def test_grid_is_the_full_product_with_every_other_setting_from_the_base():
    configs = make_sweep(BASE, ["AdamL2", "adamw"], [1e-3, 1e-4], [0, 5e-4, 1e-5], [0, 3]).configs()
    assert len(configs) == 2 * 2 * 3 * 2
    assert len({c.run_name() for c in configs}) == len(configs)
    assert {(c.optim_method, c.eta0, c.weight_decay, c.seed) for c in configs} == {
        (m, e, w, s)
        for m in ("AdamL2", "AdamW")
        for e in (1e-4, 1e-3)
        for w in (0.0, 1e-5, 5e-4)
        for s in (0, 3)
    }
    for c in configs:
        assert (c.model, c.batch_norm, c.train_epochs, c.loss_multiplier) == (
            "ResNet56", False, 7, 10.0,
        )  # fmt: skip
        # One init per seed by default: runs of a seed share the stored initial weights.
        assert c.init_seed is None and c.effective_init_seed == c.seed


def test_pinned_init_seed_is_shared_by_every_seed():
    configs = make_sweep(BASE.replace(init_seed=5), ["AdamW"], [1e-3], [0], [0, 1, 2]).configs()
    assert {c.effective_init_seed for c in configs} == {5}
    assert len({c.run_name() for c in configs}) == 3


def test_default_grid_is_the_papers():
    sweep = make_sweep(BASE)
    assert set(sweep.axes) == {"AdamL2", "AdamW"}
    assert sweep.axes["AdamW"] == Axes(PAPER_ETA0S, PAPER_WEIGHT_DECAYS)
    assert len(sweep.configs()) == 2 * 5 * 6


def test_values_are_sorted_and_deduplicated():
    sweep = make_sweep(BASE, ["AdamW", "AdamW"], [1e-3, 1e-4, 0.001], [5e-4, 0, 0.0], [1, 1, 0])
    assert sweep.axes == {"AdamW": Axes((1e-4, 1e-3), (0.0, 5e-4))}
    assert sweep.seeds == (1, 0)


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"methods": []}, "--optim-methods"),
        ({"methods": ["AdamNope"]}, "--optim-methods"),
        ({"eta0s": []}, "--eta0-vals"),
        ({"eta0s": [0.0]}, "--eta0-vals"),
        ({"eta0s": [-1e-3]}, "--eta0-vals"),
        ({"eta0s": [math.inf]}, "--eta0-vals"),
        ({"weight_decays": []}, "--weight-decay-vals"),
        ({"weight_decays": [-1e-4]}, "--weight-decay-vals"),
        ({"seeds": []}, "--seeds"),
        ({"seeds": [-1]}, "--seeds"),
    ],
)
def test_bad_grids_name_the_flag(kwargs, flag):
    with pytest.raises(UsageError, match=flag):
        make_sweep(BASE, **kwargs)


# ------------------------------------------------------------------------------------ next value


@pytest.mark.parametrize(
    ("x", "up", "expected"),
    [
        (1e-3, True, 5e-3),
        (5e-3, True, 1e-2),
        (5e-4, True, 1e-3),
        (1e-3, False, 5e-4),
        (5e-4, False, 1e-4),
        (1e-5, False, 5e-6),
        (5e-5, False, 1e-5),
        (0.05, True, 0.1),
        (1.0, True, 5.0),
        (2e-3, True, 5e-3),  # off the pattern: the nearest pattern value beyond it
        (2e-3, False, 1e-3),
        (0.3, False, 0.1),
    ],
)
def test_next_grid_value(x, up, expected):
    got = next_grid_value(x, up=up)
    assert got == expected  # exactly the float a user typing the value gets
    assert (got > x) if up else (got < x)


def test_next_grid_value_walks_the_pattern_exactly():
    x, seen = 1e-6, []
    for _ in range(8):
        x = next_grid_value(x, up=True)
        seen.append(x)
    assert seen == [5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2]
    for a, b in zip(reversed(seen[1:]), reversed(seen[:-1])):
        assert next_grid_value(a, up=False) == b


def test_next_grid_value_rejects_zero():
    with pytest.raises(ValueError):
        next_grid_value(0.0, up=True)


# ------------------------------------------------------------------------------------ extension

AXES = Axes((1e-4, 1e-3, 5e-3), (0.0, 1e-5, 1e-4))


def table_with_best(best: tuple[float, float], axes: Axes = AXES) -> dict:
    return {p: (0.1 if p == best else 0.3) for p in axes.points()}


@pytest.mark.parametrize(
    ("best", "eta0s", "wds", "edges"),
    [
        ((1e-3, 1e-5), (), (), ()),  # interior
        ((5e-3, 1e-5), (1e-2,), (), ("largest eta0",)),
        ((1e-4, 1e-5), (5e-5,), (), ("smallest eta0",)),
        ((1e-3, 1e-4), (), (5e-4,), ("largest weight decay",)),
        ((1e-3, 0.0), (), (), ()),  # weight decay 0 is not extended below
        ((5e-3, 1e-4), (1e-2,), (5e-4,), ("largest eta0", "largest weight decay")),
        ((1e-4, 0.0), (5e-5,), (), ("smallest eta0",)),
    ],
)
def test_boundary_extension_on_a_fake_table(best, eta0s, wds, edges):
    ext = boundary_extension(table_with_best(best), AXES)
    assert (ext.eta0s, ext.weight_decays, ext.edges) == (eta0s, wds, edges)
    assert bool(ext) == bool(eta0s or wds)
    assert ext.best == best


def test_a_positive_smallest_weight_decay_is_extended_below():
    axes = Axes((1e-4, 1e-3, 5e-3), (1e-5, 1e-4, 1e-3))
    ext = boundary_extension(table_with_best((1e-3, 1e-5), axes), axes)
    assert ext.weight_decays == (5e-6,) and ext.edges == ("smallest weight decay",)


def test_single_value_axes_are_never_extended():
    axes = Axes((1e-3,), (0.0,))
    assert not boundary_extension({(1e-3, 0.0): 0.2}, axes)
    axes = Axes((1e-4, 1e-3), (1e-4,))
    ext = boundary_extension({(1e-4, 1e-4): 0.3, (1e-3, 1e-4): 0.2}, axes)
    assert ext.eta0s == (5e-3,) and ext.weight_decays == ()


def test_diverged_points_are_never_best_and_all_diverged_is_not_extended():
    table = table_with_best((5e-3, 1e-4))
    table[(5e-3, 1e-4)] = DIVERGED_ERROR
    table[(1e-3, 1e-5)] = 0.2
    assert not boundary_extension(table, AXES)  # best is (1e-3, 1e-5), interior
    assert not boundary_extension(dict.fromkeys(AXES.points(), DIVERGED_ERROR), AXES)


def test_ties_go_to_the_smaller_eta0_then_weight_decay():
    table = dict.fromkeys(AXES.points(), 0.5)
    table[(1e-3, 1e-5)] = table[(5e-3, 1e-5)] = 0.1
    assert boundary_extension(table, AXES).best == (1e-3, 1e-5)


def test_apply_and_new_points_add_the_row_column_and_corner():
    ext = Extension((1e-2,), (5e-4,))
    grown = ext.apply(AXES)
    assert grown == Axes((1e-4, 1e-3, 5e-3, 1e-2), (0.0, 1e-5, 1e-4, 5e-4))
    added = new_points(AXES, grown)
    assert len(added) == 3 + 4 and (1e-2, 5e-4) in added
    assert not set(added) & set(AXES.points())


def test_mean_error_and_missing_points():
    done = {"status": "completed", "test_error": 0.2}
    assert mean_error([done, {"status": "completed", "test_error": 0.4}]) == pytest.approx(0.3)
    assert mean_error([done, {"status": "diverged", "test_error": None}]) == pytest.approx(
        (0.2 + DIVERGED_ERROR) / 2
    )
    assert mean_error([done, None]) is None
    table = {(1e-4, 0.0): 0.1, (1e-3, 0.0): None}
    missing = missing_points(table, Axes((1e-4, 1e-3), (0.0, 1e-4)))
    assert missing == [(1e-4, 1e-4), (1e-3, 0.0), (1e-3, 1e-4)]


def test_result_table_reads_a_fake_sweep_and_finds_the_edge(tmp_path):
    """make_grid writes the runs exactly as the trainer would; the sweep reads them back."""
    base = RunConfig(log_folder=str(tmp_path), model="ResNet20", batch_norm=False, train_epochs=3)
    sweep = make_sweep(base, ["AdamL2", "AdamW"], [1e-4, 1e-3], [0.0, 1e-4, 1e-3], [0, 1])

    def error(method, eta0, wd, seed):
        if method == "AdamL2" and eta0 == 1e-3 and wd == 1e-3:
            return "diverged"
        if method == "AdamW":  # best on the largest weight decay
            return 0.1 if wd == 1e-3 and eta0 == 1e-4 else 0.3 + 0.01 * seed
        return 0.1 if (eta0, wd) == (1e-3, 1e-4) else 0.2  # AdamL2: best on the largest eta0

    make_grid(tmp_path, ["AdamL2", "AdamW"], [1e-4, 1e-3], [0.0, 1e-4, 1e-3], [0, 1], error,
              model="ResNet20", batch_norm=False, epochs=3, with_stats=False)  # fmt: skip
    t = result_table(sweep, "AdamL2")
    assert t[(1e-3, 1e-3)] == DIVERGED_ERROR and t[(1e-3, 1e-4)] == pytest.approx(0.1)
    assert boundary_extension(t, sweep.axes["AdamL2"]).eta0s == (5e-3,)
    t = result_table(sweep, "AdamW")
    assert t[(1e-3, 0.0)] == pytest.approx(0.305)  # mean over the two seeds
    ext = boundary_extension(t, sweep.axes["AdamW"])
    assert ext.edges == ("smallest eta0", "largest weight decay")
    assert (ext.eta0s, ext.weight_decays) == ((5e-5,), (5e-3,))
