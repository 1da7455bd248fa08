"""The Adam family against the float64 reference, torch.optim closed forms, and its properties."""

from __future__ import annotations

import io
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalefree.optim import (
    OPTIMIZERS,
    AdamFamily,
    AdamL2,
    AdamProx,
    AdamProxD,
    AdamProxL1,
    AdamProxL2,
    AdamW,
    build_optimizer,
)
from scalefree.optim.scale_free import max_relative_difference
from tests.helpers import assert_close
from tests.reference.adam_family import NAMES, ReferenceAdam, RefGroup

F64 = torch.float64
SHAPES = [(4, 3), (5,), (2, 2, 3)]  # per group: a matrix, a vector, a 3-d tensor
FAMILY = OPTIMIZERS.names("adam_family")


def make_params(seed: int, dtype=F64) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=g, dtype=dtype) for s in SHAPES] for _ in range(2)]


def run_pair(
    name,
    *,
    steps=100,
    amsgrad=False,
    maximize=False,
    eps=1e-8,
    convention="schedule",
    impl=None,
    prox_norm="group",
    lrs=(1e-2, 3e-3),
    wds=(0.05, 0.2),
    seed=0,
    scheduler=True,
    zero_coord=False,
):
    """Run the package optimizer and the reference side by side on the same random gradients."""
    init = make_params(seed)
    params = [[t.clone().requires_grad_(True) for t in grp] for grp in init]
    ref_groups = [
        RefGroup([t.clone() for t in grp], alpha=lr, lr=lr, weight_decay=wd)
        for grp, lr, wd in zip(init, lrs, wds)
    ]
    extra = {"prox_norm": prox_norm} if name == "AdamProxL2" else {}
    if impl == "fused":
        extra["fused"] = True
    elif impl == "foreach":
        extra["foreach"] = True
    opt = OPTIMIZERS.get(name).build(
        [{"params": p, "lr": lr, "weight_decay": wd} for p, lr, wd in zip(params, lrs, wds)],
        lr=lrs[0],
        eps=eps,
        amsgrad=amsgrad,
        maximize=maximize,
        decay_convention=convention,
        **extra,
    )
    ref = ReferenceAdam(
        name,
        ref_groups,
        eps=eps,
        amsgrad=amsgrad,
        maximize=maximize,
        decay_convention=convention,
        prox_norm=prox_norm,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if scheduler else None
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        grads = []
        for grp in params:
            gs = [torch.randn(p.shape, generator=gen, dtype=F64) * 0.1 for p in grp]
            if zero_coord:
                gs[0][0, 0] = 0.0  # a coordinate whose gradient is always 0: v = 0, 0/0 := 0
            for p, gr in zip(grp, gs):
                p.grad = gr.clone()
            grads.append(gs)
        opt.step()
        ref.step(grads)
        if sched is not None:
            sched.step()
            for rg, pg in zip(ref.groups, opt.param_groups):
                rg.lr = pg["lr"]  # the reference reads the scheduler's lr, computes eta itself
    return opt, params, ref


def assert_matches(opt, params, ref):
    for grp, rg in zip(params, ref.groups):
        for i, p in enumerate(grp):
            assert_close(p.detach(), rg.params[i], rtol=1e-9, atol=1e-12)
            st = opt.state[p]
            assert_close(st["exp_avg"], rg.m[i], rtol=1e-9, atol=1e-14)
            assert_close(st["exp_avg_sq"], rg.v[i], rtol=1e-9, atol=1e-16)
            if ref.amsgrad:
                assert_close(st["max_exp_avg_sq"], rg.vmax[i], rtol=1e-9, atol=1e-16)
            assert int(st["step"]) == rg.t


@pytest.mark.parametrize(
    "name,amsgrad,maximize,eps,convention",
    list(itertools.product(NAMES, [False, True], [False, True], [0.0, 1e-8], ["schedule", "lr"])),
)
def test_matches_reference(name, amsgrad, maximize, eps, convention):
    opt, params, ref = run_pair(
        name, amsgrad=amsgrad, maximize=maximize, eps=eps, convention=convention
    )
    assert_matches(opt, params, ref)


@pytest.mark.parametrize("name,impl", list(itertools.product(NAMES, ["fused", "foreach"])))
def test_fused_and_foreach_paths_match_reference(name, impl):
    opt, params, ref = run_pair(name, impl=impl, steps=50)
    assert_matches(opt, params, ref)


def test_prox_l2_per_tensor_norm_matches_reference():
    opt, params, ref = run_pair("AdamProxL2", prox_norm="tensor", wds=(0.5, 0.95))
    assert_matches(opt, params, ref)


@pytest.mark.parametrize("name", NAMES)
def test_eps0_zero_gradient_coordinate_stays_finite(name):
    opt, params, ref = run_pair(name, eps=0.0, steps=20, zero_coord=True)
    assert all(torch.isfinite(p).all() for grp in params for p in grp)
    assert_matches(opt, params, ref)


# ---------------------------------------------------------------- closed forms vs torch.optim


def _trajectories(make_a, make_b, steps=60, seed=3, scheduler=True):
    init = make_params(seed)[0]
    pa = [t.clone().requires_grad_(True) for t in init]
    pb = [t.clone().requires_grad_(True) for t in init]
    oa, ob = make_a(pa), make_b(pb)
    sa = torch.optim.lr_scheduler.CosineAnnealingLR(oa, T_max=steps) if scheduler else None
    sb = torch.optim.lr_scheduler.CosineAnnealingLR(ob, T_max=steps) if scheduler else None
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for a, b in zip(pa, pb):
            g = torch.randn(a.shape, generator=gen, dtype=F64)
            a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
        if scheduler:
            sa.step()
            sb.step()
    return pa, pb


# C-AdamW masks the Adam step itself, so at lambda = 0 it is not Adam (test_decay_rules.py checks
# it against its float64 reference instead).
UNMASKED = [n for n in FAMILY if n != "CAdamW"]


@pytest.mark.parametrize("name", UNMASKED)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_lambda_zero_equals_torch_adam(name, amsgrad):
    pa, pb = _trajectories(
        lambda p: OPTIMIZERS.get(name).build(p, lr=1e-2, weight_decay=0.0, amsgrad=amsgrad),
        lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=amsgrad),
    )
    for a, b in zip(pa, pb):
        assert_close(a.detach(), b.detach())


def test_adam_l2_equals_torch_adam_weight_decay():
    pa, pb = _trajectories(
        lambda p: AdamL2(p, lr=1e-2, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1),
    )
    for a, b in zip(pa, pb):
        assert_close(a.detach(), b.detach())


def test_adamw_lr_convention_equals_torch_adamw():
    pa, pb = _trajectories(
        lambda p: AdamW(p, lr=1e-2, weight_decay=0.1, decay_convention="lr"),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    )
    for a, b in zip(pa, pb):
        assert_close(a.detach(), b.detach())


def test_adamw_schedule_convention_equals_torch_adamw_with_lambda_over_alpha():
    lr, lam = 1e-2, 1e-3
    pa, pb = _trajectories(
        lambda p: AdamW(p, lr=lr, weight_decay=lam, decay_convention="schedule"),
        lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=lam / lr),
    )
    for a, b in zip(pa, pb):
        assert_close(a.detach(), b.detach())


def _one_step(cls, x0, g, lr, lam, **kw):
    """First step from fresh state with eps = 0: m_hat / sqrt(v_hat) = sign(g), so u = lr sign(g);
    the paper's convention, so s = lambda on the first step."""
    x = [t.clone().requires_grad_(True) for t in x0]
    opt = cls(x, lr=lr, weight_decay=lam, eps=0.0, decay_convention="schedule", **kw)
    for p, gr in zip(x, g):
        p.grad = gr.clone()
    opt.step()
    return [p.detach() for p in x]


def test_prox_operators_closed_forms():
    gen = torch.Generator().manual_seed(7)
    x0 = [torch.randn(6, generator=gen, dtype=F64), torch.randn(3, 2, generator=gen, dtype=F64)]
    g = [torch.randn(t.shape, generator=gen, dtype=F64) for t in x0]
    lr, lam = 0.1, 0.3
    y = [x - lr * torch.sign(gr) for x, gr in zip(x0, g)]
    # AdamProx: y / (1 + lambda)
    for got, yi in zip(_one_step(AdamProx, x0, g, lr, lam), y):
        assert_close(got, yi / (1 + lam))
    # AdamProxL1: soft threshold at lambda
    for got, yi in zip(_one_step(AdamProxL1, x0, g, lr, lam), y):
        assert_close(got, torch.sign(yi) * torch.clamp(yi.abs() - lam, min=0))
    # AdamProxL2 (group): block soft threshold of the concatenation
    norm = math.sqrt(sum(float(yi.square().sum()) for yi in y))
    for got, yi in zip(_one_step(AdamProxL2, x0, g, lr, lam), y):
        assert_close(got, max(1 - lam / norm, 0) * yi)
    # ... and with a threshold above the norm everything is zeroed (small x, so that s < 1)
    small = [x / (20 * norm) for x in x0]
    small_norm = math.sqrt(
        sum(float((x - 1e-3 * torch.sign(gr)).square().sum()) for x, gr in zip(small, g))
    )
    assert small_norm < 0.5
    for got in _one_step(AdamProxL2, small, g, 1e-3, 2 * small_norm):
        assert torch.count_nonzero(got) == 0
    # AdamProxL2 (tensor): per tensor norms
    for got, yi in zip(_one_step(AdamProxL2, x0, g, lr, lam, prox_norm="tensor"), y):
        assert_close(got, max(1 - lam / float(yi.norm()), 0) * yi)
    # AdamProxD: D = |g| after one step (v_hat = g^2), m_hat = g
    for got, x, gr in zip(_one_step(AdamProxD, x0, g, lr, lam), x0, g):
        assert_close(got, (gr.abs() * x - lr * gr) / (gr.abs() + lam))
    # AdamW: (1 - lambda) x - lr sign(g)
    for got, x, gr in zip(_one_step(AdamW, x0, g, lr, lam), x0, g):
        assert_close(got, (1 - lam) * x - lr * torch.sign(gr))


def test_adamw_and_adamprox_differ_by_second_order_terms():
    # Exactly: AdamW - AdamProx = -(s^2 x + s u) / (1 + s); with u = O(lr) both terms are
    # second order in the small quantities (s, lr): the paper's "AdamW ~ AdamProx".
    gen = torch.Generator().manual_seed(1)
    x0 = [torch.randn(50, generator=gen, dtype=F64)]
    g = [torch.randn(50, generator=gen, dtype=F64)]
    lr = 0.01
    u = lr * torch.sign(g[0])
    for lam in (1e-2, 5e-3, 1e-4):
        a = _one_step(AdamW, x0, g, lr, lam)[0]
        b = _one_step(AdamProx, x0, g, lr, lam)[0]
        assert_close(a - b, -(lam**2 * x0[0] + lam * u) / (1 + lam))


# ---------------------------------------------------------------- properties

SCALE_FREE = [n for n in FAMILY if OPTIMIZERS.get(n).scale_free]


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(SCALE_FREE),
    seed=st.integers(0, 10_000),
    lam=st.floats(1e-4, 0.5),
    lr=st.floats(1e-4, 0.1),
)
def test_scale_free_variants_are_scale_free(name, seed, lam, lr):
    diff = max_relative_difference(
        lambda p: build_optimizer(name, p, lr=lr, weight_decay=lam, eps=0.0), steps=30, seed=seed
    )
    assert diff < 1e-10


@pytest.mark.parametrize("name", ["AdamL2", "AdamProxD", "SGD"])
def test_non_scale_free_optimizers_are_detected(name):
    opts = {"eps": 0.0} if name != "SGD" else {}
    diff = max_relative_difference(
        lambda p: build_optimizer(name, p, lr=1e-2, weight_decay=0.05, **opts), steps=50
    )
    assert diff > 1e-3


@pytest.mark.parametrize("name", FAMILY)
def test_state_dict_round_trip_continues_identically(name):
    def fresh(params):
        opt = OPTIMIZERS.get(name).build(params, lr=1e-2, weight_decay=0.1, amsgrad=True)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)

    init = make_params(5)[0]
    pa = [t.clone().requires_grad_(True) for t in init]
    oa, sa = fresh(pa)
    gen = torch.Generator().manual_seed(0)
    grads = [[torch.randn(p.shape, generator=gen, dtype=F64) for p in pa] for _ in range(40)]

    def run(params, opt, sched, gs):
        for step_grads in gs:
            for p, g in zip(params, step_grads):
                p.grad = g.clone()
            opt.step()
            sched.step()

    run(pa, oa, sa, grads[:20])
    # Through bytes, as a checkpoint does: state_dict() holds references to live tensors.
    buf = io.BytesIO()
    torch.save({"opt": oa.state_dict(), "sched": sa.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    saved_opt, saved_sched = saved["opt"], saved["sched"]
    saved_params = [p.detach().clone() for p in pa]
    run(pa, oa, sa, grads[20:])

    pb = [t.clone().requires_grad_(True) for t in saved_params]
    ob, sb = fresh(pb)
    ob.load_state_dict(saved_opt)
    sb.load_state_dict(saved_sched)
    assert ob.param_groups[0]["alpha"] == 1e-2
    run(pb, ob, sb, grads[20:])
    for a, b in zip(pa, pb):
        assert torch.equal(a.detach(), b.detach())


@pytest.mark.parametrize("name", FAMILY)
def test_converges_on_quadratic(name):
    # min 1/2 ||x - c||^2 in float32: lambda = 0 reaches c; tiny lambda stays close to it.
    c = torch.linspace(-2, 2, 20)
    for lam in (0.0, 1e-4):
        x = torch.zeros(20, requires_grad=True)
        opt = OPTIMIZERS.get(name).build([x], lr=0.1, weight_decay=lam)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=500)
        for _ in range(500):
            opt.zero_grad()
            (0.5 * (x - c).square().sum()).backward()
            opt.step()
            sched.step()
        assert float((x.detach() - c).abs().max()) < (1e-2 if lam == 0 else 0.1)


@pytest.mark.parametrize("name", FAMILY)
def test_params_without_grad_are_skipped_and_closure_returns_loss(name):
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = OPTIMIZERS.get(name).build([a, b], lr=0.1, weight_decay=0.1)

    def closure():
        opt.zero_grad()
        loss = a.square().sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.detach()) == 3.0
    assert torch.equal(b.detach(), torch.ones(3)) and b not in opt.state
    assert not torch.equal(a.detach(), torch.ones(3))


@pytest.mark.parametrize("name", FAMILY)
def test_maximize_equals_minimizing_negative(name):
    def run(maximize):
        x = torch.linspace(-1, 1, 7, dtype=F64).requires_grad_(True)
        opt = OPTIMIZERS.get(name).build([x], lr=0.05, weight_decay=0.1, maximize=maximize)
        for _ in range(10):
            opt.zero_grad()
            f = (x**3 - x).sum()
            (f if maximize else -f).backward()
            opt.step()
        return x.detach()

    assert_close(run(True), run(False))


@pytest.mark.parametrize("name", FAMILY)
def test_adam_updates_is_the_adam_step(name):
    # With lambda = 0 every variant is Adam and the parameter moves by exactly -u.
    x = torch.randn(10, dtype=F64, requires_grad=True)
    opt = OPTIMIZERS.get(name).build([x], lr=0.01, weight_decay=0.0)
    for _ in range(3):
        before = x.detach().clone()
        x.grad = torch.randn(10, dtype=F64)
        opt.step()
        assert_close(before - x.detach(), opt.adam_updates()[x])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": float("nan")}, "Invalid learning rate: nan"),
        ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
        ({"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
        ({"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
        ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
        (
            {"decay_convention": "torch"},
            "Invalid decay_convention: 'torch' (expected 'schedule' or 'lr' or 'corrected')",
        ),
        ({"prox_norm": "layer"}, "Invalid prox_norm: 'layer' (expected 'group' or 'tensor')"),
        # torch.optim.Adam's type and message
        ({"foreach": True, "fused": True}, "`fused` and `foreach` cannot be `True` together."),
    ],
)
@pytest.mark.parametrize("name", FAMILY)
def test_invalid_arguments_raise_exact_messages(name, kwargs, message):
    kind = RuntimeError if "fused" in kwargs else ValueError
    with pytest.raises(kind) as err:
        OPTIMIZERS.get(name).build([torch.zeros(2, requires_grad=True)], **{"lr": 1e-3, **kwargs})
    assert str(err.value) == message


def test_float32_and_float64_agree():
    out = {}
    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(-1, 1, 9, dtype=dtype).requires_grad_(True)
        opt = AdamProxL2([x], lr=1e-2, weight_decay=0.1)
        for i in range(20):
            x.grad = torch.sin(torch.arange(9, dtype=dtype) + i)
            opt.step()
        out[dtype] = x.detach().double()
    assert_close(out[torch.float32], out[torch.float64], rtol=1e-5, atol=1e-6)


def test_per_group_alpha():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = AdamW(
        [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.001}],
        lr=0.5,
        weight_decay=0.1,
        decay_convention="schedule",
    )
    assert [g["alpha"] for g in opt.param_groups] == [0.1, 0.001]
    assert [opt.decay_strength(g) for g in opt.param_groups] == [pytest.approx(0.1)] * 2
    opt.param_groups[0]["lr"] = 0.05
    assert opt.decay_strength(opt.param_groups[0]) == pytest.approx(0.05)


class _ProxByHook(AdamFamily):
    """AdamProx written with the second hook only: a plain Adam step, then y / (1 + s)."""

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s):
        for p in params:
            p.div_(1 + s)


@pytest.mark.parametrize("convention", ["schedule", "lr"])
def test_a_new_rule_is_a_subclass_overriding_the_hooks(convention):
    """A subclass without a one-pass kernel takes torch's path plus its own _prox; AdamProx's
    folded form (hook 1) and this post-step form (hook 2) are the same rule."""
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(6, generator=gen, dtype=torch.float64) for _ in range(10)]
    out = []
    for cls in (AdamProx, _ProxByHook):
        x = torch.linspace(-1, 1, 6, dtype=torch.float64, requires_grad=True)
        opt = cls([x], lr=0.05, weight_decay=0.5, decay_convention=convention)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        for g in grads:
            x.grad = g.clone()
            opt.step()
            sched.step()
        out.append(x.detach())
    assert_close(out[1], out[0])
    assert type(opt).__name__ == "_ProxByHook"


def test_the_base_class_is_not_an_optimizer_by_itself():
    with pytest.raises(TypeError, match="use one of the named optimizers: AdamL2, AdamW, AdamProx"):
        AdamFamily([torch.zeros(1, requires_grad=True)])
