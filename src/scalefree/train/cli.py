"""``scalefree train``: every flag of the reference ``main.py`` (seed 000) plus scalefree's own.

Flags are generated from the RunConfig fields, so ``train`` and ``sweep`` can never disagree on a
flag's name, type or default.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from typing import Any

from scalefree.train.config import (
    AMP_MODES,
    CHANNELS_LAST,
    COMPILE_MODES,
    DECAY_CONVENTIONS,
    DEVICES,
    SCHEDULERS,
    RunConfig,
    flag,
)

HELP: dict[str, str] = {
    "optim_method": "optimizer: AdamL2, AdamW, AdamProx, AdamProxL2, AdamProxL1, AdamProxD, SGD, SGDM, "
    "AdaGrad, RMSProp, Adam",
    "eta0": "initial step size alpha",
    "weight_decay": "weight decay lambda (L2 coefficient for AdamL2 and the torch baselines)",
    "train_epochs": "number of training epochs (the reference's 300 are hours of CPU time even for "
    "ResNet20; the run prints its expected length after the first steps)",
    "batchsize": "mini-batch size (the global batch under DDP)",
    "eval_interval": "evaluate train and test sets every N epochs (and after the last)",
    "use_cuda": "train on the GPU (the reference's flag; warns and uses the CPU when there is none)",
    "log_folder": "folder that receives the run directory",
    "dataroot": "folder holding cifar-10-batches-py/ or cifar-100-python/",
    "dataset": "CIFAR10, CIFAR100 or synthetic",
    "model": "ResNet20/32/44/56/110/218/1202 or DenseNetBC100",
    "batch_norm": "remove every BatchNorm layer",
    "scheduler": "learning-rate schedule, stepped once per epoch",
    "store_stats": "record update-magnitude histograms (stats/ in the run directory)",
    "store_stats_interval": "record statistics at in-epoch iterations 0, k, 2k, ...",
    "loss_multiplier": "multiply the training loss (and reported losses) by c",
    "validation": "hold out --val-ratio of the training set and evaluate on it instead of the test set",
    "val_ratio": "fraction of the training set held out by --validation",
    "reproducible": "deterministic algorithms (bitwise-reproducible runs on the CPU)",
    "seed": "seed of data order, augmentation and (unless --init-seed) initial weights",
    "device": "where to train",
    "amp": "mixed precision: none or bf16 autocast",
    "compile": "torch.compile the training model: on (also --compile alone), off, or auto: on "
    "where it pays for itself (a C++ compiler or Triton present, a run long enough to earn back "
    "the compile time, not --reproducible)",
    "channels_last": "channels_last memory format (auto: on for CUDA or bf16)",
    "download": "download CIFAR from the official URL (MD5-verified) if missing",
    "decay_convention": "schedule: s = lambda*lr_t/lr_0 (paper); lr: s = lambda*lr_t (torch AdamW)",
    "amsgrad": "AMSGrad variant (Adam family and Adam)",
    "betas": "Adam's beta1 beta2",
    "eps": "Adam's epsilon (0 allowed: exact scale-freeness)",
    "no_decay_bias_norm": "do not decay biases and normalization parameters",
    "init_seed": "seed of the stored initial weights (default: --seed)",
    "lr_step_size": "Step scheduler: epochs between decays",
    "lr_gamma": "Step/Exponential scheduler: decay factor",
    "lr_power": "Polynomial scheduler: power",
    "max_steps": "stop after this many optimizer steps (smoke tests; default: no limit)",
    "progress": "progress display: auto (bar on a terminal, a line per epoch otherwise), bar, plain, none",
    "divergence_factor": "stop the run as diverged when its training loss exceeds this times the "
    "first step's loss, or is not finite",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "scheduler": SCHEDULERS,
    "amp": AMP_MODES,
    "device": DEVICES,
    "channels_last": CHANNELS_LAST,
    "compile": COMPILE_MODES,
    "decay_convention": DECAY_CONVENTIONS,
    "progress": ("auto", "bar", "plain", "none"),
}


def _base_type(annotation: Any) -> Any:
    """int | None -> int; the dataclass annotations are strings under __future__ annotations."""
    if isinstance(annotation, str):
        annotation = eval(
            annotation, {"tuple": tuple, "float": float, "int": int, "str": str, "bool": bool}
        )
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def add_config_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """One flag per RunConfig field (``exclude`` lists fields a caller sets another way)."""
    default = RunConfig()
    for f in dataclasses.fields(RunConfig):
        if f.name in exclude:
            continue
        kind = _base_type(f.type)
        name, help_text = flag(f.name), HELP.get(f.name, "")
        value = getattr(default, f.name)
        if f.name == "batch_norm":
            parser.add_argument(name, dest="batch_norm", action="store_false", help=help_text)
        elif kind is bool:
            parser.add_argument(name, dest=f.name, action="store_true", help=help_text)
        elif f.name == "compile":  # was a switch: --compile alone still means on
            parser.add_argument(
                name,
                dest="compile",
                nargs="?",
                const="on",
                default=value,
                choices=COMPILE_MODES,
                help=f"{help_text} (default: {value})",
            )
        elif f.name == "betas":
            parser.add_argument(
                name,
                dest="betas",
                type=float,
                nargs=2,
                metavar=("BETA1", "BETA2"),
                default=value,
                help=f"{help_text} (default: {value[0]} {value[1]})",
            )
        else:
            parser.add_argument(
                name,
                dest=f.name,
                type=kind,
                default=value,
                choices=CHOICES.get(f.name),
                # A help text that names its own default ("default: --seed") keeps it.
                help=help_text if "default:" in help_text else f"{help_text} (default: {value})",
            )


def config_from_args(args: argparse.Namespace, **overrides: Any) -> RunConfig:
    names = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return RunConfig(**(values | overrides))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one model with one optimizer setting",
        description="Train a CIFAR ResNet/DenseNet (or on synthetic data) and write a run directory "
        "with config.json, metrics.jsonl, stats/, checkpoint.pt and result.json.",
    )
    add_config_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalefree.train.distributed import init_from_env, shutdown
    from scalefree.train.trainer import train

    config = config_from_args(args)
    ctx = init_from_env(config)
    try:
        outcome = train(config, resume=args.resume, ctx=ctx)
    finally:
        shutdown(ctx)
    if not ctx.is_main:
        return 0 if outcome.result["status"] == "completed" else 1
    r = outcome.result
    if outcome.skipped:
        print(f"already complete ({r['status']}): {outcome.run_dir}")
        return 0
    last = r.get("last_evaluation") or {}
    print(f"status: {r['status']}" + (f" ({r['message']})" if r.get("message") else ""))
    if last:
        print(
            f"train loss {last['train_loss']:.4f}  train acc {last['train_acc']:.4f}  "
            f"{r['eval_split']} loss {last['test_loss']:.4f}  {r['eval_split']} acc {last['test_acc']:.4f}"
        )
    print(f"epochs {r['epochs_completed']}  steps {r['steps']}  time {r['wall_time_s']:.1f}s")
    print(f"run directory: {outcome.run_dir}")
    return 0 if r["status"] == "completed" else 1


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - python -m scalefree.train.cli
    from scalefree.cli import main as cli_main

    return cli_main(["train", *(argv if argv is not None else sys.argv[1:])])
