"""Fully connected ReLU networks on downsampled images: the depth study's cheap family.

``FullyConnected(depth)`` has ``depth`` linear layers: the input is average-pooled to 8 x 8
(an identity on ``--image-size 8`` data, a 4 x 4 area mean on full 32 x 32 images), flattened to
3 * 8 * 8 = 192 features, then ``depth - 1`` hidden layers of ``width`` units, each
Linear -> [BatchNorm1d] -> ReLU, and a linear classifier. ``batch_norm=False`` removes every
BatchNorm1d and nothing else (the normalized and plain nets have the same linear layers).

Initialization as the CIFAR ResNets (Kaiming-normal, fan_in, ReLU gain) for every linear weight,
zero biases, so without normalization the forward activations' scale is kept at init and what
differs with depth is how the gradients' scales spread over the layers, which is what AdamL2's
effective decay lambda / sqrt(v) sees (see ``scalefree diagnose``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalefree.models.parts import init_weights

__all__ = ["MLP_DEPTHS", "MLP_INPUT_SIDE", "MLP_WIDTH", "FullyConnected", "mlp"]

MLP_DEPTHS: tuple[int, ...] = (4, 8, 16, 32)
MLP_WIDTH = 256
MLP_INPUT_SIDE = 8  # the images' side after the input pooling


class FullyConnected(nn.Module):
    """``depth`` linear layers of ``width`` units with ReLU (and BatchNorm1d) between them."""

    def __init__(
        self, depth: int, num_classes: int = 10, batch_norm: bool = True, width: int = MLP_WIDTH
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"a fully connected net needs depth >= 2 linear layers, got {depth}")
        if num_classes < 1 or width < 1:
            raise ValueError(f"num_classes and width must be positive, got {num_classes}, {width}")
        self.depth, self.batch_norm, self.width = depth, batch_norm, width
        layers: list[nn.Module] = []
        features = 3 * MLP_INPUT_SIDE * MLP_INPUT_SIDE
        for _ in range(depth - 1):
            layers.append(nn.Linear(features, width))
            # Identity keeps parameter names aligned with and without BN, as in the ResNets.
            layers.append(nn.BatchNorm1d(width) if batch_norm else nn.Identity())
            layers.append(nn.ReLU())
            features = width
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != MLP_INPUT_SIDE or x.shape[-2] != MLP_INPUT_SIDE:
            x = F.adaptive_avg_pool2d(x, MLP_INPUT_SIDE)
        return self.fc(self.hidden(torch.flatten(x, 1)))


def mlp(depth: int, num_classes: int = 10, batch_norm: bool = True) -> FullyConnected:
    """Build a fully connected net of ``depth`` linear layers (width :data:`MLP_WIDTH`)."""
    return FullyConnected(depth, num_classes=num_classes, batch_norm=batch_norm)
