"""Issue 21, section 4: the last gaps PyTorch's own optimizer tests find (tensor lr of shape [1]
and [1, 1], ``differentiable``, ``decoupled_weight_decay``, real signatures, ``capturable`` on
the CPU), for every public class and kernel path, against torch.optim.Adam / AdamW."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.nn import Parameter

import scalefree.optim as sfo
from scalefree.optim.registry import OPTIMIZERS
from tests.helpers import assert_close

PUBLIC = ("AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD", "AdamC", "CWD",
          "CAdamW")  # fmt: skip
# Every path a tensor lr can take: torch's default choice, fused, the single-tensor loop, the
# masked path (caution), eps = 0 (0/0 := 0), AdamProxL2's per-tensor norm (its group norm runs
# in the default), and cautious decay on an elementwise rule.
PATHS = {
    "default": {},
    "fused": {"fused": True},
    "single": {"foreach": False},
    "caution": {"caution": True},
    "eps0": {"eps": 0.0},
    "tensor-norm": {"prox_norm": "tensor"},
    "cautious": {"cautious_decay": True},
}
LR_SHAPES = {"0d": (), "1": (1,), "1x1": (1, 1)}


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Parameter(torch.randn(10, generator=g, dtype=torch.float64)),
        Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64)),
    ]


def _train(opt, params, steps=4):
    g = torch.Generator().manual_seed(7)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
        for group in opt.param_groups:  # a scheduler-like lr change, in place for a tensor lr
            if torch.is_tensor(group["lr"]):
                group["lr"].mul_(0.5)
            else:
                group["lr"] *= 0.5
    return [p.detach().clone() for p in params]


def _applies(name, kw):
    cls = getattr(sfo, name)
    if "prox_norm" in kw and not cls.group_norm:
        return False
    return not ("cautious_decay" in kw and not cls.elementwise_decay)


@pytest.mark.parametrize("shape", LR_SHAPES, ids=str)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", PUBLIC)
def test_tensor_lr_of_any_one_element_shape_steps_as_the_float_lr(name, path, shape):
    kw = PATHS[path]
    if not _applies(name, kw):
        pytest.skip("option not taken by this rule")
    cls = getattr(sfo, name)
    ref_params, params = _params(), _params()
    want = _train(cls(ref_params, lr=0.05, weight_decay=0.2, **kw), ref_params)
    lr = torch.full(LR_SHAPES[shape], 0.05, dtype=torch.float64)
    opt = cls(params, lr=lr, weight_decay=0.2, **kw)
    got = _train(opt, params)
    assert opt.param_groups[0]["lr"].shape == LR_SHAPES[shape]  # the user's tensor, kept
    moved = min((a - b).abs().max().item() for a, b in zip(want, _params()))
    assert moved > 1e-2  # the steps did something the comparison below could miss
    for a, b in zip(got, want):
        assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", ["1", "1x1"])
@pytest.mark.parametrize(
    "ours,theirs,kw",
    [
        ("AdamW", torch.optim.AdamW, {}),
        ("AdamW", torch.optim.AdamW, {"foreach": False}),
        ("AdamL2", torch.optim.Adam, {"fused": True}),
        ("AdamL2", torch.optim.Adam, {}),
    ],
)
def test_tensor_lr_matches_torch(ours, theirs, kw, shape):
    out = []
    for cls in (getattr(sfo, ours), theirs):
        params = _params()
        lr = torch.full(LR_SHAPES[shape], 0.05, dtype=torch.float64)
        out.append(_train(cls(params, lr=lr, weight_decay=0.1, **kw), params))
    for a, b in zip(*out):
        assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", PUBLIC)
def test_differentiable_false_is_accepted_and_true_is_a_clear_error(name):
    cls = getattr(sfo, name)
    a, b = _params(), _params()
    plain = _train(cls(a, lr=0.05), a)
    explicit = _train(cls(b, lr=0.05, differentiable=False), b)
    for x, y in zip(plain, explicit):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="does not support differentiable=True"):
        cls(_params(), differentiable=True)


@pytest.mark.parametrize("name", PUBLIC)
def test_groups_have_torchs_differentiable_and_decoupled_keys(name):
    cls = getattr(sfo, name)
    torch_cls = torch.optim.Adam if name == "AdamL2" else torch.optim.AdamW
    theirs = torch_cls(_params()).defaults
    opt = cls(_params())
    for key in ("differentiable", "decoupled_weight_decay"):
        assert opt.defaults[key] == theirs[key]
        assert opt.param_groups[0][key] == theirs[key]
    assert set(theirs) <= set(opt.defaults)
    own = theirs["decoupled_weight_decay"]
    cls(_params(), decoupled_weight_decay=own)  # torch's value: accepted
    with pytest.raises(ValueError, match="decoupled_weight_decay"):
        cls(_params(), decoupled_weight_decay=not own)


def test_state_dict_without_the_new_keys_loads_with_torchs_values():
    opt = sfo.AdamL2(_params())
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        del group["differentiable"], group["decoupled_weight_decay"]
    fresh = sfo.AdamL2(_params())
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["decoupled_weight_decay"] is False
    assert fresh.param_groups[0]["differentiable"] is False


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_class_has_the_real_signature(name):
    cls = getattr(sfo, name)
    sig = inspect.signature(cls)
    assert not any(p.kind is p.VAR_KEYWORD or p.kind is p.VAR_POSITIONAL
                   for p in sig.parameters.values())  # fmt: skip
    for key in ("params", "lr", "betas", "eps", "weight_decay", "amsgrad", "fused", "foreach",
                "capturable", "maximize", "differentiable", "caution"):  # fmt: skip
        assert key in sig.parameters, key
    assert list(sig.parameters)[:6] == ["params", "lr", "betas", "eps", "weight_decay", "amsgrad"]
    defaults = {k: p.default for k, p in sig.parameters.items()}
    opt = cls(_params())
    for key in ("lr", "eps", "weight_decay", "amsgrad", "decay_convention", "caution",
                "cautious_decay"):  # fmt: skip
        assert opt.defaults[key] == defaults[key], key
    with pytest.raises(TypeError, match="no_such_option"):
        cls(_params(), no_such_option=1)


def test_variant_signatures_show_what_they_fix_and_the_registry_records_it():
    sig = {n: inspect.signature(getattr(sfo, n)).parameters for n in PUBLIC}
    assert sig["AdamL2"]["weight_decay"].default == 0.0  # torch.optim.Adam's
    assert sig["AdamC"]["decay_convention"].default == "corrected"
    assert sig["CWD"]["cautious_decay"].default is True
    assert sig["CAdamW"]["caution"].default is True
    assert sig["AdamW"]["caution"].default is False
    expected = {"AdamC": {"decay_convention": "corrected"}, "CWD": {"cautious_decay": True},
                "CAdamW": {"caution": True}}  # fmt: skip
    for name in PUBLIC:
        entry = OPTIMIZERS.get(name)
        assert dict(entry.fixed) == expected.get(name, {})
        assert not set(entry.fixed) & entry.options
    assert OPTIMIZERS.get("AdamC").own_setting("decay_convention") == "corrected"
    assert OPTIMIZERS.get("AdamW").own_setting("decay_convention") is None
    # positional arguments bind as in torch: (params, lr, betas, eps, weight_decay, amsgrad)
    opt = sfo.CWD(_params(), 0.1, (0.8, 0.9), 1e-6, 0.3, True)
    assert (opt.defaults["lr"], opt.defaults["betas"], opt.defaults["eps"]) == (
        0.1,
        (0.8, 0.9),
        1e-6,
    )
    assert opt.defaults["weight_decay"] == 0.3 and opt.defaults["amsgrad"] is True
    assert opt.defaults["cautious_decay"] is True
    assert sfo.CWD(_params(), cautious_decay=False).defaults["cautious_decay"] is False


def _error(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the type and message are what is compared
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("kw", [{}, {"foreach": False}, {"foreach": True}, {"caution": True}])
@pytest.mark.parametrize("name", PUBLIC)
def test_capturable_on_cpu_raises_as_torch_does(name, kw):
    torch_cls = torch.optim.Adam if name == "AdamL2" else torch.optim.AdamW
    theirs = _error(lambda: _train(torch_cls(p := _params(), capturable=True, foreach=True), p))
    assert theirs is not None and theirs[0] is AssertionError
    params = _params()
    opt = getattr(sfo, name)(params, capturable=True, **kw)
    ours = _error(lambda: _train(opt, params, steps=1))
    assert ours is not None and ours[0] is AssertionError
    assert ours[1].startswith("If capturable=True, params and state_steps must be on supported")
    assert all(torch.equal(a, b) for a, b in zip(params, _params()))  # nothing moved


def _compiled_counts(cls, steps=6):
    """Graphs and graph breaks of torch.compile(opt.step) with a tensor-lr group and a float-lr
    group, both given a new lr before every step."""
    import warnings

    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    a, b = _params(), _params(1)
    opt = cls(
        [{"params": a, "lr": torch.tensor(0.01)}, {"params": b, "lr": 0.01}], weight_decay=0.1
    )
    counter = CompileCounterWithBackend("aot_eager")
    step = torch.compile(opt.step, backend=counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            for p in a + b:
                p.grad = torch.ones_like(p) * (i + 1)
            opt.param_groups[0]["lr"].fill_(0.01 / (i + 1))
            opt.param_groups[1]["lr"] = 0.01 / (i + 1)
            step()
    return counter.frame_count, sum(counters["graph_break"].values())


def test_compiled_step_under_a_schedule_recompiles_and_breaks_no_more_than_torch():
    ours, theirs = _compiled_counts(sfo.AdamW), _compiled_counts(torch.optim.AdamW)
    assert ours[0] <= theirs[0], (ours, theirs)  # before issue 21: 10 graphs against torch's 2
    assert ours[1] <= theirs[1], (ours, theirs)


def test_compiled_step_still_checks_the_decay_strength():
    import warnings

    params = _params()
    opt = sfo.AdamW(params, lr=1.0, weight_decay=0.5)
    step = torch.compile(opt.step, backend="aot_eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            for p in params:
                p.grad = torch.ones_like(p)
            step()
        opt.param_groups[0]["weight_decay"] = 2.0  # s = 2: (1 - s) x would flip the weights
        before = [p.detach().clone() for p in params]
        with pytest.raises(ValueError, match="decay strength s = weight_decay \\* lr = 2"):
            step()
    assert all(torch.equal(x, y) for x, y in zip(params, before))
