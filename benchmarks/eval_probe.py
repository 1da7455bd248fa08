#!/usr/bin/env python
"""Evaluation cost against the training steps, and what the evaluation settings buy (CPU).

For one model (no BN, the trainer's stored-weights recipe: ``build_model`` under
``manual_seed(seed)``) on the CIFAR-10 subset, in one process, interleaved over ``--repeats``
rounds (median reported):

* ``train``: one epoch of training steps as the trainer runs them (TrainBatches, forward,
  cross-entropy, backward, AdamW step), channels_last, fp32 or bf16 autocast;
* ``eval <mode> b<B>``: one evaluation of the training set (no augmentation) and the test set
  at eval batch size B, where ``mode`` is ``no_grad`` (``baseline_evaluate`` below: the
  trainer's evaluate before issue 13, verbatim but for the batch size: ``torch.no_grad``, batch
  500 in the trainer) or ``inference`` (``scalefree.train.trainer.evaluate`` as it is now).

Usage::

    python benchmarks/eval_probe.py --model ResNet20 --repeats 3 --batches 128 256 500 1000
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from _machine import machine_info
from scalefree.data import TrainBatches, eval_batches, load_data
from scalefree.models import build_model
from scalefree.train.trainer import DistContext, evaluate

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATAROOT = REPO.parent / "shared" / "data" / "cifar10-subset"


def amp_ctx_for(amp: str):
    if amp == "bf16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def time_train_epoch(model, data, amp: str, seed: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    generator = torch.Generator().manual_seed(seed)
    amp_ctx = amp_ctx_for(amp)
    model.train()
    t0 = time.perf_counter()
    for x, y in TrainBatches(data, 128, generator, channels_last=True):
        with amp_ctx():
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


@torch.no_grad()
def baseline_evaluate(model, images, labels, mean, std, *, batch, amp_ctx, channels_last):
    """The trainer's evaluate before issue 13 (single process), batch size as a parameter."""
    model.eval()
    n = len(images)
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    for x, y in eval_batches(images, labels, batch, mean, std, channels_last=channels_last):
        with amp_ctx():
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    model.train()
    return float(loss_sum) / n, float(correct) / n


def time_eval(model, data, amp: str, batch: int, mode: str) -> float:
    """Both evaluations (train set + test set) at eval batch ``batch``."""
    kw = dict(amp_ctx=amp_ctx_for(amp), channels_last=True)
    sets = ((data.train_images, data.train_labels), (data.eval_images, data.eval_labels))
    t0 = time.perf_counter()
    for images, labels in sets:
        if mode == "no_grad":
            baseline_evaluate(model, images, labels, data.mean, data.std, batch=batch, **kw)
        else:
            evaluate(
                model,
                images,
                labels,
                data.mean,
                data.std,
                loss_multiplier=1.0,
                ctx=DistContext(),
                batch_size=batch,
                **kw,
            )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ResNet20")
    ap.add_argument("--amp", nargs="+", default=["none", "bf16"], choices=["none", "bf16"])
    ap.add_argument("--batches", nargs="+", type=int, default=[128, 256, 500, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dataroot", type=Path, default=DEFAULT_DATAROOT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    info = machine_info()
    print(
        f"CPU: {info['cpu']} | logical CPUs: {info['logical_cpus']} | torch threads: "
        f"{info['torch_threads']} | torch {info['torch']} | load average {info['loadavg_at_start']}"
    )
    data = load_data("CIFAR10", args.dataroot, device="cpu")
    print(
        f"{args.model} no BN, {len(data.train_images)} train + {len(data.eval_images)} test "
        f"images, repeats={args.repeats}, channels_last",
        flush=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = build_model(args.model, num_classes=10, batch_norm=False)
    model = model.to(memory_format=torch.channels_last)
    for amp in args.amp:
        cases = [("train", 0, "")] + [
            (f"eval {m} b{b}", b, m) for m in ("no_grad", "inference") for b in args.batches
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for r in range(args.repeats):
            k = r % len(cases)
            for name, batch, mode in cases[k:] + cases[:k]:
                if name == "train":
                    times[name].append(time_train_epoch(model, data, amp, args.seed + r))
                else:
                    times[name].append(time_eval(model, data, amp, batch, mode))
        train_s = statistics.median(times["train"])
        print(f"\namp={amp}: median s (min) over {args.repeats} rounds; eval / train")
        for name, _, _ in cases:
            med = statistics.median(times[name])
            print(f"  {name:<22}{med:8.3f} ({min(times[name]):.3f}){med / train_s:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
