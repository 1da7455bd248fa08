"""Model zoo: exact parameter counts, shapes, BN removal, init determinism, memory formats.

Table-driven over ``MODELS`` so a new model fails here until its counts are added below.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalefree.errors import UsageError
from scalefree.models import (
    MODELS,
    NORM_TYPES,
    ModelEntry,
    build_model,
    count_parameters,
    densenet_bc,
    mlp,
    resnet,
)
from scalefree.models.resnet import PadShortcut
from scalefree.registry import UnknownNameError
from tests.helpers import assert_close

# name -> (num_classes, with BN, without BN); docs/design.md section 8.
EXPECTED_COUNTS: dict[str, tuple[int, int, int]] = {
    "ResNet20": (10, 269_722, 268_346),
    "ResNet32": (10, 464_154, 461_882),
    "ResNet44": (10, 658_586, 655_418),
    "ResNet56": (10, 853_018, 848_954),
    "ResNet110": (10, 1_727_962, 1_719_866),
    "ResNet218": (10, 3_477_850, 3_461_690),
    "ResNet1202": (10, 19_421_274, 19_331_642),
    "DenseNetBC100": (100, 800_032, 776_044),
}
# Fully connected nets: 192 inputs (3 x 8 x 8), depth - 1 hidden layers of 256, 10 outputs, each
# linear layer with its bias; BatchNorm1d adds a weight and a bias per hidden unit.
for _d in (4, 8, 16, 32):
    _plain = (192 * 256 + 256) + (_d - 2) * (256 * 256 + 256) + (256 * 10 + 10)
    EXPECTED_COUNTS[f"MLP{_d}"] = (10, _plain + 2 * 256 * (_d - 1), _plain)
del _d, _plain
# Smaller models first, so per-model tests below stay cheap.
SMALL = ("ResNet20", "ResNet32", "DenseNetBC100")


def _is_batchnorm(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


def test_every_registered_model_has_expected_counts() -> None:
    assert set(MODELS.names()) == set(EXPECTED_COUNTS)


@pytest.mark.parametrize("batch_norm", [True, False], ids=["bn", "no_bn"])
@pytest.mark.parametrize("name", MODELS.names())
def test_parameter_count(name: str, batch_norm: bool) -> None:
    num_classes, with_bn, without_bn = EXPECTED_COUNTS[name]
    model = build_model(name, num_classes=num_classes, batch_norm=batch_norm)
    assert count_parameters(model) == (with_bn if batch_norm else without_bn)


@pytest.mark.parametrize("name", SMALL)
def test_no_batch_norm_removes_bn_and_nothing_else(name: str) -> None:
    with_bn = build_model(name, batch_norm=True)
    without = build_model(name, batch_norm=False)
    assert any(_is_batchnorm(m) for m in with_bn.modules())
    assert not any(_is_batchnorm(m) or isinstance(m, NORM_TYPES) for m in without.modules())
    bn_names = {
        f"{mod_name}.{p_name}"
        for mod_name, m in with_bn.named_modules()
        if isinstance(m, NORM_TYPES)
        for p_name, _ in m.named_parameters(recurse=False)
    }
    kept = {n: p.shape for n, p in with_bn.named_parameters() if n not in bn_names}
    assert {n: p.shape for n, p in without.named_parameters()} == kept
    # Convolutions stay bias-free without BN.
    assert all(m.bias is None for m in without.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("batch_norm", [True, False], ids=["bn", "no_bn"])
@pytest.mark.parametrize("name", SMALL)
def test_forward_shape(name: str, batch_norm: bool) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, batch_norm=batch_norm)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_entries_carry_family_and_depth() -> None:
    for entry in MODELS:
        family = next(f for f in ("densenet", "resnet", "mlp") if f in entry.name.lower())
        assert entry.family == family
        assert entry.factory is {"densenet": densenet_bc, "resnet": resnet, "mlp": mlp}[family]
        assert entry.name.endswith(str(entry.depth)) and entry.defaults["depth"] == entry.depth
        assert entry.batch_norm_option
        assert entry.tags == {entry.family, "batch_norm_option"}


def test_a_model_without_batch_norm_option_ignores_the_flag() -> None:
    entry = ModelEntry("Toy", lambda num_classes: nn.Linear(3, num_classes), "toy",
                       batch_norm_option=False)  # fmt: skip
    with MODELS.registered(entry):
        assert build_model("toy", num_classes=4, batch_norm=False).out_features == 4
        assert build_model("toy", num_classes=4, batch_norm=True).out_features == 4
    assert "Toy" not in MODELS


def test_lookup_is_case_insensitive() -> None:
    assert type(build_model("resnet20")) is type(build_model("RESNET20"))
    assert MODELS.canonical("densenetbc100") == "DenseNetBC100"


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(UnknownNameError, match="ResNet20.*DenseNetBC100"):
        build_model("ResNet21")
    # A usage error: the CLI turns it into a one-line message and exit code 2.
    assert issubclass(UnknownNameError, UsageError)


@pytest.mark.parametrize("num_classes", [0, -3, 2.5, True])
def test_bad_num_classes(num_classes: object) -> None:
    with pytest.raises(UsageError, match="num_classes"):
        build_model("ResNet20", num_classes=num_classes)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ("ResNet20", "DenseNetBC100"))
def test_init_is_deterministic_under_seed(name: str) -> None:
    def state(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return build_model(name).state_dict()

    a, b, c = state(1), state(1), state(2)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_resnet_init_is_kaiming_normal_fan_in() -> None:
    torch.manual_seed(0)
    model = build_model("ResNet20")
    w = model.layer3[1].conv1.weight  # 64 x 64 x 3 x 3 = 36,864 draws
    expected_std = (2.0 / (64 * 9)) ** 0.5
    assert abs(w.mean().item()) < 0.05 * expected_std
    assert abs(w.std().item() / expected_std - 1) < 0.02


def test_option_a_shortcut_subsamples_and_zero_pads() -> None:
    x = torch.randn(2, 16, 8, 8)
    y = PadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()
    assert not list(PadShortcut(16, 32, 2).parameters())


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_channels_last_matches_contiguous(train: bool) -> None:
    torch.manual_seed(0)
    model = build_model("ResNet20").train(train)
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    actual = model_cl(x.contiguous(memory_format=torch.channels_last))
    assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ("ResNet20", "DenseNetBC100"))
def test_bfloat16_autocast(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.randn(2, 3, 32, 32)
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert_close(out.float(), reference, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("depth", [0, 19, 21])
def test_invalid_resnet_depth(depth: int) -> None:
    from scalefree.models import resnet

    with pytest.raises(ValueError, match="6n\\+2"):
        resnet(depth)


def test_count_parameters_trainable_only() -> None:
    model = build_model("ResNet20")
    model.fc.requires_grad_(False)
    assert count_parameters(model) == 269_722
    assert count_parameters(model, trainable_only=True) == 269_722 - (64 * 10 + 10)


def test_mlp_counts_written_out() -> None:
    # The formula above, checked once against numbers counted by hand for MLP4.
    assert EXPECTED_COUNTS["MLP4"] == (10, 185_098, 183_562)


@pytest.mark.parametrize("side", [8, 16, 32])
def test_mlp_pools_any_input_to_8x8(side: int) -> None:
    """On 8x8 input the pooling is skipped; on larger input it is the k x k area mean, so a
    32x32 image and its exact 4x4 block average give the same logits."""
    from scalefree.models.mlp import FullyConnected

    torch.manual_seed(0)
    model = FullyConnected(4, batch_norm=False).double()
    small = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    k = side // 8
    big = small.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)
    assert_close(model(big), model(small))


def test_mlp_depth_counts_linear_layers_and_init() -> None:
    from scalefree.models.mlp import FullyConnected

    torch.manual_seed(0)
    model = FullyConnected(16, batch_norm=True, width=64)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 16
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 15
    assert all(float(m.bias.abs().max()) == 0.0 for m in linears)
    # Kaiming-normal fan_in with the ReLU gain: std sqrt(2 / 64) for the 64 x 64 layers.
    hidden = torch.cat([m.weight.flatten() for m in linears[1:-1]])
    assert abs(float(hidden.std()) / (2 / 64) ** 0.5 - 1) < 0.05
    with pytest.raises(ValueError, match="depth >= 2"):
        FullyConnected(1)
