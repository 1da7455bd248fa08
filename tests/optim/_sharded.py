"""Scenarios of ``test_sharded.py``: each run sharded on 2 gloo ranks and in one process.

The same functions build the model, data, gradients and optimizer in both settings, so the only
difference between a rank's result and the single-process result is the sharding. Every scenario
returns the final full parameters (float64); a scenario that raises records its exception instead,
so one failure does not hide the others (all ranks run the same code and raise alike).
"""

from __future__ import annotations

import os
import traceback
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import scalefree.optim as sfo

F64 = torch.float64
NAMES = ("AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD")
STEPS = 5
# Per group four tensors of similar sizes, so that ZeRO gives every rank part of every group.
SHAPES = [(4, 3), (5, 2), (2, 2, 3), (11,)]
LRS, WDS = (1e-2, 3e-3), (0.05, 0.2)  # alpha and lambda per group ("schedule" convention)
MODEL_LR, MODEL_WD = 1e-2, 0.05


def optimizer_kwargs(name: str, prox_norm: str = "group") -> dict:
    kw = dict(decay_convention="schedule")
    if name == "AdamProxL2":
        kw["prox_norm"] = prox_norm
    return kw


# ------------------------------------------------------------------ ZeRO: raw parameters


def zero_params() -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        [torch.randn(s, generator=gen, dtype=F64).requires_grad_(True) for s in SHAPES] for _ in LRS
    ]


def zero_grads(params, step: int) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(100 + step)
    return [[torch.randn(p.shape, generator=gen, dtype=F64) * 0.1 for p in grp] for grp in params]


def run_zero(
    name: str, *, sharded: bool, prox_norm="group", norm_group=False
) -> list[torch.Tensor]:
    """Train STEPS steps (CosineAnnealingLR) under ZeroRedundancyOptimizer or plainly."""
    params = zero_params()
    groups = [{"params": p, "lr": lr, "weight_decay": wd} for p, lr, wd in zip(params, LRS, WDS)]
    kw = optimizer_kwargs(name, prox_norm)
    cls = getattr(sfo, name)
    if sharded:
        from torch.distributed.optim import ZeroRedundancyOptimizer

        if norm_group:
            kw["norm_process_group"] = dist.group.WORLD
        opt = ZeroRedundancyOptimizer(groups, optimizer_class=cls, lr=LRS[0], **kw)
    else:
        opt = cls(groups, **kw)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2 * STEPS)
    for t in range(STEPS):
        for grp, gs in zip(params, zero_grads(params, t)):
            for p, g in zip(grp, gs):
                p.grad = g
        opt.step()
        sched.step()
    return [p.detach().clone() for grp in params for p in grp]


# ------------------------------------------------------------------ FSDP: a tiny model


def model_and_data() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).to(F64)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, generator=gen, dtype=F64)
    y = torch.randn(8, 3, generator=gen, dtype=F64)
    return model, x, y


def train_model(model: nn.Module, opt, x, y) -> None:
    """Every rank feeds the whole batch, so the averaged gradient is the single-process one."""
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2 * STEPS)
    for _ in range(STEPS):
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()


def run_model(name: str, *, wrap: str, prox_norm="group", norm_group=False) -> list[torch.Tensor]:
    """wrap: "none" (one process), "fsdp2" (fully_shard, DTensor) or "fsdp1" (flat parameters)."""
    model, x, y = model_and_data()
    if wrap == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        for layer in (model[0], model[2]):
            fully_shard(layer)
        fully_shard(model)
    elif wrap == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel

        model = FullyShardedDataParallel(
            model, device_id=torch.device("cpu"), use_orig_params=False
        )
    kw = optimizer_kwargs(name, prox_norm)
    if norm_group:
        kw["norm_process_group"] = dist.group.WORLD
    opt = getattr(sfo, name)(model.parameters(), lr=MODEL_LR, weight_decay=MODEL_WD, **kw)
    train_model(model, opt, x, y)
    if wrap == "fsdp2":
        return [p.full_tensor().detach().clone() for p in model.parameters()]
    if wrap == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel

        with FullyShardedDataParallel.summon_full_params(model):
            return [p.detach().clone() for p in model.parameters()]
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------ the sharded side


def scenarios() -> dict:
    """key -> zero-argument callable run on every rank (keys are what the tests look up)."""
    out = {}
    for name in NAMES:
        out[("zero", name)] = lambda n=name: run_zero(n, sharded=True, norm_group=n == "AdamProxL2")
        out[("fsdp2", name)] = lambda n=name: run_model(n, wrap="fsdp2")
        out[("fsdp1", name)] = lambda n=name: run_model(
            n, wrap="fsdp1", norm_group=n == "AdamProxL2"
        )
    out[("zero", "AdamProxL2", "no-norm-group")] = lambda: run_zero("AdamProxL2", sharded=True)
    out[("zero", "AdamProxL2", "tensor")] = lambda: run_zero(
        "AdamProxL2", sharded=True, prox_norm="tensor"
    )
    out[("fsdp2", "AdamProxL2", "tensor")] = lambda: run_model(
        "AdamProxL2", wrap="fsdp2", prox_norm="tensor"
    )
    out[("fsdp1", "AdamProxL2", "no-norm-group")] = lambda: run_model("AdamProxL2", wrap="fsdp1")
    out[("fsdp1", "AdamProxL2", "tensor")] = lambda: run_model(
        "AdamProxL2", wrap="fsdp1", prox_norm="tensor"
    )
    return out


def worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=60),
    )
    results = {}
    try:
        for key, fn in scenarios().items():
            try:
                results[key] = fn()
            except Exception as e:  # recorded for the test of this scenario
                results[key] = dict(
                    error=type(e).__name__, message=str(e), traceback=traceback.format_exc()
                )
            dist.barrier()
    finally:
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.destroy_process_group()


def single_process(key: tuple) -> list[torch.Tensor]:
    """The one-process run that scenario ``key`` must reproduce."""
    kind, name = key[0], key[1]
    prox_norm = "tensor" if key[2:] == ("tensor",) else "group"
    if kind == "zero":
        return run_zero(name, sharded=False, prox_norm=prox_norm)
    return run_model(name, wrap="none", prox_norm=prox_norm)


if __name__ == "__main__":  # manual run: python -m tests.optim._sharded
    import socket
    import tempfile

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tempfile.mkdtemp()
    mp.spawn(worker, args=(2, port, d), nprocs=2)
    res = torch.load(os.path.join(d, "rank0.pt"), weights_only=False)
    for k, v in res.items():
        if isinstance(v, dict):
            print(k, v["error"], v["message"][:200])
        else:
            ref = single_process(k)
            print(k, max(float((a - b).abs().max()) for a, b in zip(v, ref)))
