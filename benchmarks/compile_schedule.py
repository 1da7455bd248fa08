#!/usr/bin/env python
"""torch.compile(opt.step) under an LR schedule: recompiles, graph breaks and time per step.

The case of issue 21: two param groups, one with a tensor lr (updated in place) and one with a
float lr, both changed before every step, on a small CNN's shapes (6 tensors, 1,460 float32
parameters), one torch thread. For scalefree AdamW and torch.optim.AdamW (default kernels): the
number of graphs dynamo compiled and its graph breaks over all steps, and the median time of a
compiled step and of an eager step (the eager default: scalefree's one-pass kernel, torch's
foreach/single loop). ``optim_step.py --compile`` runs it too and stores it in its JSON.

Usage::

    python benchmarks/compile_schedule.py [--steps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

import scalefree.optim as sfo

SHAPES = [(8, 3, 3, 3), (8,), (16, 8, 3, 3), (16,), (4, 16), (4,)]
ROWS = {"scalefree AdamW": sfo.AdamW, "torch AdamW": torch.optim.AdamW}


def _setup(cls):
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in SHAPES]
    groups = [{"params": params[:2], "lr": torch.tensor(1e-3)}, {"params": params[2:], "lr": 1e-3}]
    return params, cls(groups, lr=1e-3, weight_decay=1e-2)


def _run(cls, steps: int, compiled: bool) -> tuple[list[float], dict[str, int]]:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    params, opt = _setup(cls)
    step = torch.compile(opt.step) if compiled else opt.step
    grads = torch.Generator().manual_seed(1)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            for p in params:
                p.grad = torch.randn(p.shape, generator=grads)
            lr = 1e-3 / (1 + 0.01 * i)  # a new lr every step, in both groups
            opt.param_groups[0]["lr"].fill_(lr)
            opt.param_groups[1]["lr"] = lr
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    info = dict(
        graphs=int(counters["stats"]["unique_graphs"]),
        graph_breaks=int(sum(counters["graph_break"].values())),
    )
    return times, info


def measure(steps: int = 200) -> dict[str, dict[str, float]]:
    out = {}
    for name, cls in ROWS.items():
        ctimes, info = _run(cls, steps, compiled=True)
        etimes, _ = _run(cls, steps, compiled=False)
        skip = min(20, steps // 2)  # compilation and warm-up
        out[name] = dict(
            info,
            compiled_us=statistics.median(ctimes[skip:]) * 1e6,
            eager_us=statistics.median(etimes[skip:]) * 1e6,
        )
    return out


def report(results: dict[str, dict[str, float]]) -> None:
    print("\ntorch.compile(opt.step), tensor-lr group + float-lr group, new lr every step:")
    print(f"{'row':18s} {'graphs':>6s} {'breaks':>6s} {'compiled us':>12s} {'eager us':>9s}")
    for name, r in results.items():
        print(
            f"{name:18s} {r['graphs']:6d} {r['graph_breaks']:6d} {r['compiled_us']:12.1f} "
            f"{r['eager_us']:9.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report(measure(args.steps))


if __name__ == "__main__":
    main()
