#!/usr/bin/env python
"""Probe: could torch.compile replace the C++ kernel of scalefree.optim._kernels? (issue 13)

Compiles one per-tensor AdamProxD step (Adam moments + the closed-form prox, in place) with
``torch.compile(dynamic=True, fullgraph=True)`` so that one compiled kernel serves every tensor
size, and scalars as 0-d tensors (a new lr does not recompile). Prints the compile time of the
first pass over ResNet-110's 111 parameter tensors, the per-step time of looping the compiled
function over them, its per-call overhead on a 16-element tensor, and, in the same process,
``scalefree.optim.AdamProxD`` on the same shapes (the path it runs on is printed).

Usage::

    python benchmarks/optim_torch_compile_probe.py [--threads N] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import scalefree.optim as sfo
from scalefree.models import build_model
from scalefree.optim import _kernels


def proxd(x, g, m, v, step_size, inv_bc2_sqrt, eps, s):
    m.lerp_(g, 0.1)
    v.mul_(0.999).addcmul_(g, g, value=0.001)
    d = v.sqrt() * inv_bc2_sqrt + eps
    x.copy_((d * x - step_size * m) / (d + s))


def timed(fn, repeats: int) -> tuple[float, float]:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [p.shape for p in build_model("ResNet110", batch_norm=False).parameters()]
    x, g = [torch.randn(s) for s in shapes], [torch.randn(s) for s in shapes]
    m, v = [torch.zeros(s) for s in shapes], [torch.zeros(s) for s in shapes]
    sc = [torch.tensor(1e-3), torch.tensor(1.0), torch.tensor(1e-8), torch.tensor(5e-4)]
    cf = torch.compile(proxd, dynamic=True, fullgraph=True)

    def loop():
        for i in range(len(x)):
            cf(x[i], g[i], m[i], v[i], *sc)

    t0 = time.perf_counter()
    loop()
    print(f"torch.compile, first pass over {len(x)} tensors: {time.perf_counter() - t0:.1f} s")
    med, best = timed(loop, args.repeats)
    print(f"torch.compile per-tensor loop: median {med:.2f} ms, min {best:.2f} ms per step")
    a = [torch.randn(16) for _ in range(4)]
    per_call, _ = timed(lambda: [cf(*a, *sc) for _ in range(1000)], 3)
    print(f"torch.compile per-call time on 16 elements: {per_call:.1f} us")
    ps = [torch.nn.Parameter(t.clone()) for t in x]
    for p, gr in zip(ps, g):
        p.grad = gr.clone()
    opt = sfo.AdamProxD(ps, lr=1e-3, weight_decay=5e-4)
    opt.step()
    med, best = timed(opt.step, args.repeats)
    print(f"scalefree AdamProxD [{_kernels.kernel_path()}]: median {med:.2f} ms, min {best:.2f} ms")


if __name__ == "__main__":
    main()
