"""The decay-rules reference agrees with the family reference where the rules coincide, and with
hand-computed values where they do not (so the reference itself can be trusted)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import assert_close
from tests.reference.adam_family import run_reference
from tests.reference.decay_rules import (
    CAUTION_FLOOR,
    NAMES,
    ReferenceRules,
    caution_mask,
    run_rules,
    strength,
    weight_decay_for_timescale,
)


def _recording(steps=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    init = [
        [torch.randn(3, 4, generator=gen, dtype=torch.float64)],
        [torch.randn(5, generator=gen, dtype=torch.float64)],
    ]
    grads = [
        [
            [torch.randn(3, 4, generator=gen, dtype=torch.float64)],
            [torch.randn(5, generator=gen, dtype=torch.float64)],
        ]
        for _ in range(steps)
    ]
    lrs = [[0.1 * 0.7**t, 0.05 * 0.7**t] for t in range(steps)]
    return init, grads, lrs


@pytest.mark.parametrize("convention", ["schedule", "lr"])
@pytest.mark.parametrize("name", NAMES)
def test_matches_family_reference_without_new_options(name, convention):
    init, grads, lrs = _recording()
    kw = dict(
        alphas=[0.1, 0.05],
        weight_decays=[0.3, 0.2],
        grads=grads,
        lrs=lrs,
        decay_convention=convention,
        amsgrad=True,
    )
    ours = run_rules(name, init, **kw)
    family = run_reference(name, init, **kw)
    for g, f in zip(ours.groups, family.groups):
        for a, b in zip(g.params, f.params):
            assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_corrected_strength_and_timescale_closed_forms():
    assert strength(0.5, 0.02, 0.1, "corrected") == pytest.approx(0.5 * 0.02**2 / 0.1)
    # at lr_t = alpha the corrected strength equals torch's lambda * lr
    assert strength(0.5, 0.1, 0.1, "corrected") == pytest.approx(strength(0.5, 0.1, 0.1, "lr"))
    for convention in ("schedule", "lr", "corrected"):
        lam = weight_decay_for_timescale(10, 40, 0.002, convention)
        assert 1 / strength(lam, 0.002, 0.002, convention) == pytest.approx(400)
    assert weight_decay_for_timescale(10, 40, 0.002, "schedule") == pytest.approx(1 / 400)
    assert weight_decay_for_timescale(10, 40, 0.002, "lr") == pytest.approx(1 / (400 * 0.002))


def test_caution_mask_by_hand():
    u = torch.tensor([1.0, -2.0, 3.0, 4.0], dtype=torch.float64)
    m = torch.tensor([1.0, -1.0, 1.0, 0.0], dtype=torch.float64)
    g = torch.tensor([2.0, 1.0, 0.5, 1.0], dtype=torch.float64)  # agree, disagree, agree, m = 0
    assert_close(caution_mask(u, m, g), torch.tensor([2.0, 0.0, 6.0, 0.0], dtype=torch.float64))
    none = caution_mask(u, m, -m)  # no coordinate agrees: u is zeroed, the floor avoids 0/0
    assert torch.equal(none, torch.zeros(4, dtype=torch.float64)) and CAUTION_FLOOR == 1e-3


def test_cautious_decay_decays_only_where_update_and_weight_agree():
    x = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    g = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)  # first Adam step: u = lr * sign(g)
    ref = ReferenceRules("AdamW", [_group([x.clone()], 0.1, 0.5)], eps=0.0, cautious_decay=True)
    ref.step([[g]])
    s, u = 0.5, 0.1 * torch.sign(g)
    mask = (u * x >= 0).to(x.dtype)  # [1, 0, 0]
    assert_close(ref.groups[0].params[0], x - u - s * mask * x)


def _group(params, alpha, wd):
    from tests.reference.decay_rules import Group

    return Group(params, alpha, wd)
