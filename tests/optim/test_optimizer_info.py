"""Our six optimizers through torch's own OptimizerInfo machinery, plus the drop-in guarantees.

The inputs and error inputs come from the installed torch (``torch.testing._internal.
common_optimizers``: torch's AdamW generators and its flag expansion); the checks are ours.
"""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
from torch.nn import Parameter
from torch.optim import lr_scheduler as sch

import scalefree.optim as sfo
from scalefree.optim import _torch_compat as tc
from tests.helpers import assert_close
from tests.reference.adam_family import NAMES, ReferenceAdam, RefGroup


def _import_torch_optimizer_db():
    """torch's test helpers import ``expecttest`` (a dev dependency of torch) at module level but
    the generators used here never touch it; without it installed, a stand-in base class lets
    them import instead of silently skipping this module."""
    try:
        import expecttest  # noqa: F401
    except ImportError:
        import sys
        import types
        import unittest

        stub = types.ModuleType("expecttest")
        stub.TestCase = unittest.TestCase
        sys.modules["expecttest"] = stub
    frozen = torch.backends.flags_frozen()
    from torch.testing._internal import common_optimizers

    # Importing torch's test utilities freezes torch.backends flags for the whole process
    # (common_utils calls disable_global_flags()); later tests in the same worker, such as the
    # trainer's cudnn settings, must still be able to set them.
    if not frozen and torch.backends.flags_frozen():
        torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    assert torch.backends.flags_frozen() == frozen
    return common_optimizers


common = _import_torch_optimizer_db()

F64 = torch.float64


def info(name: str):
    return common.OptimizerInfo(
        getattr(sfo, name),
        optim_inputs_func=common.optim_inputs_func_adamw,
        optim_error_inputs_func=common.optim_error_inputs_func_adamw,
        supported_impls=("foreach", "fused"),
        supports_fused_on=("cpu", "cuda"),
        supports_complex=False,
    )


def all_inputs(name: str):
    """torch's AdamW configs, each with foreach / fused off, foreach on, fused on."""
    return common._get_optim_inputs_including_global_cliquey_kwargs("cpu", F64, info(name))


def params_like(seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [
        Parameter(torch.randn(4, 3, generator=g, dtype=dtype)),
        Parameter(torch.randn(5, generator=g, dtype=dtype)),
    ]


def grads_for(params, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]


def run(opt, params, steps, seed=100):
    for i in range(steps):
        for p, gr in zip(params, grads_for(params, seed + i)):
            p.grad = gr.clone().to(p.dtype)
        opt.step()


def cases():
    return [(n, oi) for n in NAMES for oi in all_inputs(n)]


def case_id(c):
    return f"{c[0]}-{c[1].desc}"


# ----------------------------------------------------------------- torch's inputs and errors


@pytest.mark.parametrize("case", cases(), ids=case_id)
def test_state_dict_is_deterministic_and_resumes_identically(case):
    name, oi = case
    cls = getattr(sfo, name)
    pa = params_like()
    oa = cls(pa, **oi.kwargs)
    run(oa, pa, 3)
    buf = io.BytesIO()
    torch.save(oa.state_dict(), buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    pb = [Parameter(p.detach().clone()) for p in pa]
    ob = cls(pb, **oi.kwargs)
    ob.load_state_dict(saved)
    assert ob.state_dict()["param_groups"] == oa.state_dict()["param_groups"]
    run(oa, pa, 3, seed=200)
    run(ob, pb, 3, seed=200)
    for a, b in zip(pa, pb):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_error_inputs_from_torch(name):
    errors = info(name).optim_error_inputs_func("cpu", F64)
    assert len(errors) >= 10
    for err in errors:
        inp = err.optimizer_error_input
        params = inp.params if inp.params is not None else [Parameter(torch.randn(2, 2))]
        if err.error_type is UserWarning:
            with pytest.warns(UserWarning, match=err.error_regex):
                getattr(sfo, name)(params, **inp.kwargs)
            continue
        with pytest.raises(err.error_type, match=err.error_regex):
            getattr(sfo, name)(params, **inp.kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_more_torch_errors(name):
    cls = getattr(sfo, name)
    p = [Parameter(torch.randn(2))]
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        cls(p, foreach=True, fused=True)
    with pytest.raises(ValueError, match=r"Tensor betas\[1\] must be 1-element"):
        cls(p, betas=(torch.tensor(0.9), torch.tensor([0.9, 0.99])))
    meta = Parameter(torch.empty(3, device="meta"))
    meta.grad = torch.empty(3, device="meta")
    with pytest.raises(RuntimeError, match="`fused=True` requires all the params to be floating"):
        cls([meta], fused=True).step()
    ints = torch.zeros(3, dtype=torch.int64)
    ints.grad = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="but torch.int64 and cpu"):
        cls([ints], fused=True).step()


@pytest.mark.parametrize("case", cases(), ids=case_id)
def test_no_grad_is_a_no_op(case):
    name, oi = case
    params = params_like()
    before = [p.detach().clone() for p in params]
    opt = getattr(sfo, name)(params, **oi.kwargs)
    opt.step()
    assert len(opt.state) == 0
    for p, b in zip(params, before):
        assert torch.equal(p, b)


@pytest.mark.parametrize("name", NAMES)
def test_param_group_lr_and_weight_decay_are_per_group(name):
    cls = getattr(sfo, name)
    pa, pb = params_like(1), params_like(1)
    together = cls(
        [
            {"params": [pa[0]], "lr": 2e-2, "weight_decay": 0.3},
            {"params": [pa[1]], "lr": 5e-3, "weight_decay": 0.0},
        ],
        lr=1e-3,
    )
    first = cls([pb[0]], lr=2e-2, weight_decay=0.3)
    second = cls([pb[1]], lr=5e-3, weight_decay=0.0)
    for i in range(5):
        for a, b, g in zip(pa, pb, grads_for(pa, i)):
            a.grad, b.grad = g.clone(), g.clone()
        together.step()
        first.step()
        second.step()
    assert [g["alpha"] for g in together.param_groups] == [2e-2, 5e-3]
    for a, b in zip(pa, pb):
        assert torch.equal(a, b)


# ----------------------------------------------------------------- kernels


def layouts():
    """Contiguous, transposed (dense, permuted), a strided view, float32 next to float64."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 3, 2, generator=g, dtype=F64)
    return [
        torch.randn(6, 5, generator=g, dtype=F64),
        torch.randn(5, 7, generator=g, dtype=F64).t(),
        base[..., 0],
        torch.randn(9, generator=g, dtype=torch.float32),
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_default_foreach_fused_and_single_tensor_agree(name, amsgrad):
    results = {}
    for impl in ({"foreach": False}, {"foreach": True}, {}, {"fused": True}):
        tensors = layouts()
        keep = [0, 1, 3] if impl.get("fused") else [0, 1, 2, 3]  # fused=True refuses the view
        params = [Parameter(tensors[i].clone() if i != 2 else tensors[i]) for i in keep]
        # per-tensor norms: the fused run holds one parameter less, a group norm would differ
        extra = {"prox_norm": "tensor"} if name == "AdamProxL2" else {}
        opt = getattr(sfo, name)(
            params, lr=1e-2, weight_decay=0.1, amsgrad=amsgrad, **impl, **extra
        )
        for step in range(5):
            grads = grads_for(tensors, 10 + step)
            for p, i in zip(params, keep):
                p.grad = torch.empty_like(p).copy_(grads[i])  # autograd's layout: the param's
            opt.step()
        results[str(impl)] = [p.detach().double() for p in params]
    ref = results["{'foreach': False}"]
    for key, got in results.items():
        full = got if len(got) == len(ref) else got[:2] + [ref[2]] + got[2:]
        for a, b in zip(full, ref):
            assert_close(a, b, rtol=1e-6, atol=1e-7, msg=key)


def test_strided_view_is_not_corrupted():
    """torch's fused CPU Adam writes past a strided view (issue 9): the default avoids it."""
    b = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(0))
    untouched = b[..., 1].clone()
    p = Parameter(b[..., 0])
    q = Parameter(b[..., 0].clone())
    p.grad = torch.randn(4, 3)
    q.grad = p.grad.clone()
    sfo.AdamW([p], lr=0.1).step()
    sfo.AdamW([q], lr=0.1, foreach=False).step()
    assert torch.equal(b[..., 1], untouched)
    assert_close(p.detach(), q.detach())
    with pytest.raises(RuntimeError, match="fused kernel needs a dense parameter"):
        sfo.AdamW([p], lr=0.1, fused=True).step()


def test_kernel_choice():
    group = {"eps": 1e-8, "lr": 1e-3, "betas": (0.9, 0.999), "capturable": False}
    a = torch.zeros(3, 4)
    view = torch.zeros(3, 4, 2)[..., 0]
    states = [[torch.zeros(3, 4), torch.zeros(3, 4)]] * 2
    choose = sfo.adam_family.choose_kernels
    default = dict(group, foreach=None, fused=None)
    assert choose(default, [a, view], [a, a], states, False) == ["fused", "single"]
    assert choose(default, [a], [a], states, True) == ["single"]  # compiling: not fused
    assert choose(dict(default, foreach=False), [a], [a], states, False) == ["single"]
    assert choose(dict(default, foreach=True), [a], [a], states, False) == ["foreach"]
    assert choose(dict(default, foreach=True), [a], [a], states, True) == ["single"]
    capturable = dict(default, foreach=True, capturable=True)
    assert choose(capturable, [a], [a], states, True) == ["foreach"]
    assert choose(dict(default, eps=0.0), [a], [a], states, False) == ["eps0"]
    tensor_lr = dict(default, lr=torch.tensor(1e-3), fused=False)
    assert choose(tensor_lr, [a], [a], states, False) == ["single"]


# ----------------------------------------------------------------- hooks, copies, printing


@pytest.mark.parametrize("name", NAMES)
def test_hooks(name):
    params = params_like()
    opt = getattr(sfo, name)(params)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("sd_pre"))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append("sd_post"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load_pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load_post"))
    run(opt, params, 1)
    opt.load_state_dict(opt.state_dict())
    assert calls == ["pre", "post", "sd_pre", "sd_post", "load_pre", "load_post"]


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_continues_identically(name):
    params = params_like()
    opt = getattr(sfo, name)(params, lr=1e-2, weight_decay=0.2, amsgrad=True)
    run(opt, params, 2)
    params2, opt2 = copy.deepcopy((params, opt))
    run(opt, params, 3, seed=7)
    run(opt2, params2, 3, seed=7)
    for a, b in zip(params, params2):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_repr(name):
    text = repr(getattr(sfo, name)(params_like(), lr=0.5))
    assert text.startswith(f"{name} (\nParameter Group 0\n")
    for line in ("alpha: 0.5", "decay_convention: lr", "lr: 0.5", "fused: None"):
        assert f"    {line}\n" in text


# ----------------------------------------------------------------- tensor lr


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("impl", [{}, {"fused": True}, {"foreach": False}])
def test_tensor_lr_equals_float_lr(name, impl):
    out = []
    for lr in (1e-2, torch.tensor(1e-2)):
        params = params_like()
        opt = getattr(sfo, name)(params, lr=lr, weight_decay=0.3, **impl)
        sched = sch.CosineAnnealingLR(opt, T_max=5)
        for i in range(5):
            run(opt, params, 1, seed=i)
            sched.step()
        assert isinstance(opt.param_groups[0]["lr"], torch.Tensor) == (not isinstance(lr, float))
        out.append(params)
    for a, b in zip(*out):
        assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-9)


def test_tensor_lr_with_foreach_needs_capturable():
    with pytest.raises(ValueError, match="lr as a Tensor is not supported for capturable=False"):
        sfo.AdamW(params_like(), lr=torch.tensor(0.1), foreach=True)
    opt = sfo.AdamW(params_like(), foreach=True)
    opt.param_groups[0]["lr"] = torch.tensor(0.1)  # as torch: checked again at the step
    with pytest.raises(RuntimeError, match="lr as a Tensor is not supported for capturable=False"):
        run(opt, opt.param_groups[0]["params"], 1)


# ----------------------------------------------------------------- drop-in semantics


@pytest.mark.parametrize(
    "ours,theirs",
    [(sfo.AdamW, torch.optim.AdamW), (sfo.AdamL2, torch.optim.Adam)],
    ids=["AdamW", "AdamL2"],
)
@pytest.mark.parametrize("kwargs", [{}, {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}])
def test_same_arguments_same_results_as_torch(ours, theirs, kwargs):
    pa, pb = params_like(2), params_like(2)
    oa, ob = ours(pa, **kwargs), theirs(pb, **kwargs)
    assert oa.param_groups[0]["weight_decay"] == ob.param_groups[0]["weight_decay"]
    for i in range(20):
        for a, b, g in zip(pa, pb, grads_for(pa, i)):
            a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    for a, b in zip(pa, pb):
        assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-14)


def test_defaults_table():
    p = [Parameter(torch.zeros(1))]
    for name in NAMES:
        g = getattr(sfo, name)(p).param_groups[0]
        assert g["decay_convention"] == "lr"
        assert g["weight_decay"] == (0.0 if name == "AdamL2" else 1e-2)
        assert (g["lr"], g["betas"], g["eps"]) == (1e-3, (0.9, 0.999), 1e-8)


@pytest.mark.parametrize("convention", ["schedule", "lr"])
def test_one_cycle_lr_does_not_change_alpha(convention):
    """OneCycleLR writes initial_lr = max_lr / div_factor; alpha stays the construction lr and
    the trajectory matches the float64 reference driven by the same lrs."""
    init = params_like(4)
    params = [Parameter(t.detach().clone()) for t in init]
    ref = ReferenceAdam(
        "AdamW",
        [RefGroup([t.detach().clone() for t in init], alpha=1e-3, lr=1e-3, weight_decay=0.01)],
        decay_convention=convention,
    )
    opt = sfo.AdamW(params, lr=1e-3, weight_decay=0.01, decay_convention=convention)
    sched = sch.OneCycleLR(opt, max_lr=1e-3, total_steps=40, cycle_momentum=False)
    assert opt.param_groups[0]["initial_lr"] == pytest.approx(4e-5)
    for i in range(39):
        grads = grads_for(params, i)
        ref.groups[0].lr = opt.param_groups[0]["lr"]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        ref.step([grads])
        sched.step()
    assert opt.param_groups[0]["alpha"] == 1e-3
    for p, r in zip(params, ref.groups[0].params):
        assert_close(p.detach(), r, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("AdamW", "AdamL2")])
def test_decay_strength_of_one_or_more_is_an_ordinary_step_where_nothing_flips(name):
    """(x - u)/(1 + s), D/(D + s) and the soft thresholds are well defined for every s >= 0."""
    params = params_like()
    opt = getattr(sfo, name)(params, lr=0.5, weight_decay=4.0)  # "lr": s = 2
    run(opt, params, 2)
    assert all(torch.isfinite(p).all() for p in params)
    assert all(int(opt.state[p]["step"]) == 2 for p in params)


@pytest.mark.parametrize("name", ["AdamW"])
def test_decay_strength_of_one_or_more_raises_before_changing_anything(name):
    params = params_like()
    opt = getattr(sfo, name)(params, lr=0.5, weight_decay=1.0)  # "lr": s = 0.5
    run(opt, params, 1)
    before = [p.detach().clone() for p in params]
    state = copy.deepcopy(opt.state_dict()["state"])
    opt.param_groups[0]["lr"] = 2.0  # s = 2
    for p, g in zip(params, grads_for(params, 9)):
        p.grad = g
    with pytest.raises(ValueError) as err:
        opt.step()
    msg = str(err.value)
    for part in ("s = weight_decay * lr = 2 >= 1", "param group 0", "alpha=0.5", "'lr'"):
        assert part in msg
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    after = opt.state_dict()["state"]
    assert all(torch.equal(after[k]["exp_avg"], state[k]["exp_avg"]) for k in state)
    sched_opt = getattr(sfo, name)(params, lr=0.1, weight_decay=2.0, decay_convention="schedule")
    with pytest.raises(ValueError, match=r"weight_decay \* lr / alpha = 2 >= 1"):
        sched_opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_zero_lr_group_without_decay_steps_in_either_convention(name):
    for convention in ("schedule", "lr"):
        params = params_like()
        before = [p.detach().clone() for p in params]
        opt = getattr(sfo, name)(params, lr=0.0, weight_decay=0.0, decay_convention=convention)
        run(opt, params, 2)
        assert all(torch.equal(p, b) for p, b in zip(params, before))
    if name == "AdamL2":  # lambda x in the gradient: no convention, no alpha
        sfo.AdamL2(params_like(), lr=0.0, weight_decay=0.1, decay_convention="schedule")
        return
    with pytest.raises(ValueError, match="'schedule' needs a positive lr when the group is built"):
        getattr(sfo, name)(params_like(), lr=0.0, weight_decay=0.1, decay_convention="schedule")


# ----------------------------------------------------------------- loading state dicts


def _strip(state_dict, keys):
    for group in state_dict["param_groups"]:
        for k in keys:
            group.pop(k, None)
    return state_dict


@pytest.mark.parametrize("name", NAMES)
def test_loading_state_dicts_with_missing_keys(name):
    """Older scalefree (no alpha; initial_lr instead) and groups without torch's flags."""
    cls = getattr(sfo, name)
    pa = params_like()
    oa = cls(pa, lr=1e-2, weight_decay=0.1, decay_convention="schedule")
    run(oa, pa, 2)
    saved = copy.deepcopy(oa.state_dict())
    saved["param_groups"][0]["initial_lr"] = 1e-2
    _strip(saved, ("alpha", "fused", "maximize", "foreach", "amsgrad", "capturable", "prox_norm"))
    pb = [Parameter(p.detach().clone()) for p in pa]
    ob = cls(pb, lr=3.0, weight_decay=0.0)
    ob.load_state_dict(saved)
    assert ob.param_groups[0]["alpha"] == 1e-2
    run(oa, pa, 2, seed=5)
    run(ob, pb, 2, seed=5)
    for a, b in zip(pa, pb):
        assert torch.equal(a, b)


def test_torch_adamw_state_dict_both_ways_and_plain_number_step():
    pt, ps = params_like(6), params_like(6)
    ot, os_ = torch.optim.AdamW(pt, lr=1e-2), sfo.AdamW(ps, lr=1e-2)
    run(ot, pt, 3)
    run(os_, ps, 3)
    from_torch = copy.deepcopy(ot.state_dict())
    for st in from_torch["state"].values():
        st["step"] = float(st["step"])  # very old torch checkpoints
    ours = sfo.AdamW([Parameter(p.detach().clone()) for p in pt])
    ours.load_state_dict(from_torch)
    assert all(torch.is_tensor(s["step"]) for s in ours.state.values())
    theirs = torch.optim.AdamW([Parameter(p.detach().clone()) for p in ps])
    theirs.load_state_dict(copy.deepcopy(os_.state_dict()))
    for a, b in ((ours, ot), (theirs, os_)):
        pa = a.param_groups[0]["params"]
        pb = b.param_groups[0]["params"]
        run(a, pa, 3, seed=50)
        run(b, pb, 3, seed=50)
        for x, y in zip(pa, pb):
            assert_close(x.detach(), y.detach(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("tensor_lr", [True, False], ids=["tensor-lr", "float-lr-foreach"])
@pytest.mark.parametrize("name", NAMES)
def test_compiled_update_has_no_graph_breaks_and_no_recompiles(name, tensor_lr):
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    params = [Parameter(torch.randn(3, 2)), Parameter(torch.randn(4))]
    if tensor_lr:
        opt = getattr(sfo, name)(params, lr=torch.tensor(1e-2), weight_decay=0.1)
    else:
        opt = getattr(sfo, name)(params, lr=1e-2, weight_decay=0.1, foreach=True)
    sched = sch.LambdaLR(opt, lambda i: 1 / (1 + i))
    counter = CompileCounterWithBackend("aot_eager")
    step = torch.compile(opt.step, backend=counter)
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(5):
            run(opt, params, 0)
            for p, g in zip(params, grads_for(params, i)):
                p.grad = g
            step()
            sched.step()
            frames.append(counter.frame_count)
    reasons = [r.split("\n")[0] for r in counters["graph_break"]]
    # Only the deliberate ones: torch.optim's own pair around the update, and the LR scheduler's
    # step wrapper (torch marks it untraceable); nothing from the math.
    assert all(
        r.startswith("Call to `torch._dynamo.graph_break()`")
        or r.startswith("Attempted to call function marked as skipped")
        for r in reasons
    ), reasons
    assert frames[-1] == frames[1], f"recompiled when the lr changed: {frames}"


# ----------------------------------------------------------------- sharding (AdamProxL2)


def test_norm_process_group_only_for_prox_l2():
    with pytest.raises(ValueError, match="norm_process_group applies to AdamProxL2 only"):
        sfo.AdamW(params_like(), norm_process_group=object())


def test_fsdp1_flat_parameters_are_refused_with_per_shard_norms(monkeypatch):
    flat = Parameter(torch.randn(6))
    flat._is_flat_param = True
    flat.grad = torch.randn(6)
    with pytest.raises(ValueError, match="prox_norm='tensor' cannot run on FSDP flat parameters"):
        sfo.AdamProxL2([flat], prox_norm="tensor").step()
    monkeypatch.setattr(tc, "distributed_world_size", lambda: 2)
    with pytest.raises(ValueError, match="pass norm_process_group="):
        sfo.AdamProxL2([flat]).step()
    monkeypatch.setattr(tc, "distributed_world_size", lambda: 1)
    sfo.AdamProxL2([flat]).step()  # one process: the norm is the whole norm


def test_norm_process_group_sums_squared_norms(monkeypatch):
    """With a group, the squared norm goes through an all-reduce (here one that doubles it, as
    two ranks holding equal shards would) and a rank without parameters still joins."""
    seen = []

    def fake_all_reduce(t, group):
        seen.append((group, float(t)))
        t.mul_(2)

    monkeypatch.setattr(tc, "all_reduce_sum_", fake_all_reduce)
    monkeypatch.setattr(tc, "collective_device", lambda group: torch.device("cpu"))
    x = Parameter(torch.full((4,), 0.5, dtype=F64))
    x.grad = torch.ones(4, dtype=F64)
    opt = sfo.AdamProxL2([x], lr=0.1, weight_decay=0.5, eps=0.0, norm_process_group="pg")
    opt.step()
    y = 0.5 - 0.1  # y = x - lr sign(g); local ||y||^2 = 4 y^2, global: twice that
    assert seen == [("pg", pytest.approx(4 * y * y))]
    s = 0.5 * 0.1
    assert_close(x.detach(), torch.full((4,), (1 - s / (8 * y * y) ** 0.5) * y, dtype=F64))
    empty = sfo.AdamProxL2([Parameter(torch.zeros(2))], norm_process_group="pg")
    empty.step()  # no gradients here, but the collective is still entered
    assert len(seen) == 2 and seen[1] == ("pg", 0.0)
