"""The rules since 2022 (AdamC's corrected decay, CWD's cautious decay, C-AdamW's caution) against
the float64 reference tests/reference/decay_rules.py, on every path that runs them."""

from __future__ import annotations

import io
import itertools
import shutil

import pytest
import torch

from scalefree.cli import main
from scalefree.errors import UsageError
from scalefree.optim import (
    CWD,
    OPTIMIZERS,
    AdamC,
    AdamL2,
    AdamProxL2,
    AdamW,
    CAdamW,
    _kernels,
    build_optimizer,
)
from scalefree.optim.adam_family import AdamFamily
from scalefree.optim.scale_free import check_scale_free
from tests.helpers import assert_close
from tests.reference.decay_rules import CONVENTIONS, ELEMENTWISE, NAMES, run_rules

F64 = torch.float64
SHAPES = [(4, 3), (5,), (2, 2, 3)]
LRS, WDS = (1e-2, 3e-3), (0.05, 0.2)  # two groups with their own alpha and lambda
PATHS = ("one-pass", "foreach", "single")


def _kernel_or_skip():
    if _kernels.load_module() is None or not _kernels.enabled_by_env():
        pytest.skip(_kernels.kernel_path())


def run_pair(
    name, *, path, steps=30, amsgrad=False, eps=1e-8, seed=0, device="cpu", shapes=SHAPES, **options
):
    """The package optimizer (two groups, a cosine schedule) and the reference on the same
    gradients; the reference replays the lr each group had at each step."""
    gen = torch.Generator().manual_seed(seed)
    init = [[torch.randn(s, generator=gen, dtype=F64) for s in shapes] for _ in LRS]
    params = [[t.clone().to(device).requires_grad_(True) for t in grp] for grp in init]
    extra = {"foreach": path == "foreach"} if path in ("foreach", "single") else {}
    if path == "fused" and "fused" not in options:
        extra = {"fused": True}
    opt = OPTIMIZERS.get(name).build(
        [{"params": p, "lr": lr, "weight_decay": wd} for p, lr, wd in zip(params, LRS, WDS)],
        lr=LRS[0], eps=eps, amsgrad=amsgrad, **extra, **options,
    )  # fmt: skip
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    grads, lrs = [], []
    for _ in range(steps):
        gs = [[torch.randn(p.shape, generator=gen, dtype=F64) * 0.1 for p in grp] for grp in params]
        for grp, ggrp in zip(params, gs):
            for p, g in zip(grp, ggrp):
                p.grad = g.to(device)
        lrs.append([g["lr"] for g in opt.param_groups])
        grads.append(gs)
        opt.step()
        sched.step()
    return opt, params, (init, grads, lrs)


def reference(ref_name, recording, **kwargs):
    init, grads, lrs = recording
    return run_rules(ref_name, init, alphas=LRS, weight_decays=WDS, grads=grads, lrs=lrs, **kwargs)


def assert_matches_reference(params, ref):
    for grp, rg in zip(params, ref.groups):
        for p, r in zip(grp, rg.params):
            assert_close(p.detach().cpu(), r, rtol=1e-9, atol=1e-12)


def _expected_path(path, masked, eps):
    if path == "one-pass":
        return "one-pass"
    if not masked:
        return "torch:" + (path if eps else "eps0")
    return "masked:" + (path if eps else "single")  # 0/0 := 0 is a per-tensor select


def check(
    name,
    path,
    monkeypatch,
    *,
    ref_name=None,
    amsgrad=False,
    ref_options=None,
    shapes=SHAPES,
    **options,
):
    if path == "one-pass":
        _kernel_or_skip()
    else:  # the pure-torch paths, as without a compiler
        monkeypatch.setenv("SCALEFREE_KERNELS", "0")
    opt, params, recording = run_pair(name, path=path, amsgrad=amsgrad, shapes=shapes, **options)
    masked = opt.param_groups[0]["caution"] or opt.param_groups[0]["cautious_decay"]
    assert opt.step_paths() == (_expected_path(path, masked, options.get("eps", 1e-8)),) * 2
    ref = reference(
        ref_name or name, recording, amsgrad=amsgrad, eps=options.get("eps", 1e-8),
        **{k: v for k, v in (ref_options or options).items() if k != "eps"},
    )  # fmt: skip
    assert_matches_reference(params, ref)


@pytest.mark.parametrize("name,amsgrad,path", list(itertools.product(NAMES, [False, True], PATHS)))
def test_corrected_convention_matches_reference(name, amsgrad, path, monkeypatch):
    check(name, path, monkeypatch, amsgrad=amsgrad, decay_convention="corrected")


@pytest.mark.parametrize(
    "name,convention,amsgrad,path",
    list(itertools.product(NAMES, CONVENTIONS, [False, True], PATHS)),
)
def test_caution_matches_reference(name, convention, amsgrad, path, monkeypatch):
    check(name, path, monkeypatch, amsgrad=amsgrad, decay_convention=convention, caution=True)


# The kernel counts phi of a tensor up to 65,536 elements in the same visit as its step, and of a
# larger one in a pass of its own: both kinds, with pieces split between two threads.
@pytest.mark.parametrize("name", NAMES)
def test_caution_on_small_and_large_tensors_matches_reference(name, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check(
            name, "one-pass", monkeypatch, amsgrad=True, decay_convention="corrected",
            caution=True, shapes=[(70_001,), (3, 4), (256, 257), (65_536,)],
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "name,convention,amsgrad,path",
    list(itertools.product(ELEMENTWISE, CONVENTIONS, [False, True], PATHS)),
)
def test_cautious_decay_matches_reference(name, convention, amsgrad, path, monkeypatch):
    check(
        name, path, monkeypatch, amsgrad=amsgrad, decay_convention=convention,
        cautious_decay=True,
    )  # fmt: skip


@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("name,path", list(itertools.product(ELEMENTWISE, PATHS)))
def test_caution_and_cautious_decay_together_match_reference(name, path, eps, monkeypatch):
    check(
        name, path, monkeypatch, amsgrad=True, eps=eps, decay_convention="schedule",
        caution=True, cautious_decay=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "entry,ref_options",
    [
        ("AdamC", {"decay_convention": "corrected"}),
        ("CWD", {"decay_convention": "lr", "cautious_decay": True}),
        ("CAdamW", {"decay_convention": "lr", "caution": True}),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_registry_entries_are_adamw_with_their_rule(entry, ref_options, path, monkeypatch):
    check(entry, path, monkeypatch, ref_name="AdamW", amsgrad=True, ref_options=ref_options)


@pytest.mark.parametrize("name", ["AdamW", "AdamProxD"])
def test_fused_request_falls_back_to_the_masked_path(name, monkeypatch):
    """torch's fused kernel applies u itself, so it cannot mask it: the masked path runs, correct."""
    monkeypatch.setenv("SCALEFREE_KERNELS", "0")
    opt, params, recording = run_pair(
        name, path="fused", fused=True, decay_convention="schedule", caution=True,
        cautious_decay=True,
    )  # fmt: skip
    assert opt.step_paths() == ("masked:foreach", "masked:foreach")
    ref = reference(name, recording, decay_convention="schedule", caution=True, cautious_decay=True)
    assert_matches_reference(params, ref)


def _run_kernel_or_torch(name, dtype, *, kernel, monkeypatch, steps=6, **options):
    """Tensors large enough that at::parallel_for cuts them into pieces across tensors."""
    if kernel:
        _kernel_or_skip()
        monkeypatch.delenv("SCALEFREE_KERNELS", raising=False)
    else:
        monkeypatch.setenv("SCALEFREE_KERNELS", "0")
    gen = torch.Generator().manual_seed(0)
    sizes = [100_003, 70_001, 5]
    params = [torch.randn(n, generator=gen, dtype=dtype).requires_grad_(True) for n in sizes]
    opt = OPTIMIZERS.get(name).build(params, lr=1e-2, weight_decay=0.3, amsgrad=True, **options)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for _ in range(steps):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen, dtype=dtype) * 0.1
            opt.step()
    finally:
        torch.set_num_threads(before)
    assert opt.step_paths() == (("one-pass",) if kernel else ("masked:foreach",))
    return [p.detach() for p in params]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "name,options",
    [("CAdamW", {}), ("CWD", {}), ("AdamL2", {"caution": True}),
     ("AdamProxL2", {"caution": True}), ("AdamProxL1", {"caution": True, "cautious_decay": True})],
)  # fmt: skip
def test_kernel_counts_phi_per_tensor_across_pieces(name, options, dtype, monkeypatch):
    fast = _run_kernel_or_torch(name, dtype, kernel=True, monkeypatch=monkeypatch, **options)
    slow = _run_kernel_or_torch(name, dtype, kernel=False, monkeypatch=monkeypatch, **options)
    for a, b in zip(fast, slow):
        assert_close(a, b)


def test_caution_rescales_by_the_fraction_kept():
    """By hand. Step 1 from fresh state (eps = 0): m = (1 - beta1) g agrees with g everywhere, so
    caution changes nothing: u = lr sign(g). Step 2: small gradients opposite to m on the first
    two coordinates (m after the update keeps its old sign: phi = 0 there), large agreeing ones on
    the others: those two are zeroed, the other two doubled (1 / mean(phi) = 2)."""
    x = torch.zeros(4, dtype=F64, requires_grad=True)
    opt = CAdamW([x], lr=0.1, eps=0.0, weight_decay=0.0)
    x.grad = torch.tensor([1.0, -2.0, 3.0, -4.0], dtype=F64)
    opt.step()
    assert_close(x.detach(), -0.1 * torch.sign(x.grad))
    before = x.detach().clone()
    g = torch.tensor([-1e-3, 2e-3, 30.0, -40.0], dtype=F64)
    x.grad = g
    opt.step()
    m, v = opt.state[x]["exp_avg"], opt.state[x]["exp_avg_sq"]
    assert ((m * g) > 0).tolist() == [False, False, True, True]
    plain = 0.1 * (m / (1 - 0.9**2)) / (v / (1 - 0.999**2)).sqrt()  # the uncautioned Adam step
    cautioned = plain * torch.tensor([0.0, 0.0, 2.0, 2.0], dtype=F64)
    assert_close(x.detach(), before - cautioned)
    assert_close(opt.adam_updates()[x], cautioned)


# ------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("cls", [AdamL2, AdamProxL2])
def test_cautious_decay_is_refused_where_it_has_no_elementwise_meaning(cls):
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match=rf"{cls.__name__} does not take cautious_decay=True"):
        cls([x], weight_decay=0.1, cautious_decay=True)
    opt = cls([x], weight_decay=0.1)
    with pytest.raises(ValueError, match="applies to AdamW, AdamProx, AdamProxL1, AdamProxD"):
        opt.add_param_group({"params": [torch.ones(2, requires_grad=True)], "cautious_decay": True})
    saved = opt.state_dict()
    saved["param_groups"][0]["cautious_decay"] = True
    with pytest.raises(ValueError, match="does not take cautious_decay"):
        cls([x], weight_decay=0.1).load_state_dict(saved)
    caution_ok = cls([x], weight_decay=0.1, caution=True)  # caution applies to every rule
    assert caution_ok.param_groups[0]["caution"] is True
    with pytest.raises(UsageError, match=f"optimizer {cls.__name__} does not take cautious_decay"):
        build_optimizer(cls.__name__, [x], lr=0.1, cautious_decay=True)


def test_a_rule_folding_its_decay_without_decayed_refuses_the_masks():
    class Folded(AdamFamily):  # decays inside torch's kernel only: nothing to mask it with
        folds_decay = True

        def _fold_decay(self, group, s):
            return group["lr"], 0.5, True

    try:
        x = torch.ones(2, requires_grad=True)
        with pytest.raises(ValueError, match="override _decayed"):
            Folded([x], caution=True)
        assert Folded([x]).param_groups[0]["caution"] is False
    finally:
        del Folded
        import gc

        gc.collect()  # drop the subclass so family_classes() forgets it


# ------------------------------------------------------------------------ group options


def test_options_are_group_options_saved_and_restored():
    a, b = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = AdamW(
        [{"params": [a]}, {"params": [b], "caution": True, "cautious_decay": True}],
        cautious_decay=True,
    )
    assert opt.defaults["caution"] is False and opt.defaults["cautious_decay"] is True
    assert [(g["caution"], g["cautious_decay"]) for g in opt.param_groups] == [
        (False, True),
        (True, True),
    ]
    saved = opt.state_dict()
    fresh = AdamW([{"params": [a]}, {"params": [b]}])
    fresh.load_state_dict(saved)
    assert [(g["caution"], g["cautious_decay"]) for g in fresh.param_groups] == [
        (False, True),
        (True, True),
    ]
    for g in saved["param_groups"]:  # a state dict from before the options existed
        del g["caution"], g["cautious_decay"]
    old = CAdamW([{"params": [a]}, {"params": [b]}])
    old.load_state_dict(saved)
    assert all(not g["caution"] and not g["cautious_decay"] for g in old.param_groups)


@pytest.mark.parametrize("name", ["AdamC", "CWD", "CAdamW"])
@pytest.mark.parametrize("kernels", ["1", "0"])
def test_state_dict_round_trip_continues_identically(name, kernels, monkeypatch):
    monkeypatch.setenv("SCALEFREE_KERNELS", kernels)
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen, dtype=F64) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=F64) for s in SHAPES] for _ in range(20)]

    def fresh(params):
        opt = OPTIMIZERS.get(name).build(params, lr=1e-2, weight_decay=0.1, amsgrad=True)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)

    def run(params, opt, sched, gs):
        for step_grads in gs:
            for p, g in zip(params, step_grads):
                p.grad = g.clone()
            opt.step()
            sched.step()

    pa = [t.clone().requires_grad_(True) for t in init]
    oa, sa = fresh(pa)
    run(pa, oa, sa, grads[:10])
    buf = io.BytesIO()
    torch.save({"opt": oa.state_dict(), "sched": sa.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    pb = [p.detach().clone().requires_grad_(True) for p in pa]
    run(pa, oa, sa, grads[10:])
    ob, sb = fresh(pb)
    ob.load_state_dict(saved["opt"])
    sb.load_state_dict(saved["sched"])
    run(pb, ob, sb, grads[10:])
    for a, b in zip(pa, pb):
        assert torch.equal(a.detach(), b.detach())


@pytest.mark.parametrize("kernels", ["1", "0"])
@pytest.mark.parametrize("name", ["CAdamW", "CWD", "AdamProxL1"])
def test_maximize_equals_minimizing_the_negative(name, kernels, monkeypatch):
    monkeypatch.setenv("SCALEFREE_KERNELS", kernels)
    options = {"caution": True, "cautious_decay": True} if name == "AdamProxL1" else {}
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(6, 5, generator=gen, dtype=F64)
    a, b = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    oa = OPTIMIZERS.get(name).build([a], lr=0.05, weight_decay=0.2, maximize=True, **options)
    ob = OPTIMIZERS.get(name).build([b], lr=0.05, weight_decay=0.2, **options)
    for _ in range(15):
        g = torch.randn(6, 5, generator=gen, dtype=F64)
        a.grad, b.grad = -g, g.clone()
        oa.step()
        ob.step()
    assert torch.equal(a.detach(), b.detach())


def test_adamc_is_a_drop_in_with_torch_schedulers():
    """AdamC(params) with a OneCycleLR: alpha is the built lr; the decay follows lr_t^2 / alpha."""
    x = torch.ones(4, requires_grad=True)
    opt = AdamC([x], lr=0.1, weight_decay=0.5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    group = opt.param_groups[0]
    assert group["alpha"] == 0.1 and group["decay_convention"] == "corrected"
    for _ in range(5):
        x.grad = torch.ones(4)
        lr = group["lr"]
        assert opt.decay_strength(group) == pytest.approx(0.5 * lr * lr / 0.1)
        opt.step()
        sched.step()


@pytest.mark.skipif(not shutil.which("g++"), reason="inductor's CPU backend needs a C++ compiler")
@pytest.mark.parametrize("name", ["CAdamW", "CWD"])
def test_compiled_step_matches_eager(name):
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(5, 3, generator=gen), torch.randn(4, generator=gen)]
    eager = [t.clone().requires_grad_(True) for t in init]
    comp = [t.clone().requires_grad_(True) for t in init]
    opt_e = OPTIMIZERS.get(name).build(eager, lr=1e-2, weight_decay=0.5)
    opt_c = OPTIMIZERS.get(name).build(comp, lr=torch.tensor(1e-2), weight_decay=0.5)
    sched_e = torch.optim.lr_scheduler.CosineAnnealingLR(opt_e, T_max=8)
    sched_c = torch.optim.lr_scheduler.CosineAnnealingLR(opt_c, T_max=8)

    @torch.compile(backend="inductor")
    def compiled_step():
        opt_c.step()

    for _ in range(4):
        grads = [torch.randn(t.shape, generator=gen) for t in init]
        for p, q, g in zip(eager, comp, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt_e.step()
        compiled_step()
        sched_e.step()
        sched_c.step()
    for p, q in zip(eager, comp):
        assert_close(q.detach(), p.detach())


# ------------------------------------------------------------------------ tools and registry


def test_check_scale_free_finds_the_new_rules_scale_free_at_eps0(capsys):
    rows = {(r.name, r.eps): r for r in check_scale_free(["AdamC", "CWD", "CAdamW"], steps=60)}
    for name in ("AdamC", "CWD", "CAdamW"):
        assert rows[(name, 0.0)].verdict == "scale-free", rows[(name, 0.0)]
        assert rows[(name, 1e-8)].verdict != "scale-free"  # eps breaks it, as for AdamW
        assert OPTIMIZERS.get(name).scale_free
    assert main(["check-scale-free", "--optimizers", "AdamC", "CWD", "CAdamW", "--eps", "0"]) == 0
    out = capsys.readouterr().out
    for name in ("AdamC", "CWD", "CAdamW"):
        assert any(
            line.startswith(name) and line.endswith("  scale-free") for line in out.splitlines()
        )


def test_new_entries_carry_colour_order_and_fixed_options():
    from scalefree.plots.figures import METHOD_COLORS
    from scalefree.plots.tables import METHOD_ORDER

    assert tuple(METHOD_ORDER)[5:9] == ("AdamProxD", "AdamC", "CWD", "CAdamW")
    colours = [METHOD_COLORS[n] for n in ("AdamC", "CWD", "CAdamW")]
    others = [METHOD_COLORS[n] for n in METHOD_ORDER if n not in ("AdamC", "CWD", "CAdamW")]
    assert len(set(colours)) == 3 and not set(colours) & set(others)
    # The option that defines an entry is not an option of it (train passes decay_convention).
    assert "decay_convention" not in OPTIMIZERS.get("AdamC").options
    assert "cautious_decay" not in OPTIMIZERS.get("CWD").options
    assert "caution" not in OPTIMIZERS.get("CAdamW").options
    assert {"caution", "cautious_decay"} <= OPTIMIZERS.get("AdamW").options
    assert type(build_optimizer("adamc", [torch.ones(1, requires_grad=True)], lr=0.1)) is AdamC
    assert isinstance(build_optimizer("CWD", [torch.ones(1, requires_grad=True)], lr=0.1), CWD)


@pytest.mark.parametrize("name", ["AdamC", "CWD", "CAdamW"])
def test_train_accepts_the_new_names(name, tmp_path):
    code = main(
        ["train", "--dataset", "synthetic", "--optim-method", name, "--train-epochs", "1",
         "--max-steps", "2", "--batchsize", "32", "--device", "cpu",
         "--log-folder", str(tmp_path), "--progress", "none"]
    )  # fmt: skip
    assert code == 0
    configs = list(tmp_path.rglob("config.json"))
    assert len(configs) == 1 and f"_{name}_" in str(configs[0].parent.name)
    results = list(tmp_path.rglob("result.json"))
    assert len(results) == 1


@pytest.mark.parametrize("kernels", ["1", "0"])
@pytest.mark.parametrize("name,wd", [("CAdamW", 0.0), ("CAdamW", 0.3), ("AdamProx", 0.3)])
def test_adam_updates_is_the_cautioned_step_taken(name, wd, kernels, monkeypatch):
    """The update statistics read adam_updates(): under caution it is the step really taken."""
    monkeypatch.setenv("SCALEFREE_KERNELS", kernels)
    options = {} if name == "CAdamW" else {"caution": True}
    x = torch.randn(40, dtype=F64, requires_grad=True)
    opt = OPTIMIZERS.get(name).build([x], lr=0.01, weight_decay=wd, **options)
    gen = torch.Generator().manual_seed(1)
    masked = 0
    for _ in range(4):
        before = x.detach().clone()
        x.grad = torch.randn(40, generator=gen, dtype=F64)
        opt.step()
        u = opt.adam_updates()[x]
        s = opt.decay_strength(opt.param_groups[0])
        expected = before * (1 - s) - u if name == "CAdamW" else (before - u) / (1 + s)
        assert_close(x.detach(), expected)
        masked += int((u == 0).sum())
    assert masked > 0  # after the first step (where m agrees with g) coordinates were masked


def test_param_groups_put_normalized_layers_in_a_corrected_group():
    from torch import nn

    from scalefree.optim import param_groups
    from scalefree.optim.groups import normalized_weight_names

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4),  # conv -> (relu) -> BN: normalized
        nn.Conv2d(4, 4, 3), nn.Flatten(), nn.LazyLinear(2),  # not followed by normalization
        nn.Linear(2, 3), nn.LayerNorm(3),  # normalized
    )  # fmt: skip
    model(torch.zeros(1, 3, 7, 7))
    assert normalized_weight_names(model) == {"0.weight", "6.weight"}
    corrected, rest, no_decay = param_groups(
        model, 0.1, exclude_bias_norm=True, corrected_for="normalized"
    )
    assert corrected["decay_convention"] == "corrected" and corrected["weight_decay"] == 0.1
    assert {id(p) for p in corrected["params"]} == {id(model[0].weight), id(model[6].weight)}
    assert rest["decay_convention"] == "lr" and rest["weight_decay"] == 0.1
    assert {id(p) for p in rest["params"]} == {id(model[3].weight), id(model[5].weight)}
    assert no_decay["weight_decay"] == 0.0 and "decay_convention" not in no_decay
    opt = AdamC([corrected, rest, no_decay], lr=0.1)
    assert [g["decay_convention"] for g in opt.param_groups] == ["corrected", "lr", "corrected"]
    by_name = param_groups(model, 0.1, corrected_for=["3.weight"], other_convention="schedule")
    assert [len(g["params"]) for g in by_name] == [1, len(list(model.parameters())) - 1]
    assert by_name[1]["decay_convention"] == "schedule"
    with pytest.raises(ValueError, match="not decayed parameters of this model: nope"):
        param_groups(model, 0.1, corrected_for=["nope"])
    with pytest.raises(ValueError, match="use 'normalized'"):
        param_groups(model, 0.1, corrected_for="norm")
    # Without corrected_for nothing changes: no decay_convention key in any group.
    assert all("decay_convention" not in g for g in param_groups(model, 0.1, True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", ["foreach", "single", "fused"])
@pytest.mark.parametrize(
    "entry,ref_options",
    [("AdamC", {"decay_convention": "corrected"}), ("CWD", {"cautious_decay": True}),
     ("CAdamW", {"caution": True})],
)  # fmt: skip
def test_cuda_paths_match_reference(entry, ref_options, path):
    """On CUDA (no C++ kernel there) AdamC takes torch's kernels, the masked rules the masked
    torch path; each is exact against the float64 reference."""
    _, params, recording = run_pair(entry, path=path, device="cuda")
    assert_matches_reference(params, reference("AdamW", recording, **ref_options))
