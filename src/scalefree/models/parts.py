"""What the networks share: the BatchNorm-or-identity layer, argument checks, the init loop."""

from __future__ import annotations

from typing import Literal

from torch import nn


def norm2d(channels: int, batch_norm: bool) -> nn.Module:
    # An identity (not removal) keeps module names identical with and without BN, so state
    # dicts and parameter names line up between the two variants.
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


def check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")


def init_weights(
    model: nn.Module,
    conv_mode: Literal["fan_in", "fan_out"] = "fan_in",
    zero_linear_bias: bool = True,
) -> None:
    """Kaiming-normal (ReLU gain) conv weights with ``conv_mode`` and linear weights with fan_in,
    BatchNorm weight 1 / bias 0, linear biases 0 (``zero_linear_bias``), in module order."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if zero_linear_bias:
                nn.init.zeros_(m.bias)
