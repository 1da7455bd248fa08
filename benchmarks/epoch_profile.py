#!/usr/bin/env python
"""Where a CPU training epoch spends its time: convolutions against everything else.

Profiles (torch.profiler, CPU self time per operator) one epoch of scalefree's training steps
(TrainBatches, channels_last, forward + cross-entropy + backward + AdamW) followed by the trainer's
evaluation of the training set and the test set, for fp32 and bf16 autocast, ResNet20 no BN on the
CIFAR-10 subset. Convolution time (forward and backward, oneDNN) is work every pipeline that
trains this model at this precision must do; the epoch can be no faster than it, whatever the
data path. Prints the seconds in convolutions, in the other operators, and the whole profiled time.

Usage::

    python benchmarks/epoch_profile.py --model ResNet20 --amp none bf16
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from _machine import machine_info
from scalefree.data import TrainBatches, load_data
from scalefree.models import build_model
from scalefree.train.evaluation import evaluate
from scalefree.train.run_state import DistContext

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATAROOT = REPO.parent / "shared" / "data" / "cifar10-subset"
CONV_OPS = ("convolution", "conv2d", "mkldnn_convolution", "onednn")


def is_conv(name: str) -> bool:
    return any(k in name for k in CONV_OPS)


def epoch(model, data, amp: str, seed: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    amp_ctx = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if amp == "bf16"
        else contextlib.nullcontext
    )
    model.train()
    for x, y in TrainBatches(data, 128, torch.Generator().manual_seed(seed), channels_last=True):
        with amp_ctx():
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    kw = dict(loss_multiplier=1.0, amp_ctx=amp_ctx, channels_last=True, ctx=DistContext())
    evaluate(model, data.train_images, data.train_labels, data.mean, data.std, **kw)
    evaluate(model, data.eval_images, data.eval_labels, data.mean, data.std, **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ResNet20")
    ap.add_argument("--amp", nargs="+", default=["none", "bf16"], choices=["none", "bf16"])
    ap.add_argument("--dataroot", type=Path, default=DEFAULT_DATAROOT)
    args = ap.parse_args(argv)
    info = machine_info()
    print(f"CPU: {info['cpu']} | torch threads: {info['torch_threads']} | torch {info['torch']}")
    data = load_data("CIFAR10", args.dataroot, device="cpu")
    for amp in args.amp:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(args.model, num_classes=10, batch_norm=False)
        model = model.to(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            epoch(model, data, amp, seed=0)
        wall = time.perf_counter() - t0
        events = prof.key_averages()
        conv = sum(e.self_cpu_time_total for e in events if is_conv(e.key)) / 1e6
        total = sum(e.self_cpu_time_total for e in events) / 1e6
        print(
            f"{args.model} amp={amp}: profiled epoch (train + both evaluations) {wall:.2f} s wall; "
            f"operator self time {total:.2f} s, of which convolutions {conv:.2f} s "
            f"({conv / total:.0%}), other operators {total - conv:.2f} s"
        )
        top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
        for e in top:
            print(f"    {e.key:<45}{e.self_cpu_time_total / 1e6:8.2f} s  x{e.count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
