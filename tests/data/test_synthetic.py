"""The synthetic dataset: shapes, determinism, balance, learnability."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scalefree.data import load_data, make_synthetic, normalize
from scalefree.errors import UsageError


def test_defaults_shapes_and_dtypes() -> None:
    bundle = load_data("synthetic", "unused")
    assert bundle.name == "synthetic" and bundle.num_classes == 10
    assert (
        bundle.train_images.shape == (2560, 3, 32, 32) and bundle.train_images.dtype == torch.uint8
    )
    assert bundle.eval_images.shape == (512, 3, 32, 32)
    assert bundle.train_labels.bincount().tolist() == [256] * 10
    # Pixels use the range without saturating everywhere.
    assert 40 < bundle.std.min() and bundle.std.max() < 80


def test_deterministic_and_seeded() -> None:
    a, b = make_synthetic(64, 32), make_synthetic(64, 32)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    c = make_synthetic(64, 32, seed=1)
    assert not torch.equal(a.train_images, c.train_images)


def test_test_set_does_not_depend_on_train_size() -> None:
    a, b = make_synthetic(64, 32), make_synthetic(100, 32)
    assert torch.equal(a.test_images, b.test_images)


def test_sizes_override_and_validation() -> None:
    bundle = load_data("synthetic", ".", synthetic_sizes=(100, 30), validation=True)
    assert (len(bundle.train_images), len(bundle.eval_images), bundle.eval_split) == (90, 10, "val")
    with pytest.raises(UsageError, match="n_test must be a positive integer"):
        make_synthetic(10, 0)


def test_learnable_by_logistic_regression() -> None:
    data = make_synthetic(1000, 500)
    mean = data.train_images.double().mean(dim=(0, 2, 3)).float()
    std = data.train_images.double().std(dim=(0, 2, 3)).float()
    x, xt = (normalize(i, mean, std).flatten(1) for i in (data.train_images, data.test_images))
    torch.manual_seed(0)
    model = torch.nn.Linear(3072, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(model(x[idx]), data.train_labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == data.test_labels).float().mean().item()
    assert acc > 0.6  # chance is 0.1
