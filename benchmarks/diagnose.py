#!/usr/bin/env python
"""``scalefree diagnose`` benchmark: ResNet-110 without BN, 8 batches of 128 at 32x32, 2 threads.

The issue's target: under a minute on 2 cores. What is timed:

* ``diagnose()``: the call alone (8 forward + backward passes, the g^2 accumulation, the pooled
  quantiles over all 1.7M coordinates), on batches built before the clock starts; ``--repeats``
  calls, the median reported;
* ``end to end``: ``scalefree.diagnose.targets.diagnose_config`` once, i.e. what the CLI does for
  one model: synthetic data generated, the initial weights built from the seed, the batches drawn
  and augmented, then ``diagnose()``.

Bound: the forward multiply-accumulates are counted with hooks on every Conv2d/Linear (2 FLOP
each); a backward pass costs about twice a forward (input and weight gradients), so 8 batches of
128 are ~3 x 1024 x forward FLOPs. Divided by the float32 matmul throughput measured here on the
same threads (a 2048^3 ``torch.mm``), that is the time no implementation on this machine could
beat; convolutions run below matmul peak, so the ratio shows the overhead left.

The result is printed as JSON with the machine (benchmarks/_machine.py) and its load average: the
machine may be shared, so compare only numbers taken under similar load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info  # noqa: E402
from scalefree.diagnose import diagnose  # noqa: E402
from scalefree.diagnose.targets import diagnose_config  # noqa: E402
from scalefree.models import build_model  # noqa: E402
from scalefree.train.config import RunConfig  # noqa: E402


def forward_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``x`` through every Conv2d and Linear."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.weight[0].numel()  # Cin / groups * kh * kw
            total += out.numel() * k
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ResNet110")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batchsize", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = machine_info()

    torch.manual_seed(0)
    model = build_model(args.model, num_classes=10, batch_norm=False)
    g = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(args.batchsize, 3, 32, 32, generator=g), torch.randint(0, 10, (args.batchsize,), generator=g))
        for _ in range(args.batches)
    ]  # fmt: skip

    def loss_fn(m, b):
        return F.cross_entropy(m(b[0]), b[1])

    macs = forward_macs(model, batches[0][0][:1])
    flops = 3 * 2 * macs * args.batches * args.batchsize
    peak = matmul_gflops()
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        d = diagnose(model, loss_fn, batches)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    config = RunConfig(
        model=args.model, batch_norm=False, dataset="synthetic", batchsize=args.batchsize,
        log_folder="/nonexistent-benchmark-logs",
    )  # fmt: skip
    entry = diagnose_config(config, batches=args.batches, threads=args.threads)
    end_to_end = time.perf_counter() - t
    print(
        json.dumps(
            {
                "machine": info,
                "loadavg_at_end": list(__import__("os").getloadavg()),
                "model": f"{args.model} NoBN",
                "params": sum(p.numel() for p in model.parameters()),
                "batches": args.batches,
                "batchsize": args.batchsize,
                "threads": args.threads,
                "diagnose_s": times,
                "diagnose_median_s": statistics.median(times),
                "end_to_end_s": end_to_end,
                "end_to_end_threads": entry["threads"],
                "forward_gmac_per_image": macs / 1e9,
                "total_gflop": flops / 1e9,
                "matmul_gflops": peak,
                "bound_s": flops / (peak * 1e9),
                "spread": d.spread,
                "layer_spread": d.layer_spread,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
