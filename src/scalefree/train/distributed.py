"""torch.distributed setup for ``torchrun --nproc_per_node N -m scalefree train ...``.

The global batch is ``--batchsize``, split into contiguous per-rank slices; every rank draws the
same permutation and augmentation from an identically seeded generator, so one process and N
ranks see the same global batches. Only rank 0 writes files. Gradients are averaged by DDP; each
rank weights its loss by its share of the global batch so the result is the global-batch mean
even when the last batch does not split evenly. BatchNorm statistics stay per rank (as in
plain DDP); the bitwise comparison with one process is therefore made without BN.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from scalefree.errors import UsageError
from scalefree.train.config import RunConfig
from scalefree.train.trainer import DistContext, resolve_device


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(config: RunConfig) -> DistContext:
    """A DistContext for this process; initializes the process group when launched by torchrun."""
    world = world_size_from_env()
    if world <= 1:
        return DistContext()
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        raise UsageError(
            "distributed training needs torchrun's environment (RANK, MASTER_ADDR, ...); "
            "launch with: torchrun --nproc_per_node N -m scalefree train ..."
        )
    if config.batchsize % world:
        raise UsageError(
            f"--batchsize {config.batchsize} must be divisible by the number of processes {world}"
        )
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
        # torchrun sets OMP_NUM_THREADS=1; share the machine's cores between the local ranks.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, device=device)


def shutdown(ctx: DistContext) -> None:
    if ctx.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
