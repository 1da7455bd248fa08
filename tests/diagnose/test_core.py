"""diagnose(): a hand-computed case, its invariances, the model left as it was, clear errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scalefree.diagnose import DiagnoseError, diagnose, quantiles
from tests.helpers import assert_close


class Linear2(nn.Module):
    """loss = a . w1 + c . w2 (+ bias): the gradient of w1 is the batch's a, of w2 its c."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64))
        self.w2 = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
        self.bias = nn.Parameter(torch.tensor([0.5], dtype=torch.float64))

    def forward(self, batch):
        a, c = batch
        return (a * self.w1).sum() + (c * self.w2).sum() + 7.0 * self.bias.sum()


def linear_loss(model, batch):
    return model(batch)


HAND_BATCHES = [
    (torch.tensor([2.0, 2.0, 8.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 4.0])),
    (torch.tensor([2.0, -2.0, 0.0, 8.0], dtype=torch.float64), torch.tensor([0.0, -4.0])),
]


def test_hand_computed_case():
    # w1: v_hat = (4, 4, 32, 32), sqrt = (2, 2, 4 sqrt2, 4 sqrt2), log2 = (1, 1, 2.5, 2.5);
    # w2: v_hat = (0, 16): one zero coordinate, sqrt 4, log2 2. Pooled nonzero log2 values
    # (1, 1, 2, 2.5, 2.5): Q25 at position 1 -> 1, Q75 at position 3 -> 2.5.
    d = diagnose(Linear2(), linear_loss, HAND_BATCHES)
    assert [r.name for r in d.per_tensor] == ["w1", "w2"]
    assert d.excluded == ("bias",)
    w1, w2 = d.per_tensor
    assert (w1.shape, w1.numel, w1.zero_coords) == ((4,), 4, 0)
    assert_close(w1.median_sqrt_v, 1 + 2 * math.sqrt(2))  # (2 + 4 sqrt2) / 2
    assert_close(w1.rms_grad, math.sqrt(18.0))
    assert_close(w1.rms_weight, 1.0)
    assert (w2.zero_coords, w2.median_sqrt_v) == (1, 4.0)
    assert_close(w2.rms_grad, math.sqrt(8.0))
    assert_close(w2.rms_weight, math.sqrt(12.5))
    assert_close(d.spread, 1.5)
    assert_close(d.layer_spread, 2 - math.log2(1 + 2 * math.sqrt(2)))
    assert (d.num_batches, d.num_coords, d.zero_coords) == (2, 6, 1)
    assert_close(d.quantiles_sqrt_v["q25"], 2.0)
    assert_close(d.quantiles_sqrt_v["q75"], 4 * math.sqrt(2))
    # spread_eps pools all six log2(sqrt v + eps): (log2 eps, 1, 1, 2, 2.5, 2.5) up to eps;
    # Q25 at position 1.25 -> 1, Q75 at 3.75 -> 2 + 0.75 * 0.5 = 2.375: spread 1.375.
    assert_close(d.spread_eps, 1.375, rtol=0, atol=1e-7)
    assert d.to_dict()["per_tensor"][1] == {
        "name": "w2", "shape": [2], "numel": 2, "median_sqrt_v": 4.0,
        "rms_grad": w2.rms_grad, "rms_weight": w2.rms_weight, "zero_coords": 1,
    }  # fmt: skip


def test_include_bias_norm():
    d = diagnose(Linear2(), linear_loss, HAND_BATCHES, include_bias_norm=True)
    assert [r.name for r in d.per_tensor] == ["w1", "w2", "bias"]
    assert d.per_tensor[2].median_sqrt_v == 7.0 and d.excluded == ()


def test_to_dict_is_json_and_round_trips():
    import json

    from scalefree.diagnose import Diagnosis

    d = diagnose(Linear2(), linear_loss, HAND_BATCHES)
    back = Diagnosis.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back == d
    assert "1.50 octaves" in d.reading() and "1 coordinate(s)" in d.reading()


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4)
    )


def data(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(32, 6, generator=g), torch.randint(0, 4, (32,), generator=g)) for _ in range(n)
    ]


def ce(c: float = 1.0):
    return lambda m, b: c * F.cross_entropy(m(b[0]), b[1])


@pytest.mark.parametrize("c", [1e-3, 2.0**10, 1000.0])
def test_loss_multiplier_leaves_the_spreads(c):
    base = diagnose(mlp(), ce(), data(), train_mode=False)
    scaled = diagnose(mlp(), ce(c), data(), train_mode=False)
    assert base.spread > 0.1 and base.layer_spread > 0.01  # something to compare
    assert_close(scaled.spread, base.spread, rtol=0, atol=1e-5)
    assert_close(scaled.layer_spread, base.layer_spread, rtol=0, atol=1e-5)
    assert_close(
        scaled.per_tensor[0].median_sqrt_v, c * base.per_tensor[0].median_sqrt_v, rtol=1e-5, atol=0
    )


@pytest.mark.parametrize("k", [-3, 1, 5])
def test_scaling_one_layers_gradients_moves_its_median(k):
    base = diagnose(mlp(), ce(), data(), train_mode=False)
    model = mlp()
    model[4].weight.register_hook(lambda g: g * 2.0**k)
    moved = diagnose(model, ce(), data(), train_mode=False)
    before = {r.name: math.log2(r.median_sqrt_v) for r in base.per_tensor}
    after = {r.name: math.log2(r.median_sqrt_v) for r in moved.per_tensor}
    assert_close(after["4.weight"] - before["4.weight"], float(k), rtol=0, atol=1e-9)
    assert_close(after["0.weight"], before["0.weight"], rtol=0, atol=1e-12)


def test_model_state_is_untouched():
    model = mlp()
    model[1].eval()  # a mixed mode: the top in train mode, BatchNorm in eval
    model[0].weight.grad = torch.full_like(model[0].weight, 0.25)
    model[4].bias.requires_grad_(False)
    kept_grad = model[0].weight.grad
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    d = diagnose(model, ce(), data(), train_mode=True)
    assert d.num_batches == 3 and "4.bias" in d.excluded
    assert model[0].weight.grad is kept_grad and torch.all(kept_grad == 0.25)
    assert all(p.grad is None for n, p in model.named_parameters() if n != "0.weight")
    assert not model[4].bias.requires_grad and model[4].weight.requires_grad
    assert [m.training for m in model.modules()] == modes
    for n, p in model.named_parameters():
        assert torch.equal(p, params[n]), n
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n
    assert torch.equal(torch.get_rng_state(), rng)
    # ... and the test can fail: a train-mode forward does move the running statistics.
    model.train()
    model(data()[0][0])
    assert not torch.equal(model[1].running_mean, buffers["1.running_mean"])


def test_state_is_restored_when_the_loss_fails():
    model = mlp()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    model.eval()

    def loss(m, b):
        if loss.calls == 1:
            raise RuntimeError("boom")
        loss.calls += 1
        return F.cross_entropy(m(b[0]), b[1])

    loss.calls = 0
    with pytest.raises(RuntimeError, match="boom"):
        diagnose(model, loss, data())
    assert not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n


def test_train_mode_matters_for_batchnorm():
    train = diagnose(mlp(), ce(), data(), train_mode=True)
    evald = diagnose(mlp(), ce(), data(), train_mode=False)
    assert abs(train.spread - evald.spread) > 1e-4


def test_device_and_progress(capsys):
    d = diagnose(mlp(), ce(), data(), device="cpu", progress=True, train_mode=False)
    assert_close(d.spread, diagnose(mlp(), ce(), data(), train_mode=False).spread)


@pytest.mark.parametrize(
    "batches, loss, match",
    [
        ([], ce(), "batches is empty"),
        (data(1), lambda m, b: F.cross_entropy(m(b[0]), b[1], reduction="none"), r"shape \(32,\)"),
        (data(1), lambda m, b: 1.0, "returned a float"),
        (data(1), lambda m, b: torch.tensor(1.0), "does not require grad"),
        (data(1), lambda m, b: m[1].bias.sum() * 1.0, "no analyzed parameter received a gradient"),
        (data(1), lambda m, b: ce()(m, b) * float("nan"), "not finite"),
    ],
)
def test_bad_input_is_a_clear_error(batches, loss, match):
    with pytest.raises(DiagnoseError, match=match):
        diagnose(mlp(), loss, batches)


def test_frozen_model_and_bad_eps():
    model = mlp().requires_grad_(False)
    with pytest.raises(DiagnoseError, match="none requires grad"):
        diagnose(model, ce(), data())
    with pytest.raises(DiagnoseError, match="eps"):
        diagnose(mlp(), ce(), data(), eps=-1.0)


def test_quantiles_match_torch():
    x = torch.randn(1001, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    want = torch.quantile(x, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    assert_close(torch.tensor(quantiles(x)), want)
    assert quantiles(torch.tensor([5.0])) == [5.0, 5.0, 5.0]


def test_default_exclusion_is_the_decay_groups():
    from scalefree.diagnose import analyzed_names
    from scalefree.models import build_model
    from scalefree.optim import param_groups

    model = build_model("ResNet20", batch_norm=True)
    analyzed, excluded = analyzed_names(model)
    decay, no_decay = param_groups(model, 0.1, exclude_bias_norm=True)
    named = dict(model.named_parameters())
    assert {id(named[n]) for n in analyzed} == {id(p) for p in decay["params"]}
    assert {id(named[n]) for n in excluded} == {id(p) for p in no_decay["params"]}
    assert "bn1.weight" in excluded and "fc.bias" in excluded and "conv1.weight" in analyzed
    assert analyzed_names(model, include_bias_norm=True) == ([n for n in named], [])
