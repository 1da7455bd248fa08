"""Model zoo: CIFAR ResNets (6n+2, option-A shortcuts), DenseNet-BC-100 and fully connected
nets (MLP4 ... MLP32), by name.

``MODELS`` is the one registry the CLI choices, sweeps and tests read; ``build_model`` is the
one way to construct a model from a name. Every model takes N x 3 x 32 x 32 float input and
returns N x num_classes logits; ``batch_norm=False`` removes every BatchNorm and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from scalefree.errors import UsageError
from scalefree.models.densenet import DenseNetBC, densenet_bc
from scalefree.models.mlp import MLP_DEPTHS, FullyConnected, mlp
from scalefree.models.resnet import RESNET_DEPTHS, CifarResNet, resnet
from scalefree.optim.groups import NORM_TYPES
from scalefree.registry import Entry, Registry, UnknownNameError

__all__ = [
    "MODELS",
    "ModelEntry",
    "NORM_TYPES",
    "CifarResNet",
    "DenseNetBC",
    "Entry",
    "FullyConnected",
    "UnknownNameError",
    "build_model",
    "count_parameters",
    "densenet_bc",
    "mlp",
    "resnet",
]


@dataclass(frozen=True)
class ModelEntry(Entry[nn.Module]):
    """A registered model. Its factory is called as ``factory(num_classes=..., batch_norm=...)``
    (plus ``defaults``) and returns a module mapping N x 3 x 32 x 32 to N x num_classes.

    family: the architecture family ("resnet", "densenet", "mlp", or "other" for added models).
    depth: its depth in layers (0 where that is not meaningful).
    batch_norm_option: the factory takes ``batch_norm``; False for a model without BatchNorm,
        which is then built the same way for either value of ``--batch-norm``.
    """

    family: Literal["resnet", "densenet", "mlp", "other"] = "other"
    depth: int = 0
    batch_norm_option: bool = True

    @property
    def tags(self) -> frozenset[str]:
        """The capabilities plus the family name (the old tags were "resnet" / "densenet")."""
        return super().tags | {self.family}


MODELS: Registry[ModelEntry] = Registry("model", ModelEntry)

for _depth in RESNET_DEPTHS:
    MODELS.add(
        f"ResNet{_depth}",
        resnet,
        f"CIFAR ResNet-{_depth} ({(_depth - 2) // 6} basic blocks per stage, option-A "
        "shortcuts; He et al. 2016)",
        defaults={"depth": _depth},
        family="resnet",
        depth=_depth,
    )
MODELS.add(
    "DenseNetBC100",
    densenet_bc,
    "DenseNet-BC, depth 100, growth rate 12, compression 0.5 (Huang et al. 2017)",
    defaults={"depth": 100, "growth_rate": 12, "compression": 0.5},
    family="densenet",
    depth=100,
)
for _depth in MLP_DEPTHS:
    MODELS.add(
        f"MLP{_depth}",
        mlp,
        f"fully connected ReLU net, {_depth} linear layers of width 256 on 8x8-pooled images "
        "(BatchNorm1d after each hidden layer unless --no-batch-norm)",
        defaults={"depth": _depth},
        family="mlp",
        depth=_depth,
    )
del _depth


def build_model(name: str, num_classes: int = 10, batch_norm: bool = True) -> nn.Module:
    """Build the model registered as ``name`` (case-insensitive).

    Raises ``UnknownNameError`` (listing the choices) for an unknown name and ``UsageError`` for
    a non-positive ``num_classes``.
    """
    entry = MODELS.get(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not entry.batch_norm_option:
        return entry.build(num_classes=num_classes)
    return entry.build(num_classes=num_classes, batch_norm=batch_norm)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
