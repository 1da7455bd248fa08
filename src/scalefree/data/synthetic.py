"""A deterministic, learnable CIFAR-shaped dataset for smoke runs and tests (no files needed).

Each class c has a smooth random template T_c (a 4x4 Gaussian grid per channel, upsampled
bicubically to 32x32, scaled to unit RMS). An image of class c is

    x = 128 + 25 * (a * T_c + 2 * S) + b + 12 * e,   rounded and clipped to [0, 255] uint8,

with per-image contrast a ~ U(0.6, 1.4), a smooth class-independent nuisance S drawn like a
template, brightness b ~ N(0, 12^2) and pixel noise e ~ N(0, 1). The nuisance is twice as strong
as the signal and lives in the same low-frequency subspace as the templates, so classes overlap:
logistic regression reaches about 90% test accuracy within a hundred SGD steps (chance: 10%), not
100%, which leaves room to tell optimizers and models apart.

Everything comes from ``torch.Generator`` seeded by ``seed``: templates first, then one derived
seed each for the train and test draws, so the test set does not change when ``n_train`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalefree.data.raw import RawDataset
from scalefree.errors import UsageError

SYNTHETIC_NUM_CLASSES = 10
DEFAULT_SIZES = (2560, 512)
_CHUNK = 1024  # images generated per step, to bound float32 scratch memory for large sizes


def _smooth_fields(n: int, generator: torch.Generator) -> torch.Tensor:
    """n smooth random fields (n, 3, 32, 32) with unit RMS each."""
    coarse = torch.randn(n, 3, 4, 4, generator=generator)
    fields = F.interpolate(coarse, size=(32, 32), mode="bicubic", align_corners=False)
    return fields / fields.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()


def _sample(templates: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    num_classes = templates.shape[0]
    # Balanced classes (counts differ by at most one), in random order.
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
    images = torch.empty(n, 3, 32, 32, dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        y = labels[start : start + _CHUNK]
        m = len(y)
        contrast = torch.empty(m, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
        brightness = 12.0 * torch.randn(m, 1, 1, 1, generator=g)
        nuisance = _smooth_fields(m, g)
        noise = torch.randn(m, 3, 32, 32, generator=g)
        x = 128.0 + 25.0 * (contrast * templates[y] + 2.0 * nuisance) + brightness + 12.0 * noise
        images[start : start + m] = x.round().clamp_(0, 255).to(torch.uint8)
    return images, labels


def make_synthetic(
    n_train: int = DEFAULT_SIZES[0],
    n_test: int = DEFAULT_SIZES[1],
    *,
    seed: int = 0,
    num_classes: int = SYNTHETIC_NUM_CLASSES,
) -> RawDataset:
    """Generate the synthetic dataset as CPU tensors (uint8 N x 3 x 32 x 32, int64 labels).

    Args:
        n_train: number of training images (default 2560).
        n_test: number of test images (default 512).
        seed: fixes templates and samples; the same arguments always give bitwise-equal data.
        num_classes: number of classes (10 by default, like CIFAR-10).
    """
    for what, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or n < 1:
            raise UsageError(f"synthetic dataset {what} must be a positive integer, got {n!r}")
    if num_classes < 2:
        raise UsageError(f"synthetic dataset needs at least 2 classes, got {num_classes}")
    g = torch.Generator().manual_seed(seed)
    templates = _smooth_fields(num_classes, g)
    train_seed, test_seed = (int(s) for s in torch.randint(0, 2**62, (2,), generator=g))
    train_images, train_labels = _sample(templates, n_train, train_seed)
    test_images, test_labels = _sample(templates, n_test, test_seed)
    return RawDataset(
        name="synthetic",
        num_classes=num_classes,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=tuple(f"class_{i}" for i in range(num_classes)),
    )
