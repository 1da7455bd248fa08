"""TrainBatches: label alignment, epoch coverage, bitwise replay, start_batch, sharding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalefree.data import DataBundle, TrainBatches, normalize, shard_indices
from scalefree.errors import UsageError


def _id_bundle(n: int = 203, num_classes: int = 10) -> DataBundle:
    """Image i carries its id in the central pixels (red = i % 256, green = i // 256), which no
    crop can move out of view or replace with padding; label = id % num_classes."""
    ids = torch.arange(n)
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    images[:, 0] = (ids % 256).to(torch.uint8)[:, None, None]
    images[:, 1] = (ids // 256).to(torch.uint8)[:, None, None]
    images[:, 2] = 7
    return DataBundle(
        name="ids",
        num_classes=num_classes,
        train_images=images,
        train_labels=ids % num_classes,
        eval_images=images[:5],
        eval_labels=ids[:5] % num_classes,
        eval_split="test",
        mean=torch.zeros(3),
        std=torch.ones(3),
    )


def _decode_ids(x: torch.Tensor) -> torch.Tensor:
    # The centre 24x24 window is inside the image for every crop offset (|shift| <= 4).
    centre = x[:, :, 15, 15].round().long()
    return centre[:, 0] + 256 * centre[:, 1]


def _epoch(batches: TrainBatches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(batches)


@pytest.mark.parametrize("augment", [True, False])
def test_labels_follow_images_and_epoch_covers_all(augment: bool) -> None:
    bundle = _id_bundle()
    batches = TrainBatches(bundle, 32, torch.Generator().manual_seed(0), augment=augment)
    epoch = _epoch(batches)
    assert len(epoch) == len(batches) == 7
    assert [len(y) for _, y in epoch] == [32] * 6 + [11]
    ids = torch.cat([_decode_ids(x) for x, _ in epoch])
    labels = torch.cat([y for _, y in epoch])
    assert torch.equal(labels, ids % 10)  # alignment through permutation and augmentation
    assert torch.equal(ids.sort().values, torch.arange(203))  # each image exactly once
    assert not torch.equal(ids, torch.arange(203))  # shuffled


def test_augmentation_is_applied_and_normalized() -> None:
    bundle = _id_bundle()
    bundle.mean, bundle.std = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 4.0])
    x, _ = next(iter(TrainBatches(bundle, 64, torch.Generator().manual_seed(0))))
    # Padding (pixel 0) normalizes to -mean/std; some crop in 64 images is off-centre.
    assert (x[:, 2] == (0 - 3.0) / 4.0).any()
    x, _ = next(iter(TrainBatches(bundle, 64, torch.Generator().manual_seed(0), augment=False)))
    assert (x[:, 2] == (7 - 3.0) / 4.0).all()


def test_drop_last_and_len() -> None:
    bundle = _id_bundle(100)
    assert len(TrainBatches(bundle, 32, torch.Generator())) == 4
    batches = TrainBatches(bundle, 32, torch.Generator(), drop_last=True)
    assert len(batches) == 3 and [len(y) for _, y in batches] == [32] * 3
    assert len(TrainBatches(bundle, 25, torch.Generator(), drop_last=True)) == 4


def test_generator_state_replays_epoch_bitwise() -> None:
    bundle = _id_bundle()
    g = torch.Generator().manual_seed(123)
    batches = TrainBatches(bundle, 50, g, dtype=torch.float32)
    _epoch(batches)  # advance past epoch 0
    state = g.get_state()
    first = _epoch(batches)
    after = g.get_state()
    second = _epoch(batches)
    assert not torch.equal(first[0][1], second[0][1])  # epochs differ

    g.set_state(state)
    replay = _epoch(batches)
    assert torch.equal(g.get_state(), after)
    for (xa, ya), (xb, yb) in zip(first, replay, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)

    # A fresh generator restored from the saved state does the same.
    g2 = torch.Generator()
    g2.set_state(state)
    fresh = _epoch(TrainBatches(bundle, 50, g2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, fresh, strict=True))


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_start_batch_resumes_mid_epoch(k: int) -> None:
    bundle = _id_bundle()
    g = torch.Generator().manual_seed(9)
    state = g.get_state()
    full = _epoch(TrainBatches(bundle, 40, g))
    after_full = g.get_state()
    g.set_state(state)
    resumed = TrainBatches(bundle, 40, g, start_batch=k)
    rest = _epoch(resumed)
    assert len(rest) == len(full) - k
    for (xa, ya), (xb, yb) in zip(full[k:], rest, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # The generator ends where a full epoch leaves it, so the next epoch matches too.
    assert torch.equal(g.get_state(), after_full)


def test_start_batch_out_of_range() -> None:
    with pytest.raises(ValueError, match="start_batch"):
        TrainBatches(_id_bundle(100), 32, torch.Generator(), start_batch=5)


def test_dtype_and_channels_last() -> None:
    x, y = next(
        iter(
            TrainBatches(
                _id_bundle(), 16, torch.Generator(), dtype=torch.bfloat16, channels_last=True
            )
        )
    )
    assert x.dtype == torch.bfloat16 and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------- sharding


def test_shard_indices_partition_each_global_batch() -> None:
    perm = torch.randperm(70, generator=torch.Generator().manual_seed(0))
    shards = [shard_indices(perm, r, 4, batch_size=16) for r in range(4)]
    assert all(len(s) == 5 for s in shards)  # same number of steps on every rank
    for step in range(5):
        glued = torch.cat([shards[r][step] for r in range(4)])
        assert torch.equal(glued, perm[16 * step : 16 * (step + 1)])  # contiguous, in rank order
    assert [len(shards[r][0]) for r in range(4)] == [4, 4, 4, 4]
    assert [len(shards[r][4]) for r in range(4)] == [2, 2, 1, 1]  # short last batch: even split


def test_shard_indices_whole_perm_and_errors() -> None:
    perm = torch.arange(10)
    assert [t.tolist() for t in shard_indices(perm, 1, 3)] == [[4, 5, 6]]
    with pytest.raises(UsageError, match="divisible"):
        shard_indices(perm, 0, 3, batch_size=8)
    with pytest.raises(UsageError, match="rank"):
        shard_indices(perm, 3, 3)


def test_trainbatches_ranks_glue_to_single_process_batches() -> None:
    bundle = _id_bundle()
    single = _epoch(TrainBatches(bundle, 32, torch.Generator().manual_seed(4)))
    per_rank = [
        _epoch(TrainBatches(bundle, 32, torch.Generator().manual_seed(4), rank=r, world_size=2))
        for r in range(2)
    ]
    assert len(per_rank[0]) == len(per_rank[1]) == len(single)
    for step, (x, y) in enumerate(single):
        assert torch.equal(torch.cat([per_rank[r][step][0] for r in range(2)]), x)
        assert torch.equal(torch.cat([per_rank[r][step][1] for r in range(2)]), y)


def test_normalize_used_by_batches_matches_function() -> None:
    bundle = _id_bundle(40)
    bundle.mean, bundle.std = torch.tensor([10.0, 20.0, 30.0]), torch.tensor([3.0, 4.0, 5.0])
    g = torch.Generator().manual_seed(0)
    x, _ = next(iter(TrainBatches(bundle, 40, g, augment=False)))
    g.manual_seed(0)
    perm = torch.randperm(40, generator=g)
    assert torch.equal(x, normalize(bundle.train_images[perm], bundle.mean, bundle.std))


@given(
    n=st.integers(0, 300),
    world_size=st.integers(1, 8),
    per_rank=st.integers(1, 16),
)
@settings(max_examples=60, deadline=None)
def test_shards_reassemble_the_permutation(n: int, world_size: int, per_rank: int) -> None:
    batch_size = per_rank * world_size
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    shards = [shard_indices(perm, r, world_size, batch_size) for r in range(world_size)]
    steps = -(-n // batch_size)
    assert all(len(s) == steps for s in shards)
    glued = [torch.cat([shards[r][i] for r in range(world_size)]) for i in range(steps)]
    assert torch.equal(torch.cat(glued) if glued else perm, perm)
    for i in range(steps):  # sizes within a step differ by at most one
        sizes = [len(shards[r][i]) for r in range(world_size)]
        assert max(sizes) - min(sizes) <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("generator_device", ["cpu", "cuda"])
def test_batches_on_cuda(generator_device: str) -> None:
    cpu_bundle = _id_bundle()
    gpu_bundle = DataBundle(
        **{k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in vars(cpu_bundle).items()}
    )
    g = torch.Generator(device=generator_device).manual_seed(5)
    state = g.get_state()
    epoch = _epoch(TrainBatches(gpu_bundle, 32, g, channels_last=True))
    assert all(x.is_cuda and y.is_cuda for x, y in epoch)
    ids = torch.cat([_decode_ids(x) for x, _ in epoch]).cpu()
    assert torch.equal(torch.cat([y for _, y in epoch]).cpu(), ids % 10)
    g.set_state(state)
    replay = _epoch(TrainBatches(gpu_bundle, 32, g, channels_last=True))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch, replay, strict=True))
    if generator_device == "cpu":  # same random draws as on the CPU
        g.set_state(state)
        on_cpu = _epoch(TrainBatches(cpu_bundle, 32, g))
        assert all(torch.equal(a[1].cpu(), b[1]) for a, b in zip(epoch, on_cpu, strict=True))
        assert all(torch.equal(a[0].cpu(), b[0]) for a, b in zip(epoch, on_cpu, strict=True))
