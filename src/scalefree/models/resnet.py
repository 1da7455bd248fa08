"""CIFAR ResNets of depth 6n+2 (He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, Section 4.2).

Three stages of ``n`` basic blocks with 16, 32 and 64 channels on 32x32, 16x16 and 8x8 maps,
global average pooling and a linear classifier (with bias). Shortcuts are the paper's option A:
an identity, subsampled by stride 2 and zero-padded in channels when the shape changes, so the
shortcuts carry no parameters. Convolutions are 3x3 and bias-free, each followed by BatchNorm.

``batch_norm=False`` replaces every BatchNorm by an identity and changes nothing else; in
particular the convolutions stay bias-free, so the model without BN has exactly
``2 * (total BN channels)`` fewer parameters.

Initialization: Kaiming-normal (He et al., ICCV 2015) with ``mode="fan_in"`` and the ReLU gain
for conv and linear weights, which keeps forward activations' variance constant and matches the
widely used CIFAR reference implementation the paper's experiments build on. BatchNorm starts
at weight 1 / bias 0 and the linear bias keeps PyTorch's default uniform init. Initialization
does not change parameter counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalefree.models.parts import check_positive, init_weights
from scalefree.models.parts import norm2d as _norm

__all__ = ["RESNET_DEPTHS", "BasicBlock", "CifarResNet", "PadShortcut", "resnet"]

# The depths of the 6n+2 family that the paper and the original ResNet paper report.
RESNET_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 218, 1202)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option-A shortcut (He et al. 2016): spatial subsampling by ``stride`` and zero-padding of
    the new channels, split evenly on both sides of the channel axis. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        extra = out_channels - in_channels
        if extra < 0 or extra % 2:
            raise ValueError(
                f"option-A shortcut needs an even channel increase, got {in_channels} -> "
                f"{out_channels}"
            )
        self.stride = stride
        self.pad = extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dimensions first: (W_left, W_right, H_top, H_bottom, C_lo, C_hi).
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad={self.pad}"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a ReLU between and after the residual sum (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = _norm(out_channels, batch_norm)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = _norm(out_channels, batch_norm)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs (He et al. 2016, Section 4.2), option-A shortcuts."""

    def __init__(self, depth: int, num_classes: int = 10, batch_norm: bool = True) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        check_positive("num_classes", num_classes)
        n = (depth - 2) // 6
        self.depth = depth
        self.batch_norm = batch_norm
        self.conv1 = _conv3x3(3, 16)
        self.bn1 = _norm(16, batch_norm)
        layers: list[nn.Module] = []
        in_channels = 16
        for stage, channels in enumerate((16, 32, 64)):
            for i in range(n):
                # Only the first block of stages 2 and 3 halves the map and doubles channels.
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(in_channels, channels, stride, batch_norm))
                in_channels = channels
        self.layer1 = nn.Sequential(*layers[:n])
        self.layer2 = nn.Sequential(*layers[n : 2 * n])
        self.layer3 = nn.Sequential(*layers[2 * n :])
        self.fc = nn.Linear(64, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal, fan_in, ReLU gain for conv and linear weights (see module docstring)."""
        init_weights(self, zero_linear_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        # Adaptive pooling == the paper's 8x8 average pool on 32x32 inputs, and works for others.
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def resnet(depth: int, num_classes: int = 10, batch_norm: bool = True) -> CifarResNet:
    """Build a CIFAR ResNet of the given 6n+2 depth (He et al. 2016)."""
    return CifarResNet(depth, num_classes=num_classes, batch_norm=batch_norm)
