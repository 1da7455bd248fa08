"""The optimizers where users put a torch.optim.AdamW: LR schedulers, GradScaler, checkpoints, compile.

Each client runs the package optimizer in the client's own loop and compares it with the float64
reference (``tests/reference/adam_family.py``, fed the hyperparameters each step actually used),
with torch.optim.AdamW where the math is the same, or with an uninterrupted run.
"""

from __future__ import annotations

import copy
import io
import math
import shutil

import pytest
import torch
from torch.optim import lr_scheduler as sch

import scalefree.optim as sfo
from tests.helpers import assert_close
from tests.reference.adam_family import NAMES, run_reference

F64 = torch.float64
SHAPES = [(4, 3), (5,), (2, 2, 3)]
LRS = (1e-2, 3e-3)  # alpha of each of the two groups
# lambda per convention, chosen so that s is a few percent per step in both.
WDS = {"schedule": (0.05, 0.2), "lr": (2.0, 10.0)}
CONVENTIONS = ("schedule", "lr")
TOL = dict(rtol=1e-9, atol=1e-12)  # package (torch kernels) vs float64 reference
EXACT = dict(rtol=0.0, atol=0.0)  # the same code on the same numbers: bitwise
STEPS = 30


def make_init(seed: int = 0, dtype=F64) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES] for _ in LRS]


def grad_stream(params, seed: int = 1):
    """An endless sequence of random gradients, one list per group, the same for every run."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield [
            [torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.1 for p in grp]
            for grp in params
        ]


def set_grads(params, grads) -> None:
    for grp, gs in zip(params, grads):
        for p, g in zip(grp, gs):
            p.grad = g.clone()


def leaves(init) -> list[list[torch.Tensor]]:
    return [[t.clone().requires_grad_(True) for t in grp] for grp in init]


def build(name, params, convention=None, *, lrs=LRS, wds=None, **kw):
    """The package optimizer over two groups with their own lr (alpha) and lambda."""
    conv = {} if convention is None else {"decay_convention": convention}
    wds = wds if wds is not None else WDS[convention or "lr"]
    groups = [{"params": p, "lr": lr, "weight_decay": wd} for p, lr, wd in zip(params, lrs, wds)]
    return getattr(sfo, name)(groups, **conv, **kw)


def assert_params_equal(actual, expected, **tol) -> None:
    for ga, ge in zip(actual, expected):
        for a, e in zip(ga, ge):
            assert_close(a.detach(), e.detach(), **tol)


# ------------------------------------------------------------------------ LR schedulers

SCHEDULERS = {
    "LambdaLR": lambda o, n: sch.LambdaLR(o, lambda t: 1.0 + 0.5 * math.sin(t)),  # also above alpha
    "StepLR": lambda o, n: sch.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda o, n: sch.MultiStepLR(o, milestones=[5, 12], gamma=0.3),
    "ExponentialLR": lambda o, n: sch.ExponentialLR(o, gamma=0.93),
    "PolynomialLR": lambda o, n: sch.PolynomialLR(o, total_iters=n, power=2.0),
    "CosineAnnealingLR": lambda o, n: sch.CosineAnnealingLR(o, T_max=n),
    # OneCycleLR writes initial_lr = max_lr / div_factor and cycles beta1 through group["betas"].
    "OneCycleLR": lambda o, n: sch.OneCycleLR(o, max_lr=list(LRS), total_steps=n + 1),
    # CyclicLR starts at base_lr (which also becomes initial_lr) and cycles beta1 as well.
    "CyclicLR": lambda o, n: sch.CyclicLR(
        o, base_lr=[lr / 10 for lr in LRS], max_lr=list(LRS), step_size_up=5
    ),
    "CosineAnnealingWarmRestarts": lambda o, n: sch.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2),
    "SequentialLR": lambda o, n: sch.SequentialLR(
        o,
        [sch.LinearLR(o, start_factor=0.1, total_iters=5), sch.CosineAnnealingLR(o, T_max=n - 5)],
        milestones=[5],
    ),
    "ReduceLROnPlateau": lambda o, n: sch.ReduceLROnPlateau(o, factor=0.5, patience=2),
}


def run_with_scheduler(name, convention, sched_name, steps=STEPS, seed=0):
    """Train with the scheduler; record the lr and betas of every group just before each step."""
    init = make_init(seed)
    params = leaves(init)
    opt = build(name, params, convention)
    sched = SCHEDULERS[sched_name](opt, steps)
    stream = grad_stream(params, seed + 1)
    rec = dict(grads=[], lrs=[], betas=[])
    for _ in range(steps):
        grads = next(stream)
        set_grads(params, grads)
        rec["grads"].append(grads)
        rec["lrs"].append([float(g["lr"]) for g in opt.param_groups])
        rec["betas"].append([tuple(float(b) for b in g["betas"]) for g in opt.param_groups])
        opt.step()
        if isinstance(sched, sch.ReduceLROnPlateau):
            sched.step(1.0)  # a loss that never improves: the lr halves every 3 steps
        else:
            sched.step()
    return init, params, opt, rec


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sched_name", list(SCHEDULERS))
def test_lr_scheduler_matches_reference(sched_name, name, convention):
    init, params, opt, rec = run_with_scheduler(name, convention, sched_name)
    # The scheduler did change the lr, so the decay strength s moved with it.
    assert len({lrs[0] for lrs in rec["lrs"]}) >= 3, rec["lrs"]
    ref = run_reference(
        name,
        init,
        alphas=LRS,  # the lr each group was built with, whatever the scheduler writes
        weight_decays=WDS[convention],
        grads=rec["grads"],
        lrs=rec["lrs"],
        betas=rec["betas"],
        decay_convention=convention,
    )
    for grp, rg in zip(params, ref.groups):
        for i, p in enumerate(grp):
            assert_close(p.detach(), rg.params[i], **TOL, msg=f"{sched_name} group param {i}")
            assert_close(opt.state[p]["exp_avg"], rg.m[i], **TOL)
            assert int(opt.state[p]["step"]) == rg.t == STEPS


@pytest.mark.parametrize("sched_name", ["OneCycleLR", "CyclicLR"])
def test_alpha_is_the_built_lr_not_initial_lr(sched_name):
    """These schedulers write initial_lr != the built lr; alpha stays the built lr."""
    _, _, opt, _ = run_with_scheduler("AdamW", "schedule", sched_name, steps=3)
    for g, lr in zip(opt.param_groups, LRS):
        assert g["initial_lr"] != pytest.approx(lr)  # the trap this test is about is present
        assert g["alpha"] == pytest.approx(lr)


def _onecycle_run(opt_factory, steps=40):
    """The issue's probe: 1000 coordinates, loss ||x||^2 / 2, OneCycleLR(max_lr=1e-3)."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=F64)
    p = x.clone().requires_grad_(True)
    opt = opt_factory([p])
    sched = sch.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)
    for _ in range(steps):
        p.grad = p.detach().clone()
        opt.step()
        sched.step()
    return x, p.detach()


def test_onecycle_adamw_equals_torch_adamw():
    """Issue 9 regression: the same arguments as torch.optim.AdamW give torch's result."""
    x0, ours = _onecycle_run(lambda p: sfo.AdamW(p, lr=1e-3, weight_decay=0.01))
    _, theirs = _onecycle_run(lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01))
    assert_close(ours, theirs, **TOL)
    assert 0.9 * float(x0.norm()) < float(ours.norm()) < float(x0.norm())  # ~31.6, not 0.14


def test_onecycle_schedule_convention_uses_the_built_lr_as_alpha():
    """Paper's convention: s = lambda lr_t / alpha with alpha = 1e-3 (not OneCycle's 4e-5),
    which is torch AdamW with weight_decay = lambda / alpha."""
    lam, alpha = 0.01, 1e-3
    _, ours = _onecycle_run(
        lambda p: sfo.AdamW(p, lr=alpha, weight_decay=lam, decay_convention="schedule")
    )
    _, theirs = _onecycle_run(lambda p: torch.optim.AdamW(p, lr=alpha, weight_decay=lam / alpha))
    assert_close(ours, theirs, **TOL)


def test_scheduler_pushing_s_to_one_raises_before_changing_anything():
    """lr convention, lambda = 5: s = 0.5 at lr 0.1; a scheduler tripling the lr makes s = 1.5."""
    p = torch.randn(6, dtype=F64, requires_grad=True)
    opt = sfo.AdamW([p], lr=0.1, weight_decay=5.0, decay_convention="lr")
    sched = sch.LambdaLR(opt, lambda t: 1.0 if t == 0 else 3.0)
    p.grad = torch.ones_like(p)
    opt.step()
    sched.step()
    before_p, before_state = p.detach().clone(), copy.deepcopy(opt.state_dict()["state"])
    p.grad = torch.ones_like(p)
    with pytest.raises(ValueError):
        opt.step()
    assert_close(p.detach(), before_p, **EXACT)
    after = opt.state_dict()["state"]
    for k, st in before_state.items():
        for key, v in st.items():
            assert_close(after[k][key], v, **EXACT, msg=key)


# ------------------------------------------------------------------------ GradScaler


@pytest.mark.parametrize("name", NAMES)
def test_grad_scaler_skips_inf_step_then_matches_unscaled_run(name):
    init = make_init(2)
    scaled, plain = leaves(init), leaves(init)
    opt, opt_plain = build(name, scaled), build(name, plain)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    stream = grad_stream(scaled, 3)
    bad_step = 4
    for t in range(10):
        grads = next(stream)
        # loss = sum <G, x>: its gradient is G, and scale * G exactly (the scale is a power of 2).
        loss = sum((p * g).sum() for grp, gs in zip(scaled, grads) for p, g in zip(grp, gs))
        scaler.scale(loss).backward()
        if t == bad_step:
            scaled[1][0].grad[0, 0] = float("inf")
            before = [[p.detach().clone() for p in grp] for grp in scaled]
            state_before = copy.deepcopy(opt.state_dict()["state"])
            scale_before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        for grp in scaled:
            for p in grp:
                p.grad = None
        if t == bad_step:
            assert scaler.get_scale() == scale_before / 2
            assert_params_equal(scaled, before, **EXACT)
            state_after = opt.state_dict()["state"]
            for k, st in state_before.items():
                for key, v in st.items():
                    assert_close(state_after[k][key], v, **EXACT, msg=key)
        else:
            set_grads(plain, grads)
            opt_plain.step()
    assert scaler.get_scale() == 2.0**9
    assert_params_equal(scaled, plain, **TOL)
    assert int(opt.state[scaled[0][0]]["step"]) == 9


# ------------------------------------------------------------------------ state dicts


def _train(opt, params, stream, steps, sched=None):
    for _ in range(steps):
        set_grads(params, next(stream))
        opt.step()
        if sched is not None:
            sched.step()


def _cosine(opt):
    return sch.CosineAnnealingLR(opt, T_max=20)


def _torch_adamw(params, **kw):
    groups = [{"params": p, "lr": lr, "weight_decay": 0.05} for p, lr in zip(params, LRS)]
    return torch.optim.AdamW(groups, **kw)


def _sf_adamw(params, **kw):
    groups = [{"params": p, "lr": lr, "weight_decay": 0.05} for p, lr in zip(params, LRS)]
    return sfo.AdamW(groups, **kw)


@pytest.mark.parametrize(
    "first,second",
    [(_torch_adamw, _sf_adamw), (_sf_adamw, _torch_adamw)],
    ids=["torch_to_scalefree", "scalefree_to_torch"],
)
def test_adamw_state_dict_crosses_between_torch_and_scalefree(first, second):
    """Resume a checkpoint of one AdamW in the other (optimizer + scheduler state): the run equals
    an uninterrupted torch.optim.AdamW run."""
    init = make_init(4)
    whole = leaves(init)
    opt_whole = _torch_adamw(whole)
    _train(opt_whole, whole, grad_stream(whole, 5), 12, _cosine(opt_whole))

    params = leaves(init)
    stream = grad_stream(params, 5)
    opt_a = first(params)
    sched_a = _cosine(opt_a)
    _train(opt_a, params, stream, 5, sched_a)
    ckpt = {"opt": opt_a.state_dict(), "sched": sched_a.state_dict()}
    opt_b = second(params)
    sched_b = _cosine(opt_b)  # the usual resume order: build, then load both
    opt_b.load_state_dict(ckpt["opt"])
    sched_b.load_state_dict(ckpt["sched"])
    _train(opt_b, params, stream, 7, sched_b)
    assert_params_equal(params, whole, **TOL)
    for p, q in zip(params[0], whole[0]):
        assert_close(opt_b.state[p]["exp_avg_sq"], opt_whole.state[q]["exp_avg_sq"], **TOL)
        assert int(opt_b.state[p]["step"]) == 12


@pytest.mark.parametrize("name", NAMES)
def test_older_state_dict_without_new_keys_and_float_steps_loads(name):
    """A state dict lacking alpha / decay_convention / fused / maximize, with plain-number steps,
    loads into an optimizer built the same way and continues as if never interrupted."""
    init = make_init(6)
    whole = leaves(init)
    opt_whole = build(name, whole)
    _train(opt_whole, whole, grad_stream(whole, 7), 10)

    params = leaves(init)
    stream = grad_stream(params, 7)
    opt = build(name, params)
    _train(opt, params, stream, 4)
    sd = copy.deepcopy(opt.state_dict())
    for g in sd["param_groups"]:
        for key in ("alpha", "decay_convention", "fused", "maximize"):
            g.pop(key, None)
    for st in sd["state"].values():
        st["step"] = float(st["step"])
    fresh = build(name, params)
    fresh.load_state_dict(sd)
    _train(fresh, params, stream, 6)
    assert_params_equal(params, whole, **TOL)
    st = fresh.state[params[0][0]]["step"]
    assert torch.is_tensor(st) and int(st) == 10


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", NAMES)
def test_weights_only_checkpoint_and_deepcopy_resume_identically(name, convention):
    init = make_init(8)
    whole = leaves(init)
    opt_whole = build(name, whole, convention)
    _train(opt_whole, whole, grad_stream(whole, 9), 10, _cosine(opt_whole))

    params = leaves(init)
    stream = grad_stream(params, 9)
    opt = build(name, params, convention)
    sched = _cosine(opt)
    _train(opt, params, stream, 4, sched)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # plain data only: no pickled code

    # deepcopy of (params, optimizer) continues on its own copies of the parameters.
    params_copy, opt_copy = copy.deepcopy((params, opt))
    sched_copy = _cosine(opt_copy)
    sched_copy.load_state_dict(sched.state_dict())

    resumed = build(name, params, convention)
    sched_r = _cosine(resumed)
    resumed.load_state_dict(ckpt["opt"])
    sched_r.load_state_dict(ckpt["sched"])
    tail = [next(stream) for _ in range(6)]
    for grads in tail:
        set_grads(params, grads)
        set_grads(params_copy, grads)
        resumed.step()
        opt_copy.step()
        sched_r.step()
        sched_copy.step()
    assert_params_equal(params, whole, **EXACT)
    assert_params_equal(params_copy, whole, **EXACT)


# ------------------------------------------------------------------------ torch.compile


def _have_cxx() -> bool:
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


COMPILE_MODES = {  # id -> (optimizer keyword arguments, tensor lr?)
    "default-tensor-lr": ({}, True),  # torch's recipe for a compiled step driven by a scheduler
    "default-float-lr": ({}, False),
    "foreach-float-lr": ({"foreach": True}, False),  # a tensor lr needs capturable with foreach
}


@pytest.mark.skipif(not _have_cxx(), reason="inductor's CPU backend needs a C++ compiler")
@pytest.mark.parametrize("mode", list(COMPILE_MODES))
@pytest.mark.parametrize("name", NAMES)
def test_compiled_step_matches_eager(name, mode):
    """torch.compile (inductor) of a function calling opt.step(), a scheduler changing the lr every
    step: the same parameters as eager. With a tensor lr (which the scheduler updates in place)
    nothing recompiles once the state exists; a float lr may recompile (torch.optim.AdamW does
    too under inductor) but must stay correct.
    """
    from torch._dynamo.testing import CompileCounterWithBackend

    kw, tensor_lr = COMPILE_MODES[mode]
    torch._dynamo.reset()
    init = [make_init(10, dtype=torch.float32)[0][:2]]  # two tiny tensors: short compile times
    eager, comp = leaves(init), leaves(init)
    opt_e = getattr(sfo, name)(eager[0], lr=1e-2, weight_decay=0.5, **kw)
    lr_c = torch.tensor(1e-2) if tensor_lr else 1e-2
    opt_c = getattr(sfo, name)(comp[0], lr=lr_c, weight_decay=0.5, **kw)
    sched_e, sched_c = sch.CosineAnnealingLR(opt_e, T_max=8), sch.CosineAnnealingLR(opt_c, T_max=8)
    counter = CompileCounterWithBackend("inductor")

    @torch.compile(backend=counter)
    def compiled_step():
        opt_c.step()

    stream = grad_stream(eager, 11)
    frames = []
    for _ in range(5):
        grads = next(stream)
        set_grads(eager, grads)
        set_grads(comp, grads)
        opt_e.step()
        compiled_step()
        sched_e.step()
        sched_c.step()
        frames.append(counter.frame_count)
    assert torch.is_tensor(opt_c.param_groups[0]["lr"]) == tensor_lr
    assert_params_equal(comp, eager)
    if tensor_lr:
        assert frames[-1] == frames[2], f"recompiled while the lr changed: frames per step {frames}"
