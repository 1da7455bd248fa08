"""load_data: registry, validation split, statistics and normalization."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from scalefree.data import (
    DATASETS,
    DataBundle,
    channel_stats,
    dataset_num_classes,
    eval_batches,
    load_data,
    normalize,
    read_cifar,
    split_indices,
)
from scalefree.data import loader as loader_module
from scalefree.errors import UsageError
from scalefree.registry import UnknownNameError
from tests.helpers import assert_close


def test_registry_names_and_classes() -> None:
    assert DATASETS.names() == ("CIFAR10", "CIFAR100", "synthetic")
    assert DATASETS.names("cifar") == ("CIFAR10", "CIFAR100")
    assert [dataset_num_classes(n) for n in ("cifar10", "CIFAR100", "Synthetic")] == [10, 100, 10]
    with pytest.raises(UnknownNameError, match="choose one of: CIFAR10, CIFAR100, synthetic"):
        load_data("imagenet", ".")


def test_bundle_of_cifar10(fake_cifar10: Path) -> None:
    bundle = load_data("cifar10", fake_cifar10)
    assert isinstance(bundle, DataBundle)
    assert bundle.name == "CIFAR10" and bundle.num_classes == 10 and bundle.eval_split == "test"
    assert (
        bundle.train_images.shape == (100, 3, 32, 32) and bundle.train_images.dtype == torch.uint8
    )
    assert bundle.eval_images.shape == (20, 3, 32, 32) and bundle.eval_images.dtype == torch.uint8
    assert bundle.train_labels.dtype == bundle.eval_labels.dtype == torch.int64
    assert bundle.mean.shape == bundle.std.shape == (3,)
    assert bundle.mean.dtype == bundle.std.dtype == torch.float32
    assert bundle.device == torch.device("cpu")
    assert "train=100" in repr(bundle) and "test=20" in repr(bundle)


def test_bundle_of_cifar100(fake_cifar100: Path) -> None:
    bundle = load_data("CIFAR100", fake_cifar100, validation=True, val_ratio=0.2)
    assert bundle.num_classes == 100 and bundle.eval_split == "val"
    assert len(bundle.train_images) == 184 and len(bundle.eval_images) == 46


def test_download_flag_calls_downloader(fake_cifar10: Path, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(loader_module, "download_cifar", lambda *a, **k: calls.append(a))
    load_data("CIFAR10", fake_cifar10)
    assert calls == []
    load_data("CIFAR10", fake_cifar10, download=True)
    assert calls == [("CIFAR10", fake_cifar10)]


# ------------------------------------------------------------------------------- validation split


@pytest.mark.parametrize("n,ratio,n_val", [(100, 0.1, 10), (50000, 0.1, 5000), (7, 0.5, 4)])
def test_split_sizes_disjoint_covering(n: int, ratio: float, n_val: int) -> None:
    train, val = split_indices(n, ratio, seed=3)
    assert len(val) == n_val and len(train) == n - n_val
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(n))


def test_split_is_seeded() -> None:
    a, b = split_indices(1000, 0.1, 0), split_indices(1000, 0.1, 0)
    assert torch.equal(a[1], b[1])
    c = split_indices(1000, 0.1, 1)
    assert not torch.equal(a[1], c[1])
    # Not simply the last 10%: the held-out set is a random subset.
    assert a[1].min() < 500


def test_validation_bundle_is_split_of_train(fake_cifar10: Path) -> None:
    raw = read_cifar("CIFAR10", fake_cifar10)
    bundle = load_data("CIFAR10", fake_cifar10, validation=True, val_ratio=0.25, split_seed=5)
    assert bundle.eval_split == "val"
    assert len(bundle.train_images) == 75 and len(bundle.eval_images) == 25
    train_idx, val_idx = split_indices(100, 0.25, 5)
    assert torch.equal(bundle.train_images, raw.train_images[train_idx])
    assert torch.equal(bundle.eval_images, raw.train_images[val_idx])
    assert torch.equal(bundle.eval_labels, raw.train_labels[val_idx])
    # The test set plays no part when validating.
    again = load_data("CIFAR10", fake_cifar10, validation=True, val_ratio=0.25, split_seed=5)
    assert torch.equal(again.eval_images, bundle.eval_images)


def test_mean_std_from_loaded_train_split_only(fake_cifar10: Path) -> None:
    full = load_data("CIFAR10", fake_cifar10)
    split = load_data("CIFAR10", fake_cifar10, validation=True, val_ratio=0.3)
    x = split.train_images.double()
    assert_close(split.mean, x.mean(dim=(0, 2, 3)).float())
    assert_close(split.std, x.std(dim=(0, 2, 3), correction=0).float())
    assert not torch.allclose(split.mean, full.mean)
    assert_close(full.mean, full.train_images.double().mean(dim=(0, 2, 3)).float())


def test_channel_stats_matches_float64() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (37, 3, 8, 8), generator=g, dtype=torch.uint8)
    x[:, 1] //= 3  # channels with different statistics
    mean, std = channel_stats(x)
    assert_close(mean, x.double().mean(dim=(0, 2, 3)).float())
    assert_close(std, x.double().std(dim=(0, 2, 3), correction=0).float())
    with pytest.raises(ValueError, match="uint8"):
        channel_stats(x.float())


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf])
def test_val_ratio_out_of_range(fake_cifar10: Path, bad: float) -> None:
    with pytest.raises(UsageError, match="--val-ratio"):
        load_data("CIFAR10", fake_cifar10, validation=True, val_ratio=bad)


def test_val_ratio_leaving_empty_part(fake_cifar10: Path) -> None:
    with pytest.raises(UsageError, match="--val-ratio 0.001 leaves 0 of 100"):
        load_data("CIFAR10", fake_cifar10, validation=True, val_ratio=0.001)


# ---------------------------------------------------------------------------------- normalization


def test_normalized_train_set_has_zero_mean_unit_std(fake_cifar10: Path) -> None:
    bundle = load_data("CIFAR10", fake_cifar10, validation=True)
    batches = eval_batches(
        bundle.train_images, bundle.train_labels, 32, bundle.mean, bundle.std, torch.float64
    )
    x = torch.cat([xb for xb, _ in batches])
    assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0)
    assert_close(
        x.std(dim=(0, 2, 3), correction=0), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0
    )


def test_normalize_formula_dtype_and_layout() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8)
    mean, std = torch.tensor([120.0, 110.0, 100.0]), torch.tensor([60.0, 61.0, 62.0])
    expected = (x.double() - mean.double().view(3, 1, 1)) / std.double().view(3, 1, 1)
    out = normalize(x, mean, std)
    assert out.dtype == torch.float32 and out.is_contiguous()
    assert_close(out, expected.float())
    assert_close(normalize(x, mean, std, torch.float64), expected)
    bf = normalize(x, mean, std, torch.bfloat16, channels_last=True)
    assert bf.dtype == torch.bfloat16
    assert bf.is_contiguous(memory_format=torch.channels_last)
    assert_close(bf.float(), expected.float(), atol=2e-2, rtol=1e-2)


def test_eval_batches_in_order_without_augmentation(fake_cifar10: Path) -> None:
    bundle = load_data("CIFAR10", fake_cifar10)
    batches = list(
        eval_batches(
            bundle.eval_images, bundle.eval_labels, 8, bundle.mean, bundle.std, channels_last=True
        )
    )
    assert [len(y) for _, y in batches] == [8, 8, 4]
    assert torch.equal(torch.cat([y for _, y in batches]), bundle.eval_labels)
    x = torch.cat([xb for xb, _ in batches])
    assert torch.equal(x, normalize(bundle.eval_images, bundle.mean, bundle.std))
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)


def test_dataroot_none() -> None:
    assert len(load_data("synthetic", None, synthetic_sizes=(20, 10)).train_images) == 20
    with pytest.raises(UsageError, match="CIFAR10 needs --dataroot"):
        load_data("CIFAR10", None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bundle_on_cuda_matches_cpu() -> None:
    cpu = load_data("synthetic", None, synthetic_sizes=(300, 50), validation=True)
    gpu = load_data("synthetic", None, synthetic_sizes=(300, 50), validation=True, device="cuda")
    for field in ("train_images", "train_labels", "eval_images", "eval_labels", "mean", "std"):
        tensor = getattr(gpu, field)
        assert tensor.is_cuda, field
        assert_close(tensor.cpu(), getattr(cpu, field), msg=field)


def test_downsample_is_the_rounded_block_mean() -> None:
    from scalefree.data import downsample

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 3, 32, 32), generator=g, dtype=torch.uint8)
    for side in (16, 8, 4):
        k = 32 // side
        blocks = images.double().reshape(5, 3, side, k, side, k).mean(dim=(3, 5))
        expected = torch.round(blocks).to(torch.uint8)  # round half to even, as torch.round
        assert torch.equal(downsample(images, side), expected)
    assert downsample(images, 32) is images
    with pytest.raises(UsageError, match="--image-size 12"):
        downsample(images, 12)


def test_image_size_bundle_and_held_out_test_split(fake_cifar10: Path) -> None:
    from scalefree.data import downsample

    raw = read_cifar("CIFAR10", fake_cifar10)
    small = load_data("CIFAR10", fake_cifar10, image_size=8)
    assert small.train_images.shape[-2:] == (8, 8) and small.eval_images.shape[-2:] == (8, 8)
    assert torch.equal(small.eval_images, downsample(raw.test_images, 8))
    assert small.test_images is None  # the eval split is the test split already
    mean, std = channel_stats(small.train_images)
    assert torch.equal(small.mean, mean) and torch.equal(small.std, std)
    val = load_data("CIFAR10", fake_cifar10, validation=True, val_ratio=0.25, image_size=8)
    assert val.eval_split == "val"
    assert torch.equal(val.test_images, downsample(raw.test_images, 8))
    assert torch.equal(val.test_labels, raw.test_labels)
