"""The host-side result every dataset source (CIFAR files, synthetic generator) produces."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RawDataset:
    """A dataset's official train / test splits as CPU tensors, before any split or device move.

    ``*_images`` are uint8 of shape (N, 3, 32, 32) (channel-major RGB, the CIFAR file order);
    ``*_labels`` are int64 of shape (N,) with values in ``[0, num_classes)``.
    """

    name: str
    num_classes: int
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...] = ()
