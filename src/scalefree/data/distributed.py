"""Split global batches across data-parallel ranks.

Every rank draws the same epoch permutation (same generator seed); each global batch of
``batch_size`` indices is then cut into ``world_size`` contiguous slices and rank r keeps slice r.
So the union over ranks of one step is exactly the global batch a single process would use, and
a run's data order does not depend on the number of ranks.
"""

from __future__ import annotations

import torch

from scalefree.errors import UsageError


def check_world(rank: int, world_size: int, batch_size: int | None = None) -> None:
    """Validate a (rank, world_size, global batch_size) triple with user-facing messages."""
    if world_size < 1:
        raise UsageError(f"world size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise UsageError(f"rank must be in [0, {world_size}), got {rank}")
    if batch_size is not None and batch_size % world_size:
        raise UsageError(
            f"--batch-size {batch_size} (the global batch) must be divisible by the number of "
            f"processes ({world_size})"
        )


def shard_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """[lo, hi) of rank's contiguous slice of a batch of ``size`` items.

    Sizes differ by at most one, larger slices first (the convention of ``torch.tensor_split``),
    so a short last batch is still split as evenly as possible.
    """
    q, rem = divmod(size, world_size)
    lo = rank * q + min(rank, rem)
    return lo, lo + q + (1 if rank < rem else 0)


def shard_indices(
    perm: torch.Tensor, rank: int, world_size: int, batch_size: int | None = None
) -> list[torch.Tensor]:
    """This rank's index batches: its contiguous slice of each global batch of ``perm``.

    Args:
        perm: the epoch's index order (1-D), identical on every rank.
        rank: this process's rank in ``[0, world_size)``.
        world_size: number of processes.
        batch_size: global batch size (must be divisible by ``world_size``); default
            ``len(perm)``, i.e. ``perm`` is one global batch.

    Returns one tensor per global batch, so every rank sees the same number of steps. Only the
    last, short global batch can give ranks slices whose sizes differ by one (or are empty when
    it has fewer items than ranks); use ``drop_last`` when that matters.
    """
    n = len(perm)
    if batch_size is None:
        batch_size = max(n, 1)  # one global batch; no divisibility requirement then
        check_world(rank, world_size)
    else:
        if batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
        check_world(rank, world_size, batch_size)
    out = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        lo, hi = shard_bounds(size, rank, world_size)
        out.append(perm[start + lo : start + hi])
    return out
