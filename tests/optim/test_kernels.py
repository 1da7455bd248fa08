"""The one-pass C++ kernel (scalefree.optim._kernels) against the float64 reference and the torch path.

Every test that needs the compiled kernel checks that it really ran (a spy counts the steps it
took); where no compiler is available those tests skip with the reason, they never pass unrun.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from scalefree.optim import OPTIMIZERS, _kernels
from tests.helpers import assert_close
from tests.optim.test_adam_family import assert_matches, run_pair
from tests.reference.adam_family import NAMES


@pytest.fixture(scope="module")
def kernel():
    """The compiled module (built once per machine, then cached by torch); skip if unavailable."""
    mod = _kernels.load_module()
    if mod is None or not _kernels.enabled_by_env():
        pytest.skip(_kernels.kernel_path())
    return mod


@pytest.fixture
def taken(monkeypatch):
    """Counts the group steps the kernel took (True) and declined (False)."""
    calls = {True: 0, False: 0}
    real = _kernels.prox_step

    def spy(*args, **kwargs):
        ok = real(*args, **kwargs)
        calls[ok] += 1
        return ok

    monkeypatch.setattr(_kernels, "prox_step", spy)
    return calls


@pytest.mark.parametrize(
    "name,amsgrad,maximize,eps",
    list(itertools.product(NAMES, [False, True], [False, True], [0.0, 1e-8])),
)
def test_kernel_matches_reference(kernel, taken, name, amsgrad, maximize, eps):
    opt, params, ref = run_pair(name, amsgrad=amsgrad, maximize=maximize, eps=eps, steps=60)
    assert taken == {True: 120, False: 0}  # 2 groups x 60 steps, all through the kernel
    assert_matches(opt, params, ref)


@pytest.mark.parametrize("name", NAMES)
def test_kernel_eps0_zero_gradient_coordinate_and_per_tensor_norm(kernel, taken, name):
    extra = {"prox_norm": "tensor", "wds": (0.5, 2.0)} if name == "AdamProxL2" else {}
    opt, params, ref = run_pair(name, eps=0.0, steps=20, zero_coord=True, **extra)
    assert taken[True] == 40 and taken[False] == 0
    assert all(torch.isfinite(p).all() for grp in params for p in grp)
    assert_matches(opt, params, ref)


def _run(name, dtype, sizes, *, steps=8, threads=2, seed=0, **kw):
    """Parameters after ``steps`` steps on fixed random gradients (tensors split between threads)."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(n, generator=gen, dtype=dtype).requires_grad_(True) for n in sizes]
    grads = [
        [torch.randn(n, generator=gen, dtype=dtype) * 0.1 for n in sizes] for _ in range(steps)
    ]
    opt = OPTIMIZERS.get(name).build(params, lr=1e-2, weight_decay=0.3, **kw)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for gs in grads:
            for p, g in zip(params, gs):
                p.grad = g
            opt.step()
    finally:
        torch.set_num_threads(before)
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_matches_torch_path_on_tensors_split_between_threads(
    kernel, monkeypatch, taken, name, dtype
):
    # 100,003 + 70,001 + 5 elements: at::parallel_for cuts them into pieces across tensors.
    sizes = [100_003, 70_001, 5]
    fast, _ = _run(name, dtype, sizes, amsgrad=True)
    assert taken[True] == 8
    monkeypatch.setenv("SCALEFREE_KERNELS", "0")
    slow, _ = _run(name, dtype, sizes, amsgrad=True)
    assert taken[False] == 8
    for a, b in zip(fast, slow):
        assert_close(a, b)


def test_prox_l2_group_norm_is_one_norm_over_all_pieces(kernel):
    """One step from fresh state with eps = 0: u = lr sign(g), so y and its norm are closed form."""
    gen = torch.Generator().manual_seed(3)
    x0 = [torch.randn(n, generator=gen, dtype=torch.float64) for n in (90_000, 50_001, 3)]
    g = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in x0]
    x = [t.clone().requires_grad_(True) for t in x0]
    opt = OPTIMIZERS.get("AdamProxL2").build(
        x, lr=0.1, weight_decay=30.0, eps=0.0, decay_convention="schedule"
    )
    for p, gr in zip(x, g):
        p.grad = gr
    torch.set_num_threads(2)
    try:
        opt.step()
    finally:
        torch.set_num_threads(1)
    y = [a - 0.1 * torch.sign(b) for a, b in zip(x0, g)]
    norm = float(torch.cat(y).norm())
    for got, yi in zip(x, y):
        assert_close(got.detach(), (1 - 30.0 / norm) * yi)


def _param(t):
    return t.requires_grad_(True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: [_param(torch.randn(3, 4, dtype=torch.float64).t())],  # not contiguous
        lambda: [_param(torch.randn(5, dtype=torch.bfloat16))],  # dtype the kernel lacks
        lambda: [_param(torch.randn(5)), _param(torch.randn(4, dtype=torch.float64))],  # mixed
    ],
    ids=["non-contiguous", "bfloat16", "mixed-dtypes"],
)
def test_unsupported_tensors_fall_back_untouched(kernel, taken, make):
    params = make()
    before = [p.detach().clone() for p in params]
    opt = OPTIMIZERS.get("AdamProxL1").build(params, lr=1e-2, weight_decay=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    assert taken == {True: 0, False: 1}
    assert all(int(opt.state[p]["step"]) == 1 for p in params)  # counted once, by the torch path
    for p, b in zip(params, before):
        assert not torch.equal(p.detach(), b)


@pytest.mark.parametrize("flag", [{"fused": True}, {"foreach": True}])
def test_explicit_torch_kernel_choice_is_kept(kernel, taken, flag):
    _run("AdamProxD", torch.float32, [7], steps=2, threads=1, **flag)
    assert taken == {True: 0, False: 0}  # never asked: the group chose torch's kernel


def test_fallback_when_compiler_unavailable(monkeypatch, taken):
    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(_kernels, "_build", no_compiler)
    monkeypatch.setitem(_kernels._state, "module", None)
    monkeypatch.setitem(_kernels._state, "path", None)
    assert _kernels.kernel_path().startswith("torch (kernel build failed: RuntimeError: Ninja")
    opt, params, ref = run_pair("AdamProxD", steps=20)
    assert taken == {True: 0, False: 40}
    assert_matches(opt, params, ref)


def test_env_switch_turns_kernel_off(monkeypatch, taken):
    monkeypatch.setenv("SCALEFREE_KERNELS", "off")
    assert _kernels.kernel_path().startswith("torch (SCALEFREE_KERNELS")
    opt, params, ref = run_pair("AdamProxL1", steps=20)
    assert taken == {True: 0, False: 40}
    assert_matches(opt, params, ref)


def test_kernel_path_names_the_compiled_kernel(kernel):
    assert _kernels.kernel_path().startswith("cpp (one-pass C++ kernel")
