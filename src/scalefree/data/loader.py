"""The fast data path: the whole dataset on the training device as uint8, batched augmentation.

Following airbench, nothing per image runs in Python: an epoch is one ``randperm`` plus one draw
of all crop offsets and flips, and every batch is an index, two ``gather``s and a normalization
on the device. All randomness comes from one caller-owned ``torch.Generator`` and is drawn at the
start of the epoch, so restoring ``generator.get_state()`` saved at an epoch boundary replays the
epoch bitwise, and ``start_batch`` resumes mid-epoch with exactly the batches that were left.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from scalefree.data.cifar import CIFAR10, CIFAR100, read_cifar
from scalefree.data.distributed import check_world, shard_bounds
from scalefree.data.download import download_cifar
from scalefree.data.raw import RawDataset
from scalefree.data.synthetic import DEFAULT_SIZES, SYNTHETIC_NUM_CLASSES, make_synthetic
from scalefree.errors import UsageError
from scalefree.registry import DatasetEntry, Registry

PAD = 4  # Lee et al. (2015): zero-pad 4 pixels, then a random 32x32 crop
CROP = 32
# --image-size: the images are area-downsampled by an integer factor once, at load time; the
# augmentation keeps Lee et al.'s proportions (pad = size / 8: 4 px at 32, 2 at 16, 1 at 8).
IMAGE_SIZES = (4, 8, 16, 32)


def pad_for(size: int) -> int:
    """Zero-padding of the random crop at image side ``size`` (4 at the native 32)."""
    return max(1, size * PAD // CROP)


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) images area-averaged to (N, C, size, size), rounded to nearest.

    H and W must be ``size`` times an integer k; each output pixel is the mean of a k x k block
    (exact in float64 for uint8 input), rounded half to even, so the result is again raw pixels.
    """
    h, w = images.shape[-2:]
    if h % size or w % size or h != w:
        raise UsageError(f"--image-size {size} must divide the images' side {h} (of {h}x{w})")
    if size == h:
        return images
    k = h // size
    pooled = F.avg_pool2d(images.to(torch.float64), k)
    return pooled.round().clamp_(0, 255).to(torch.uint8).contiguous()


# --------------------------------------------------------------------------------------- registry


def _cifar_source(
    name: str, dataroot: Path | None, *, download: bool, synthetic_sizes: tuple[int, int] | None
) -> RawDataset:
    del synthetic_sizes  # only meaningful for the synthetic dataset
    if dataroot is None:
        raise UsageError(f"{name} needs --dataroot (the folder holding the CIFAR files)")
    if download:
        download_cifar(name, dataroot)
    return read_cifar(name, dataroot)


def _synthetic_source(
    dataroot: Path | None,
    *,
    download: bool,
    synthetic_sizes: tuple[int, int] | None,
    n_train: int = DEFAULT_SIZES[0],
    n_test: int = DEFAULT_SIZES[1],
    seed: int = 0,
) -> RawDataset:
    del dataroot, download  # generated in memory
    if synthetic_sizes is not None:
        n_train, n_test = synthetic_sizes
    return make_synthetic(n_train, n_test, seed=seed)


# A factory takes (dataroot, *, download, synthetic_sizes) and returns a RawDataset on the CPU.
DATASETS: Registry[DatasetEntry[RawDataset]] = Registry("dataset", DatasetEntry)
for _spec, _classes in ((CIFAR10, "10 classes"), (CIFAR100, "100 fine classes")):
    DATASETS.add(
        _spec.name,
        functools.partial(_cifar_source, _spec.name),
        f"{_spec.display}: 50,000 train / 10,000 test 32x32 RGB images, {_classes}",
        cifar=True,
        downloadable=True,
    )
del _spec, _classes
DATASETS.add(
    "synthetic",
    _synthetic_source,
    "deterministic learnable CIFAR-shaped data (2560 train / 512 test, 10 classes), no files",
    defaults={"n_train": DEFAULT_SIZES[0], "n_test": DEFAULT_SIZES[1], "seed": 0},
)

_NUM_CLASSES = {"CIFAR10": 10, "CIFAR100": 100, "synthetic": SYNTHETIC_NUM_CLASSES}


def dataset_num_classes(name: str) -> int:
    """Number of classes of a registered dataset, without loading it (e.g. to build a model)."""
    return _NUM_CLASSES[DATASETS.canonical(name)]


# ------------------------------------------------------------------------------------ the bundle


@dataclass(repr=False)
class DataBundle:
    """A dataset ready for training, every tensor on the training device.

    ``train_images`` / ``eval_images`` are uint8 (N, 3, S, S) (S = 32 unless ``--image-size``); labels int64 (N,). ``eval_*`` is
    the test set (``eval_split == "test"``) or the held-out validation split (``"val"``).
    ``mean`` / ``std`` are float32 (3,) per-channel statistics in raw pixel units [0, 255] of
    ``train_images`` (after the validation split was removed); std is the population std.
    """

    name: str
    num_classes: int
    train_images: torch.Tensor
    train_labels: torch.Tensor
    eval_images: torch.Tensor
    eval_labels: torch.Tensor
    eval_split: str
    mean: torch.Tensor
    std: torch.Tensor
    class_names: tuple[str, ...] = ()
    # The official test split when the run evaluates on a validation split (``eval_split ==
    # "val"``): evaluated once at the end, so a grid selected on validation reports test error.
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def __repr__(self) -> str:  # the default would print tensors
        return (
            f"DataBundle(name={self.name!r}, num_classes={self.num_classes}, "
            f"train={len(self.train_images)}, {self.eval_split}={len(self.eval_images)}, "
            f"device={self.device}, mean={[round(v, 2) for v in self.mean.tolist()]}, "
            f"std={[round(v, 2) for v in self.std.tolist()]})"
        )


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std (float32, shape (3,)) of uint8 (N, C, H, W) images.

    Via a 256-bin histogram per channel: exact integer counts, no float copy of the dataset, and
    ~10x faster on the CPU than a uint8 -> int64 reduction over (N, H, W). The moments are then
    exact sums in float64 (at most 2^42 for 50k CIFAR images, far below 2^53).
    """
    if images.ndim != 4 or len(images) == 0 or images.dtype != torch.uint8:
        raise ValueError(
            f"expected non-empty uint8 (N, C, H, W) images, got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    counts = torch.stack(
        [torch.bincount(images[:, c].reshape(-1), minlength=256) for c in range(images.shape[1])]
    ).double()
    values = torch.arange(256, dtype=torch.float64, device=images.device)
    n = counts.sum(dim=1)
    mean = counts @ values / n
    var = (counts @ values.square() / n - mean.square()).clamp_min(0.0)
    # A constant channel would give std 0 and inf after normalization; it is degenerate anyway.
    std = var.sqrt().clamp_min(1e-6)
    return mean.float(), std.float()


def split_indices(n: int, val_ratio: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random (train, val) index split of range(n); each part sorted, disjoint, covering.

    ``round(n * val_ratio)`` items go to validation. The permutation uses its own CPU generator,
    so the split depends only on (n, val_ratio, seed), not on the device or the training seed.
    """
    check_val_ratio(val_ratio)
    n_val = round(n * val_ratio)
    if not 1 <= n_val <= n - 1:
        raise UsageError(
            f"--val-ratio {val_ratio} leaves {n_val} of {n} training images for validation; "
            f"both parts must be non-empty"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def check_val_ratio(val_ratio: float) -> None:
    if not (
        isinstance(val_ratio, (int, float)) and math.isfinite(val_ratio) and 0.0 < val_ratio < 1.0
    ):
        raise UsageError(f"--val-ratio must be a number in (0, 1), got {val_ratio!r}")


def load_data(
    name: str,
    dataroot: str | Path | None,
    *,
    download: bool = False,
    validation: bool = False,
    val_ratio: float = 0.1,
    split_seed: int = 0,
    device: torch.device | str = "cpu",
    synthetic_sizes: tuple[int, int] | None = None,
    image_size: int | None = None,
) -> DataBundle:
    """Load a registered dataset (``DATASETS``) onto ``device``.

    Args:
        name: "CIFAR10", "CIFAR100" or "synthetic" (case-insensitive).
        dataroot: folder holding the official CIFAR folders (ignored for synthetic, may be None).
        download: fetch and verify the official archive first if files are missing.
        validation: hold out ``val_ratio`` of the training set (seeded by ``split_seed``) and
            evaluate on it instead of the test set.
        val_ratio: fraction held out, in (0, 1); checked even when ``validation`` is off so a
            bad flag is reported at once.
        split_seed: seed of the validation permutation.
        device: where every tensor of the bundle lives.
        synthetic_sizes: (n_train, n_test) for the synthetic dataset; ignored otherwise.
        image_size: area-downsample every image to this side first (:func:`downsample`); None
            keeps the dataset's own 32x32. Statistics are those of the downsampled images.

    Raises UsageError (DatasetError for file problems) with a message naming the fix.
    """
    entry = DATASETS.get(name)
    check_val_ratio(val_ratio)
    root = Path(dataroot).expanduser() if dataroot is not None else None
    raw = entry.build(root, download=download, synthetic_sizes=synthetic_sizes)
    train_images, train_labels = raw.train_images, raw.train_labels
    test_images = raw.test_images
    if image_size is not None:
        train_images, test_images = (
            downsample(train_images, image_size),
            downsample(test_images, image_size),
        )
    held_out = None
    if validation:
        train_idx, val_idx = split_indices(len(train_images), val_ratio, split_seed)
        eval_images, eval_labels = train_images[val_idx], train_labels[val_idx]
        train_images, train_labels = train_images[train_idx], train_labels[train_idx]
        eval_split = "val"
        held_out = (test_images, raw.test_labels)
    else:
        eval_images, eval_labels, eval_split = test_images, raw.test_labels, "test"
    device = torch.device(device)
    train_images = train_images.to(device).contiguous()
    mean, std = channel_stats(train_images)
    return DataBundle(
        name=entry.name,
        num_classes=raw.num_classes,
        train_images=train_images,
        train_labels=train_labels.to(device=device, dtype=torch.int64),
        eval_images=eval_images.to(device).contiguous(),
        eval_labels=eval_labels.to(device=device, dtype=torch.int64),
        eval_split=eval_split,
        mean=mean,
        std=std,
        class_names=raw.class_names,
        test_images=None if held_out is None else held_out[0].to(device).contiguous(),
        test_labels=None if held_out is None else held_out[1].to(device=device, dtype=torch.int64),
    )


# ---------------------------------------------------------------------------------- augmentation


def augment_params(
    n: int,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    pad: int = PAD,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw crop offsets and flips for ``n`` images: (dy, dx) int64 in [0, 2*pad], flip bool.

    Drawn on the generator's device (a CPU generator works with data on a GPU) in a fixed order,
    offsets then flips, then moved to ``device``.
    """
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=generator.device).bool()
    if device is not None:
        offsets, flip = offsets.to(device), flip.to(device)
    return offsets[0], offsets[1], flip


def apply_augment(
    images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Crop the zero-padded images at (dy, dx) and mirror those with ``flip``; batched gathers.

    Output pixel (i, j) of image b is padded[b, :, dy_b + i, dx_b + j'] with j' = S - 1 - j if
    the image is flipped else j (S the side, 32 at full size), i.e. the crop of the flipped padded
    image equals the flip of the crop (a flip after the crop, as torchvision's RandomCrop then
    RandomHorizontalFlip). The padding is :func:`pad_for` (S).
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square (B, C, S, S) images, got {tuple(images.shape)}")
    b, c, crop = images.shape[0], images.shape[1], images.shape[-1]
    pad = pad_for(crop)
    # Padding in raw uint8 pixel space makes the border black (0), not the mean colour.
    padded = F.pad(images, (pad, pad, pad, pad))
    ar = torch.arange(crop, device=images.device)
    rows = dy.to(images.device)[:, None] + ar  # (B, S)
    cols = dx.to(images.device)[:, None] + torch.where(
        flip.to(images.device)[:, None], crop - 1 - ar, ar
    )  # (B, S)
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, crop, crop + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(b, c, crop, crop))


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the 4-pixel zero-padded images and random horizontal flip (p=0.5).

    ``images``: uint8 (B, 3, S, S) on any device; returns uint8 of the same shape there. At
    S = 32 offsets are uniform in 0..8 per image (0..2 pad_for(S) at other sides), drawn from
    ``generator`` (CPU or the images' device).
    """
    pad = pad_for(images.shape[-1])
    dy, dx, flip = augment_params(len(images), generator, images.device, pad)
    return apply_augment(images, dy, dx, flip)


def normalize(
    images: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> torch.Tensor:
    """(x - mean) / std per channel for uint8 images (..., 3, H, W), returned as ``dtype``.

    Computed in float32 (float64 if ``dtype`` is float64) and cast last, so low-precision
    outputs are rounded once. ``channels_last`` returns an NHWC-strided tensor for 4-D input.
    """
    if channels_last:
        # Convert the uint8 input (1 byte per value); elementwise ops keep the layout.
        images = images.contiguous(memory_format=torch.channels_last)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    m = mean.to(device=images.device, dtype=compute).view(-1, 1, 1)
    s = std.to(device=images.device, dtype=compute).view(-1, 1, 1)
    return ((images.to(compute) - m) / s).to(dtype)


# ------------------------------------------------------------------------------------- iteration


class TrainBatches:
    """One epoch of shuffled, augmented, normalized training batches per ``iter()``.

    Each ``iter()`` draws, from ``generator`` and in this order, a permutation
    ``torch.randperm(N)`` and (if ``augment``) all N crop offsets and flips, then yields
    ``(x, y)``: x of ``dtype`` (N_b, 3, 32, 32), y int64. Nothing else consumes randomness, so
    ``generator.get_state()`` saved before an epoch replays it bitwise, and ``start_batch=k``
    (with that state restored) yields exactly batches k, k+1, ... of that epoch.

    With ``world_size > 1`` every rank must pass an identically seeded generator; ``batch_size``
    is the global batch and each rank yields its contiguous slice of it (see ``shard_indices``).

    The generator may live on the CPU or on the data's device.
    """

    def __init__(
        self,
        bundle: DataBundle,
        batch_size: int,
        generator: torch.Generator,
        augment: bool = True,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        drop_last: bool = False,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
        check_world(rank, world_size, batch_size)
        self.bundle = bundle
        self.batch_size = batch_size
        self.generator = generator
        self.augment = augment
        self.dtype = dtype
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch must be in [0, {len(self)}], got {start_batch}")
        self.start_batch = start_batch

    @property
    def num_samples(self) -> int:
        return len(self.bundle.train_images)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        bundle, g = self.bundle, self.generator
        n, device = self.num_samples, bundle.device
        perm = torch.randperm(n, generator=g, device=g.device).to(device)
        pad = pad_for(bundle.train_images.shape[-1])
        params = augment_params(n, g, device, pad) if self.augment else None
        for i in range(self.start_batch, len(self)):
            start = i * self.batch_size
            lo, hi = shard_bounds(min(self.batch_size, n - start), self.rank, self.world_size)
            pos = slice(start + lo, start + hi)  # positions in the epoch order
            idx = perm[pos]
            x = bundle.train_images[idx]
            if params is not None:
                x = apply_augment(x, *(p[pos] for p in params))
            yield (
                normalize(x, bundle.mean, bundle.std, self.dtype, self.channels_last),
                bundle.train_labels[idx],
            )


def eval_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalized ``(x, y)`` batches in dataset order, no augmentation (train-in-eval or test)."""
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {batch_size}")
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        yield normalize(x, mean, std, dtype, channels_last), labels[start : start + batch_size]
