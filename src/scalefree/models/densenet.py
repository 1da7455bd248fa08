"""DenseNet-BC for CIFAR (Huang, Liu, van der Maaten, Weinberger, "Densely Connected
Convolutional Networks", CVPR 2017, Section 3 and Table 2).

Layout for depth ``L`` and growth rate ``k``: a 3x3 conv to ``2k`` channels, three dense
blocks of ``(L - 4) / 6`` bottleneck layers each (BN-ReLU-Conv1x1 to ``4k`` channels, then
BN-ReLU-Conv3x3 to ``k`` channels, output concatenated to the input), transitions between
blocks (BN-ReLU-Conv1x1 compressing channels by ``compression``, then 2x2 average pooling), and
a final BN-ReLU, global average pooling and a linear classifier with bias. All convolutions are
bias-free. No dropout (the paper uses none when training with data augmentation).

``batch_norm=False`` replaces every BatchNorm by an identity and changes nothing else.

Initialization ("He init", He et al., ICCV 2015): conv weights are normal with std
``sqrt(2 / fan_out)``, fan_out = k*k*out_channels, as in the authors' original Torch code;
BatchNorm starts at weight 1 / bias 0; the linear layer gets Kaiming-normal fan_in weights and a
zero bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalefree.models.parts import check_positive, init_weights
from scalefree.models.parts import norm2d as _norm

__all__ = ["Bottleneck", "DenseNetBC", "Transition", "densenet_bc"]


class Bottleneck(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k); the output is appended to the input channels."""

    def __init__(self, in_channels: int, growth_rate: int, batch_norm: bool) -> None:
        super().__init__()
        inter = 4 * growth_rate
        self.bn1 = _norm(in_channels, batch_norm)
        self.conv1 = nn.Conv2d(in_channels, inter, 1, bias=False)
        self.bn2 = _norm(inter, batch_norm)
        self.conv2 = nn.Conv2d(inter, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 (compression) followed by 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        super().__init__()
        self.bn = _norm(in_channels, batch_norm)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetBC(nn.Module):
    """DenseNet-BC (Huang et al. 2017) for 32x32 inputs."""

    def __init__(
        self,
        depth: int = 100,
        growth_rate: int = 12,
        compression: float = 0.5,
        num_classes: int = 10,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        # Each bottleneck layer has 2 convs; the 4 are the stem, two transitions and the linear.
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n+4 with n >= 1, got {depth}")
        check_positive("growth_rate", growth_rate)
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        check_positive("num_classes", num_classes)
        n = (depth - 4) // 6
        self.depth = depth
        self.growth_rate = growth_rate
        self.batch_norm = batch_norm

        channels = 2 * growth_rate  # the BC variant's stem width (paper, Section 3)
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for block in range(3):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers.append(Bottleneck(channels, growth_rate, batch_norm))
                channels += growth_rate
            stages.append(nn.Sequential(*layers))
            if block < 2:
                out = int(channels * compression)  # floor, as in the reference code
                stages.append(Transition(channels, out, batch_norm))
                channels = out
        self.dense1, self.trans1, self.dense2, self.trans2, self.dense3 = stages
        self.bn = _norm(channels, batch_norm)
        self.fc = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init of convs (fan_out), BN 1/0, linear Kaiming fan_in with zero bias."""
        init_weights(self, conv_mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.trans1(self.dense1(x))
        x = self.trans2(self.dense2(x))
        x = F.relu(self.bn(self.dense3(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


# The registry's factory: the class itself (its arguments, defaults and checks).
densenet_bc = DenseNetBC
